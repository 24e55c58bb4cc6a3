-- Status callbacks belong to the organisation whose Twilio account signed them (services/optout).
-- A callback is stored once per organisation: another organisation's callback naming the same SID
-- must not make the owner's own callback look like a repeat.
ALTER TABLE status_callbacks
    DROP CONSTRAINT status_callbacks_message_sid_message_status_error_code_key,
    ADD CONSTRAINT status_callbacks_once UNIQUE (org_id, message_sid, message_status, error_code);

-- Webhooks naming an organisation's AccountSid whose signature did not validate, counted per minute by
-- the opt-out service (it adds its in-memory counts every few seconds: a flood of forged requests is one
-- upsert per organisation, not one per request). The usage service's alert watcher e-mails the
-- organisation when they pile up: its webhook_base_url or auth token no longer matches what Twilio uses.
CREATE TABLE webhook_signature_refusals (
    org_id       uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    minute       timestamptz NOT NULL,
    refusals     integer NOT NULL CHECK (refusals > 0),
    last_url     text NOT NULL,  -- the URL the signature was checked against
    PRIMARY KEY (org_id, minute)
);
CREATE INDEX webhook_signature_refusals_by_minute ON webhook_signature_refusals (minute);

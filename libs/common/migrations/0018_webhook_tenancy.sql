-- Status callbacks belong to the organisation whose Twilio account signed them (services/optout).
-- A callback is stored once per organisation: another organisation's callback naming the same SID
-- must not make the owner's own callback look like a repeat.
ALTER TABLE status_callbacks
    DROP CONSTRAINT status_callbacks_message_sid_message_status_error_code_key,
    ADD CONSTRAINT status_callbacks_once UNIQUE (org_id, message_sid, message_status, error_code);

-- Consent, Twilio webhooks, delivery status and the iMIS write-back (services/optout, issue 9).
--
-- The flow: a webhook is validated and stored in webhook_requests before Twilio gets its 200; the
-- opt-out service's processor then turns each row into inbound_messages / status_callbacks, changes
-- suppressions and consent_history, and queues events (event_outbox) and iMIS jobs (imis_outbox) in the
-- same transaction, so nothing acknowledged to Twilio is lost and nothing is applied twice.

-- Every signed webhook, exactly as received, stored before the 200. Unsigned or forged requests are
-- never stored. state: pending -> done (processed; outcome says how) or failed (given up: error says why).
CREATE TABLE webhook_requests (
    id              bigserial PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('inbound', 'status')),
    org_id          uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    account_sid     text NOT NULL,
    -- The public URL the signature was validated against (sms_accounts.webhook_base_url + path + query).
    url             text NOT NULL,
    -- The form parameters (a repeated name keeps its last value: Twilio's messaging webhooks repeat none).
    params          jsonb NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),
    outcome         text,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    processed_at    timestamptz,
    error           text
);
-- The processor claims the oldest pending rows; the partial index stays as small as the backlog.
CREATE INDEX webhook_requests_pending ON webhook_requests (id) WHERE state = 'pending';
CREATE INDEX webhook_requests_by_org ON webhook_requests (org_id, received_at);

-- Every message a member sent us, keywords included. run_id/recipient_id point at the last text this
-- number got from the same sender, so replies show on the campaign.
CREATE TABLE inbound_messages (
    id                    bigserial PRIMARY KEY,
    org_id                uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    message_sid           text NOT NULL,
    from_number           text NOT NULL,      -- as Twilio sent it
    phone                 text CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),  -- E.164, when From is one
    to_number             text NOT NULL,
    messaging_service_sid text,
    body                  text NOT NULL,
    num_media             integer NOT NULL DEFAULT 0,
    kind                  text NOT NULL CHECK (kind IN ('opt_out', 'opt_in', 'help', 'other')),
    keyword               text,
    run_id                uuid REFERENCES campaign_runs ON DELETE SET NULL,
    recipient_id          uuid,
    webhook_request_id    bigint REFERENCES webhook_requests ON DELETE SET NULL,
    received_at           timestamptz NOT NULL,
    -- A webhook Twilio retries is processed once.
    UNIQUE (org_id, message_sid)
);
CREATE INDEX inbound_messages_by_run ON inbound_messages (run_id, received_at) WHERE run_id IS NOT NULL;
CREATE INDEX inbound_messages_by_phone ON inbound_messages (org_id, phone, received_at);

-- Append-only history of consent: who, which number, what, when, from where. One row per scope a
-- change applies to ('' = organisation-wide, else the sender address or Messaging Service SID).
CREATE TABLE consent_history (
    id          bigserial PRIMARY KEY,
    org_id      uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    phone       text NOT NULL CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    scope       text NOT NULL DEFAULT '',
    action      text NOT NULL CHECK (action IN ('opt_out', 'opt_in')),
    source      text NOT NULL CHECK (source IN ('keyword', 'twilio_21610', 'staff', 'import')),
    keyword     text,              -- STOP, START..., or the OptOutType Advanced Opt-Out sent
    body        text,              -- the member's message as typed
    message_sid text,              -- the inbound message, or the outbound one that failed with 21610
    actor       text NOT NULL,     -- 'member', 'twilio', or the staff user
    reason      text,              -- required of staff in the API
    changed     boolean NOT NULL,  -- false when the suppression was already in that state
    occurred_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX consent_history_by_phone ON consent_history (org_id, phone, occurred_at);
CREATE UNIQUE INDEX consent_history_once_per_message
    ON consent_history (org_id, message_sid, scope, action) WHERE message_sid IS NOT NULL;

-- Rows are never changed or removed, except when their organisation is deleted (the cascade runs
-- inside the foreign key's own trigger, so pg_trigger_depth() > 1 there).
CREATE FUNCTION consent_history_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND pg_trigger_depth() > 1 THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'consent_history is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER consent_history_append_only BEFORE UPDATE OR DELETE ON consent_history
    FOR EACH ROW EXECUTE FUNCTION consent_history_append_only();

-- A reply is linked to the last text its number got (services/optout last-send-to).
CREATE INDEX send_ledger_by_recipient ON send_ledger (org_id, to_number, claimed_at DESC);

-- Staff search and export list an organisation's suppressions newest first.
CREATE INDEX suppressions_by_org_created ON suppressions (org_id, created_at DESC);

-- Every distinct status callback, for dedupe and reconciliation. Twilio may repeat a callback, so
-- (MessageSid, MessageStatus, ErrorCode) is processed once; error_code is '' when absent so that the
-- unique key treats "no code" as one value. matched: a ledger row had this SID when it was applied
-- (unmatched ones are retried by the reconcile sweep: the dispatcher may record the SID after the
-- callback arrives). applied: it raised that row's status.
CREATE TABLE status_callbacks (
    id                 bigserial PRIMARY KEY,
    org_id             uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    message_sid        text NOT NULL,
    message_status     text NOT NULL,
    error_code         text NOT NULL DEFAULT '',
    price              numeric(10, 5),
    webhook_request_id bigint REFERENCES webhook_requests ON DELETE SET NULL,
    received_at        timestamptz NOT NULL DEFAULT now(),
    matched            boolean NOT NULL DEFAULT false,
    applied            boolean NOT NULL DEFAULT false,
    UNIQUE (message_sid, message_status, error_code)
);
CREATE INDEX status_callbacks_unmatched ON status_callbacks (received_at) WHERE NOT matched;

-- Events written in the same transaction as the change they announce, published to Kafka by the
-- opt-out service's relay (in id order, one relay at a time), so a crash between commit and publish
-- loses nothing. topic is the manifest name (libs/common/topics.py) without the deployment prefix;
-- payload is the event's JSON. Any service may write here; only the relay publishes.
CREATE TABLE event_outbox (
    id           bigserial PRIMARY KEY,
    topic        text NOT NULL,
    key          text NOT NULL,
    payload      text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    error        text            -- set when the row cannot be published (not a valid event); then skipped
);
CREATE INDEX event_outbox_unpublished ON event_outbox (id) WHERE published_at IS NULL AND error IS NULL;

-- Which iMIS member ids used which number. The audience service upserts a row for every recipient it
-- resolves (last_seen_at = now(), last_run_id = the run); the write-back updates every member seen
-- with a number in the recent window. Numbers are E.164, member ids as iMIS spells them.
CREATE TABLE member_phone_index (
    org_id        uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    phone         text NOT NULL CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    member_id     text NOT NULL CHECK (length(member_id) BETWEEN 1 AND 64),
    last_run_id   uuid,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, phone, member_id)
);

-- An organisation's iMIS credentials for the REST API (imis.md §1.1). base_url NULL means
-- TEXTPULSE_IMIS_BASE_URL. sms_panel is the single-instance panel written on opt-out/opt-in (§4b).
-- TODO(secrets): encrypt password at rest, as sms_accounts.auth_token.
CREATE TABLE imis_accounts (
    org_id            uuid PRIMARY KEY REFERENCES organisations ON DELETE CASCADE,
    base_url          text CHECK (base_url ~ '^https?://'),
    username          text NOT NULL CHECK (length(username) BETWEEN 1 AND 200),
    password          text NOT NULL,
    sms_panel         text NOT NULL DEFAULT 'TP_SmsPreferences' CHECK (sms_panel ~ '^[A-Za-z_][A-Za-z0-9_]{0,99}$'),
    writeback_enabled boolean NOT NULL DEFAULT true,
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- iMIS write-back jobs: one per (consent change, member). state: pending (due at next_attempt_at;
-- attempts > 0 means it is retrying, last_error says why) -> done | failed (gave up or refused).
-- A job claimed by a worker stays pending with next_attempt_at pushed out by the lease, so a worker
-- that dies leaves it to be picked up again.
CREATE TABLE imis_outbox (
    id              bigserial PRIMARY KEY,
    org_id          uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    member_id       text NOT NULL,
    phone           text NOT NULL,
    action          text NOT NULL CHECK (action IN ('opt_out', 'opt_in')),
    source_text     text NOT NULL,   -- what iMIS shows as the source, e.g. 'STOP from +14155550134'
    occurred_at     timestamptz NOT NULL,
    consent_id      bigint REFERENCES consent_history ON DELETE SET NULL,
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz,
    UNIQUE (consent_id, member_id)
);
CREATE INDEX imis_outbox_due ON imis_outbox (next_attempt_at) WHERE state = 'pending';
-- Jobs for one member run in order: a job waits while an older one for the same member is pending.
CREATE INDEX imis_outbox_member_pending ON imis_outbox (org_id, member_id, id) WHERE state = 'pending';
CREATE INDEX imis_outbox_by_org_state ON imis_outbox (org_id, state, created_at);

-- Two-way texting (issue 27): the replies inbox, one-off texts (staff replies, keyword answers, revocation
-- confirmations) and the organisation's own keywords (services/optout/inbox.py, services/dispatcher/one_off.py,
-- services/api/routes/inbox.py).

-- One conversation per member number and the sender they wrote to. Its messages are the member's replies
-- (inbound_messages) and what we sent them (send_ledger, one_off_texts), read through joins, so reply
-- retention and erasure reach them there. run_id / recipient_id: the campaign text the latest reply answers
-- (the member's name and iMIS ID come from that run's snapshot).
CREATE TABLE inbox_conversations (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id          uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    phone           text NOT NULL CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    sender          text NOT NULL,
    run_id          uuid REFERENCES campaign_runs ON DELETE SET NULL,
    recipient_id    uuid,
    unread          integer NOT NULL DEFAULT 0 CHECK (unread >= 0),
    state           text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'done')),
    assigned_to     uuid REFERENCES users ON DELETE SET NULL,
    last_message_at timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, phone, sender)
);
CREATE INDEX inbox_conversations_latest ON inbox_conversations (org_id, last_message_at DESC);

-- One text to one number outside any campaign run. kind:
--   staff_reply              written by a staff user in the inbox (idempotency_key: one per request)
--   keyword_reply            the answer to HELP / INFO or an organisation's own keyword (reply_to_sid: one
--                            answer per member message)
--   revocation_confirmation  the one confirmation a revocation may get (confirmation_id, migration 0042):
--                            the only kind sent to a number that is suppressed
-- state: pending -> claimed (its ledger row is committed before the Twilio call) -> sent | failed |
-- suppressed; a claim a crash left without an outcome becomes unknown and is never sent again.
CREATE TABLE one_off_texts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id          uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    kind            text NOT NULL CHECK (kind IN ('staff_reply', 'keyword_reply', 'revocation_confirmation')),
    conversation_id bigint REFERENCES inbox_conversations ON DELETE SET NULL,
    confirmation_id bigint UNIQUE REFERENCES revocation_confirmations ON DELETE CASCADE,
    reply_to_sid    text,
    idempotency_key text CHECK (length(idempotency_key) <= 255),
    author          text,
    sender          text NOT NULL,
    phone           text CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),  -- NULL once the member is erased
    body            text NOT NULL CHECK (length(body) BETWEEN 1 AND 1600),
    segments        integer NOT NULL CHECK (segments BETWEEN 1 AND 10),
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'claimed', 'sent', 'failed', 'suppressed', 'unknown')),
    message_sid     text,
    error_code      integer,
    reason          text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    claimed_at      timestamptz,
    sent_at         timestamptz,
    UNIQUE (org_id, idempotency_key),
    UNIQUE (org_id, reply_to_sid),
    CHECK ((kind = 'revocation_confirmation') = (confirmation_id IS NOT NULL)),
    CHECK (kind <> 'staff_reply' OR idempotency_key IS NOT NULL),
    CHECK (kind <> 'keyword_reply' OR reply_to_sid IS NOT NULL)
);
CREATE INDEX one_off_texts_pending ON one_off_texts (created_at) WHERE state = 'pending';
CREATE INDEX one_off_texts_by_conversation ON one_off_texts (conversation_id, created_at);

-- A one-off text is a ledger row of no run and no test (its sender's pacing window and status callbacks
-- see it as any other text).
ALTER TABLE send_ledger ADD COLUMN one_off_id bigint UNIQUE REFERENCES one_off_texts ON DELETE CASCADE;
ALTER TABLE send_ledger DROP CONSTRAINT send_ledger_run_or_test,
    ADD CONSTRAINT send_ledger_run_or_test
        CHECK (num_nonnulls(run_id, test_campaign_id, one_off_id) = 1);

-- Who answers HELP / INFO: 'twilio' (Advanced Opt-Out answers them; Textpulse stays silent) or 'textpulse'
-- (the organisation's help text below). help_contact is the help text's contact (a phone number, an e-mail
-- address or a web address).
ALTER TABLE organisations
    ADD COLUMN help_answered_by text NOT NULL DEFAULT 'twilio' CHECK (help_answered_by IN ('twilio', 'textpulse')),
    ADD COLUMN help_contact text NOT NULL DEFAULT '' CHECK (length(help_contact) <= 120);

-- An organisation's own keywords (RENEW, ...), answered by Textpulse with their reply.
CREATE TABLE org_keywords (
    org_id     uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    keyword    text NOT NULL CHECK (keyword ~ '^[A-Z0-9]{2,20}$'),
    reply      text NOT NULL CHECK (length(reply) BETWEEN 1 AND 320),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, keyword)
);

-- Revocation of consent in a member's own words, the review queue for doubtful replies, revocations staff
-- record from another channel, and the one confirmation text per revocation (issue 25; services/optout
-- revocation*.py, services/api/routes/revocations.py).
--
-- New sources, beside keyword / twilio_21610 / staff / import:
--   reply        a member's free-text reply that revokes ("please stop texting me", "basta", "arrêtez")
--   review_hold  a doubtful reply waiting for staff: suppressed meanwhile (never in consent_history)
--   review       a doubtful reply staff decided is a revocation
--   manual       a revocation staff recorded from another channel (e-mail, phone call...), with its evidence
-- The audience service and the dispatcher honour every suppression whatever its source (is_suppressed,
-- migration 0011), so a held number is not texted while its review is pending.
ALTER TABLE suppressions DROP CONSTRAINT suppressions_source_check,
    ADD CONSTRAINT suppressions_source_check
        CHECK (source IN ('keyword', 'twilio_21610', 'staff', 'import', 'reply', 'review_hold', 'review', 'manual'));
ALTER TABLE erased_suppressions DROP CONSTRAINT erased_suppressions_source_check,
    ADD CONSTRAINT erased_suppressions_source_check
        CHECK (source IN ('keyword', 'twilio_21610', 'staff', 'import', 'reply', 'review_hold', 'review', 'manual'));
ALTER TABLE consent_history DROP CONSTRAINT consent_history_source_check,
    ADD CONSTRAINT consent_history_source_check
        CHECK (source IN ('keyword', 'twilio_21610', 'staff', 'import', 'reply', 'review', 'manual'));

-- How a manual revocation reached the organisation, and what shows it (the e-mail's subject and date, the
-- call's note). Required of staff for source 'manual'; NULL otherwise.
ALTER TABLE consent_history
    ADD COLUMN channel text CHECK (channel IN ('email', 'phone_call', 'letter', 'in_person', 'other')),
    ADD COLUMN evidence text CHECK (length(evidence) <= 2000);

-- A doubtful reply waiting for staff. The member's words and number stay in inbound_messages only (read
-- through the join), so the reply retention and erasure that blank them there blank them here too.
-- state: pending -> revocation | not_revocation, once.
CREATE TABLE revocation_reviews (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id             uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    inbound_message_id bigint NOT NULL REFERENCES inbound_messages ON DELETE CASCADE,
    scope              text,        -- the sender or Messaging Service replied to (the sender-scoped change)
    matched            text NOT NULL,  -- the phrase of the table that made it doubtful
    language           text NOT NULL,
    state              text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'revocation', 'not_revocation')),
    decided_by         text,
    decided_at         timestamptz,
    note               text CHECK (length(note) <= 500),
    created_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (inbound_message_id),
    CHECK ((state = 'pending') = (decided_at IS NULL))
);
CREATE INDEX revocation_reviews_pending ON revocation_reviews (org_id, created_at) WHERE state = 'pending';

-- An organisation may text one confirmation per revocation (no marketing), off by default. Twilio answers
-- its own keywords (STOP...) itself, so only revocations it did not see get ours.
ALTER TABLE organisations
    ADD COLUMN revocation_confirmation boolean NOT NULL DEFAULT false,
    ADD COLUMN revocation_confirmation_text text NOT NULL
        DEFAULT 'You will receive no more texts from us. Reply START to opt back in.'
        CHECK (length(revocation_confirmation_text) BETWEEN 1 AND 320);

-- The confirmations owed: at most one per revocation (its organisation-wide consent_history row), sent from
-- the sender the member replied to. state: pending -> sent | failed | cancelled (the member opted back in
-- first).
CREATE TABLE revocation_confirmations (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id      uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    consent_id  bigint NOT NULL REFERENCES consent_history ON DELETE CASCADE,
    phone       text CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),  -- NULL once the member is erased
    sender      text NOT NULL,
    body        text NOT NULL,
    state       text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed', 'cancelled')),
    message_sid text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (consent_id)
);
CREATE INDEX revocation_confirmations_pending ON revocation_confirmations (created_at) WHERE state = 'pending';

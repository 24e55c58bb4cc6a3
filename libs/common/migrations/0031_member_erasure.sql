-- Erasure of one member for a GDPR request (services/api/erasure.py, issue 21): their numbers, names and
-- words go from every table, while counts and the fact of a suppression stay.
--
-- A number is kept only as its keyed digest: HMAC-SHA256 under a key derived from the organisation's data
-- key (libs/common/envelope.py number_digest), 64 hex digits. The key never reaches the database, so a copy
-- of these tables cannot be searched for a number; a process holding the key computes a number's digest
-- and looks it up.

-- The suppressions of erased numbers: same scope, source and date as the row they replace. The audience
-- service looks its numbers' digests up here as well as the numbers in suppressions.
CREATE TABLE erased_suppressions (
    org_id        uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    phone_digest  text NOT NULL CHECK (phone_digest ~ '^[0-9a-f]{64}$'),
    scope         text NOT NULL DEFAULT '',
    source        text NOT NULL CHECK (source IN ('keyword', 'twilio_21610', 'staff', 'import')),
    suppressed_at timestamptz NOT NULL,
    erased_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, phone_digest, scope)
);

-- Every erasure done: subject_digest is the digest of 'imis:<id>' or 'phone:<E.164>', so a repeated request
-- is recognised (and answered as already erased) without keeping who it was.
CREATE TABLE erasures (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id         uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    subject_digest text NOT NULL CHECK (subject_digest ~ '^[0-9a-f]{64}$'),
    erased_by      text NOT NULL,
    counts         jsonb NOT NULL CHECK (jsonb_typeof(counts) = 'object'),
    erased_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX erasures_by_subject ON erasures (org_id, subject_digest);

-- Consent history stays (it is the record of what the member asked for), with the number as its digest
-- and the member's words gone.
ALTER TABLE consent_history
    ALTER COLUMN phone DROP NOT NULL,
    ADD COLUMN phone_digest text CHECK (phone_digest ~ '^[0-9a-f]{64}$'),
    ADD CONSTRAINT consent_history_phone_or_digest CHECK (phone IS NOT NULL OR phone_digest IS NOT NULL);

-- Still append-only, but for the one update erasure makes: number to digest, body to NULL, nothing else.
CREATE OR REPLACE FUNCTION consent_history_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND pg_trigger_depth() > 1 THEN
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.phone IS NULL AND NEW.body IS NULL AND NEW.phone_digest IS NOT NULL
       AND (NEW.id, NEW.org_id, NEW.scope, NEW.action, NEW.source, NEW.keyword, NEW.message_sid, NEW.actor,
            NEW.reason, NEW.changed, NEW.occurred_at)
           IS NOT DISTINCT FROM (OLD.id, OLD.org_id, OLD.scope, OLD.action, OLD.source, OLD.keyword, OLD.message_sid,
                                 OLD.actor, OLD.reason, OLD.changed, OLD.occurred_at) THEN
        RETURN NEW;  -- a member's erasure
    END IF;
    RAISE EXCEPTION 'consent_history is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;

-- A snapshot row of an erased member keeps its status, reason, region and segments (the run's counts) but
-- no number, name or body; erased_at marks it. A column without a default costs the COPY nothing.
ALTER TABLE run_recipients ADD COLUMN erased_at timestamptz;
ALTER TABLE run_recipients DROP CONSTRAINT run_recipients_check1;
ALTER TABLE run_recipients ADD CONSTRAINT run_recipients_queued_whole
    CHECK (status = 'excluded' OR erased_at IS NOT NULL
           OR (e164 IS NOT NULL AND body IS NOT NULL AND segments BETWEEN 1 AND 10));

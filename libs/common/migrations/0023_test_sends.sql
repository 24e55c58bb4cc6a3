-- Test sends (services/api/routes/test_send.py): bounded to the organisation's staff test numbers,
-- rate-limited, and recorded like every other text.

-- The numbers staff may send test texts to, managed by the organisation's admins (Settings).
CREATE TABLE staff_test_numbers (
    org_id     uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    phone      text NOT NULL CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    label      text NOT NULL CHECK (length(label) BETWEEN 1 AND 100),
    added_by   text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, phone)
);

-- Test texts counted per caller ('user:<org>:<actor>') and per organisation ('org:<org>') in a window that
-- starts with the first text; counted in one statement, as sign_in_throttle is.
CREATE TABLE test_send_throttle (
    key               text PRIMARY KEY CHECK (length(key) <= 400),
    sends             integer NOT NULL CHECK (sends >= 0),
    window_started_at timestamptz NOT NULL DEFAULT now()
);

-- A test text is a ledger row of no run: test_campaign_id names its campaign instead, and recipient_id
-- is random. Status callbacks find it by its SID as they find any other.
ALTER TABLE send_ledger ADD COLUMN test_campaign_id uuid REFERENCES campaigns ON DELETE CASCADE;
ALTER TABLE send_ledger DROP CONSTRAINT send_ledger_pkey;
ALTER TABLE send_ledger ALTER COLUMN run_id DROP NOT NULL;
-- Still one row per (run, recipient): ON CONFLICT (run_id, recipient_id) infers this constraint.
ALTER TABLE send_ledger ADD CONSTRAINT send_ledger_run_recipient UNIQUE (run_id, recipient_id);
ALTER TABLE send_ledger ADD CONSTRAINT send_ledger_run_or_test CHECK ((run_id IS NULL) <> (test_campaign_id IS NULL));
CREATE INDEX send_ledger_tests ON send_ledger (test_campaign_id, claimed_at) WHERE test_campaign_id IS NOT NULL;

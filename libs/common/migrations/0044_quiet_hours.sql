-- Quiet hours by the member's location (libs/common/quiet_hours.py) and frequency caps, in the send ledger.
--
-- A recipient whose local window is closed is 'held' with the instant it opens (held_until); the
-- dispatcher's releaser (services/dispatcher/holds.py) publishes it again then, and released_at says when
-- it last did. 'held' is not an outcome: the run stays open. A recipient whose window does not open before
-- the campaign's hold limit ends 'outside_window'; one over a frequency cap ends 'frequency_capped'.
ALTER TABLE send_ledger DROP CONSTRAINT send_ledger_state_check;
ALTER TABLE send_ledger ADD CONSTRAINT send_ledger_state_check
    CHECK (state IN ('claimed', 'held', 'sent', 'failed', 'suppressed', 'expired', 'cancelled', 'outside_window',
                     'frequency_capped'));
ALTER TABLE send_ledger ADD COLUMN held_until timestamptz;
ALTER TABLE send_ledger ADD COLUMN released_at timestamptz;
CREATE INDEX send_ledger_held ON send_ledger (held_until) WHERE state = 'held';

ALTER TABLE usage_messages DROP CONSTRAINT usage_messages_outcome_check;
ALTER TABLE usage_messages ADD CONSTRAINT usage_messages_outcome_check
    CHECK (outcome IN ('sent', 'failed', 'suppressed', 'expired', 'cancelled', 'outside_window', 'frequency_capped'));

-- Counted from the ledger with the run's other figures (refresh-run-counts); they end recipients too.
ALTER TABLE campaign_runs
    ADD COLUMN outside_window   integer NOT NULL DEFAULT 0,
    ADD COLUMN frequency_capped integer NOT NULL DEFAULT 0;

-- transactional: a service text (a storm closure) skips the organisation's marketing cap, never quiet hours,
-- state limits or opt-outs. hold_limit_s: a held recipient is sent only if its window opens within this
-- many seconds of the run's occurrence; otherwise it ends outside_window.
ALTER TABLE campaigns
    ADD COLUMN transactional boolean NOT NULL DEFAULT false,
    ADD COLUMN hold_limit_s  integer NOT NULL DEFAULT 86400 CHECK (hold_limit_s BETWEEN 0 AND 604800);

-- The member's address as iMIS has it (US state code, IANA zone); NULL when unknown, and the area code decides.
ALTER TABLE run_recipients
    ADD COLUMN address_state     text CHECK (address_state ~ '^[A-Z]{2}$'),
    ADD COLUMN address_time_zone text;

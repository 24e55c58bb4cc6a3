-- Volume caps for toll-free senders that are not verified. Twilio now blocks unverified toll-free numbers
-- to US/Canada outright, so by default such a run is refused; an organisation may instead set caps per
-- verification state (the 2023 rules capped restricted and pending numbers by day, week and month, in
-- segments), which the dispatcher enforces across all its processes.
CREATE TABLE sender_cap_policies (
    org_id       uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    verification text NOT NULL CHECK (verification IN ('pending', 'restricted', 'rejected')),
    per_day      integer CHECK (per_day > 0),
    per_week     integer CHECK (per_week > 0),
    per_month    integer CHECK (per_month > 0),
    -- hold: the rest of the run waits for the next period; fail: the rest of the run fails (cap_reached).
    when_reached text NOT NULL DEFAULT 'hold' CHECK (when_reached IN ('hold', 'fail')),
    PRIMARY KEY (org_id, verification),
    CHECK (per_day IS NOT NULL OR per_week IS NOT NULL OR per_month IS NOT NULL)
);

-- Segments each capped sender has used in each calendar period (UTC). A send reserves its segments
-- here in the same transaction as its ledger row, under the row lock, so two processes never both take
-- the last of a cap; a send that does not happen rolls its reservation back with it.
CREATE TABLE sender_volume (
    sender       text NOT NULL,
    period       text NOT NULL CHECK (period IN ('day', 'week', 'month')),
    period_start timestamptz NOT NULL,
    segments     integer NOT NULL DEFAULT 0,
    PRIMARY KEY (sender, period, period_start)
);

-- Why a recipient ended without a message when Twilio gave no code (e.g. cap_reached).
ALTER TABLE send_ledger ADD COLUMN reason text;

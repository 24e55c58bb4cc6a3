-- Campaigns and the scheduler (issue 6): schedule bookkeeping, lateness policy, audit trail and
-- idempotency keys. The campaigns and campaign_runs tables themselves are in 0002.

-- campaigns.schedule (jsonb, written by libs/common/schedules.py) stays the source of truth:
--   {"kind": "none"} | {"kind": "now", "requested_at": ...}
--   | {"kind": "at", "at": "2026-03-08T02:30:00", "time_zone": "America/New_York"}
--   | {"kind": "rrule", "rrule": "FREQ=WEEKLY;BYDAY=TU", "start": "...", "time_zone": "..."}
-- Wall-clock times are stored with the zone they were read in (the organisation's at the time), so a
-- later change of organisations.time_zone does not silently move a campaign that is already scheduled.
ALTER TABLE campaigns
    -- The next occurrence that has no run yet; null when there is none. The scheduler finds due work by
    -- this column alone instead of expanding every schedule on every tick.
    ADD COLUMN next_occurrence_at timestamptz,
    -- Lateness policy: a run found more than max_lateness_s late is marked 'missed' (and alerted),
    -- unless send_when_late.
    ADD COLUMN send_when_late boolean NOT NULL DEFAULT false,
    ADD COLUMN max_lateness_s integer NOT NULL DEFAULT 3600 CHECK (max_lateness_s BETWEEN 60 AND 604800),
    ADD COLUMN duplicated_from uuid REFERENCES campaigns ON DELETE SET NULL,
    ADD COLUMN state_changed_at timestamptz NOT NULL DEFAULT now();

CREATE INDEX campaigns_due ON campaigns (next_occurrence_at)
    WHERE next_occurrence_at IS NOT NULL AND state IN ('scheduled', 'sending');

ALTER TABLE campaign_runs
    -- What made the run: an occurrence of the schedule, or a send-now request.
    ADD COLUMN origin text NOT NULL DEFAULT 'schedule' CHECK (origin IN ('schedule', 'send_now')),
    -- Which scheduler process published the campaign-due event (host:pid), for the logs.
    ADD COLUMN published_by text;

-- The runs a scheduler still has to publish: small (only what is due and unpublished), so claiming
-- with FOR UPDATE SKIP LOCKED never scans history.
CREATE INDEX campaign_runs_unpublished ON campaign_runs (occurrence_at)
    WHERE state = 'pending' AND published_at IS NULL;
CREATE INDEX campaign_runs_by_campaign ON campaign_runs (campaign_id, occurrence_at DESC);

-- Who did what to a campaign, and what the scheduler did to its runs: one row per change, never updated.
-- actor is the user (from the API) or 'scheduler'. action: created, edited, scheduled, sent_now, paused,
-- resumed, cancelled, archived, duplicated, run_published, run_missed, schedule_invalid.
CREATE TABLE campaign_audit (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id      uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    campaign_id uuid NOT NULL REFERENCES campaigns ON DELETE CASCADE,
    run_id      uuid REFERENCES campaign_runs ON DELETE CASCADE,
    actor       text NOT NULL,
    action      text NOT NULL,
    from_state  text,
    to_state    text,
    detail      jsonb NOT NULL DEFAULT '{}',
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX campaign_audit_by_campaign ON campaign_audit (campaign_id, id);
-- Missed runs are what the alerting job looks for.
CREATE INDEX campaign_audit_missed ON campaign_audit (at) WHERE action = 'run_missed';

-- Idempotency-Key on API requests that start a send: the first request with a key stores its response in
-- the same transaction as its effect; a retry with the same key gets that response again, and no second
-- run. The same key with a different request is refused. Rows older than a day may be pruned.
CREATE TABLE idempotency_keys (
    org_id       uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    key          text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash text NOT NULL,          -- sha256 of method, path and body
    status_code  integer,                -- set in the transaction that inserted the row
    response     jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

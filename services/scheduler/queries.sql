-- The scheduler's statements. Two schedulers may run against one database: every statement that picks
-- work takes row locks with SKIP LOCKED, so each due campaign and each due run has one owner at a time,
-- and the one transaction that publishes a run also marks it published (see services/scheduler/loop.py).

-- name: lock-due-campaigns
-- Campaigns whose next occurrence is due and has no run yet (partial index campaigns_due). SKIP LOCKED:
-- another scheduler, or the API changing the campaign, holds it; it is taken on a later tick.
SELECT id, org_id, schedule::text AS schedule, next_occurrence_at
FROM campaigns
WHERE next_occurrence_at <= :now
  AND state IN ('scheduled', 'sending')
ORDER BY next_occurrence_at
LIMIT :limit
FOR UPDATE SKIP LOCKED;

-- name: insert-run
-- One run per occurrence, whoever creates it: UNIQUE (campaign_id, occurrence_at) makes a second
-- insert (a scheduler that crashed after inserting, before moving next_occurrence_at) a no-op.
-- The run takes its copy of the campaign's body, audience, sender and limits as it is inserted, while
-- this transaction holds the campaign (trigger campaign_runs_freeze_content, 0013).
INSERT INTO campaign_runs (org_id, campaign_id, occurrence_at, origin)
VALUES (:org_id, :campaign_id, :occurrence_at, 'schedule')
ON CONFLICT (campaign_id, occurrence_at) DO NOTHING
RETURNING id;

-- name: set-next-occurrence
UPDATE campaigns SET next_occurrence_at = :next_occurrence_at WHERE id = :campaign_id;

-- name: claim-due-runs
-- Due runs not yet published (partial index campaign_runs_unpublished), with their campaign locked too:
-- the campaign's state moves with the publish, and a pause or cancel in the API waits for this
-- transaction instead of racing it. Runs of paused campaigns stay pending until resumed.
-- With the approval the organisation may require: what was approved, the run's copy of the content (what
-- it would send; whether it is transactional is read from the campaign when it sends) and the campaign's as
-- it is now (libs/common/approval.py compares them).
SELECT r.id AS run_id, r.org_id, r.campaign_id, r.occurrence_at,
       c.state AS campaign_state, c.send_when_late, c.max_lateness_s,
       o.require_approval, c.approval_fingerprint,
       r.body AS run_body, r.audience::text AS run_audience, r.sender_id AS run_sender_id,
       r.track_links AS run_track_links, c.body, c.audience::text AS audience, c.track_links, c.transactional,
       coalesce(c.sender_id, (SELECT s.id FROM senders s WHERE s.org_id = c.org_id AND s.is_default))
           AS effective_sender_id
FROM campaign_runs r
JOIN campaigns c ON c.id = r.campaign_id
JOIN organisations o ON o.id = r.org_id
WHERE r.state = 'pending'
  AND r.published_at IS NULL
  AND r.occurrence_at <= :now
  AND c.state IN ('scheduled', 'sending')
ORDER BY r.occurrence_at
LIMIT :limit
FOR UPDATE OF r, c SKIP LOCKED;

-- name: mark-published
-- Written before the event is sent but committed only after Kafka acknowledged it: a crash in between
-- rolls this back and the run is published again (consumers dedupe by run id).
UPDATE campaign_runs
SET published_at = :now, published_by = :instance
WHERE id = ANY(:run_ids::uuid[]);

-- name: mark-missed
-- The run is pending and locked (claim-due-runs).
UPDATE campaign_runs
SET state = 'missed', state_reason = :reason, state_reason_code = :reason_code,
    state_reason_detail = CAST(:reason_detail AS jsonb), finished_at = :now
WHERE id = :run_id AND state = 'pending';

-- name: set-campaign-state
UPDATE campaigns
SET state = :state, state_changed_at = :now, updated_at = :now
WHERE id = :campaign_id;

-- name: refuse-unapproved-run
-- The run is pending and locked (claim-due-runs): it never starts, and nothing of it is sent.
UPDATE campaign_runs
SET state = 'refused', state_reason = :reason, state_reason_code = :reason_code,
    state_reason_detail = CAST(:reason_detail AS jsonb), finished_at = :now
WHERE id = :run_id AND state = 'pending';

-- name: withdraw-unapproved-campaign
-- Its campaign (locked with the run) waits for a new approval: its other unpublished runs are cancelled
-- and its schedule stops until it is approved and scheduled again, as an edit in the API does.
WITH cancelled AS (
    UPDATE campaign_runs
    SET state = 'cancelled', state_reason = :reason, state_reason_code = :reason_code,
        state_reason_detail = CAST(:reason_detail AS jsonb), finished_at = :now
    WHERE campaign_id = :campaign_id AND state = 'pending' AND published_at IS NULL
)
UPDATE campaigns SET next_occurrence_at = NULL WHERE id = :campaign_id;

-- name: insert-audit
INSERT INTO campaign_audit (org_id, campaign_id, run_id, actor, action, from_state, to_state, detail)
VALUES (:org_id, :campaign_id, :run_id, 'scheduler', :action, :from_state, :to_state, :detail::jsonb);

-- When a run ends, its campaign follows (libs/common/run_endings.py). Runs in the caller's transaction,
-- in whichever service ended the run: the audience service, the dispatcher or the scheduler.

-- name: lock-campaign-of-run
-- Taken before the run's own row is changed: every writer locks a campaign before its runs (as the API
-- does for pause and cancel), so ending a run never deadlocks with staff acting on the campaign.
SELECT c.id FROM campaigns c JOIN campaign_runs r ON r.campaign_id = c.id WHERE r.id = :run_id
FOR UPDATE OF c;

-- name: run-ending
-- The ended run, its campaign (locked) and what else the campaign has coming: another open run, or more
-- occurrences of its schedule.
SELECT r.org_id, r.campaign_id, r.state AS run_state, r.state_reason, r.sent, c.state AS campaign_state,
       c.next_occurrence_at IS NOT NULL AS has_more_occurrences,
       EXISTS (SELECT 1 FROM campaign_runs o
               WHERE o.campaign_id = r.campaign_id AND o.id <> r.id
                 AND o.state IN ('pending', 'resolving', 'sending', 'paused')) AS other_runs_open
FROM campaign_runs r
JOIN campaigns c ON c.id = r.campaign_id
WHERE r.id = :run_id
FOR UPDATE OF c;

-- name: move-campaign
UPDATE campaigns SET state = :state, state_changed_at = now(), updated_at = now() WHERE id = :campaign_id;

-- name: audit-run-ended
INSERT INTO campaign_audit (org_id, campaign_id, run_id, actor, action, from_state, to_state, detail)
VALUES (:org_id, :campaign_id, :run_id, :actor, 'run_ended', :from_state, :to_state, :detail::jsonb);

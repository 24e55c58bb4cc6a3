-- The API's statements. Every campaign statement is scoped by org_id: a campaign of another
-- organisation is simply not found. Changes lock the campaign first (lock-campaign) and decide in
-- Python (libs/common/campaign_states.py), so the state machine has one home.

-- name: sender-of-org
SELECT id FROM senders WHERE id = :sender_id AND org_id = :org_id;

-- name: default-sender
SELECT id FROM senders WHERE org_id = :org_id AND is_default;

-- name: insert-campaign
INSERT INTO campaigns (org_id, name, body, audience, sender_id, contact_email, segment_limit,
                       validity_period_s, send_when_late, max_lateness_s, track_links, transactional, hold_limit_s,
                       created_by, updated_by, content_authors)
VALUES (:org_id, :campaign_name, :body, :audience::jsonb, :sender_id, :contact_email, :segment_limit,
        :validity_period_s, :send_when_late, :max_lateness_s, :track_links, :transactional, :hold_limit_s, :actor,
        :actor, ARRAY[CAST(:actor AS text)])
RETURNING id;

-- name: duplicate-campaign
-- A fresh draft with the original's content; schedule, runs, state and approval are not copied. Whoever
-- wrote the original's wording stays one of its authors, so they cannot approve the copy either.
INSERT INTO campaigns (org_id, name, body, audience, sender_id, contact_email, segment_limit,
                       validity_period_s, send_when_late, max_lateness_s, track_links, transactional, hold_limit_s,
                       duplicated_from, created_by, updated_by, content_authors)
SELECT org_id, left('Copy of ' || name, 200), body, audience, sender_id, contact_email, segment_limit,
       validity_period_s, send_when_late, max_lateness_s, track_links, transactional, hold_limit_s, id, :actor,
       :actor,
       array_remove(content_authors, CAST(:actor AS text)) || CAST(:actor AS text)
FROM campaigns
WHERE id = :campaign_id AND org_id = :org_id
RETURNING id;

-- name: get-campaign
SELECT id, name, body, audience::text AS audience, sender_id, contact_email, segment_limit,
       validity_period_s, schedule::text AS schedule, state, next_occurrence_at, send_when_late,
       max_lateness_s, track_links, transactional, hold_limit_s, duplicated_from, created_by, updated_by,
       approved_by, created_at, updated_at,
       state_changed_at, content_authors, approval_fingerprint, approved_at, review_comment,
       coalesce(sender_id, (SELECT s.id FROM senders s WHERE s.org_id = campaigns.org_id AND s.is_default))
           AS effective_sender_id
FROM campaigns
WHERE id = :campaign_id AND org_id = :org_id;

-- name: lock-campaign
-- Serialises changes to one campaign with each other and with the scheduler (which skips a locked
-- campaign and takes it on its next tick).
SELECT id, state, schedule::text AS schedule
FROM campaigns
WHERE id = :campaign_id AND org_id = :org_id
FOR UPDATE;

-- name: list-campaigns
-- Newest first; id breaks ties so pages never overlap. Uses campaigns_by_org_state for a state filter.
SELECT id, name, body, audience::text AS audience, sender_id, contact_email, segment_limit,
       validity_period_s, schedule::text AS schedule, state, next_occurrence_at, send_when_late,
       max_lateness_s, track_links, transactional, hold_limit_s, duplicated_from, created_by, updated_by,
       approved_by, created_at, updated_at,
       state_changed_at, content_authors, approval_fingerprint, approved_at, review_comment,
       coalesce(sender_id, (SELECT s.id FROM senders s WHERE s.org_id = campaigns.org_id AND s.is_default))
           AS effective_sender_id
FROM campaigns
WHERE org_id = :org_id AND (:states::text[] IS NULL OR state = ANY(:states))
ORDER BY created_at DESC, id
LIMIT :limit OFFSET :offset;

-- name: count-campaigns
SELECT count(*) FROM campaigns
WHERE org_id = :org_id AND (:states::text[] IS NULL OR state = ANY(:states));

-- name: update-campaign
-- Every editable field at once: the route merges a PATCH into the locked row first.
UPDATE campaigns
SET name = :campaign_name, body = :body, audience = :audience::jsonb, sender_id = :sender_id,
    contact_email = :contact_email, segment_limit = :segment_limit, validity_period_s = :validity_period_s,
    send_when_late = :send_when_late, max_lateness_s = :max_lateness_s, track_links = :track_links,
    transactional = :transactional, hold_limit_s = :hold_limit_s, updated_by = :actor, updated_at = now()
WHERE id = :campaign_id;

-- name: delete-campaign
DELETE FROM campaigns WHERE id = :campaign_id AND state = 'draft';

-- name: set-campaign-state
UPDATE campaigns
SET state = :state, state_changed_at = now(), updated_by = :actor, updated_at = now()
WHERE id = :campaign_id;

-- name: set-schedule
-- Without a review, starting a send is approving it: approved_by is who scheduled it or sent it now.
-- A campaign approved in review keeps its approver (services/api/approval.py).
UPDATE campaigns
SET schedule = :schedule::jsonb, next_occurrence_at = :next_occurrence_at, state = :state,
    state_changed_at = CASE WHEN state = :state THEN state_changed_at ELSE now() END,
    approved_by = CASE WHEN approval_fingerprint IS NULL THEN :actor ELSE approved_by END,
    updated_by = :actor, updated_at = now()
WHERE id = :campaign_id;

-- name: pin-approval
-- The approver and the digest of the wording, audience and sender they approved.
UPDATE campaigns
SET approval_fingerprint = :fingerprint, approved_by = :actor, approved_at = now(), review_comment = NULL
WHERE id = :campaign_id;

-- name: clear-approval
-- The wording, audience or sender changed: the approval no longer holds, and the editor is one of its authors.
UPDATE campaigns
SET approval_fingerprint = NULL, approved_at = NULL,
    approved_by = CASE WHEN approval_fingerprint IS NULL THEN approved_by END,
    content_authors = array_remove(content_authors, CAST(:actor AS text)) || CAST(:actor AS text)
WHERE id = :campaign_id;

-- name: set-review-comment
UPDATE campaigns SET review_comment = :review_comment WHERE id = :campaign_id;

-- name: clear-next-occurrence
UPDATE campaigns SET next_occurrence_at = NULL WHERE id = :campaign_id;

-- name: insert-send-now-run
-- The run exists as soon as the request is answered; the scheduler publishes it on its next tick. It
-- takes its copy of the campaign's body, audience, sender and limits as it is inserted, under the
-- campaign's lock (trigger campaign_runs_freeze_content, 0013): a later edit applies to the next run.
INSERT INTO campaign_runs (org_id, campaign_id, occurrence_at, origin)
VALUES (:org_id, :campaign_id, :occurrence_at, 'send_now')
RETURNING id;

-- name: cancel-unpublished-runs
-- A new schedule replaces the old one: runs the scheduler has not published yet are dropped. One it is
-- publishing right now is locked; this waits, then sees it published and leaves it alone.
UPDATE campaign_runs
SET state = 'cancelled', state_reason = :reason, state_reason_code = :reason_code,
    state_reason_detail = CAST(:reason_detail AS jsonb), finished_at = now()
WHERE campaign_id = :campaign_id AND state = 'pending' AND published_at IS NULL;

-- name: cancel-open-runs
-- Every open run (state_may_change, 0033).
UPDATE campaign_runs
SET state = 'cancelled', state_reason = :reason, state_reason_code = :reason_code,
    state_reason_detail = CAST(:reason_detail AS jsonb), finished_at = now()
WHERE campaign_id = :campaign_id AND state_may_change('run', state, 'cancelled');

-- name: pause-runs
-- Only runs that are sending: pending ones are held back by the campaign's state (the scheduler does not
-- publish runs of a paused campaign), and resolving ones must check it before handing recipients on.
-- No reason: a pause by staff is not alerted (services/usage/conditions.py).
UPDATE campaign_runs SET state = 'paused', state_reason = NULL, state_reason_code = NULL, state_reason_detail = '{}'
WHERE campaign_id = :campaign_id AND state_may_change('run', state, 'paused');

-- name: resume-runs
-- Also resumes runs the dispatcher paused (failure threshold): staff looked and chose to go on.
-- Not state_may_change: a resolving run also may become sending, but that is the audience service's move.
UPDATE campaign_runs SET state = 'sending', state_reason = NULL, state_reason_code = NULL, state_reason_detail = '{}'
WHERE campaign_id = :campaign_id AND state = 'paused';

-- name: get-run
-- The figures are run_figures' (migration 0027), the ones the campaign page and the alert e-mails show.
SELECT r.id, r.occurrence_at, r.origin, r.state, r.state_reason, r.published_at, r.started_at, r.finished_at,
       f.targeted, f.excluded, f.sent, f.delivered, f.undelivered, f.failed, f.dropped, f.segments, f.cost,
       f.planned_segments, f.estimated_cost, f.opt_outs, f.actual_cost, f.cost_provisional, r.outside_window,
       r.frequency_capped
FROM campaign_runs r
JOIN run_figures f ON f.run_id = r.id
WHERE r.id = :run_id;

-- name: list-runs
SELECT r.id, r.occurrence_at, r.origin, r.state, r.state_reason, r.published_at, r.started_at, r.finished_at,
       f.targeted, f.excluded, f.sent, f.delivered, f.undelivered, f.failed, f.dropped, f.segments, f.cost,
       f.planned_segments, f.estimated_cost, f.opt_outs, f.actual_cost, f.cost_provisional, r.outside_window,
       r.frequency_capped
FROM campaign_runs r
JOIN run_figures f ON f.run_id = r.id
WHERE r.campaign_id = :campaign_id
ORDER BY r.occurrence_at DESC
LIMIT :limit;

-- name: insert-audit
INSERT INTO campaign_audit (org_id, campaign_id, run_id, actor, action, from_state, to_state, detail)
VALUES (:org_id, :campaign_id, :run_id, :actor, :action, :from_state, :to_state, :detail::jsonb);

-- name: claim-idempotency-key
-- The first request with a key inserts it; a concurrent retry blocks here until the first commits,
-- then finds the row and replays its response. If the first fails, its row is rolled back with it.
INSERT INTO idempotency_keys (org_id, key, request_hash)
VALUES (:org_id, :key, :request_hash)
ON CONFLICT (org_id, key) DO NOTHING
RETURNING key;

-- name: get-idempotency-key
SELECT request_hash, status_code, response::text AS response
FROM idempotency_keys
WHERE org_id = :org_id AND key = :key;

-- name: save-idempotent-response
UPDATE idempotency_keys
SET status_code = :status_code, response = :response::jsonb
WHERE org_id = :org_id AND key = :key;

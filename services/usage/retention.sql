-- Retention (services/usage/retention.py, migration 0027): what members sent and what was rendered for
-- them is deleted or blanked once an organisation's retention setting has passed. Each statement takes
-- one batch of at most :batch rows, oldest first, and is its own short transaction; SKIP LOCKED leaves
-- a row someone is working on for the next pass rather than waiting on it. Counts, the usage rollups,
-- suppressions and consent history are never touched.

-- name: retention-settings
SELECT id AS org_id, retention_webhook_days, retention_reply_days, retention_body_days, retention_csv_days
FROM organisations
ORDER BY id;

-- name: prune-webhook-requests
-- Processed raw webhooks only: a pending one is still the opt-out processor's work. Replies and status
-- callbacks that point at one keep their row (ON DELETE SET NULL). webhook_requests_by_org serves the scan.
WITH doomed AS (
    SELECT id FROM webhook_requests
    WHERE org_id = :org_id AND state <> 'pending' AND received_at < now() - make_interval(days => :days)
    ORDER BY received_at
    LIMIT :batch
    FOR UPDATE SKIP LOCKED
), gone AS (
    DELETE FROM webhook_requests w USING doomed d WHERE w.id = d.id RETURNING 1
)
SELECT count(*)::integer FROM gone;

-- name: prune-status-callbacks
WITH doomed AS (
    SELECT id FROM status_callbacks
    WHERE org_id = :org_id AND received_at < now() - make_interval(days => :days)
    ORDER BY received_at
    LIMIT :batch
    FOR UPDATE SKIP LOCKED
), gone AS (
    DELETE FROM status_callbacks s USING doomed d WHERE s.id = d.id RETURNING 1
)
SELECT count(*)::integer FROM gone;

-- name: prune-pending-statuses
-- A status held for a send-result that never came (a message not sent by Textpulse).
WITH doomed AS (
    SELECT message_sid, status FROM usage_pending_statuses
    WHERE org_id = :org_id AND received_at < now() - make_interval(days => :days)
    ORDER BY received_at
    LIMIT :batch
    FOR UPDATE SKIP LOCKED
), gone AS (
    DELETE FROM usage_pending_statuses p USING doomed d
    WHERE p.message_sid = d.message_sid AND p.status = d.status
    RETURNING 1
)
SELECT count(*)::integer FROM gone;

-- name: prune-webhook-events
-- Outgoing signed events (services/events) once no delivery of theirs is still being tried; their deliveries
-- go with them (ON DELETE CASCADE). They carry members' numbers and replies as sent, as raw webhooks do.
WITH doomed AS (
    SELECT e.id FROM webhook_events e
    WHERE e.org_id = :org_id AND e.created_at < now() - make_interval(days => :days)
      AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d
                      WHERE d.event_id = e.id AND d.delivered_at IS NULL AND d.failed_at IS NULL)
    ORDER BY e.created_at
    LIMIT :batch
    FOR UPDATE OF e SKIP LOCKED
), gone AS (
    DELETE FROM webhook_events w USING doomed d WHERE w.id = d.id RETURNING 1
)
SELECT count(*)::integer FROM gone;

-- name: blank-replies
-- A reply keeps its row (kind, keyword, run, when): the campaign's reply and opt-out counts stay right.
WITH doomed AS (
    SELECT id FROM inbound_messages
    WHERE org_id = :org_id AND body <> '' AND received_at < now() - make_interval(days => :days)
    ORDER BY received_at
    LIMIT :batch
    FOR UPDATE SKIP LOCKED
), blanked AS (
    UPDATE inbound_messages m SET body = '' FROM doomed d WHERE m.id = d.id RETURNING 1
)
SELECT count(*)::integer FROM blanked;

-- name: blank-one-off-texts
-- A one-off text (a staff reply, a keyword answer, a confirmation; 0049) is a text rendered for a member: it
-- keeps its row (kind, number, outcome, segments: the inbox thread's shape and the usage counts), only its
-- words go, once it has an outcome. '' is allowed then (migration 0056).
WITH doomed AS (
    SELECT id FROM one_off_texts
    WHERE org_id = :org_id AND body <> '' AND state NOT IN ('pending', 'claimed')
      AND created_at < now() - make_interval(days => :days)
    ORDER BY created_at
    LIMIT :batch
    FOR UPDATE SKIP LOCKED
), blanked AS (
    UPDATE one_off_texts t SET body = '' FROM doomed d WHERE t.id = d.id RETURNING 1
)
SELECT count(*)::integer FROM blanked;

-- name: runs-with-content
-- Ended runs whose snapshot still holds rendered bodies (partial index campaign_runs_content_unpruned).
SELECT id AS run_id FROM campaign_runs
WHERE org_id = :org_id AND content_pruned_at IS NULL AND finished_at < now() - make_interval(days => :days)
ORDER BY finished_at
LIMIT :batch;

-- name: blank-run-content
-- A snapshot row keeps its member, number, status, reason and segments; only what was rendered goes.
-- '' keeps the CHECK that a queued row has a body (0006). The primary key (run_id, position) walks it.
WITH doomed AS (
    SELECT run_id, position FROM run_recipients
    WHERE run_id = :run_id AND (body <> '' OR merge_values IS NOT NULL)
    ORDER BY position
    LIMIT :batch
    FOR UPDATE SKIP LOCKED
), blanked AS (
    UPDATE run_recipients p SET body = CASE WHEN p.body IS NULL THEN NULL ELSE '' END, merge_values = NULL
    FROM doomed d WHERE p.run_id = d.run_id AND p.position = d.position
    RETURNING 1
)
SELECT count(*)::integer FROM blanked;

-- name: mark-run-content-pruned
UPDATE campaign_runs SET content_pruned_at = now() WHERE id = :run_id;

-- name: uploads-with-rows
-- Old uploads whose rows are still kept, unless a campaign that may still send uses it as its audience.
SELECT u.id AS upload_id FROM csv_uploads u
WHERE u.org_id = :org_id AND u.rows_pruned_at IS NULL AND u.created_at < now() - make_interval(days => :days)
  AND NOT EXISTS (
      SELECT 1 FROM campaigns c
      WHERE c.org_id = u.org_id AND c.audience ->> 'kind' = 'csv' AND c.audience ->> 'upload_id' = u.id::text
        AND c.state NOT IN ('completed', 'cancelled', 'failed', 'archived'))
ORDER BY u.created_at
LIMIT :batch;

-- name: prune-upload-rows
WITH doomed AS (
    SELECT upload_id, line FROM csv_upload_rows
    WHERE upload_id = :upload_id
    ORDER BY line
    LIMIT :batch
), gone AS (
    DELETE FROM csv_upload_rows r USING doomed d WHERE r.upload_id = d.upload_id AND r.line = d.line RETURNING 1
)
SELECT count(*)::integer FROM gone;

-- name: blank-upload-rejections
-- The rejected-rows report keeps each line's reason; the raw row as the file had it goes.
WITH doomed AS (
    SELECT upload_id, line FROM csv_upload_rejections
    WHERE upload_id = :upload_id AND raw <> ''
    ORDER BY line
    LIMIT :batch
), blanked AS (
    UPDATE csv_upload_rejections r SET raw = '' FROM doomed d
    WHERE r.upload_id = d.upload_id AND r.line = d.line
    RETURNING 1
)
SELECT count(*)::integer FROM blanked;

-- name: mark-upload-rows-pruned
UPDATE csv_uploads SET rows_pruned_at = now() WHERE id = :upload_id;

-- name: prune-outbox
-- Published events (and ones that could never be published), once :days have passed: Kafka has them.
-- The outbox has no organisation; its rows are events, not members' words, so one setting serves all.
WITH doomed AS (
    SELECT id FROM event_outbox
    WHERE (published_at < now() - make_interval(days => :days))
       OR (error IS NOT NULL AND created_at < now() - make_interval(days => :days))
    ORDER BY id
    LIMIT :batch
    FOR UPDATE SKIP LOCKED
), gone AS (
    DELETE FROM event_outbox o USING doomed d WHERE o.id = d.id RETURNING 1
)
SELECT count(*)::integer FROM gone;

-- The events service's statements: storing events with their deliveries, and working the deliveries.

-- name: store-event
-- The event once, whatever delivers its record again (its id is derived from the record); true when new.
INSERT INTO webhook_events (id, org_id, type, member_key, body, occurred_at)
VALUES (:id, :org_id, :type, :member_key, :body, :occurred_at)
ON CONFLICT (id) DO NOTHING
RETURNING true;

-- name: queue-deliveries
-- One delivery for each of the organisation's enabled endpoints subscribed to the event's type.
INSERT INTO webhook_deliveries (event_id, endpoint_id, org_id, member_key)
SELECT :event_id, e.id, e.org_id, :member_key
FROM webhook_endpoints e
WHERE e.org_id = :org_id AND e.enabled AND :type = ANY(e.event_types)
ORDER BY e.id
ON CONFLICT (event_id, endpoint_id) DO NOTHING;

-- name: subscribed
-- Whether any enabled endpoint of the organisation takes this type: nothing is stored for nobody.
SELECT EXISTS (SELECT 1 FROM webhook_endpoints
               WHERE org_id = :org_id AND enabled AND :type = ANY(event_types));

-- name: message-by-sid
-- Who a status callback is about: the send ledger's row of the message.
SELECT run_id, recipient_id, to_number FROM send_ledger WHERE message_sid = :message_sid;

-- name: message-by-recipient
-- Who a click is about.
SELECT to_number FROM send_ledger WHERE run_id = :run_id AND recipient_id = :recipient_id;

-- name: ended-runs
-- Runs that ended since an endpoint taking run_completed was created, not yet announced.
SELECT r.id, r.org_id, r.campaign_id, r.state, r.state_reason, r.finished_at, r.targeted, r.excluded, r.sent,
       r.delivered, r.failed
FROM campaign_runs r
WHERE r.state = ANY(CAST(:ended AS text[])) AND r.finished_at IS NOT NULL
  AND EXISTS (SELECT 1 FROM webhook_endpoints e
              WHERE e.org_id = r.org_id AND e.enabled AND 'run_completed' = ANY(e.event_types)
                AND r.finished_at >= e.created_at)
  AND NOT EXISTS (SELECT 1 FROM webhook_run_announcements a WHERE a.run_id = r.id)
ORDER BY r.finished_at
LIMIT :batch;

-- name: mark-run-announced
INSERT INTO webhook_run_announcements (run_id) VALUES (:run_id) ON CONFLICT (run_id) DO NOTHING;

-- name: claim-due
-- Due deliveries whose member has no earlier delivery to the same endpoint still pending, leased for
-- :lease_s seconds (a process that dies mid-POST leaves them to be tried again when the lease ends).
WITH due AS (
    SELECT d.id
    FROM webhook_deliveries d
    JOIN webhook_endpoints e ON e.id = d.endpoint_id
    WHERE d.delivered_at IS NULL AND d.failed_at IS NULL AND d.next_attempt_at <= now() AND e.enabled
      AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p
                      WHERE p.endpoint_id = d.endpoint_id AND p.member_key = d.member_key AND p.id < d.id
                        AND p.delivered_at IS NULL AND p.failed_at IS NULL)
    ORDER BY d.next_attempt_at, d.id
    LIMIT :batch
    FOR UPDATE OF d SKIP LOCKED
)
UPDATE webhook_deliveries d
SET next_attempt_at = now() + make_interval(secs => :lease_s), attempts = d.attempts + 1, last_attempt_at = now()
FROM due, webhook_endpoints e, webhook_events ev
WHERE d.id = due.id AND e.id = d.endpoint_id AND ev.id = d.event_id
RETURNING d.id, d.org_id, d.attempts, d.retry_until, e.url, e.secret, ev.id AS event_id, ev.type, ev.body;

-- name: delivered
UPDATE webhook_deliveries
SET delivered_at = now(), last_status = :status, last_error = NULL
WHERE id = :id;

-- name: attempt-failed
-- Tried again at :next_attempt_at, or failed for good when that is past retry_until.
UPDATE webhook_deliveries
SET last_status = :status, last_error = :error,
    next_attempt_at = :next_attempt_at,
    failed_at = CASE WHEN :next_attempt_at > retry_until THEN now() END
WHERE id = :id
RETURNING failed_at IS NOT NULL AS failed;

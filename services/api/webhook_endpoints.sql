-- An organisation's event endpoints and their deliveries (services/api/routes/webhook_endpoints.py;
-- migration 0054). Every statement is scoped to the caller's organisation.

-- name: list-endpoints
-- Each endpoint (or only :endpoint_id) with its pending and failed deliveries and when it last took one.
SELECT e.id, e.url, e.event_types, e.enabled, e.created_at, e.updated_at,
       (SELECT count(*) FROM webhook_deliveries d
        WHERE d.endpoint_id = e.id AND d.delivered_at IS NULL AND d.failed_at IS NULL) AS pending,
       (SELECT count(*) FROM webhook_deliveries d WHERE d.endpoint_id = e.id AND d.failed_at IS NOT NULL) AS failed,
       (SELECT max(d.delivered_at) FROM webhook_deliveries d WHERE d.endpoint_id = e.id) AS last_delivered_at
FROM webhook_endpoints e
WHERE e.org_id = :org_id AND (CAST(:endpoint_id AS uuid) IS NULL OR e.id = :endpoint_id)
ORDER BY e.created_at, e.id;

-- name: create-endpoint
INSERT INTO webhook_endpoints (org_id, url, secret, event_types, enabled)
VALUES (:org_id, :url, :secret, :event_types, :enabled)
RETURNING id;

-- name: update-endpoint
-- NULL leaves a field as it is.
UPDATE webhook_endpoints
SET url = coalesce(:url, url), secret = coalesce(:secret, secret),
    event_types = coalesce(CAST(:event_types AS text[]), event_types), enabled = coalesce(:enabled, enabled),
    updated_at = now()
WHERE org_id = :org_id AND id = :endpoint_id
RETURNING id;

-- name: delete-endpoint
-- Its deliveries go with it.
DELETE FROM webhook_endpoints WHERE org_id = :org_id AND id = :endpoint_id RETURNING id;

-- name: list-deliveries
-- The endpoint's latest deliveries (or only :delivery_id), newest first; :state narrows to pending, delivered
-- or failed.
SELECT d.id, d.event_id, ev.type, ev.occurred_at, d.attempts, d.last_status, d.last_error, d.last_attempt_at,
       d.next_attempt_at, d.delivered_at, d.failed_at, d.created_at,
       CASE WHEN d.delivered_at IS NOT NULL THEN 'delivered' WHEN d.failed_at IS NOT NULL THEN 'failed'
            ELSE 'pending' END AS state
FROM webhook_deliveries d
JOIN webhook_events ev ON ev.id = d.event_id
WHERE d.org_id = :org_id AND d.endpoint_id = :endpoint_id
  AND (CAST(:delivery_id AS bigint) IS NULL OR d.id = :delivery_id)
  AND (CAST(:state AS text) IS NULL
       OR CASE WHEN d.delivered_at IS NOT NULL THEN 'delivered' WHEN d.failed_at IS NOT NULL THEN 'failed'
               ELSE 'pending' END = :state)
ORDER BY d.id DESC
LIMIT :limit;

-- name: redeliver
-- Sent again from now, with a fresh 24 hours of retries.
UPDATE webhook_deliveries
SET delivered_at = NULL, failed_at = NULL, next_attempt_at = now(), retry_until = now() + interval '24 hours',
    attempts = 0, last_error = NULL, last_status = NULL
WHERE org_id = :org_id AND endpoint_id = :endpoint_id AND id = :delivery_id
RETURNING id;

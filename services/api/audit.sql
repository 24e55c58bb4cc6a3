-- The organisation's audit log (services/api/audit.py). Rows are only ever inserted: the table refuses
-- UPDATE, DELETE and TRUNCATE (libs/common/migrations/0026_audit_events.sql).

-- name: insert-audit-event
INSERT INTO audit_events (org_id, actor, actor_kind, action, target_type, target_id, before, after,
                          client_address, detail)
VALUES (:org_id, :actor, :actor_kind, :action, :target_type, :target_id, CAST(:before AS jsonb),
        CAST(:after AS jsonb), :client_address, CAST(:detail AS jsonb));

-- name: list-audit-events
-- Newest first, filtered by any of action (exact), actor (exact) and a time range [from, to); the total
-- counts every match. Served by audit_events_by_org_time.
SELECT id, at, actor, actor_kind, action, target_type, target_id, CAST(before AS text) AS before,
       CAST(after AS text) AS after, client_address, CAST(detail AS text) AS detail, count(*) OVER () AS total
FROM audit_events
WHERE org_id = :org_id
  AND (CAST(:action AS text) IS NULL OR action = :action)
  AND (CAST(:actor AS text) IS NULL OR actor = :actor)
  AND (CAST(:from_at AS timestamptz) IS NULL OR at >= :from_at)
  AND (CAST(:to_at AS timestamptz) IS NULL OR at < :to_at)
ORDER BY at DESC, id DESC
LIMIT :limit OFFSET :offset;

-- name: export-audit-events
-- The same filters, every row, read through a cursor by the CSV export.
SELECT id, at, actor, actor_kind, action, target_type, target_id, CAST(before AS text) AS before,
       CAST(after AS text) AS after, client_address, CAST(detail AS text) AS detail
FROM audit_events
WHERE org_id = :org_id
  AND (CAST(:action AS text) IS NULL OR action = :action)
  AND (CAST(:actor AS text) IS NULL OR actor = :actor)
  AND (CAST(:from_at AS timestamptz) IS NULL OR at >= :from_at)
  AND (CAST(:to_at AS timestamptz) IS NULL OR at < :to_at)
ORDER BY at DESC, id DESC;

-- name: audit-actions
-- The actions the organisation's log holds, for the filter's choices.
SELECT DISTINCT action FROM audit_events WHERE org_id = :org_id ORDER BY action;

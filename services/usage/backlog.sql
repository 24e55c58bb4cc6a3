-- Outbox backlogs for /metrics (services/usage/backlog.py), sampled every few seconds, not per scrape.
-- Each count reads only its table's partial index of rows not yet done (alerts_due, imis_outbox_due,
-- event_outbox_unpublished), so it costs what the backlog is, not what the table holds.

-- name: outbox-backlogs
SELECT 'alerts' AS outbox, count(*)::bigint AS rows,
       coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS oldest_s
FROM alerts WHERE state = 'pending'
UNION ALL
SELECT 'imis_writeback', count(*)::bigint, coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8
FROM imis_outbox WHERE state = 'pending'
UNION ALL
SELECT 'events', count(*)::bigint, coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8
FROM event_outbox WHERE published_at IS NULL AND error IS NULL;

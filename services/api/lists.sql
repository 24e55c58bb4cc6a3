-- Member lists (migration 0006; services/api/lists_db.py). Every statement is scoped by org_id, so another
-- organisation's list is simply not found (a 404). Entries are keyed (list_id, member_id): adding a member
-- already listed replaces their number and merge values instead of listing them twice.

-- name: lists
SELECT l.id, l.name, l.description, l.created_by, l.created_at, l.updated_at,
       (SELECT count(*) FROM member_list_entries e WHERE e.list_id = l.id)::int AS members,
       count(*) OVER ()::int AS total
FROM member_lists l
WHERE l.org_id = :org_id
ORDER BY l.name, l.id
LIMIT :limit OFFSET :offset;

-- name: get-list
SELECT l.id, l.name, l.description, l.created_by, l.created_at, l.updated_at,
       (SELECT count(*) FROM member_list_entries e WHERE e.list_id = l.id)::int AS members
FROM member_lists l
WHERE l.id = :list_id AND l.org_id = :org_id;

-- name: lock-list
-- Entry changes lock their list first, so a delete cannot interleave with an add.
SELECT id FROM member_lists WHERE id = :list_id AND org_id = :org_id FOR UPDATE;

-- name: insert-list
-- ON CONFLICT: a name already used in the organisation returns no row (the route answers 409).
INSERT INTO member_lists (org_id, name, description, created_by)
VALUES (:org_id, :list_name, :description, :created_by)
ON CONFLICT (org_id, name) DO NOTHING
RETURNING id;

-- name: list-name-taken
SELECT EXISTS (SELECT 1 FROM member_lists WHERE org_id = :org_id AND name = :list_name AND id <> :list_id);

-- name: update-list
UPDATE member_lists SET name = :list_name, description = :description, updated_at = now()
WHERE id = :list_id AND org_id = :org_id;

-- name: touch-list
UPDATE member_lists SET updated_at = now() WHERE id = :list_id;

-- name: delete-list
-- The entries go with it (ON DELETE CASCADE).
DELETE FROM member_lists WHERE id = :list_id AND org_id = :org_id;

-- name: campaigns-using-list
-- Campaigns that would still send to the list: deleting it would fail their next run.
SELECT name FROM campaigns
WHERE org_id = :org_id AND audience ->> 'kind' = 'list' AND audience ->> 'list_id' = :list_id::text
  AND state IN ('draft', 'scheduled', 'sending', 'paused')
ORDER BY name
LIMIT 10;

-- name: upsert-entries
-- One statement for a whole batch (arrays unnested in order). xmax = 0 only on a row this statement
-- inserted, which tells a new member from one whose entry was replaced.
INSERT INTO member_list_entries (list_id, member_id, mobile, merge_values)
SELECT :list_id, m, p, v::jsonb
FROM unnest(:member_ids::text[], :mobiles::text[], :merge_values::text[]) AS t(m, p, v)
ON CONFLICT (list_id, member_id) DO UPDATE SET mobile = EXCLUDED.mobile, merge_values = EXCLUDED.merge_values
RETURNING (xmax = 0) AS inserted;

-- name: entries
SELECT member_id, mobile, merge_values::text AS merge_values, added_at, count(*) OVER ()::int AS total
FROM member_list_entries
WHERE list_id = :list_id
ORDER BY added_at, member_id
LIMIT :limit OFFSET :offset;

-- name: delete-entries
DELETE FROM member_list_entries WHERE list_id = :list_id AND member_id = ANY(:member_ids::text[]);

-- name: upload-rows
-- The accepted rows of an upload of this organisation, in file order; no row when the upload is not its.
SELECT r.member_id, r.mobile, r.merge_values::text AS merge_values
FROM csv_uploads u
JOIN csv_upload_rows r ON r.upload_id = u.id
WHERE u.id = :upload_id AND u.org_id = :org_id AND u.state = 'ready'
ORDER BY r.line;

-- name: upload-exists
SELECT EXISTS (SELECT 1 FROM csv_uploads WHERE id = :upload_id AND org_id = :org_id AND state = 'ready');

-- name: run-recipients
-- Who a run texted: its snapshot's queued rows (excluded members were not sent it), in audience order.
SELECT member_id, e164, coalesce(merge_values, '{}')::text AS merge_values
FROM run_recipients
WHERE run_id = :run_id AND org_id = :org_id AND status = 'queued'
ORDER BY position;

-- name: run-exists
SELECT EXISTS (SELECT 1 FROM campaign_runs WHERE id = :run_id AND org_id = :org_id);

-- name: recent-runs
-- Runs whose audience has been read, for "add a past run's recipients", newest first.
SELECT r.id, c.name AS campaign_name, r.occurrence_at, r.targeted
FROM campaign_runs r
JOIN campaigns c ON c.id = r.campaign_id
WHERE r.org_id = :org_id AND r.resolved_at IS NOT NULL AND r.targeted > 0
ORDER BY r.occurrence_at DESC
LIMIT 30;

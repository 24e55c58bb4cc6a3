-- CSV audience uploads and audience previews (migration 0006; services/api/uploads_db.py). Every read
-- is scoped by org_id, so another organisation's upload or list is simply not found (a 404).

-- name: insert-csv-upload
-- Only usable files are stored ('ready'): a refused file gets its 4xx at once and leaves nothing behind.
INSERT INTO csv_uploads (org_id, filename, uploaded_by, state, headers, mapping, delimiter,
                         rows_accepted, rows_rejected)
VALUES (:org_id, :filename, :uploaded_by, 'ready', :headers::text[], :mapping::jsonb, :delimiter,
        :rows_accepted, :rows_rejected)
RETURNING id, created_at;

-- name: csv-upload
SELECT id, filename, state, headers, mapping::text AS mapping, delimiter, rows_accepted, rows_rejected, created_at
FROM csv_uploads
WHERE id = :upload_id AND org_id = :org_id;

-- name: csv-rejection-counts
-- Rows refused when the file was read, by reason. Uses the rejections' primary key (upload_id, line).
SELECT reason, count(*)::int AS n FROM csv_upload_rejections WHERE upload_id = :upload_id GROUP BY reason;

-- name: csv-rejections
SELECT line, reason, detail, raw FROM csv_upload_rejections WHERE upload_id = :upload_id ORDER BY line;

-- name: csv-members
-- Only what counting needs (member id and number), in file order: 200,000 rows with their merge values
-- would be several times the memory.
SELECT member_id, mobile FROM csv_upload_rows WHERE upload_id = :upload_id ORDER BY line;

-- name: list-members
-- NULL member_id (one row) when the list exists but is empty; no row at all when it is not this org's.
SELECT e.member_id, e.mobile
FROM member_lists l
LEFT JOIN member_list_entries e ON e.list_id = l.id
WHERE l.id = :list_id AND l.org_id = :org_id
ORDER BY e.added_at, e.member_id;

-- name: suppressed-numbers
-- As at resolution: organisation-wide entries and those of the default sender (a campaign's own sender
-- may differ, so the preview can undercount opted_out for a campaign with another sender).
SELECT DISTINCT s.phone FROM suppressions s
WHERE s.org_id = :org_id AND s.phone = ANY(:phones::text[])
  AND (s.scope = '' OR s.scope IN (SELECT address FROM senders WHERE org_id = :org_id AND is_default));

-- name: imis-source
-- The organisation's iMIS site and the IQA columns holding the member id, mobile and opt-out flag
-- (the defaults of audience_column_maps when it has no row).
SELECT a.base_url, a.username, a.password,
       coalesce(m.member_id_column, 'ID') AS member_id_column,
       coalesce(m.mobile_column, 'Mobile') AS mobile_column,
       CASE WHEN m.org_id IS NULL THEN 'SmsOptOut' ELSE m.opt_out_column END AS opt_out_column
FROM imis_accounts a
LEFT JOIN audience_column_maps m ON m.org_id = a.org_id
WHERE a.org_id = :org_id;

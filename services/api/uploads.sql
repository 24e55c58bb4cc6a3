-- CSV audience uploads and audience previews (migration 0006; services/api/uploads_db.py). Every read
-- is scoped by org_id, so another organisation's upload or list is simply not found (a 404).

-- name: begin-csv-upload
-- Stored while it is read (migration 0019): 'receiving' until finish-csv-upload, offered by nothing.
INSERT INTO csv_uploads (org_id, filename, uploaded_by, state, headers, mapping, delimiter)
VALUES (:org_id, :filename, :uploaded_by, 'receiving', :headers::text[], :mapping::jsonb, :delimiter)
RETURNING id, created_at;

-- name: finish-csv-upload
-- Every row is in: the upload becomes usable, with its counts (rejected_by_reason counts every refused
-- row; csv_upload_rejections holds only the first of them).
UPDATE csv_uploads
SET state = 'ready', rows_accepted = :rows_accepted, rows_rejected = :rows_rejected,
    rejected_by_reason = :rejected_by_reason::jsonb
WHERE id = :upload_id AND state = 'receiving';

-- name: discard-csv-upload
-- A file refused (or failed) part-way: its committed batches go with it (ON DELETE CASCADE).
DELETE FROM csv_uploads WHERE id = :upload_id AND state = 'receiving';

-- name: prune-abandoned-csv-uploads
-- Uploads a process died in the middle of. Reading and storing the largest file allowed takes about a
-- minute, so one still 'receiving' after an hour is abandoned. Uses csv_uploads_receiving (partial).
DELETE FROM csv_uploads WHERE state = 'receiving' AND created_at < now() - interval '1 hour';

-- name: csv-upload
-- Only a finished upload: one still 'receiving' (or abandoned) is not found.
SELECT id, filename, state, headers, mapping::text AS mapping, delimiter, rows_accepted, rows_rejected,
       rejected_by_reason::text AS rejected_by_reason, created_at,
       (SELECT count(*)::int FROM csv_upload_rejections r WHERE r.upload_id = u.id) AS rejections_shown
FROM csv_uploads u
WHERE id = :upload_id AND org_id = :org_id AND state = 'ready';

-- name: csv-rejections
-- The report: at most the first 5,000 refused rows (services/api/upload_storage.py keeps no more).
SELECT line, reason, detail, raw FROM csv_upload_rejections WHERE upload_id = :upload_id ORDER BY line;

-- name: csv-members
-- Only what counting an upload needs (member id and number), in file order: 200,000 rows with their merge
-- values would be several times the memory.
SELECT member_id, mobile FROM csv_upload_rows WHERE upload_id = :upload_id ORDER BY line;

-- name: csv-sample
-- The first rows of an upload, in file order, with their merge values: what a preview renders.
SELECT member_id, mobile, merge_values::text AS merge_values FROM csv_upload_rows
WHERE upload_id = :upload_id ORDER BY line LIMIT :limit;

-- name: list-size
-- NULL when the organisation has no such list, else its entries.
SELECT (SELECT count(*)::int FROM member_list_entries e WHERE e.list_id = l.id) AS entries
FROM member_lists l WHERE l.id = :list_id AND l.org_id = :org_id;

-- name: list-sample
-- The first entries, in the order a run reads them (services/audience/queries.sql list-entries).
SELECT member_id, mobile, merge_values::text AS merge_values FROM member_list_entries
WHERE list_id = :list_id ORDER BY added_at, member_id LIMIT :limit;

-- name: list-fields
-- The merge fields a list's entries can fill: the union of their keys.
SELECT DISTINCT jsonb_object_keys(merge_values) AS field FROM member_list_entries WHERE list_id = :list_id;

-- name: excluded-numbers
-- As at resolution (services/audience/queries.sql): suppressions for the whole organisation or this sender,
-- and numbers Twilio said cannot receive texts; looked up for the sample's numbers only.
SELECT phone, 'suppressed' AS why, NULL::int AS error_code FROM suppressions
WHERE org_id = :org_id AND scope IN ('', :sender) AND phone = ANY(:phones::text[])
UNION ALL
SELECT phone, 'bad_number', error_code FROM bad_numbers WHERE org_id = :org_id AND phone = ANY(:phones::text[]);

-- name: campaign-sender
-- The sender a campaign would use: the one chosen (if this organisation's), else the organisation's default.
SELECT address, verification, segments_per_second FROM senders
WHERE org_id = :org_id AND id = coalesce(:sender_id::uuid, (SELECT d.id FROM senders d
                                                            WHERE d.org_id = :org_id AND d.is_default));

-- name: imis-source
-- The organisation's iMIS site and which IQA columns mean what (the defaults of audience_column_maps when
-- it has no row, as services/audience/queries.sql column-map is read).
SELECT a.base_url, a.username, a.password, a.query_endpoint,
       coalesce(m.member_id_column, 'ID') AS member_id_column,
       coalesce(m.mobile_column, 'Mobile') AS mobile_column,
       coalesce(m.first_name_column, 'FirstName') AS first_name_column,
       CASE WHEN m.org_id IS NULL THEN 'SmsOptOut' ELSE m.opt_out_column END AS opt_out_column,
       CASE WHEN m.org_id IS NULL THEN 'State' ELSE m.state_column END AS state_column,
       CASE WHEN m.org_id IS NULL THEN 'Country' ELSE m.country_column END AS country_column,
       m.merge_columns::text AS merge_columns
FROM imis_accounts a
LEFT JOIN audience_column_maps m ON m.org_id = a.org_id
WHERE a.org_id = :org_id;

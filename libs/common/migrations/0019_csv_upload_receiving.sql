-- CSV uploads are stored as they are read (services/api/upload_storage.py): the upload row first, in state
-- 'receiving', then its rows in batches of 10,000, each committed on its own, and 'ready' only once every
-- row is in. Nothing offers a 'receiving' upload (every read asks for 'ready'), so a process that dies
-- mid-upload leaves nothing a campaign or list can pick; such rows are pruned by a later upload.
ALTER TABLE csv_uploads DROP CONSTRAINT csv_uploads_state_check,
    ADD CONSTRAINT csv_uploads_state_check CHECK (state IN ('receiving', 'ready', 'refused'));

-- Refused rows by reason, for every row of the file: csv_upload_rejections keeps only the first 5,000
-- with their text (the downloadable report), so counts can no longer be read from it.
ALTER TABLE csv_uploads ADD COLUMN rejected_by_reason jsonb NOT NULL DEFAULT '{}'
    CHECK (jsonb_typeof(rejected_by_reason) = 'object');
UPDATE csv_uploads u SET rejected_by_reason = counts.by_reason
FROM (SELECT upload_id, jsonb_object_agg(reason, n) AS by_reason
      FROM (SELECT upload_id, reason, count(*) AS n FROM csv_upload_rejections GROUP BY upload_id, reason) r
      GROUP BY upload_id) counts
WHERE counts.upload_id = u.id;

CREATE INDEX csv_uploads_receiving ON csv_uploads (created_at) WHERE state = 'receiving';

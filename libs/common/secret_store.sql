-- The data keys behind the encrypted credentials columns (libs/common/secret_store.py).

-- name: data-key
SELECT org_id, kek_id, wrapped FROM data_keys WHERE id = :dek_id;

-- name: org-data-key
SELECT id, kek_id, wrapped FROM data_keys WHERE org_id = :org_id;

-- name: insert-data-key
-- Two writers sealing a first secret for one organisation at once: the second waits for the first's
-- commit, inserts nothing, and reads the winner's key with org-data-key.
INSERT INTO data_keys (id, org_id, kek_id, wrapped) VALUES (:dek_id, :org_id, :kek_id, :wrapped)
ON CONFLICT (org_id) DO NOTHING;

-- name: data-keys-wrapped-by-others
-- A rotation's batch: keys still wrapped by an older KEK. SKIP LOCKED lets two rotations share the work.
SELECT id, org_id, kek_id, wrapped FROM data_keys WHERE kek_id <> :kek_id
ORDER BY id LIMIT :batch FOR UPDATE SKIP LOCKED;

-- name: rewrap-data-key
UPDATE data_keys SET kek_id = :kek_id, wrapped = :wrapped, wrapped_at = now() WHERE id = :dek_id;

-- name: data-keys-by-kek
SELECT kek_id, count(*) AS keys FROM data_keys GROUP BY kek_id ORDER BY kek_id;

-- name: plain-sms-secrets
-- Every row (one per organisation), locked: the caller seals the values that are not sealed yet (written
-- before migration 0022). Filtered in Python with the same rule the readers use, not with a LIKE.
SELECT org_id, auth_token, api_key_secret, webhook_shared_key_secret FROM sms_accounts ORDER BY org_id FOR UPDATE;

-- name: seal-sms-secrets
UPDATE sms_accounts
SET auth_token = :auth_token, api_key_secret = :api_key_secret, webhook_shared_key_secret = :webhook_shared_key_secret
WHERE org_id = :org_id;

-- name: plain-imis-passwords
SELECT org_id, password FROM imis_accounts ORDER BY org_id FOR UPDATE;

-- name: seal-imis-password
UPDATE imis_accounts SET password = :password WHERE org_id = :org_id;

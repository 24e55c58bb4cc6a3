-- Credentials are stored encrypted (libs/common/envelope.py): each organisation has one data key, kept
-- here wrapped by a key-encryption key derived from TEXTPULSE_SECRET_KEY; kek_id names that key, so a
-- rotation (python -m deploy.secrets rotate) re-wraps the rows whose kek_id is not the current one.
-- sms_accounts.auth_token / api_key_secret and imis_accounts.password hold 'tp1:<data key id>:...'
-- values from now on; python -m deploy.migrate encrypts rows written before this migration (SQL has no key).
CREATE TABLE data_keys (
    id         text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{16}$'),
    org_id     uuid NOT NULL UNIQUE REFERENCES organisations ON DELETE CASCADE,
    kek_id     text NOT NULL CHECK (kek_id ~ '^[0-9a-f]{12}$'),
    wrapped    bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    wrapped_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX data_keys_kek ON data_keys (kek_id);

COMMENT ON COLUMN sms_accounts.auth_token IS 'encrypted: tp1:<data key id>:<nonce>:<ciphertext>';
COMMENT ON COLUMN sms_accounts.api_key_secret IS 'encrypted: tp1:<data key id>:<nonce>:<ciphertext>';
COMMENT ON COLUMN imis_accounts.password IS 'encrypted: tp1:<data key id>:<nonce>:<ciphertext>';

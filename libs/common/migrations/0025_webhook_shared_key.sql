-- A Twilio SharedKey may sign the account's webhooks instead of the auth token (services/optout/signatures.py).
-- Its id is named in the X-Twilio-Webhooks-Signature-Settings header; its secret, like the auth token, is
-- written by the API and read only by the opt-out service. Both are set together or not at all.
ALTER TABLE sms_accounts
    ADD COLUMN webhook_shared_key_id text CHECK (webhook_shared_key_id ~ '^[A-Za-z0-9_-]{1,100}$'),
    ADD COLUMN webhook_shared_key_secret text,
    ADD CONSTRAINT sms_accounts_shared_key_whole
        CHECK ((webhook_shared_key_id IS NULL) = (webhook_shared_key_secret IS NULL));

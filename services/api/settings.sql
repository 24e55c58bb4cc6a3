-- The organisation's settings (services/api/settings_db.py). The Twilio auth token, the API key
-- secret and the webhook SharedKey secret are written here and read only by the services that call Twilio: no statement in this file
-- selects them, so no route can return them.

-- name: org-settings
SELECT name, slug, time_zone, default_country_prefix, campaign_segment_limit, alert_emails,
       retention_webhook_days, retention_reply_days, retention_body_days, retention_csv_days, run_member_cap,
       revocation_confirmation, revocation_confirmation_text, require_approval, short_link_base_url,
       reply_digests_since IS NOT NULL AS reply_digests
FROM organisations WHERE id = :org_id;

-- name: update-org-settings
-- Every field at once: the route merges a PATCH into the current values first.
UPDATE organisations
SET time_zone = :time_zone, default_country_prefix = :default_country_prefix,
    campaign_segment_limit = :campaign_segment_limit, alert_emails = :alert_emails,
    retention_webhook_days = :retention_webhook_days, retention_reply_days = :retention_reply_days,
    retention_body_days = :retention_body_days, retention_csv_days = :retention_csv_days,
    run_member_cap = :run_member_cap, revocation_confirmation = :revocation_confirmation,
    revocation_confirmation_text = :revocation_confirmation_text, require_approval = :require_approval,
    short_link_base_url = :short_link_base_url,
    -- turned on: replies from now on are e-mailed; turned off and on again: not those received meanwhile
    reply_digests_since = CASE WHEN :reply_digests THEN coalesce(reply_digests_since, now()) END,
    updated_at = now()
WHERE id = :org_id;

-- name: sms-account
SELECT account_sid, friendly_name, account_type, alpha_sender_id, max_segments, test_mode, webhook_base_url,
       api_key_sid, auth_token <> '' AS auth_token_set, api_key_secret IS NOT NULL AS api_key_secret_set,
       webhook_shared_key_id, webhook_shared_key_secret IS NOT NULL AS webhook_shared_key_set, updated_at
FROM sms_accounts WHERE org_id = :org_id;

-- name: lock-sms-account
SELECT account_sid FROM sms_accounts WHERE org_id = :org_id FOR UPDATE;

-- name: update-sms-account
UPDATE sms_accounts
SET friendly_name = :friendly_name, account_type = :account_type, alpha_sender_id = :alpha_sender_id,
    max_segments = :max_segments, test_mode = :test_mode, webhook_base_url = :webhook_base_url, updated_at = now()
WHERE org_id = :org_id;

-- name: account-linked-elsewhere
-- An Account SID is one organisation's: webhooks signed by it are applied to that organisation only.
SELECT EXISTS (SELECT 1 FROM sms_accounts WHERE account_sid = :account_sid AND org_id <> :org_id);

-- name: link-sms-account
-- Links (or re-links) the organisation's Twilio account. An API key and a SharedKey belong to one account,
-- so linking another account drops them; re-entering the same SID (a new auth token) keeps them.
INSERT INTO sms_accounts (org_id, account_sid, auth_token, webhook_base_url)
VALUES (:org_id, :account_sid, :auth_token, :webhook_base_url)
ON CONFLICT (org_id) DO UPDATE SET
    account_sid = excluded.account_sid,
    auth_token = excluded.auth_token,
    api_key_sid = CASE WHEN sms_accounts.account_sid = excluded.account_sid THEN sms_accounts.api_key_sid END,
    api_key_secret = CASE WHEN sms_accounts.account_sid = excluded.account_sid THEN sms_accounts.api_key_secret END,
    webhook_shared_key_id = CASE WHEN sms_accounts.account_sid = excluded.account_sid
                                 THEN sms_accounts.webhook_shared_key_id END,
    webhook_shared_key_secret = CASE WHEN sms_accounts.account_sid = excluded.account_sid
                                     THEN sms_accounts.webhook_shared_key_secret END,
    updated_at = now();

-- name: set-api-key
UPDATE sms_accounts
SET api_key_sid = :api_key_sid, api_key_secret = :api_key_secret, updated_at = now()
WHERE org_id = :org_id;

-- name: clear-api-key
UPDATE sms_accounts SET api_key_sid = NULL, api_key_secret = NULL, updated_at = now() WHERE org_id = :org_id;

-- name: set-webhook-shared-key
UPDATE sms_accounts
SET webhook_shared_key_id = :shared_key_id, webhook_shared_key_secret = :shared_key_secret, updated_at = now()
WHERE org_id = :org_id;

-- name: clear-webhook-shared-key
UPDATE sms_accounts SET webhook_shared_key_id = NULL, webhook_shared_key_secret = NULL, updated_at = now()
WHERE org_id = :org_id;

-- name: account-credentials
-- The one statement here that reads a secret: the auth token, to call Twilio's SharedKeys API for the
-- organisation. Its result never reaches a response.
SELECT account_sid, auth_token FROM sms_accounts WHERE org_id = :org_id;

-- name: clear-default-sender
-- Two statements, not one: senders_one_default is checked row by row, so flipping two rows in one
-- UPDATE can see two defaults for a moment and fail.
UPDATE senders SET is_default = false WHERE org_id = :org_id AND is_default AND id <> :sender_id;

-- name: set-default-sender
UPDATE senders SET is_default = true WHERE org_id = :org_id AND id = :sender_id
RETURNING id;

-- name: set-sender-rate
-- The dispatcher reads the rate when it takes the sender on (lane start) and every few seconds after.
UPDATE senders SET segments_per_second = :segments_per_second WHERE org_id = :org_id AND id = :sender_id
RETURNING id;

-- name: imis-account
-- The iMIS link as Settings shows it; the password is not selected.
SELECT base_url, username, sms_panel, writeback_enabled, query_endpoint, endpoint_checked_at
FROM imis_accounts WHERE org_id = :org_id;

-- name: imis-login
-- The one statement here that reads the iMIS password: to check the link again. Never returned.
SELECT base_url, username, password FROM imis_accounts WHERE org_id = :org_id;

-- name: link-imis-account
-- Links (or re-links) the organisation's iMIS site with the query endpoint found while its credentials
-- were checked (docs/imis.md#the-query-endpoint); the panel and write-back settings stay as they were.
INSERT INTO imis_accounts (org_id, base_url, username, password, query_endpoint, endpoint_checked_at)
VALUES (:org_id, :base_url, :username, :password, :query_endpoint, now())
ON CONFLICT (org_id) DO UPDATE SET
    base_url = excluded.base_url, username = excluded.username, password = excluded.password,
    query_endpoint = excluded.query_endpoint, endpoint_checked_at = now(), updated_at = now();

-- name: set-imis-endpoint
UPDATE imis_accounts SET query_endpoint = :query_endpoint, endpoint_checked_at = now(), updated_at = now()
WHERE org_id = :org_id
RETURNING org_id;

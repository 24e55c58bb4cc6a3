-- name: imis-writeback
-- The organisation's iMIS write-back settings (migration 0046), with the login the check signs in with.
SELECT base_url, username, password, writeback_enabled, writeback_target, sms_panel, sms_communication_type_id
FROM imis_accounts WHERE org_id = :org_id;

-- name: lock-imis-writeback
SELECT 1 FROM imis_accounts WHERE org_id = :org_id FOR UPDATE;

-- name: set-imis-writeback
UPDATE imis_accounts
SET writeback_target = :writeback_target, sms_panel = :sms_panel,
    sms_communication_type_id = :sms_communication_type_id, updated_at = now()
WHERE org_id = :org_id;

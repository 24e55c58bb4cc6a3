-- Where an organisation's opt-outs and opt-ins are written in iMIS (services/optout/writeback_targets.py):
--
-- - activity:   a TEXTUNSUB Activity per opt-out (UF_1 the number), moved to TEXTUNSUB_A on an opt-in, as
--               iMIS Text Messenger writes them, so the IQAs built on that product keep excluding members;
-- - preference: OptInFlag on the party's communication type preference sms_communication_type_id;
-- - panel:      the TP_SmsPreferences panel (sms_panel), what Textpulse wrote before this migration.
--
-- Existing accounts keep the panel they are written to today; new accounts default to activity.
ALTER TABLE imis_accounts
    ADD COLUMN writeback_target text NOT NULL DEFAULT 'panel'
        CHECK (writeback_target IN ('activity', 'preference', 'panel')),
    ADD COLUMN sms_communication_type_id text
        CHECK (sms_communication_type_id ~ '^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$'),
    ADD CONSTRAINT imis_accounts_preference_has_type
        CHECK (writeback_target <> 'preference' OR sms_communication_type_id IS NOT NULL);
ALTER TABLE imis_accounts ALTER COLUMN writeback_target SET DEFAULT 'activity';

-- Test sends and the staff test numbers they may go to (services/api/routes/test_send.py,
-- services/api/routes/test_numbers.py, through services/api/test_send_db.py).

-- name: test-send-campaign
-- The campaign's body and who it is sent from (its own sender, else the organisation's default), with the
-- sender's verification (an unverified toll-free sender texts US/Canada only under volume caps).
SELECT c.body, coalesce(s.address, d.address) AS sender,
       coalesce(s.verification, d.verification) AS verification
FROM campaigns c
LEFT JOIN senders s ON s.id = c.sender_id AND s.org_id = c.org_id
LEFT JOIN senders d ON d.org_id = c.org_id AND d.is_default
WHERE c.id = :campaign_id AND c.org_id = :org_id;

-- name: test-send-account
-- Sealed credentials, opened as the dispatcher opens them (libs/common/secret_store.py open_twilio_login);
-- the test mode and time zone say which day of usage the texts count on.
SELECT a.account_sid, a.auth_token, a.api_key_sid, a.api_key_secret, a.webhook_base_url, a.test_mode, o.time_zone,
       a.alpha_sender_id
FROM sms_accounts a JOIN organisations o ON o.id = a.org_id
WHERE a.org_id = :org_id;

-- name: test-send-suppressed
-- Which of :phones may not be texted from :sender (an organisation-wide or sender-scoped entry).
SELECT DISTINCT phone FROM suppressions
WHERE org_id = :org_id AND phone = ANY(CAST(:phones AS text[])) AND scope IN ('', :sender)
ORDER BY phone;

-- name: count-test-sends
-- One statement for every key of a test send (the caller's and the organisation's), before anything is
-- sent: the row lock of ON CONFLICT serialises concurrent sends, so each sees the others' texts. A window
-- older than :window_s starts again. Keys come sorted, so two sends lock their rows in the same order.
-- The caller rolls the count back when a limit is passed, so a refused send uses up nothing.
INSERT INTO test_send_throttle AS t (key, sends)
SELECT key, :texts FROM unnest(CAST(:keys AS text[])) AS key ORDER BY key
ON CONFLICT (key) DO UPDATE
SET sends = CASE WHEN t.window_started_at > now() - make_interval(secs => :window_s)
                 THEN t.sends + :texts ELSE :texts END,
    window_started_at = CASE WHEN t.window_started_at > now() - make_interval(secs => :window_s)
                             THEN t.window_started_at ELSE now() END
RETURNING key, sends, GREATEST(0, ceil(extract(epoch FROM
          t.window_started_at + make_interval(secs => :window_s) - now())))::int AS retry_after_s;

-- name: record-test-texts
-- One ledger row per test text, in its final state: there is no run to reconcile it with, and status
-- callbacks find it by its SID.
INSERT INTO send_ledger (run_id, recipient_id, org_id, test_campaign_id, sender, to_number, segments, state,
                         message_sid, twilio_status, error_code, reason, sent_at, claimed_by)
SELECT NULL, gen_random_uuid(), :org_id, :campaign_id, :sender, u.to_number, u.segments, u.state,
       u.message_sid, u.twilio_status, u.error_code, u.reason,
       CASE WHEN u.state = 'sent' THEN now() END, 'api:test-send'
FROM unnest(CAST(:to_numbers AS text[]), CAST(:segments AS int[]), CAST(:states AS text[]),
            CAST(:message_sids AS text[]), CAST(:twilio_statuses AS text[]), CAST(:error_codes AS int[]),
            CAST(:reasons AS text[])) AS u(to_number, segments, state, message_sid, twilio_status, error_code, reason);

-- name: count-test-usage
-- Test texts count in the organisation's daily usage as campaign texts do (usage_daily, migration 0007):
-- accepted ones as messages with their segments and cost, refused ones as failed.
INSERT INTO usage_daily AS d (org_id, day, test, messages, segments, failed, unpriced_segments, segment_cost)
VALUES (:org_id, (now() AT TIME ZONE :time_zone)::date, :test, :messages, :segments, :failed,
        :unpriced_segments, :segment_cost)
ON CONFLICT (org_id, day, test) DO UPDATE
SET messages = d.messages + excluded.messages, segments = d.segments + excluded.segments,
    failed = d.failed + excluded.failed, unpriced_segments = d.unpriced_segments + excluded.unpriced_segments,
    segment_cost = d.segment_cost + excluded.segment_cost, updated_at = now();

-- name: staff-test-numbers
SELECT phone, label, added_by, created_at FROM staff_test_numbers WHERE org_id = :org_id ORDER BY label, phone;

-- name: test-numbers-among
-- Which of :phones are on the organisation's list.
SELECT phone FROM staff_test_numbers WHERE org_id = :org_id AND phone = ANY(CAST(:phones AS text[]));

-- name: lock-staff-test-numbers
-- Taken before adding, in the same transaction: two admins adding at once count one after the other.
SELECT id FROM organisations WHERE id = :org_id FOR UPDATE;

-- name: add-staff-test-number
-- Adds the number unless the list already has :max_numbers others (run under lock-staff-test-numbers); a
-- number already there gets the new label. Returns nothing when the list is full.
INSERT INTO staff_test_numbers (org_id, phone, label, added_by)
SELECT :org_id, :phone, :label, :added_by
WHERE (SELECT count(*) FROM staff_test_numbers WHERE org_id = :org_id AND phone <> :phone) < :max_numbers
ON CONFLICT (org_id, phone) DO UPDATE SET label = excluded.label
RETURNING phone;

-- name: remove-staff-test-number
DELETE FROM staff_test_numbers WHERE org_id = :org_id AND phone = :phone RETURNING phone;

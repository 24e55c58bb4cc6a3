-- One-off texts in usage (services/usage/one_off_usage.py, migration 0056).

-- name: uncounted-one-offs
-- Texts with an outcome usage has not counted (partial index one_off_texts_uncounted), locked so two usage
-- services never count one twice. day: when it was sent (else queued), in the organisation's time zone, as
-- a run's texts; attempted: it reached the send step (a ledger row), so a failure is Twilio's refusal.
SELECT t.id, t.org_id, t.phone, t.state, t.segments, t.message_sid, t.error_code,
       EXISTS (SELECT 1 FROM send_ledger l WHERE l.one_off_id = t.id) AS attempted,
       (coalesce(t.sent_at, t.claimed_at, t.created_at) AT TIME ZONE o.time_zone)::date AS day,
       coalesce(a.test_mode, false) AS test
FROM one_off_texts t
JOIN organisations o ON o.id = t.org_id
LEFT JOIN sms_accounts a ON a.org_id = t.org_id
WHERE t.state IN ('sent', 'failed', 'suppressed') AND NOT t.counted
ORDER BY t.id
LIMIT :batch
FOR UPDATE OF t SKIP LOCKED;

-- name: insert-one-off-message
INSERT INTO usage_messages (one_off_id, org_id, message_sid, day, test, region, unit_price, outcome, segments,
                            error_code)
VALUES (:one_off_id, :org_id, :message_sid, :day, :test, :region, :unit_price, :outcome, :segments, :error_code)
ON CONFLICT (one_off_id) DO NOTHING
RETURNING one_off_id;

-- name: mark-counted
UPDATE one_off_texts SET counted = true WHERE id = ANY(:ids::bigint[]);

-- Toll-free verification of the organisation's senders (services/api/verification_db.py, migration 0051).

-- name: sender
SELECT id, address, kind, verification FROM senders WHERE org_id = :org_id AND id = :sender_id;

-- name: verification
SELECT verification_sid, status, rejection_reason, rejection_reasons, error_code, edit_allowed,
       edit_expiration, submitted, checked_at
FROM sender_verifications WHERE sender_id = :sender_id;

-- name: last-submitted
-- The organisation's most recent submission to prefill another number's form with.
SELECT submitted FROM sender_verifications
WHERE org_id = :org_id AND submitted IS NOT NULL ORDER BY checked_at DESC LIMIT 1;

-- name: save-verification
-- Twilio's answer, with the form just submitted (null: keep the one submitted before).
INSERT INTO sender_verifications AS v (sender_id, org_id, verification_sid, status, rejection_reason,
                                       rejection_reasons, error_code, edit_allowed, edit_expiration, submitted)
VALUES (:sender_id, :org_id, :verification_sid, :status, :rejection_reason, :rejection_reasons, :error_code,
        :edit_allowed, :edit_expiration, :submitted)
ON CONFLICT (sender_id) DO UPDATE
SET verification_sid = excluded.verification_sid, status = excluded.status,
    rejection_reason = excluded.rejection_reason, rejection_reasons = excluded.rejection_reasons,
    error_code = excluded.error_code, edit_allowed = excluded.edit_allowed,
    edit_expiration = excluded.edit_expiration, submitted = coalesce(excluded.submitted, v.submitted),
    checked_at = now();

-- name: set-sender-state
UPDATE senders SET verification = :verification WHERE org_id = :org_id AND id = :sender_id;

-- name: due-for-refresh
-- Toll-free senders of organisations with a linked Twilio account, not checked for :max_age_s seconds.
SELECT s.org_id, s.id AS sender_id
FROM senders s
JOIN sms_accounts a ON a.org_id = s.org_id
LEFT JOIN sender_verifications v ON v.sender_id = s.id
WHERE s.kind = 'toll_free'
  AND (v.checked_at IS NULL OR v.checked_at < now() - make_interval(secs => :max_age_s))
ORDER BY v.checked_at NULLS FIRST
LIMIT :limit;

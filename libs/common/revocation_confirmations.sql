-- The one confirmation text a revocation may get (migration 0042; libs/common/revocation_confirmations.py).

-- name: queue-confirmations
-- For each (organisation, inbound message SID): a confirmation when the organisation enabled them and that
-- message revoked consent organisation-wide, changing the suppression, in the member's own words ('reply')
-- or by staff's decision on a doubtful reply ('review'). Twilio answers its own keywords itself, so
-- 'keyword' gets none; nor does a revocation of a number already suppressed (changed is false). It goes
-- from the number the member wrote to. One per consent row (UNIQUE (consent_id)): a replayed webhook or
-- decision queues nothing more.
INSERT INTO revocation_confirmations (org_id, consent_id, phone, sender, body)
SELECT h.org_id, h.id, h.phone, m.to_number, o.revocation_confirmation_text
FROM unnest(CAST(:org_ids AS uuid[]), CAST(:message_sids AS text[])) AS u(org_id, message_sid)
JOIN consent_history h ON h.org_id = u.org_id AND h.message_sid = u.message_sid AND h.scope = ''
                      AND h.action = 'opt_out' AND h.source IN ('reply', 'review') AND h.changed
JOIN inbound_messages m ON m.org_id = u.org_id AND m.message_sid = u.message_sid
JOIN organisations o ON o.id = u.org_id AND o.revocation_confirmation
ON CONFLICT (consent_id) DO NOTHING
RETURNING id;

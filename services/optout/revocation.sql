-- Doubtful revocations held for staff (services/optout/review_holds.py; migration 0042).

-- name: hold-for-review
-- For each doubtful reply (by its message SID, stored just before in the same transaction): a review row,
-- and an organisation-wide suppression of source 'review_hold', so nothing more is sent while staff decide
-- (is_suppressed honours every source). A number already suppressed organisation-wide for another reason
-- is revoked already: no review; nor when the member opted back in after this reply (a START later in the
-- same batch, applied just before: their latest word wins). A message seen before (a retried webhook) adds
-- nothing. Returns the review ids made now.
WITH doubtful AS (
    SELECT m.id, m.org_id, m.phone, u.scope, u.matched, u.language
    FROM unnest(CAST(:org_ids AS uuid[]), CAST(:message_sids AS text[]), CAST(:scopes AS text[]),
                CAST(:matched AS text[]), CAST(:languages AS text[]))
         AS u(org_id, message_sid, scope, matched, language)
    JOIN inbound_messages m ON m.org_id = u.org_id AND m.message_sid = u.message_sid
    WHERE m.phone IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM suppressions s
                      WHERE s.org_id = m.org_id AND s.phone = m.phone AND s.scope = '' AND s.source <> 'review_hold')
      AND NOT EXISTS (SELECT 1 FROM consent_history h
                      WHERE h.org_id = m.org_id AND h.phone = m.phone AND h.scope = '' AND h.action = 'opt_in'
                        AND h.occurred_at > m.received_at)
), held AS (
    INSERT INTO suppressions (org_id, phone, scope, source, reason)
    SELECT DISTINCT ON (org_id, phone) org_id, phone, '', 'review_hold', 'awaiting review: ' || matched
    FROM doubtful
    ORDER BY org_id, phone, id
    ON CONFLICT (org_id, phone, scope) DO NOTHING
    RETURNING 1
)
INSERT INTO revocation_reviews (org_id, inbound_message_id, scope, matched, language)
SELECT org_id, id, scope, matched, language FROM doubtful
ON CONFLICT (inbound_message_id) DO NOTHING
RETURNING id;

-- Revocations staff decide or record (services/api/routes/revocations.py; migration 0042). Every statement
-- is scoped to the caller's organisation. A revocation is applied as the opt-out service applies a STOP:
-- the suppression, consent_history, a ConsentChanged event and iMIS write-back jobs, in one transaction
-- (the event and the jobs through suppressions.sql's enqueue-event and enqueue-imis-jobs).

-- name: list-reviews
-- The review queue, oldest first (revocation_reviews_pending), or the decided ones, newest first. The member's
-- number and words come from inbound_messages, so retention and erasure blank them here too.
SELECT r.id, m.phone, m.body, m.to_number, r.scope, r.matched, r.language, r.state, r.decided_by, r.decided_at,
       r.note, m.received_at, count(*) OVER () AS total
FROM revocation_reviews r
JOIN inbound_messages m ON m.id = r.inbound_message_id
WHERE r.org_id = :org_id AND r.state = ANY(CAST(:states AS text[]))
ORDER BY CASE WHEN r.state = 'pending' THEN r.created_at END, r.decided_at DESC NULLS LAST, r.id
LIMIT :limit OFFSET :offset;

-- name: lock-review
-- Locked for the decision: two admins deciding at once decide one after the other, and the second sees it
-- decided.
SELECT r.id, r.state, r.scope, r.matched, m.phone, m.body, m.message_sid, m.received_at
FROM revocation_reviews r
JOIN inbound_messages m ON m.id = r.inbound_message_id
WHERE r.id = :review_id AND r.org_id = :org_id
FOR UPDATE OF r;

-- name: opted-in-since
-- True when the member opted back in (START, or staff's lift) after the reply was received: their latest
-- word wins, so a later decision that the reply revoked consent does not suppress them again.
SELECT EXISTS (SELECT 1 FROM consent_history
               WHERE org_id = :org_id AND phone = :phone AND scope = '' AND action = 'opt_in'
                 AND occurred_at > :since);

-- name: revoke
-- Suppress in :scope with :source ('review' or 'manual'); a hold waiting for review becomes this revocation.
-- True when the number was not revoked in that scope before (new, or a hold until now).
INSERT INTO suppressions AS s (org_id, phone, scope, source, reason)
VALUES (:org_id, :phone, :scope, :source, :reason)
ON CONFLICT (org_id, phone, scope) DO UPDATE SET source = excluded.source, reason = excluded.reason
WHERE s.source = 'review_hold'
RETURNING true;

-- name: release-hold
-- "Not a revocation": the organisation-wide hold goes, unless another doubtful reply of the number still waits.
-- A suppression of any other source stays.
DELETE FROM suppressions s
WHERE s.org_id = :org_id AND s.phone = :phone AND s.scope = '' AND s.source = 'review_hold'
  AND NOT EXISTS (SELECT 1 FROM revocation_reviews r JOIN inbound_messages m ON m.id = r.inbound_message_id
                  WHERE r.org_id = :org_id AND m.phone = :phone AND r.state = 'pending' AND r.id <> :review_id)
RETURNING true;

-- name: decide-review
UPDATE revocation_reviews
SET state = :state, decided_by = :decided_by, decided_at = now(), note = :note
WHERE id = :review_id AND org_id = :org_id;

-- name: record-revocation
-- A consent_history row for a staff revocation: a decided review carries the member's message (its SID keeps
-- it once per scope), a manual one its channel and evidence.
INSERT INTO consent_history (org_id, phone, scope, action, source, keyword, body, message_sid, actor, reason,
                             changed, channel, evidence)
VALUES (:org_id, :phone, :scope, 'opt_out', :source, :keyword, :body, :message_sid, :actor, :reason, :changed,
        :channel, :evidence)
RETURNING id, occurred_at;

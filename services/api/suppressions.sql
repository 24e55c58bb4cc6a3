-- Staff access to suppressions, consent history and iMIS write-backs (services/api/routes/suppressions.py).
-- Every statement is scoped to the caller's organisation. The opt-out service applies members' keywords;
-- these apply staff decisions the same way: the suppression, a consent_history row, a ConsentChanged
-- event in event_outbox (the opt-out service's relay publishes it) and iMIS write-back jobs, in one
-- transaction.

-- name: list-suppressions
-- Newest first (suppressions_by_org_created). :q matches any part of the number, so staff can type
-- the last digits; :scope and :source filter when given. total counts every match, not only this page.
SELECT phone, scope, source, reason, created_at, count(*) OVER () AS total
FROM suppressions
WHERE org_id = :org_id
  AND (CAST(:q AS text) IS NULL OR phone LIKE '%' || CAST(:q AS text) || '%')
  AND (CAST(:scope AS text) IS NULL OR scope = CAST(:scope AS text))
  AND (CAST(:source AS text) IS NULL OR source = CAST(:source AS text))
ORDER BY created_at DESC, phone, scope
LIMIT :limit OFFSET :offset;

-- name: export-suppressions
-- Every suppression of the organisation, for CSV export; read through a cursor in pages.
SELECT phone, scope, source, reason, created_at
FROM suppressions
WHERE org_id = :org_id
ORDER BY created_at, phone, scope;

-- name: staff-suppress
-- True when the number was not suppressed in this scope before; an existing entry is left as it is, except
-- a hold waiting for review (migration 0042), which staff's decision replaces.
INSERT INTO suppressions AS s (org_id, phone, scope, source, reason)
VALUES (:org_id, :phone, :scope, 'staff', :reason)
ON CONFLICT (org_id, phone, scope) DO UPDATE SET source = excluded.source, reason = excluded.reason
WHERE s.source = 'review_hold'
RETURNING true;

-- name: staff-lift
-- Lifts the number in :scope, or in every scope when :scope is NULL; returns the scopes lifted.
DELETE FROM suppressions
WHERE org_id = :org_id AND phone = :phone AND (CAST(:scope AS text) IS NULL OR scope = CAST(:scope AS text))
RETURNING scope;

-- name: record-consent
INSERT INTO consent_history (org_id, phone, scope, action, source, actor, reason, changed)
VALUES (:org_id, :phone, :scope, :action, 'staff', :actor, :reason, :changed)
RETURNING id, occurred_at;

-- name: enqueue-event
-- Published by the opt-out service's relay (see migration 0004, event_outbox).
INSERT INTO event_outbox (topic, key, payload) VALUES (:topic, :key, :payload);

-- name: enqueue-imis-jobs
-- One write-back job per member id seen with the number in the last :window_days, when the
-- organisation has iMIS write-back set up (as services/optout does for keywords).
INSERT INTO imis_outbox (org_id, member_id, phone, action, source_text, occurred_at, consent_id)
SELECT m.org_id, m.member_id, m.phone, :action, :source_text, :occurred_at, :consent_id
FROM member_phone_index m
JOIN imis_accounts a ON a.org_id = m.org_id AND a.writeback_enabled
WHERE m.org_id = :org_id AND m.phone = :phone AND m.last_seen_at > now() - make_interval(days => :window_days)
ON CONFLICT (consent_id, member_id) DO NOTHING;

-- name: consent-history
-- A number's consent history, newest first (consent_history_by_phone).
SELECT id, phone, scope, action, source, keyword, body, message_sid, actor, reason, changed, superseded, occurred_at,
       channel, evidence
FROM consent_history
WHERE org_id = :org_id AND phone = :phone
ORDER BY occurred_at DESC, id DESC
LIMIT :limit;

-- name: writeback-counts
-- For the dashboard: write-backs waiting (retrying = pending after a failed attempt) and given up.
SELECT count(*) FILTER (WHERE state = 'pending') AS pending,
       count(*) FILTER (WHERE state = 'pending' AND attempts > 0 AND last_error IS NOT NULL) AS retrying,
       count(*) FILTER (WHERE state = 'failed') AS failed
FROM imis_outbox
WHERE org_id = :org_id AND state IN ('pending', 'failed');

-- name: writeback-jobs
SELECT id, member_id, phone, action, state, attempts, next_attempt_at, last_error, created_at, updated_at
FROM imis_outbox
WHERE org_id = :org_id AND state = ANY(CAST(:states AS text[]))
ORDER BY created_at DESC, id DESC
LIMIT :limit OFFSET :offset;

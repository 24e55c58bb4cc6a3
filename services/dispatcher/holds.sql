-- name: set-hold
-- A recipient whose local window is closed is held until it opens: the ledger, not the process, keeps it.
-- Written by the entry's lock holder before the entry's 'held' state (record-final), so a crash between
-- the two leaves a claimed entry, which the next attempt reconciles and holds again.
UPDATE send_ledger SET held_until = :held_until, released_at = NULL, updated_at = now()
WHERE run_id = :run_id AND recipient_id = :recipient_id;

-- name: take-held
-- A held entry's event came back (released, or redelivered): this attempt claims it. Nothing was sent
-- for it (it was held before any Twilio call, after any reconciliation), so no reconciliation is needed.
UPDATE send_ledger
SET state = 'claimed', claim_token = :claim_token, claimed_by = :claimed_by, claimed_at = now(),
    attempt = attempt + 1, updated_at = now()
WHERE run_id = :run_id AND recipient_id = :recipient_id AND state = 'held'
RETURNING claimed_at;

-- name: due-holds
-- Held entries whose window has opened, with the snapshot row to publish them again from; one released
-- but still held ten minutes later (its event lost, or taken while the window was still closed) is
-- released again, harmlessly: the ledger sends it once. SKIP LOCKED: each releaser takes its own rows.
SELECT l.run_id, l.recipient_id, l.org_id, r.campaign_id, l.sender, p.e164, p.body, p.segments,
       r.validity_period_s
FROM send_ledger l
JOIN campaign_runs r ON r.id = l.run_id
JOIN run_recipients p ON p.run_id = l.run_id AND p.recipient_id = l.recipient_id
WHERE l.state = 'held' AND l.held_until <= CAST(:now AS timestamptz)
  AND (l.released_at IS NULL OR l.released_at < CAST(:now AS timestamptz) - interval '10 minutes')
  AND p.e164 IS NOT NULL
ORDER BY l.held_until
LIMIT :batch
FOR UPDATE OF l SKIP LOCKED;

-- name: mark-released
UPDATE send_ledger l SET released_at = :now
FROM unnest(CAST(:run_ids AS uuid[]), CAST(:recipient_ids AS uuid[])) AS u(run_id, recipient_id)
WHERE l.run_id = u.run_id AND l.recipient_id = u.recipient_id;

-- One-off texts: staff replies, keyword answers, revocation confirmations (migration 0049;
-- services/dispatcher/one_off.py).

-- name: pending-confirmations
-- Revocation confirmations not yet adopted as one-off texts (one whose member was erased has no number).
SELECT c.id, c.org_id, c.sender, c.phone, c.body
FROM revocation_confirmations c
WHERE c.state = 'pending' AND c.phone IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM one_off_texts t WHERE t.confirmation_id = c.id)
ORDER BY c.id
LIMIT :limit;

-- name: adopt-confirmations
-- Each becomes a one-off text once (UNIQUE (confirmation_id)), however many processes adopt it.
INSERT INTO one_off_texts (org_id, kind, confirmation_id, sender, phone, body, segments, author)
SELECT org_id, 'revocation_confirmation', id, sender, phone, body, segments, 'auto'
FROM unnest(CAST(:ids AS bigint[]), CAST(:org_ids AS uuid[]), CAST(:senders AS text[]), CAST(:phones AS text[]),
            CAST(:bodies AS text[]), CAST(:segments AS int[])) AS u(id, org_id, sender, phone, body, segments)
ON CONFLICT (confirmation_id) DO NOTHING;

-- name: due
-- Texts to send now, oldest first: pending ones, and claims left without an outcome for :lease_s (a crash,
-- or Twilio unreachable), which are looked up at Twilio before anything is sent again.
SELECT t.id, t.org_id, t.kind, t.sender, t.phone, t.body, t.segments, t.state, t.claimed_at, t.confirmation_id
FROM one_off_texts t
WHERE (t.state = 'pending' OR (t.state = 'claimed' AND t.claimed_at < now() - make_interval(secs => :lease_s)))
  AND t.phone IS NOT NULL
ORDER BY t.id
LIMIT :limit;

-- name: claim
-- Takes the text for this attempt: its ledger row (no run, no test) is committed before the Twilio call.
-- Returns nothing when another process took it first, or when it may not be sent: then its state says why
-- (suppressed; a confirmation whose member opted back in is cancelled). A revocation confirmation is the
-- only kind sent to a suppressed number, and only while the revocation it confirms stands.
WITH t AS (
    SELECT t.*, is_suppressed(t.org_id, t.phone, t.sender) AS suppressed,
           (c.state = 'pending' AND EXISTS (SELECT 1 FROM suppressions s
                                           WHERE s.org_id = t.org_id AND s.phone = t.phone AND s.scope = ''))
               AS confirmation_stands
    FROM one_off_texts t
    LEFT JOIN revocation_confirmations c ON c.id = t.confirmation_id
    WHERE t.id = :id
      AND (t.state = 'pending' OR (t.state = 'claimed' AND t.claimed_at < now() - make_interval(secs => :lease_s)))
    FOR UPDATE OF t SKIP LOCKED
), refused AS (
    UPDATE one_off_texts o
    SET state = 'suppressed',
        reason = CASE WHEN t.kind = 'revocation_confirmation' THEN 'revocation_withdrawn' ELSE 'suppressed' END
    FROM t
    WHERE o.id = t.id AND t.state = 'pending'
      AND ((t.kind = 'revocation_confirmation' AND NOT t.confirmation_stands)
           OR (t.kind <> 'revocation_confirmation' AND t.suppressed))
    RETURNING o.id, o.confirmation_id
), cancelled AS (
    UPDATE revocation_confirmations c SET state = 'cancelled', updated_at = now()
    FROM refused r WHERE c.id = r.confirmation_id
), claimed AS (
    UPDATE one_off_texts o SET state = 'claimed', claimed_at = now()
    FROM t
    WHERE o.id = t.id AND NOT EXISTS (SELECT 1 FROM refused r WHERE r.id = t.id)
    RETURNING o.id, o.org_id, o.sender, o.phone, o.segments, t.state AS was, t.claimed_at AS was_claimed_at
), ledger AS (
    INSERT INTO send_ledger (run_id, recipient_id, org_id, sender, to_number, segments, state, claimed_by,
                             claimed_at, one_off_id)
    SELECT NULL, gen_random_uuid(), org_id, sender, phone, segments, 'claimed', :process_id, now(), id
    FROM claimed
    ON CONFLICT (one_off_id) DO UPDATE SET claimed_by = EXCLUDED.claimed_by, attempt = send_ledger.attempt + 1
)
SELECT was, was_claimed_at FROM claimed;

-- name: record-sent
WITH text AS (
    UPDATE one_off_texts SET state = 'sent', message_sid = :message_sid, segments = :segments, sent_at = now(),
                             error_code = NULL, reason = NULL
    WHERE id = :id AND state = 'claimed'
    RETURNING id, confirmation_id
), confirmation AS (
    UPDATE revocation_confirmations c SET state = 'sent', message_sid = :message_sid, updated_at = now()
    FROM text WHERE c.id = text.confirmation_id
)
UPDATE send_ledger l
SET state = 'sent', message_sid = :message_sid, twilio_status = :twilio_status, segments = :segments,
    price = :price, sent_at = now(), updated_at = now()
FROM text WHERE l.one_off_id = text.id;

-- name: record-failed
WITH text AS (
    UPDATE one_off_texts SET state = 'failed', error_code = :error_code, reason = :reason
    WHERE id = :id AND state = 'claimed'
    RETURNING id, confirmation_id
), confirmation AS (
    UPDATE revocation_confirmations c SET state = 'failed', updated_at = now()
    FROM text WHERE c.id = text.confirmation_id
)
UPDATE send_ledger l SET state = 'failed', error_code = :error_code, reason = :reason, updated_at = now()
FROM text WHERE l.one_off_id = text.id;

-- name: sender-rate
SELECT segments_per_second FROM senders WHERE org_id = :org_id AND address = :address;

-- name: snapshot-rows
-- What the database holds for each recipient event of a fetched batch: its run, its frozen snapshot row
-- and whether that row's sender is one of the run's organisation's senders. The dispatcher sends only
-- what these rows say (snapshot.py has the rule), so a forged event is refused before any claim. One
-- statement per batch the consumer fetched, not per event; each event is a probe of 0021's unique index
-- and of the primary keys. LEFT JOINs: a missing run or row comes back as NULLs, in the batch's order.
-- The member's address (0044) comes along for the quiet hours (send_rules.py), so a recipient's verdict needs
-- no read of its own unless a frequency cap counts its texts.
SELECT r.org_id AS run_org_id, r.campaign_id AS run_campaign_id, p.status, p.e164, p.body, p.segments, p.sender,
       s.address IS NOT NULL AS sender_known, p.address_state, p.address_time_zone
FROM unnest(CAST(:run_ids AS uuid[]), CAST(:recipient_ids AS uuid[])) WITH ORDINALITY AS u(run_id, recipient_id, i)
LEFT JOIN campaign_runs r ON r.id = u.run_id
LEFT JOIN run_recipients p ON p.run_id = r.id AND p.recipient_id = u.recipient_id
LEFT JOIN senders s ON s.org_id = r.org_id AND s.address = p.sender
ORDER BY u.i;

-- name: ledger-outcomes
-- Which events of a fetched batch an earlier attempt already ended: after a rebalance the new owner reads
-- a partition again from its committed offset, which lags behind the faster of its senders, and those
-- records are answered from here (their results published again) instead of one by one in their lanes.
-- One statement per batch; each event is a probe of the (run_id, recipient_id) unique index.
SELECT l.state, l.message_sid, l.segments, l.error_code
FROM unnest(CAST(:run_ids AS uuid[]), CAST(:recipient_ids AS uuid[])) WITH ORDINALITY AS u(run_id, recipient_id, i)
LEFT JOIN send_ledger l ON l.run_id = u.run_id AND l.recipient_id = u.recipient_id
ORDER BY u.i;

-- name: claim-new
-- The common case in one round trip. A recipient seen for the first time is claimed (committed, on its
-- own, before any Twilio call: if the process dies during the call the row stays 'claimed' and the next
-- attempt reconciles), the entry's lock is taken for the call, and suppression is read (migration 0011
-- has the rule). No row back: the recipient was claimed
-- before (a redelivery), and the caller takes the careful path below.
WITH claimed AS (
    INSERT INTO send_ledger (run_id, recipient_id, org_id, sender, to_number, segments, state, claimed_by,
                             claim_token)
    VALUES (:run_id, :recipient_id, :org_id, :sender, :to_number, :segments, 'claimed', :claimed_by, :claim_token)
    ON CONFLICT (run_id, recipient_id) DO NOTHING
    RETURNING org_id, sender, to_number, claimed_at
)
SELECT pg_try_advisory_lock(:lock_key) AS locked, c.claimed_at,
       is_suppressed(c.org_id, c.to_number, c.sender) AS suppressed
FROM claimed c;

-- name: claim-new-batch
-- claim-new for many recipients at once, on the batch writer's connection, which then holds their locks.
-- Only the rows inserted now come back: the others were claimed before and take the careful path.
WITH batch AS (
    SELECT * FROM unnest(CAST(:run_ids AS uuid[]), CAST(:recipient_ids AS uuid[]), CAST(:org_ids AS uuid[]),
                         CAST(:senders AS text[]), CAST(:to_numbers AS text[]), CAST(:segments AS integer[]),
                         CAST(:claim_tokens AS uuid[]), CAST(:lock_keys AS bigint[]))
        AS u(run_id, recipient_id, org_id, sender, to_number, segments, claim_token, lock_key)
), claimed AS (
    INSERT INTO send_ledger (run_id, recipient_id, org_id, sender, to_number, segments, state, claimed_by,
                             claim_token)
    SELECT run_id, recipient_id, org_id, sender, to_number, segments, 'claimed', :claimed_by, claim_token
    FROM batch
    ON CONFLICT (run_id, recipient_id) DO NOTHING
    RETURNING run_id, recipient_id, org_id, sender, to_number, claimed_at
)
SELECT c.run_id, c.recipient_id, pg_try_advisory_lock(b.lock_key) AS locked, c.claimed_at,
       is_suppressed(c.org_id, c.to_number, c.sender) AS suppressed
FROM claimed c
JOIN batch b ON b.run_id = c.run_id AND b.recipient_id = c.recipient_id;

-- name: record-outcomes-batch
-- Outcomes of many entries claimed by the batch writer, and their unlock (with the keys of entries given
-- up without an outcome), in one round trip. Only the claim's own token may write its outcome. The unlock
-- reads the update's result, so it runs after every row is written.
WITH recorded AS (
    UPDATE send_ledger l
    SET state = u.state, message_sid = coalesce(u.message_sid, l.message_sid),
        twilio_status = coalesce(u.twilio_status, l.twilio_status), segments = coalesce(u.segments, l.segments),
        price = coalesce(u.price, l.price), sent_at = coalesce(to_timestamp(u.sent_at), l.sent_at),
        error_code = u.error_code, reason = coalesce(u.reason, l.reason), updated_at = now()
    FROM unnest(CAST(:run_ids AS uuid[]), CAST(:recipient_ids AS uuid[]), CAST(:claim_tokens AS uuid[]),
                CAST(:states AS text[]), CAST(:message_sids AS text[]), CAST(:twilio_statuses AS text[]),
                CAST(:segments AS integer[]), CAST(:prices AS numeric[]), CAST(:sent_ats AS float8[]),
                CAST(:error_codes AS integer[]), CAST(:reasons AS text[]))
        AS u(run_id, recipient_id, claim_token, state, message_sid, twilio_status, segments, price, sent_at,
             error_code, reason)
    WHERE l.run_id = u.run_id AND l.recipient_id = u.recipient_id AND l.claim_token = u.claim_token
    RETURNING l.run_id, l.recipient_id
)
SELECT r.runs, r.recipients,
       (SELECT count(*) FROM unnest(CAST(:lock_keys AS bigint[])) AS k(key)
        WHERE r.written >= 0 AND pg_advisory_unlock(k.key)) AS unlocked
FROM (SELECT coalesce(array_agg(run_id), '{}') AS runs, coalesce(array_agg(recipient_id), '{}') AS recipients,
             count(*) AS written
      FROM recorded) AS r;

-- name: lock-entry
-- The entry's lock is a session-level advisory lock, held for the whole Twilio call: a second process
-- handling the same recipient (a rebalance overlap) waits here and then sees the outcome. It dies with
-- the connection of a killed process.
SELECT pg_advisory_lock(:lock_key);

-- name: read-entry
-- Read after the lock is held. FOR UPDATE returns the newest committed version of the row, and waits for
-- an outcome its previous holder wrote (and unlocked) but has not committed yet.
SELECT l.state, l.claim_token, l.claimed_at, l.message_sid, l.segments, l.error_code,
       is_suppressed(l.org_id, l.to_number, l.sender) AS suppressed
FROM send_ledger l
WHERE l.run_id = :run_id AND l.recipient_id = :recipient_id
FOR UPDATE OF l;

-- name: unlock-entry
SELECT pg_advisory_unlock(:lock_key);

-- name: reclaim
UPDATE send_ledger
SET claim_token = :claim_token, claimed_by = :claimed_by, claimed_at = now(), attempt = attempt + 1, updated_at = now()
WHERE run_id = :run_id AND recipient_id = :recipient_id;

-- name: record-sent
-- The outcome and the entry's unlock in one round trip. The unlock reads the update's result, so it runs
-- after the row is written (and row-locked until the commit: see read-entry).
WITH recorded AS (
    UPDATE send_ledger
    SET state = 'sent', message_sid = :message_sid, twilio_status = :twilio_status, segments = :segments,
        price = :price, sent_at = to_timestamp(:sent_at), updated_at = now()
    WHERE run_id = :run_id AND recipient_id = :recipient_id
    RETURNING 1
)
SELECT pg_advisory_unlock(:lock_key) FROM (SELECT count(*) FROM recorded) AS done;

-- name: record-final
-- A recipient that ends without a message: failed (with Twilio's code and a reason), suppressed, expired
-- or cancelled; the entry is unlocked as in record-sent.
WITH recorded AS (
    UPDATE send_ledger
    SET state = :state, error_code = :error_code, reason = coalesce(:reason, reason), updated_at = now()
    WHERE run_id = :run_id AND recipient_id = :recipient_id
    RETURNING 1
)
SELECT pg_advisory_unlock(:lock_key) FROM (SELECT count(*) FROM recorded) AS done;

-- name: refresh-run-counts
-- A run's counts are recomputed from its ledger rows (absolute values: any process may run this, any
-- number of times) rather than incremented per send, which would make every send of a run queue on
-- one row lock. The run completes when every recipient handed to the dispatcher has an outcome; the
-- caller then moves its campaign (libs/common/run_endings.py). Returns the run's state, changed or not.
-- The ledger index on (run_id, updated_at) keeps this to a scan of the run's own rows. Held recipients
-- (0044) have no outcome yet; outside_window and frequency_capped ones end as the others do.
WITH ledger AS (
    SELECT count(*) FILTER (WHERE state = 'sent') AS sent,
           count(*) FILTER (WHERE state = 'failed') AS failed,
           count(*) FILTER (WHERE state = 'suppressed') AS dropped,
           count(*) FILTER (WHERE state = 'outside_window') AS outside_window,
           count(*) FILTER (WHERE state = 'frequency_capped') AS frequency_capped,
           coalesce(sum(segments) FILTER (WHERE state = 'sent'), 0) AS segments
    FROM send_ledger WHERE run_id = :run_id
), counts AS (
    SELECT *, sent + failed + dropped + outside_window + frequency_capped AS outcomes FROM ledger
), run AS (
    UPDATE campaign_runs r
    SET sent = c.sent, failed = c.failed, dropped = c.dropped, segments = c.segments,
        outside_window = c.outside_window, frequency_capped = c.frequency_capped,
        state = CASE WHEN r.state = 'sending' AND r.targeted > 0 AND c.outcomes >= r.targeted
                     THEN 'completed' ELSE r.state END,
        finished_at = CASE WHEN r.state = 'sending' AND r.targeted > 0 AND c.outcomes >= r.targeted
                           THEN now() ELSE r.finished_at END
    FROM counts c
    WHERE r.id = :run_id
      AND (r.sent, r.failed, r.dropped, r.segments, r.outside_window, r.frequency_capped)
          IS DISTINCT FROM (c.sent, c.failed, c.dropped, c.segments, c.outside_window, c.frequency_capped)
    RETURNING r.state
)
SELECT coalesce((SELECT state FROM run), (SELECT state FROM campaign_runs WHERE id = :run_id));

-- name: run-state
SELECT state FROM campaign_runs WHERE id = :run_id;

-- name: is-suppressed
SELECT is_suppressed(:org_id, :phone, :sender);

-- name: suppress
INSERT INTO suppressions (org_id, phone, scope, source, reason)
VALUES (:org_id, :phone, :sender, 'twilio_21610', 'Twilio refused: the member replied STOP to this sender')
ON CONFLICT DO NOTHING;

-- name: mark-bad-number
INSERT INTO bad_numbers (org_id, phone, error_code) VALUES (:org_id, :phone, :error_code)
ON CONFLICT (org_id, phone) DO UPDATE SET error_code = excluded.error_code, last_seen = now();

-- name: recent-outcomes
-- The run's health: failures among its latest outcomes (the failure-share threshold looks at these).
SELECT count(*) FILTER (WHERE state = 'failed') AS failed, count(*) AS total
FROM (SELECT state FROM send_ledger
      WHERE run_id = :run_id AND state IN ('sent', 'failed')
      ORDER BY updated_at DESC LIMIT :window) AS latest;

-- name: pause-run
-- The run pauses itself (failure threshold, Twilio refusing the account or sender), and so does its
-- campaign, so that staff can see it and resume it from the dashboard. Both move only where the
-- transition tables allow (state_may_change, 0033): a sending run, a sending campaign.
WITH run AS (
    UPDATE campaign_runs
    SET state = 'paused', state_reason = :reason, state_reason_code = :reason_code,
        state_reason_detail = CAST(:reason_detail AS jsonb)
    WHERE id = :run_id AND state_may_change('run', state, 'paused')
    RETURNING campaign_id
)
UPDATE campaigns c SET state = 'paused', state_changed_at = now(), updated_at = now()
FROM run WHERE c.id = run.campaign_id AND state_may_change('campaign', c.state, 'paused');

-- name: refuse-run
-- An unverified toll-free sender cannot text US/Canada at all (30032, still charged): the run is refused,
-- and the caller moves its campaign (libs/common/run_endings.py).
-- Any open run may be refused (state_may_change, 0033).
UPDATE campaign_runs
SET state = 'refused', state_reason = :reason, state_reason_code = :reason_code,
    state_reason_detail = CAST(:reason_detail AS jsonb), finished_at = now()
WHERE id = :run_id AND state_may_change('run', state, 'refused');

-- name: recent-sends
-- Seeds a sender's pacing window when this process takes the sender over: what was sent lately, and
-- what is claimed without an outcome (counted as if accepted just now). sent_at is in the dispatchers'
-- clock (:now), claimed_at in PostgreSQL's; a send stamped further ahead than clocks drift apart is not
-- recent (a window seeded with it would hold the sender until then).
SELECT coalesce(extract(epoch FROM sent_at)::float8, :now) AS anchor, segments
FROM send_ledger
WHERE sender = :sender
  AND (sent_at BETWEEN to_timestamp(:now) - interval '2 seconds' AND to_timestamp(:now) + interval '2 seconds'
       OR (state = 'claimed' AND claimed_at > now() - interval '30 seconds'));

-- name: account
-- Read again every TEXTPULSE_CREDENTIALS_TTL_S (services/dispatcher/accounts.py); the secrets are sealed.
SELECT account_sid, auth_token, api_key_sid, api_key_secret, webhook_base_url, alpha_sender_id
FROM sms_accounts WHERE org_id = :org_id;

-- name: sender
SELECT verification, segments_per_second::float8 AS segments_per_second
FROM senders WHERE org_id = :org_id AND address = :address;

-- name: senders-batch
-- Every sender this process paces, read again once per TTL in one statement (services/dispatcher/
-- sender_profiles.py): one read per sender would cost more than the sends of a 3 segments/s sender.
SELECT u.org_id, u.address, s.verification, s.segments_per_second::float8 AS segments_per_second
FROM unnest(CAST(:org_ids AS uuid[]), CAST(:addresses AS text[])) AS u(org_id, address)
JOIN senders s ON s.org_id = u.org_id AND s.address = u.address;


-- The opt-out service's SQL. Loaded by services/optout/db.py and prepared at start-up.

-- ---------------------------------------------------------------------------------------------
-- Webhook edge

-- name: account-by-sid
-- The account a webhook claims to come from; its auth token (or, when the webhook names it, its SharedKey's
-- secret) validates the signature.
SELECT org_id, account_sid, auth_token, webhook_base_url, webhook_shared_key_id, webhook_shared_key_secret
FROM sms_accounts
WHERE account_sid = :account_sid;

-- name: insert-webhooks
-- The direct write, made before Twilio gets its 200 when Kafka cannot take the request (webhooks.py): the
-- requests as received, the account already checked. Everything else is done by the processor from these
-- rows, so a crash after the 200 loses nothing. Requests that arrive while another write is in flight are
-- stored together (group commit: one WAL flush for many). A request id stored before (the same request
-- also reached Kafka) is skipped.
INSERT INTO webhook_requests (request_id, kind, org_id, account_sid, url, params, received_at)
SELECT request_id, kind, org_id, account_sid, url, CAST(params AS jsonb), received_at
FROM unnest(CAST(:request_ids AS uuid[]), CAST(:kinds AS text[]), CAST(:org_ids AS uuid[]),
            CAST(:account_sids AS text[]), CAST(:urls AS text[]), CAST(:params AS text[]),
            CAST(:received_ats AS timestamptz[]))
     WITH ORDINALITY AS u(request_id, kind, org_id, account_sid, url, params, received_at, n)
ORDER BY n
ON CONFLICT (request_id) DO NOTHING;

-- name: intake-webhooks
-- The intake consumer's write of a batch of textpulse.webhooks records, in offset order (intake.py).
-- An event is trusted only as far as the database agrees: its account SID must be its organisation's
-- (sms_accounts.org_id references organisations, so the organisation exists too). Those that do not
-- agree are not stored and are returned, for the dead-letter queue; a request id stored before (a
-- redelivered record, or the edge's direct write of the same request) is skipped.
WITH u AS (
    SELECT u.*, EXISTS (SELECT 1 FROM sms_accounts a WHERE a.org_id = u.org_id AND a.account_sid = u.account_sid)
                AS known
    FROM unnest(CAST(:request_ids AS uuid[]), CAST(:kinds AS text[]), CAST(:org_ids AS uuid[]),
                CAST(:account_sids AS text[]), CAST(:urls AS text[]), CAST(:params AS text[]),
                CAST(:received_ats AS timestamptz[]))
         WITH ORDINALITY AS u(request_id, kind, org_id, account_sid, url, params, received_at, n)
), stored AS (
    INSERT INTO webhook_requests (request_id, kind, org_id, account_sid, url, params, received_at)
    SELECT request_id, kind, org_id, account_sid, url, CAST(params AS jsonb), received_at
    FROM u WHERE known
    ORDER BY n
    ON CONFLICT (request_id) DO NOTHING
    RETURNING 1
)
SELECT request_id FROM u WHERE NOT known;

-- name: account-owners
-- The organisation each account belongs to now, and since when (the row's last write: the link, or a later
-- change to it). The intake asks when an event names another organisation than the account's: the edge may
-- have tagged it from an account cached before the account moved (intake.py).
SELECT account_sid, org_id, updated_at
FROM sms_accounts
WHERE account_sid = any(CAST(:account_sids AS text[]));

-- name: add-signature-refusals
-- Webhooks naming an organisation's account whose signature did not validate, per minute (migration
-- 0018); services/optout/refusals.py sums them in memory first, the usage service alerts on them.
INSERT INTO webhook_signature_refusals (org_id, minute, refusals, last_url)
SELECT * FROM unnest(CAST(:org_ids AS uuid[]), CAST(:minutes AS timestamptz[]), CAST(:refusals AS int[]),
                     CAST(:urls AS text[]))
ON CONFLICT (org_id, minute) DO UPDATE
SET refusals = webhook_signature_refusals.refusals + excluded.refusals, last_url = excluded.last_url;

-- ---------------------------------------------------------------------------------------------
-- Processing webhooks

-- name: try-processor-lock
-- One processor at a time across processes, so that a STOP and a later START for one number cannot be
-- applied by two transactions in the wrong order. Storing webhooks is not serialised, only applying them.
SELECT pg_try_advisory_xact_lock(:lock_id);

-- name: claim-webhooks
-- The oldest due rows, locked for this transaction (SKIP LOCKED: never wait on a row another
-- transaction holds). The organisation's settings come along for the handlers.
SELECT w.id, w.kind, w.org_id, w.params::text AS params, w.received_at, w.attempts,
       o.default_country_prefix, o.time_zone
FROM webhook_requests w
JOIN organisations o ON o.id = w.org_id
WHERE w.state = 'pending' AND w.next_attempt_at <= now()
ORDER BY w.id
LIMIT :limit
FOR UPDATE OF w SKIP LOCKED;

-- name: finish-webhooks
-- state 'done' with the outcome (opted_out, duplicate, ledger_missing...), or 'failed' with the error.
UPDATE webhook_requests w
SET state = u.state, outcome = u.outcome, error = u.error, attempts = w.attempts + 1, processed_at = now()
FROM unnest(CAST(:ids AS bigint[]), CAST(:states AS text[]), CAST(:outcomes AS text[]), CAST(:errors AS text[]))
     AS u(id, state, outcome, error)
WHERE w.id = u.id;

-- name: retry-webhook
UPDATE webhook_requests
SET attempts = attempts + 1, error = :error, next_attempt_at = now() + make_interval(secs => :delay_s)
WHERE id = :id;

-- ---------------------------------------------------------------------------------------------
-- Inbound messages. The processor applies a whole batch with one statement per step: each of these
-- takes parallel arrays, one element per message (unnest keeps them aligned).

-- name: sender-kinds
-- The kind of each number members replied to (toll-free decides what YES means).
SELECT s.org_id, s.address, s.kind
FROM senders s
JOIN unnest(CAST(:org_ids AS uuid[]), CAST(:addresses AS text[])) AS u(org_id, address)
  ON s.org_id = u.org_id AND s.address = u.address;

-- name: last-sends-to
-- For each reply, the last text its number got from the sender it replied to, so the reply shows on
-- that campaign. Uses send_ledger_by_recipient (migration 0004).
SELECT u.n, l.run_id, l.recipient_id
FROM unnest(CAST(:org_ids AS uuid[]), CAST(:phones AS text[]), CAST(:tos AS text[]), CAST(:services AS text[]))
     WITH ORDINALITY AS u(org_id, phone, to_number, service, n)
CROSS JOIN LATERAL (
    SELECT run_id, recipient_id
    FROM send_ledger
    WHERE org_id = u.org_id AND to_number = u.phone AND (sender = u.to_number OR sender = u.service)
      AND state = 'sent'  -- a claim without a text (suppressed, failed, in flight) did not prompt the reply
    ORDER BY claimed_at DESC
    LIMIT 1
) l;

-- name: insert-inbound
-- Returns the webhook ids whose message was new; a message SID stored before (Twilio retried the
-- webhook, or the batch holds it twice) is skipped.
INSERT INTO inbound_messages (org_id, message_sid, from_number, phone, to_number, messaging_service_sid, body,
                              num_media, kind, keyword, run_id, recipient_id, webhook_request_id, received_at)
SELECT org_id, message_sid, from_number, phone, to_number, service, body, num_media, kind, keyword, run_id,
       recipient_id, webhook_id, received_at
FROM unnest(CAST(:org_ids AS uuid[]), CAST(:message_sids AS text[]), CAST(:from_numbers AS text[]),
            CAST(:phones AS text[]), CAST(:to_numbers AS text[]), CAST(:services AS text[]),
            CAST(:bodies AS text[]), CAST(:num_media AS int[]), CAST(:kinds AS text[]), CAST(:keywords AS text[]),
            CAST(:run_ids AS uuid[]), CAST(:recipient_ids AS uuid[]), CAST(:webhook_ids AS bigint[]),
            CAST(:received_ats AS timestamptz[]))
     WITH ORDINALITY AS u(org_id, message_sid, from_number, phone, to_number, service, body, num_media, kind,
                          keyword, run_id, recipient_id, webhook_id, received_at, n)
ORDER BY n
ON CONFLICT (org_id, message_sid) DO NOTHING
RETURNING webhook_request_id;

-- ---------------------------------------------------------------------------------------------
-- Consent. Each statement takes one element per (number, scope); a batch never holds the same
-- number twice (processing splits it into rounds), so the order of changes to one number is kept.

-- name: suppress
-- The entries that were not suppressed before. An existing entry keeps its source, except a hold waiting for
-- staff's review of a doubtful reply (migration 0042): the member's opt-out replaces it, so deciding the
-- reply was no revocation cannot lift it.
INSERT INTO suppressions AS s (org_id, phone, scope, source, reason)
SELECT * FROM unnest(CAST(:org_ids AS uuid[]), CAST(:phones AS text[]), CAST(:scopes AS text[]),
                     CAST(:sources AS text[]), CAST(:reasons AS text[]))
ON CONFLICT (org_id, phone, scope) DO UPDATE SET source = excluded.source, reason = excluded.reason
WHERE s.source = 'review_hold'
RETURNING org_id, phone, scope;

-- name: lift-suppressions
-- The entries that were suppressed, now lifted.
DELETE FROM suppressions s
USING unnest(CAST(:org_ids AS uuid[]), CAST(:phones AS text[]), CAST(:scopes AS text[])) AS u(org_id, phone, scope)
WHERE s.org_id = u.org_id AND s.phone = u.phone AND s.scope = u.scope
RETURNING s.org_id, s.phone, s.scope;

-- name: superseded-consent
-- The changes (1-based positions) that a later word of the member or of Twilio, by receipt time, already
-- decided for that number and scope (migration 0035): the fallback to PostgreSQL can apply a START before
-- an earlier STOP that waited in Kafka. Staff changes do not take part: they are applied as they are made,
-- never reordered, and a member's STOP received before a staff lift must still suppress.
-- Uses consent_history_by_phone.
SELECT u.n
FROM unnest(CAST(:org_ids AS uuid[]), CAST(:phones AS text[]), CAST(:scopes AS text[]),
            CAST(:occurred_ats AS timestamptz[]))
     WITH ORDINALITY AS u(org_id, phone, scope, occurred_at, n)
WHERE EXISTS (
    SELECT 1 FROM consent_history h
    WHERE h.org_id = u.org_id AND h.phone = u.phone AND h.scope = u.scope
      AND h.source IN ('keyword', 'twilio_21610') AND h.occurred_at > u.occurred_at
);

-- name: insert-consent
-- Skips a change this message already produced (a retried webhook or a re-applied callback).
INSERT INTO consent_history (org_id, phone, scope, action, source, keyword, body, message_sid, actor, changed,
                             superseded, occurred_at)
SELECT * FROM unnest(CAST(:org_ids AS uuid[]), CAST(:phones AS text[]), CAST(:scopes AS text[]),
                     CAST(:actions AS text[]), CAST(:sources AS text[]), CAST(:keywords AS text[]),
                     CAST(:bodies AS text[]), CAST(:message_sids AS text[]), CAST(:actors AS text[]),
                     CAST(:changed AS boolean[]), CAST(:superseded AS boolean[]), CAST(:occurred_ats AS timestamptz[]))
ON CONFLICT (org_id, message_sid, scope, action) WHERE message_sid IS NOT NULL DO NOTHING
RETURNING id, org_id, phone, scope;

-- name: enqueue-events
INSERT INTO event_outbox (topic, key, payload)
SELECT topic, key, payload FROM unnest(CAST(:topics AS text[]), CAST(:keys AS text[]), CAST(:payloads AS text[]))
     WITH ORDINALITY AS u(topic, key, payload, n)
ORDER BY n;

-- name: enqueue-imis-jobs
-- One write-back job per member id seen with the number in the recent window, for organisations with
-- iMIS write-back set up; one element per organisation-wide consent change.
INSERT INTO imis_outbox (org_id, member_id, phone, action, source_text, occurred_at, consent_id)
SELECT m.org_id, m.member_id, m.phone, u.action, u.source_text, u.occurred_at, u.consent_id
FROM unnest(CAST(:org_ids AS uuid[]), CAST(:phones AS text[]), CAST(:actions AS text[]),
            CAST(:source_texts AS text[]), CAST(:occurred_ats AS timestamptz[]), CAST(:consent_ids AS bigint[]))
     AS u(org_id, phone, action, source_text, occurred_at, consent_id)
JOIN member_phone_index m ON m.org_id = u.org_id AND m.phone = u.phone
JOIN imis_accounts a ON a.org_id = u.org_id AND a.writeback_enabled
WHERE m.last_seen_at > now() - make_interval(days => :window_days)
ORDER BY u.consent_id, m.member_id
ON CONFLICT (consent_id, member_id) DO NOTHING;

-- ---------------------------------------------------------------------------------------------
-- Status callbacks

-- name: insert-status-callbacks
-- Returns the callbacks that are new; one seen before (same organisation, SID, status and error code:
-- Twilio repeated it, or the batch holds it twice) is skipped.
INSERT INTO status_callbacks (org_id, message_sid, message_status, error_code, price, webhook_request_id)
SELECT org_id, message_sid, message_status, error_code, price, webhook_id
FROM unnest(CAST(:org_ids AS uuid[]), CAST(:message_sids AS text[]), CAST(:statuses AS text[]),
            CAST(:error_codes AS text[]), CAST(:prices AS numeric[]), CAST(:webhook_ids AS bigint[]))
     WITH ORDINALITY AS u(org_id, message_sid, message_status, error_code, price, webhook_id, n)
ORDER BY n
ON CONFLICT (org_id, message_sid, message_status, error_code) DO NOTHING
RETURNING id, webhook_request_id;

-- name: apply-statuses
-- Raises each ledger row's status, never lowers it. The ranks come from services/optout/status.py as
-- two arrays (one source of truth); a status the table does not know, or none, ranks 0. One element
-- per (organisation, SID): the caller sends only the highest-ranked new callback of each. Row locks
-- make concurrent callbacks for one SID safe: the loser re-checks the WHERE against the winner's row.
-- A callback only ever touches the ledger rows of the organisation whose account signed it.
-- Returns, per element, whether the SID is in that organisation's ledger (matched), whether this raised
-- it (applied), and whether it is another organisation's message (foreign: the callback is refused).
WITH ranks AS (
    SELECT * FROM unnest(CAST(:rank_statuses AS text[]), CAST(:rank_values AS int[])) AS r(status, rank)
),
incoming AS (
    SELECT * FROM unnest(CAST(:org_ids AS uuid[]), CAST(:message_sids AS text[]), CAST(:statuses AS text[]),
                         CAST(:error_codes AS int[]), CAST(:prices AS numeric[]))
         AS i(org_id, message_sid, status, error_code, price)
),
updated AS (
    UPDATE send_ledger l
    SET twilio_status = i.status,
        error_code = coalesce(i.error_code, l.error_code),
        price = coalesce(i.price, l.price),
        updated_at = now()
    FROM incoming i
    JOIN ranks new_rank ON new_rank.status = i.status
    WHERE l.message_sid = i.message_sid AND l.org_id = i.org_id
      AND coalesce((SELECT rank FROM ranks WHERE ranks.status = l.twilio_status), 0) < new_rank.rank
    RETURNING l.org_id, l.message_sid
)
SELECT i.org_id, i.message_sid,
       coalesce(l.org_id = i.org_id, false) AS matched,
       EXISTS (SELECT 1 FROM updated u WHERE u.org_id = i.org_id AND u.message_sid = i.message_sid) AS applied,
       coalesce(l.org_id <> i.org_id, false) AS foreign
FROM incoming i
LEFT JOIN send_ledger l ON l.message_sid = i.message_sid;  -- message_sid is unique: one owner at most

-- name: mark-callbacks
UPDATE status_callbacks c
SET matched = u.matched, applied = u.applied
FROM unnest(CAST(:ids AS bigint[]), CAST(:matched AS boolean[]), CAST(:applied AS boolean[]))
     AS u(id, matched, applied)
WHERE c.id = u.id;

-- name: unmatched-callbacks-now-known
-- Callbacks that arrived before the dispatcher recorded their SID, whose SID is now in the ledger.
-- Three days bounds the scan (status_callbacks_unmatched is partial on NOT matched); SIDs never sent
-- by us stay unmatched, for a person to reconcile, and so do callbacks another organisation's account
-- signed for our SID (the join is on both).
SELECT c.id, c.org_id, c.message_sid, c.message_status, c.error_code, c.price
FROM status_callbacks c
JOIN send_ledger l ON l.message_sid = c.message_sid AND l.org_id = c.org_id
WHERE NOT c.matched AND c.received_at > now() - interval '3 days'
ORDER BY c.id
LIMIT :limit
FOR UPDATE OF c SKIP LOCKED;

-- ---------------------------------------------------------------------------------------------
-- Event relay

-- name: try-relay-lock
-- One relay at a time across processes, so events for one key reach Kafka in the order written.
SELECT pg_try_advisory_xact_lock(:lock_id);

-- name: unpublished-events
SELECT id, topic, key, payload
FROM event_outbox
WHERE published_at IS NULL AND error IS NULL
ORDER BY id
LIMIT :limit;

-- name: mark-events-published
UPDATE event_outbox SET published_at = now() WHERE id = ANY(CAST(:ids AS bigint[]));

-- name: mark-event-unpublishable
-- Kept (not deleted) and skipped from now on, so one bad row neither blocks the relay nor vanishes.
UPDATE event_outbox SET error = :error WHERE id = :id;

-- ---------------------------------------------------------------------------------------------
-- iMIS write-back

-- name: due-imis-orgs
-- Organisations with a write-back job due, leaving out those whose lane is already running here.
SELECT DISTINCT j.org_id
FROM imis_outbox j
WHERE j.state = 'pending' AND j.next_attempt_at <= now() AND NOT (j.org_id = ANY(CAST(:busy AS uuid[])));

-- name: claim-imis-jobs
-- One organisation's due jobs, oldest first, skipping a member's job while an older one for that member
-- is pending (so STOP then START reach iMIS in that order). Claiming counts the attempt and pushes
-- next_attempt_at out by the lease: a worker that dies mid-call leaves the job to be retried, not lost.
WITH due AS (
    SELECT j.id
    FROM imis_outbox j
    WHERE j.org_id = :org_id AND j.state = 'pending' AND j.next_attempt_at <= now()
      AND NOT EXISTS (SELECT 1 FROM imis_outbox e
                      WHERE e.org_id = j.org_id AND e.member_id = j.member_id
                        AND e.state = 'pending' AND e.id < j.id)
    ORDER BY j.next_attempt_at, j.id
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
)
UPDATE imis_outbox j
SET attempts = j.attempts + 1, next_attempt_at = now() + make_interval(secs => :lease_s), updated_at = now()
FROM due, organisations o
WHERE j.id = due.id AND o.id = j.org_id
RETURNING j.id, j.org_id, j.member_id, j.phone, j.action, j.source_text, j.occurred_at, j.attempts, o.time_zone;

-- name: imis-account
SELECT base_url, username, password, sms_panel, writeback_enabled, writeback_target, sms_communication_type_id
FROM imis_accounts WHERE org_id = :org_id;

-- name: complete-imis-job
UPDATE imis_outbox
SET state = 'done', last_error = NULL, completed_at = now(), updated_at = now()
WHERE id = :id;

-- name: retry-imis-job
UPDATE imis_outbox
SET last_error = :error, next_attempt_at = now() + make_interval(secs => :delay_s), updated_at = now()
WHERE id = :id;

-- name: fail-imis-job
UPDATE imis_outbox
SET state = 'failed', last_error = :error, completed_at = now(), updated_at = now()
WHERE id = :id;

-- name: mark-bad-numbers
-- 30003 / 30005 / 30006 in a callback: the number is unreachable, unknown or a landline. The audience
-- service leaves it out of later runs. Only a message of the organisation whose account signed the
-- callback counts.
INSERT INTO bad_numbers (org_id, phone, error_code)
SELECT DISTINCT ON (l.org_id, l.to_number) l.org_id, l.to_number, u.code
FROM unnest(CAST(:org_ids AS uuid[]), CAST(:message_sids AS text[]), CAST(:codes AS int[])) AS u(org_id, sid, code)
JOIN send_ledger l ON l.message_sid = u.sid AND l.org_id = u.org_id
ON CONFLICT (org_id, phone) DO UPDATE SET error_code = excluded.error_code, last_seen = now();

-- name: stop-unverified-senders
-- 30032 in a callback: Twilio blocked the text because its toll-free sender is not verified (any more),
-- and such texts are still charged. The sender is marked unverified and the runs (and campaigns) sending
-- from it pause, so nothing more goes out until staff act; the dispatcher sees a pause within a second.
-- Only messages of the organisation whose account signed the callback count.
WITH hit AS (
    SELECT DISTINCT l.org_id, l.sender, l.run_id
    FROM unnest(CAST(:org_ids AS uuid[]), CAST(:message_sids AS text[])) AS u(org_id, sid)
    JOIN send_ledger l ON l.message_sid = u.sid AND l.org_id = u.org_id
), marked AS (
    UPDATE senders s SET verification = 'pending'
    FROM hit WHERE s.org_id = hit.org_id AND s.address = hit.sender AND s.verification = 'verified'
    RETURNING s.id
), paused AS (
    -- The reason is rendered by the caller (libs/common/run_reasons.py); the sender is the hit's own.
    UPDATE campaign_runs r
    SET state = 'paused', state_reason = :reason, state_reason_code = :reason_code,
        state_reason_detail = CAST(:reason_detail AS jsonb) || jsonb_build_object('sender', hit.sender)
    FROM hit WHERE r.id = hit.run_id AND state_may_change('run', r.state, 'paused')
    RETURNING r.campaign_id
)
UPDATE campaigns c SET state = 'paused', state_changed_at = now(), updated_at = now()
FROM paused WHERE c.id = paused.campaign_id AND state_may_change('campaign', c.state, 'paused');

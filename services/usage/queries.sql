-- The usage service's statements: usage rollups (handlers.py), the alert watcher (watcher.py) and the
-- alert mailer (mailer.py). Raising an alert itself is libs/common/alerts.sql.

-- ---------------------------------------------------------------------------------------------
-- Usage rollups

-- name: run-for-usage
-- The run a result belongs to, with the day an event at :occurred_at falls on in the organisation's
-- time zone (the dashboard's "today" is the organisation's), and whether its account is in test mode.
SELECT r.org_id, r.campaign_id,
       (CAST(:occurred_at AS timestamptz) AT TIME ZONE o.time_zone)::date AS day,
       coalesce(a.test_mode, false) AS test
FROM campaign_runs r
JOIN organisations o ON o.id = r.org_id
LEFT JOIN sms_accounts a ON a.org_id = r.org_id
WHERE r.id = :run_id;

-- name: ledger-matches
-- A send-result is only a pointer: it counts only if the dispatcher's ledger holds that outcome, with
-- that message SID, for that recipient of a run of that organisation. The dispatcher writes the outcome
-- before it publishes the result, so a genuine result always finds its row.
SELECT EXISTS (
    SELECT 1 FROM send_ledger
    WHERE run_id = :run_id AND recipient_id = :recipient_id AND org_id = :org_id AND state = :outcome
      AND message_sid IS NOT DISTINCT FROM :message_sid
);

-- name: lock-sid
-- Serialises a send-result and a status of the same message across transactions: without it, a status
-- stored as pending just as the send-result commits could be missed by both.
SELECT pg_advisory_xact_lock(hashtextextended(:message_sid, 7411));

-- name: insert-message
-- The first send-result of a recipient wins; a redelivered one (even with another event id: the
-- dispatcher republishes results of finished rows) conflicts and returns nothing.
INSERT INTO usage_messages (run_id, recipient_id, org_id, message_sid, day, test, region, unit_price, outcome,
                            segments, error_code)
VALUES (:run_id, :recipient_id, :org_id, :message_sid, :day, :test, :region, :unit_price, :outcome,
        :segments, :error_code)
ON CONFLICT (run_id, recipient_id) DO NOTHING
RETURNING run_id;

-- name: message-by-sid
-- Locks the message only (OF m): the run row is the dispatcher's to update, and must not wait on us.
-- A one-off text (one_off_id, migration 0056) has no run.
SELECT m.run_id, m.recipient_id, m.one_off_id, m.org_id, r.campaign_id, m.message_sid, m.day, m.test, m.region,
       m.unit_price, m.outcome, m.segments, m.status, m.error_code, m.reported_price, m.pumping_fee
FROM usage_messages m
LEFT JOIN campaign_runs r ON r.id = m.run_id
WHERE m.message_sid = :message_sid
FOR UPDATE OF m;

-- name: update-message-status
UPDATE usage_messages
SET status = :status, error_code = :error_code, reported_price = :reported_price, pumping_fee = :pumping_fee,
    updated_at = now()
WHERE (run_id = :run_id AND recipient_id = :recipient_id) OR one_off_id = :one_off_id;

-- name: hold-status
-- A status that arrived before its message's send-result; a repeat of the same status is kept once.
INSERT INTO usage_pending_statuses (message_sid, status, error_code, reported_price, org_id)
VALUES (:message_sid, :status, :error_code, :reported_price, :org_id)
ON CONFLICT (message_sid, status) DO NOTHING;

-- name: take-held-statuses
DELETE FROM usage_pending_statuses WHERE message_sid = :message_sid
RETURNING status, error_code, reported_price, received_at, org_id;

-- name: add-to-run
-- Adds one message's change to its run; creates the row on the run's first event. Returns the new
-- totals, which the opted-out share alert reads.
INSERT INTO usage_runs AS u (run_id, org_id, campaign_id, test, messages, segments, delivered, undelivered, failed,
                             dropped, opted_out_failures, opt_outs, unpriced_segments, segment_cost, failed_fees,
                             pumping_fees, reported_cost, settled_messages, settled_estimate, settled_price)
VALUES (:run_id, :org_id, :campaign_id, :test, :messages, :segments, :delivered, :undelivered, :failed, :dropped,
        :opted_out_failures, :opt_outs, :unpriced_segments, :segment_cost, :failed_fees, :pumping_fees,
        :reported_cost, :settled_messages, :settled_estimate, :settled_price)
ON CONFLICT (run_id) DO UPDATE SET
    messages = u.messages + excluded.messages,
    segments = u.segments + excluded.segments,
    delivered = u.delivered + excluded.delivered,
    undelivered = u.undelivered + excluded.undelivered,
    failed = u.failed + excluded.failed,
    dropped = u.dropped + excluded.dropped,
    opted_out_failures = u.opted_out_failures + excluded.opted_out_failures,
    opt_outs = u.opt_outs + excluded.opt_outs,
    unpriced_segments = u.unpriced_segments + excluded.unpriced_segments,
    segment_cost = u.segment_cost + excluded.segment_cost,
    failed_fees = u.failed_fees + excluded.failed_fees,
    pumping_fees = u.pumping_fees + excluded.pumping_fees,
    reported_cost = u.reported_cost + excluded.reported_cost,
    settled_messages = u.settled_messages + excluded.settled_messages,
    settled_estimate = u.settled_estimate + excluded.settled_estimate,
    settled_price = u.settled_price + excluded.settled_price,
    updated_at = now()
RETURNING failed, opted_out_failures, failed_fees;

-- name: add-to-day
INSERT INTO usage_daily AS u (org_id, day, test, messages, segments, delivered, undelivered, failed, dropped,
                              opted_out_failures, opt_outs, unpriced_segments, segment_cost, failed_fees,
                              pumping_fees, reported_cost, settled_messages, settled_estimate, settled_price)
VALUES (:org_id, :day, :test, :messages, :segments, :delivered, :undelivered, :failed, :dropped,
        :opted_out_failures, :opt_outs, :unpriced_segments, :segment_cost, :failed_fees, :pumping_fees,
        :reported_cost, :settled_messages, :settled_estimate, :settled_price)
ON CONFLICT (org_id, day, test) DO UPDATE SET
    messages = u.messages + excluded.messages,
    segments = u.segments + excluded.segments,
    delivered = u.delivered + excluded.delivered,
    undelivered = u.undelivered + excluded.undelivered,
    failed = u.failed + excluded.failed,
    dropped = u.dropped + excluded.dropped,
    opted_out_failures = u.opted_out_failures + excluded.opted_out_failures,
    opt_outs = u.opt_outs + excluded.opt_outs,
    unpriced_segments = u.unpriced_segments + excluded.unpriced_segments,
    segment_cost = u.segment_cost + excluded.segment_cost,
    failed_fees = u.failed_fees + excluded.failed_fees,
    pumping_fees = u.pumping_fees + excluded.pumping_fees,
    reported_cost = u.reported_cost + excluded.reported_cost,
    settled_messages = u.settled_messages + excluded.settled_messages,
    settled_estimate = u.settled_estimate + excluded.settled_estimate,
    settled_price = u.settled_price + excluded.settled_price,
    updated_at = now();

-- name: add-run-errors
INSERT INTO usage_run_errors AS e (run_id, error_code, messages)
SELECT :run_id, code, n FROM unnest(CAST(:codes AS integer[]), CAST(:counts AS integer[])) AS u(code, n)
ON CONFLICT (run_id, error_code) DO UPDATE SET messages = e.messages + excluded.messages;

-- name: add-day-errors
INSERT INTO usage_daily_errors AS e (org_id, day, test, error_code, messages)
SELECT :org_id, :day, :test, code, n FROM unnest(CAST(:codes AS integer[]), CAST(:counts AS integer[])) AS u(code, n)
ON CONFLICT (org_id, day, test, error_code) DO UPDATE SET messages = e.messages + excluded.messages;

-- name: month-usage
-- Segments and cost of the calendar month holding :day (organisation days), test usage left out, against
-- the subscription's allowance. Reads at most 31 rows through usage_daily's primary key.
SELECT s.plan, s.monthly_segment_allowance AS allowance,
       coalesce(sum(d.segments), 0)::integer AS used, coalesce(sum(d.cost), 0) AS cost,
       to_char(CAST(:day AS date), 'FMMonth YYYY') AS month, to_char(CAST(:day AS date), 'YYYY-MM') AS month_key
FROM subscriptions s
LEFT JOIN usage_daily d
       ON d.org_id = s.org_id AND NOT d.test
      AND d.day >= date_trunc('month', CAST(:day AS date))::date
      AND d.day < (date_trunc('month', CAST(:day AS date)) + interval '1 month')::date
WHERE s.org_id = :org_id
GROUP BY s.plan, s.monthly_segment_allowance;

-- name: reply-link
-- The run and recipient an inbound message answers (services/optout links each reply to the last text
-- its number got from that sender). Only a STOP this organisation's webhook received from that number: a
-- consent event is a pointer, and one naming a HELP reply or another number's STOP counts nothing.
SELECT run_id, recipient_id FROM inbound_messages
WHERE org_id = :org_id AND message_sid = :message_sid AND kind = 'opt_out' AND phone = :phone
  AND run_id IS NOT NULL AND recipient_id IS NOT NULL;

-- name: count-optout
-- A member who opts out after a run's text counts once for that run, whatever the number of STOPs and
-- of consent events (one per scope) they cause.
INSERT INTO usage_optouts (run_id, recipient_id, org_id, day)
VALUES (:run_id, :recipient_id, :org_id, :day)
ON CONFLICT (run_id, recipient_id) DO NOTHING
RETURNING day;

-- ---------------------------------------------------------------------------------------------
-- Alert watcher

-- name: runs-to-alert
-- Runs in an alertable state, or completed without sending anything (partial index campaign_runs_alertable,
-- 0013), that the watcher has not looked at in this state and reason, and paused runs whose reminder is
-- due. Runs older than the horizon are left alone: a condition from weeks ago is not news. The segment
-- limit is the run's own: the one it was checked against, whatever the campaign says now.
-- The figures are run_figures' (migration 0027), the ones the campaign page and the runs API show.
SELECT r.id AS run_id, r.org_id, r.campaign_id, r.state, r.state_reason, r.state_reason_code,
       r.state_reason_detail::text AS state_reason_detail, r.occurrence_at, f.targeted, f.sent,
       f.delivered, f.failed, f.segments, f.cost, f.actual_cost, f.cost_provisional, r.segment_limit,
       a.max_segments AS account_max_segments
FROM campaign_runs r
JOIN run_figures f ON f.run_id = r.id
LEFT JOIN sms_accounts a ON a.org_id = r.org_id
LEFT JOIN run_alert_marks m ON m.run_id = r.id
WHERE (r.state IN ('paused', 'refused', 'over_limit', 'missed', 'failed') OR (r.state = 'completed' AND r.sent = 0))
  AND r.created_at > now() - make_interval(days => :horizon_days)
  AND (m.run_id IS NULL
       OR m.state IS DISTINCT FROM r.state
       OR m.state_reason IS DISTINCT FROM r.state_reason
       OR (r.state = 'paused' AND m.kind IS NOT NULL
           AND m.marked_at <= now() - make_interval(secs => :reminder_s)))
ORDER BY r.created_at
LIMIT :limit;

-- name: run-top-errors
-- What failed most in a run, from the ledger (ahead of the usage rollups, which follow the events).
SELECT error_code AS code, count(*)::integer AS count
FROM send_ledger
WHERE run_id = :run_id AND error_code IS NOT NULL AND (state = 'failed' OR twilio_status IN ('failed', 'undelivered'))
GROUP BY error_code
ORDER BY count(*) DESC, error_code
LIMIT :limit;

-- name: mark-run
INSERT INTO run_alert_marks (run_id, state, state_reason, kind)
VALUES (:run_id, :state, :state_reason, :kind)
ON CONFLICT (run_id) DO UPDATE
SET state = excluded.state, state_reason = excluded.state_reason, kind = excluded.kind, marked_at = now();

-- name: stuck-writebacks
-- Organisations whose iMIS write-back has jobs pending for longer than :stuck_s (imis_outbox_due covers
-- the pending rows only), with the latest error.
SELECT org_id, count(*)::integer AS pending, min(created_at) AS oldest_at,
       (array_agg(last_error ORDER BY updated_at DESC) FILTER (WHERE last_error IS NOT NULL))[1] AS last_error
FROM imis_outbox
WHERE state = 'pending' AND created_at <= now() - make_interval(secs => :stuck_s)
GROUP BY org_id;

-- name: failing-webhook-signatures
-- Organisations with at least :threshold webhooks refused for a bad signature in the last :window_s
-- seconds (counted per minute by the opt-out service, migration 0018), with the URL last checked.
SELECT org_id, sum(refusals)::integer AS refusals,
       (array_agg(last_url ORDER BY minute DESC))[1] AS last_url
FROM webhook_signature_refusals
WHERE minute > now() - make_interval(secs => :window_s)
GROUP BY org_id
HAVING sum(refusals) >= :threshold;

-- ---------------------------------------------------------------------------------------------
-- Alert mailer

-- name: claim-alerts
-- Due alerts, oldest first. Claiming counts the attempt and pushes next_attempt_at out by the lease: a
-- mailer that dies mid-send leaves the alert to be sent again, not lost.
WITH due AS (
    SELECT id FROM alerts
    WHERE state = 'pending' AND next_attempt_at <= now()
    ORDER BY next_attempt_at, id
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
)
UPDATE alerts a
SET attempts = a.attempts + 1, next_attempt_at = now() + make_interval(secs => :lease_s)
FROM due
WHERE a.id = due.id
RETURNING a.id, a.org_id, a.kind, a.recipients, a.subject, a.body_text, a.body_html, a.message_id, a.attempts;

-- name: alert-sent
UPDATE alerts SET state = 'sent', sent_at = now(), last_error = :note WHERE id = :id;

-- name: alert-retry
UPDATE alerts SET last_error = :error, next_attempt_at = now() + make_interval(secs => :delay_s) WHERE id = :id;

-- name: alert-failed
UPDATE alerts SET state = 'failed', last_error = :error WHERE id = :id;

-- ---------------------------------------------------------------------------------------------
-- Settlement (settlement.py): Twilio's price for messages it has not reported one for yet.

-- name: unsettled-messages
-- Accepted live messages with no price yet, sent at least :settle_after_s ago (Twilio fills the price in
-- after sending) and asked about at most every :recheck_s, for up to :give_up_s. The partial index of
-- migration 0032 holds only such messages.
SELECT m.org_id, m.message_sid
FROM usage_messages m
WHERE m.reported_price IS NULL AND m.message_sid IS NOT NULL AND m.outcome = 'sent' AND NOT m.test
  AND m.created_at < now() - make_interval(secs => :settle_after_s)
  AND m.created_at > now() - make_interval(secs => :give_up_s)
  AND (m.price_checked_at IS NULL OR m.price_checked_at < now() - make_interval(secs => :recheck_s))
ORDER BY m.created_at
LIMIT :batch;

-- name: mark-price-checked
UPDATE usage_messages SET price_checked_at = now() WHERE message_sid = ANY(:message_sids::text[]);

-- name: twilio-login
-- The account's credentials (sealed; libs/common/secret_store.py opens them). Test-mode accounts use
-- Twilio's test credentials, which cannot fetch messages: they have no prices to settle.
SELECT account_sid, auth_token, api_key_sid, api_key_secret FROM sms_accounts WHERE org_id = :org_id AND NOT test_mode;

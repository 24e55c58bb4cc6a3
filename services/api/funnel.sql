-- What a run's texts achieved (services/api/funnel.py): the recipient funnel, the per-recipient export and
-- Home's 30-day rates. Every statement is scoped to one organisation. A run's rows are read through the
-- indexes keyed by run: run_recipients (run_id, position), send_ledger (run_id, recipient_id),
-- link_clicks_run, inbound_messages_by_run and usage_optouts (run_id, recipient_id); each table is
-- aggregated once, so a funnel costs one pass over the run's rows whatever its size.

-- name: run-funnel
-- One row of counts, or none for a run that is not this campaign's in this organisation.
-- Exclusions come from the snapshot (the audience service's reasons) and from the ledger (recipients the
-- dispatcher ended unsent: suppressed since the snapshot, quiet hours, a frequency cap, a sender's cap).
-- sent: Twilio accepted the text (it has a MessageSid); failed: the dispatcher or Twilio's later status
-- said it did not arrive. Clicks are split between people and link-preview bots; opted_out_after is the
-- usage rollup's attribution of STOP replies to this run (the runs table's opt-outs).
-- Measured (python -m bench.funnel, busy 2-core machine): 100,000 recipients, p50 ~200 ms, nearly all of it
-- the two aggregates over the snapshot's and the ledger's 100,000 rows each (parallel scans of the run's rows).
WITH run AS (
    SELECT r.id, r.track_links FROM campaign_runs r
    WHERE r.id = :run_id AND r.campaign_id = :campaign_id AND r.org_id = :org_id
), snapshot AS (
    SELECT count(*) AS targeted,
           count(*) FILTER (WHERE p.status = 'queued') AS queued,
           count(*) FILTER (WHERE p.reason = 'opted_out') AS opted_out,
           count(*) FILTER (WHERE p.reason IN ('duplicate_number', 'duplicate_member')) AS duplicate,
           count(*) FILTER (WHERE p.reason = 'invalid_number') AS invalid_number,
           count(*) FILTER (WHERE p.reason = 'missing_mobile') AS missing_mobile,
           count(*) FILTER (WHERE p.reason = 'bad_number' AND p.detail = 'twilio_21614') AS landline,
           count(*) FILTER (WHERE p.reason = 'bad_number' AND p.detail IS DISTINCT FROM 'twilio_21614') AS unreachable,
           count(*) FILTER (WHERE p.reason = 'render_failed') AS render_failed,
           count(*) FILTER (WHERE p.reason = 'over_segment_limit') AS over_limit
    FROM run_recipients p WHERE p.run_id = (SELECT id FROM run)
), ledger AS (
    SELECT count(*) FILTER (WHERE l.state = 'suppressed') AS suppressed,
           count(*) FILTER (WHERE l.state = 'outside_window') AS quiet_hours,
           count(*) FILTER (WHERE l.state = 'frequency_capped') AS frequency_cap,
           count(*) FILTER (WHERE l.message_sid IS NULL AND l.reason LIKE 'cap_reached%') AS sender_cap,
           count(*) FILTER (WHERE l.state IN ('expired', 'cancelled')) AS not_sent,
           count(*) FILTER (WHERE l.message_sid IS NOT NULL) AS sent,
           count(*) FILTER (WHERE l.twilio_status = 'delivered') AS delivered,
           count(*) FILTER (WHERE (l.state = 'failed' OR l.twilio_status IN ('failed', 'undelivered'))
                            AND NOT (l.message_sid IS NULL AND coalesce(l.reason, '') LIKE 'cap_reached%')) AS failed,
           count(*) FILTER (WHERE l.state NOT IN ('claimed', 'held')) AS ended
    FROM send_ledger l WHERE l.run_id = (SELECT id FROM run)
), clicks AS (
    SELECT count(DISTINCT c.recipient_id) FILTER (WHERE NOT c.is_bot) AS people,
           count(*) FILTER (WHERE NOT c.is_bot) AS people_clicks,
           count(DISTINCT c.recipient_id) FILTER (WHERE c.is_bot) AS bots,
           count(*) FILTER (WHERE c.is_bot) AS bot_clicks
    FROM link_clicks c WHERE c.run_id = (SELECT id FROM run)
), replies AS (
    -- STOP and START are consent, not replies: they are counted as opt-outs (and opt-ins) elsewhere.
    SELECT count(DISTINCT m.recipient_id) AS replied
    FROM inbound_messages m
    WHERE m.run_id = (SELECT id FROM run) AND m.kind IN ('other', 'help') AND m.recipient_id IS NOT NULL
), optouts AS (
    SELECT count(*) AS opted_out_after FROM usage_optouts o WHERE o.run_id = (SELECT id FROM run)
)
SELECT run.id AS run_id, run.track_links, snapshot.*, ledger.*, clicks.*, replies.*, optouts.*
FROM run, snapshot, ledger, clicks, replies, optouts;

-- name: run-funnel-failures
-- The run's failed recipients by Twilio's error code (NULL: failed without one), most first.
SELECT l.error_code, count(*) AS recipients
FROM send_ledger l
JOIN campaign_runs r ON r.id = l.run_id AND r.org_id = :org_id
WHERE l.run_id = :run_id AND (l.state = 'failed' OR l.twilio_status IN ('failed', 'undelivered'))
  AND NOT (l.message_sid IS NULL AND coalesce(l.reason, '') LIKE 'cap_reached%')
GROUP BY l.error_code
ORDER BY recipients DESC, l.error_code NULLS LAST;

-- name: run-export
-- One row per recipient of the run in snapshot order, for the CSV export; read through a cursor in pages.
-- Clicks and replies are aggregated per recipient once for the run, then joined (hash joins, not a lookup
-- per row). delivered_at: when Twilio's "delivered" callback arrived.
WITH run AS (
    SELECT r.id FROM campaign_runs r WHERE r.id = :run_id AND r.org_id = :org_id
), clicks AS (
    SELECT c.recipient_id, count(*) FILTER (WHERE NOT c.is_bot) AS clicks,
           count(*) FILTER (WHERE c.is_bot) AS bot_clicks
    FROM link_clicks c WHERE c.run_id = (SELECT id FROM run)
    GROUP BY c.recipient_id
), replies AS (
    SELECT DISTINCT ON (m.recipient_id) m.recipient_id, m.body AS reply, m.received_at AS replied_at
    FROM inbound_messages m
    WHERE m.run_id = (SELECT id FROM run) AND m.kind IN ('other', 'help') AND m.recipient_id IS NOT NULL
    ORDER BY m.recipient_id, m.received_at DESC
)
SELECT p.position, p.member_id, p.e164, p.status, p.reason, p.erased_at IS NOT NULL AS erased,
       l.state, l.twilio_status, l.error_code, l.sent_at,
       (SELECT min(s.received_at) FROM status_callbacks s
        WHERE s.message_sid = l.message_sid AND s.message_status = 'delivered') AS delivered_at,
       coalesce(c.clicks, 0) AS clicks, coalesce(c.bot_clicks, 0) AS bot_clicks, y.reply, y.replied_at
FROM run_recipients p
LEFT JOIN send_ledger l ON l.run_id = p.run_id AND l.recipient_id = p.recipient_id
LEFT JOIN clicks c ON c.recipient_id = p.recipient_id
LEFT JOIN replies y ON y.recipient_id = p.recipient_id
WHERE p.run_id = (SELECT id FROM run)
ORDER BY p.position;

-- name: run-exists
SELECT true FROM campaign_runs WHERE id = :run_id AND campaign_id = :campaign_id AND org_id = :org_id;

-- name: recent-rates
-- Home's last :days days of the organisation's campaign runs (by when they started): delivered texts and
-- opt-outs from the usage rollup per run (usage_runs, as Home reads no ledger history), and the people who
-- clicked a tracked link (link_clicks holds only clicks, bots apart). The click-through rate is over the
-- delivered texts of runs that tracked links: an untracked text's clicks cannot be seen.
WITH runs AS (
    SELECT r.id, r.track_links FROM campaign_runs r
    WHERE r.org_id = :org_id AND r.started_at >= now() - make_interval(days => :days)
), delivered AS (
    SELECT coalesce(sum(u.delivered), 0)::bigint AS delivered,
           coalesce(sum(u.delivered) FILTER (WHERE runs.track_links), 0)::bigint AS tracked_delivered,
           coalesce(sum(u.opt_outs), 0)::bigint AS opted_out
    FROM runs JOIN usage_runs u ON u.run_id = runs.id
), clicked AS (
    SELECT count(*) AS clicked FROM (
        SELECT DISTINCT c.run_id, c.recipient_id
        FROM runs JOIN link_clicks c ON c.run_id = runs.id
        WHERE NOT c.is_bot
    ) people
)
SELECT delivered.*, clicked.* FROM delivered, clicked;

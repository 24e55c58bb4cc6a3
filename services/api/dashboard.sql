-- What the dashboard reads: Home, the campaign list and page, the composer's pickers
-- (services/api/dashboard_db.py). Every statement is scoped by :org_id. Home reads the usage rollups
-- (migration 0007), never the send ledger's history: its cost must not grow with the ledger.

-- ---------------------------------------------------------------------------------------------
-- Home

-- name: subscription
SELECT plan, monthly_segment_allowance FROM subscriptions WHERE org_id = :org_id;

-- name: account-summary
-- The SMS account without its secrets: the auth token and API key secret are never read here.
SELECT account_sid, friendly_name, account_type, alpha_sender_id, max_segments, test_mode,
       api_key_sid IS NOT NULL AS has_api_key
FROM sms_accounts WHERE org_id = :org_id;

-- name: usage-days
-- Live (not test-mode) usage per day of the organisation's calendar, :first to :last inclusive: a
-- range scan of usage_daily's primary key (org_id, day, test), at most ~31 rows.
SELECT day, messages, segments, delivered, failed, undelivered, cost, failed_fees, pumping_fees,
       cost - settled_estimate + settled_price AS actual_cost, settled_messages
FROM usage_daily
WHERE org_id = :org_id AND NOT test AND day BETWEEN :first AND :last
ORDER BY day;

-- name: campaign-state-counts
SELECT state, count(*) AS campaigns FROM campaigns WHERE org_id = :org_id GROUP BY state;

-- name: sending-progress
-- Each sending or paused campaign with its newest unfinished run. "recent" counts the messages the run
-- sent in the last :window_s seconds, by when each was sent (send_ledger_by_run_sent): counting rows
-- *updated* in the window also counted earlier sends whose status callback arrived in it, which showed
-- 218 a minute against a limit of 180. The figures are run_figures' (migration 0027), as on the campaign
-- page; segments_per_second is the campaign's sender's pace (else the organisation's default sender's).
-- outside_window and frequency_capped are the ledger's (0044, counted with the run's other figures).
SELECT c.id AS campaign_id, c.name, c.state, r.id AS run_id, r.state AS run_state, r.state_reason,
       f.targeted, f.sent, f.failed, f.dropped, f.delivered, f.segments, r.started_at, r.occurrence_at,
       r.outside_window, r.frequency_capped,
       (SELECT count(*) FROM send_ledger l
        WHERE l.run_id = r.id AND l.sent_at > now() - make_interval(secs => :window_s)) AS recent,
       (SELECT s.segments_per_second::float8 FROM senders s
        WHERE s.org_id = c.org_id AND (s.id = c.sender_id OR (c.sender_id IS NULL AND s.is_default))
        LIMIT 1) AS segments_per_second,
       now() AS measured_at
FROM campaigns c
JOIN LATERAL (
    SELECT * FROM campaign_runs r
    WHERE r.campaign_id = c.id AND r.state IN ('pending', 'resolving', 'sending', 'paused')
    ORDER BY r.occurrence_at DESC
    LIMIT 1
) r ON true
JOIN run_figures f ON f.run_id = r.id
WHERE c.org_id = :org_id AND c.state IN ('sending', 'paused')
ORDER BY c.state_changed_at DESC, c.id
LIMIT 20;

-- name: upcoming-campaigns
SELECT id, name, next_occurrence_at, schedule::text AS schedule
FROM campaigns
WHERE org_id = :org_id AND state = 'scheduled' AND next_occurrence_at IS NOT NULL
ORDER BY next_occurrence_at, id
LIMIT :limit;

-- ---------------------------------------------------------------------------------------------
-- The campaign list

-- name: search-campaigns
-- Newest change first. :q matches the name or the body (ILIKE; the caller escapes % and _). total
-- counts every match, not only this page.
SELECT id, name, state, schedule::text AS schedule, audience::text AS audience, next_occurrence_at,
       created_by, updated_at, count(*) OVER () AS total
FROM campaigns
WHERE org_id = :org_id
  AND (CAST(:states AS text[]) IS NULL OR state = ANY(CAST(:states AS text[])))
  AND (CAST(:q AS text) IS NULL OR name ILIKE '%' || CAST(:q AS text) || '%'
       OR body ILIKE '%' || CAST(:q AS text) || '%')
ORDER BY updated_at DESC, id
LIMIT :limit OFFSET :offset;

-- ---------------------------------------------------------------------------------------------
-- The campaign page

-- name: campaign-runs
-- The campaign's runs, newest first. The figures are run_figures' (migration 0027): the same the runs
-- API and the alert e-mails give.
SELECT r.id, r.occurrence_at, r.origin, r.state, r.state_reason, r.state_reason_code,
       r.state_reason_detail::text AS state_reason_detail, r.started_at, r.finished_at, f.targeted, f.excluded,
       f.sent, f.delivered, f.undelivered, f.failed, f.dropped, f.segments, f.cost, f.planned_segments,
       f.estimated_cost, f.opt_outs, f.actual_cost, f.cost_provisional, r.exclusions::text AS exclusions,
       r.outside_window, r.frequency_capped
FROM campaign_runs r
JOIN run_figures f ON f.run_id = r.id
WHERE r.campaign_id = :campaign_id AND r.org_id = :org_id
ORDER BY r.occurrence_at DESC
LIMIT :limit;

-- name: campaign-run-errors
SELECT e.run_id, e.error_code, e.messages
FROM usage_run_errors e
JOIN campaign_runs r ON r.id = e.run_id
WHERE r.campaign_id = :campaign_id AND r.org_id = :org_id
ORDER BY e.messages DESC, e.error_code;

-- name: run-recipients
-- "Did this member get it, and why not": a page of the run's snapshot, in position order, with the
-- ledger's outcome. :q matches the member id, :names a merge value (a first name; only for a search
-- that is not a number), :number (a number as typed, normalised, or some of its digits) inside the
-- E.164 number. The page is cut first (run_recipients' primary key (run_id, position) gives the order),
-- then joined to the ledger, so a page costs its own rows. At 100,000 recipients (measured, idle): a page
-- 2 ms, page 900 20 ms, the count 10 ms; a search walks the run's rows: a number 15-50 ms, a name
-- ~120 ms (the merge values' text). No index serves '%...%' without pg_trgm, whose upkeep would land
-- on the audience service's 100,000-row snapshot insert.
SELECT p.position, p.member_id, p.e164, p.status, p.reason, p.detail, p.segments,
       p.merge_values ->> 'first_name' AS first_name,
       l.state AS outcome, l.twilio_status, l.error_code, l.sent_at
FROM (
    SELECT p.* FROM run_recipients p
    JOIN campaign_runs r ON r.id = p.run_id AND r.org_id = :org_id
    WHERE p.run_id = :run_id
      AND ((CAST(:q AS text) IS NULL AND CAST(:number AS text) IS NULL AND CAST(:names AS text) IS NULL)
           OR p.member_id ILIKE '%' || CAST(:q AS text) || '%'
           OR CAST(p.merge_values AS text) ILIKE '%' || CAST(:names AS text) || '%'
           OR p.e164 LIKE '%' || CAST(:number AS text) || '%')
    ORDER BY p.position
    LIMIT :limit OFFSET :offset
) p
LEFT JOIN send_ledger l ON l.run_id = p.run_id AND l.recipient_id = p.recipient_id
ORDER BY p.position;

-- name: run-recipients-count
-- How many of the run's recipients match, for "Showing 101-200 of 436": the same filter as
-- run-recipients, without the ledger.
SELECT count(*)
FROM run_recipients p
JOIN campaign_runs r ON r.id = p.run_id AND r.org_id = :org_id
WHERE p.run_id = :run_id
  AND ((CAST(:q AS text) IS NULL AND CAST(:number AS text) IS NULL AND CAST(:names AS text) IS NULL)
       OR p.member_id ILIKE '%' || CAST(:q AS text) || '%'
       OR CAST(p.merge_values AS text) ILIKE '%' || CAST(:names AS text) || '%'
       OR p.e164 LIKE '%' || CAST(:number AS text) || '%');

-- ---------------------------------------------------------------------------------------------
-- The composer's pickers

-- name: senders
SELECT id, address, kind, verification, is_default, segments_per_second::float8 AS segments_per_second
FROM senders
WHERE org_id = :org_id
ORDER BY is_default DESC, address;

-- name: member-lists
SELECT l.id, l.name, l.description,
       (SELECT count(*) FROM member_list_entries e WHERE e.list_id = l.id) AS members
FROM member_lists l
WHERE l.org_id = :org_id
ORDER BY l.name
LIMIT 200;

-- name: csv-uploads
SELECT id, filename, rows_accepted, rows_rejected, created_at
FROM csv_uploads
WHERE org_id = :org_id AND state = 'ready'
ORDER BY created_at DESC
LIMIT 50;

-- name: recent-iqa-queries
-- IQA paths the organisation has used before, for the composer's suggestions.
SELECT audience ->> 'query' AS query, max(updated_at) AS last_used
FROM campaigns
WHERE org_id = :org_id AND audience ->> 'kind' = 'iqa' AND audience ->> 'query' IS NOT NULL
GROUP BY 1
ORDER BY 2 DESC
LIMIT 20;

-- name: last-audience-size
-- How many members the same audience had the last time it was resolved: the composer's best guess
-- for an IQA query, whose size is only known when iMIS is asked at send time.
SELECT r.targeted + r.excluded AS members, r.targeted, r.resolved_at
FROM campaign_runs r
JOIN campaigns c ON c.id = r.campaign_id
WHERE r.org_id = :org_id AND r.resolved_at IS NOT NULL AND c.audience = CAST(:audience AS jsonb)
ORDER BY r.resolved_at DESC
LIMIT 1;

-- ---------------------------------------------------------------------------------------------
-- Outbox (demo)

-- name: recent-alerts
-- The organisation's newest alert e-mails as the usage service's mailer sees them (the alerts outbox,
-- migration 0007); the Outbox page pairs each with what the demo's SMTP catcher received, by Message-ID.
SELECT kind, subject, recipients, state, attempts, last_error, message_id, created_at, sent_at
FROM alerts
WHERE org_id = :org_id
ORDER BY created_at DESC, id DESC
LIMIT :limit;

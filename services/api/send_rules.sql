-- The organisation's own sending limits (migration 0045; services/api/routes/send_rule_settings.py). The
-- dispatcher reads them for each run (services/dispatcher/send_rules.sql) and the planner for a preview.

-- name: send-rules
SELECT time_zone, send_window_start_min, send_window_end_min, send_days, holidays, marketing_cap_texts,
       marketing_cap_days
FROM organisations WHERE id = :org_id;

-- name: set-send-rules
UPDATE organisations
SET send_window_start_min = :start_min, send_window_end_min = :end_min, send_days = :days, holidays = :holidays,
    marketing_cap_texts = :cap_texts, marketing_cap_days = :cap_days
WHERE id = :org_id;

-- name: marketing-texts
-- Marketing texts each number had in the cap's period (the dispatcher's count, recipient-send-facts, for
-- many numbers at once): sent, or claimed and in flight, by any non-transactional campaign. Probes
-- send_ledger_by_recipient (0004); a send counts from its sent_at, so claims an hour earlier are looked at.
SELECT l.to_number, count(*) AS texts
FROM send_ledger l
JOIN campaign_runs r ON r.id = l.run_id
JOIN campaigns c ON c.id = r.campaign_id
WHERE l.org_id = :org_id AND l.to_number = ANY(CAST(:numbers AS text[])) AND NOT c.transactional
  AND l.state IN ('sent', 'claimed')
  AND l.claimed_at > CAST(:now AS timestamptz) - make_interval(days => CAST(:days AS integer)) - interval '1 hour'
  AND coalesce(l.sent_at, l.claimed_at) > CAST(:now AS timestamptz) - make_interval(days => CAST(:days AS integer))
GROUP BY l.to_number;

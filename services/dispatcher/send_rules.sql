-- name: run-send-rules
-- What decides when and whether a run's recipients may be texted (services/dispatcher/send_rules.py):
-- the organisation's zone, window, days, holidays and marketing cap (0045), and the campaign's kind and hold
-- limit (0044), and whether any of its recipients has an address (without one, the area code alone
-- decides and a recipient's facts are read only when a cap may apply). Read once a minute per run.
SELECT o.time_zone, o.send_window_start_min, o.send_window_end_min, o.send_days, o.holidays,
       o.marketing_cap_texts, o.marketing_cap_days, c.transactional, r.campaign_id,
       r.occurrence_at + make_interval(secs => c.hold_limit_s) AS hold_ends,
       EXISTS (SELECT 1 FROM run_recipients p
               WHERE p.run_id = r.id AND (p.address_state IS NOT NULL OR p.address_time_zone IS NOT NULL))
           AS has_addresses
FROM campaign_runs r
JOIN campaigns c ON c.id = r.campaign_id
JOIN organisations o ON o.id = r.org_id
WHERE r.id = :run_id;

-- name: recipient-send-facts
-- One recipient's address (0044) and the texts that count against its frequency caps: those sent to the
-- number, and those claimed before this entry and still in flight (so of two dispatchers texting one
-- number at once, the later claim sees the earlier). marketing: any non-transactional campaign of the
-- organisation in the cap's days (skipped with no cap); subject: this campaign's runs in 24 hours.
-- Both probe send_ledger_by_recipient (0004); a send is counted from its sent_at, so claims up to an
-- hour before the period are looked at.
WITH params AS (
    SELECT CAST(:now AS timestamptz) AS now, CAST(:cap_days AS integer) AS cap_days
), recent AS (
    SELECT l.state, coalesce(l.sent_at, l.claimed_at) AS at, r.campaign_id, c.transactional
    FROM params, send_ledger l
    JOIN campaign_runs r ON r.id = l.run_id
    JOIN campaigns c ON c.id = r.campaign_id
    WHERE l.org_id = :org_id AND l.to_number = :to_number
      AND l.claimed_at > params.now - make_interval(days => greatest(params.cap_days, 1)) - interval '1 hour'
      AND (l.state = 'sent'
           OR (l.state = 'claimed' AND (l.claimed_at, l.run_id, l.recipient_id)
                                       < (CAST(:claimed_at AS timestamptz), CAST(:run_id AS uuid),
                                          CAST(:recipient_id AS uuid))))
)
SELECT p.address_state, p.address_time_zone,
       (SELECT count(*) FROM recent, params
        WHERE params.cap_days > 0 AND NOT transactional
          AND at > params.now - make_interval(days => params.cap_days)) AS marketing,
       (SELECT count(*) FROM recent, params
        WHERE campaign_id = :campaign_id AND at > params.now - interval '24 hours') AS subject
FROM run_recipients p
WHERE p.run_id = :run_id AND p.recipient_id = :recipient_id;

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
-- Recipients' addresses (0044) and the texts that count against their frequency caps, for the entries asked
-- about together (the arrays line up; ``i`` is an entry's place in them, from 1): those sent to the
-- number, and those claimed before the entry and still in flight (so of two dispatchers texting one
-- number at once, the later claim sees the earlier). marketing: any non-transactional campaign of the
-- organisation in the cap's days (skipped with no cap); subject: the entry's campaign's runs in 24 hours.
-- Both probe send_ledger_by_recipient (0004); a send is counted from its sent_at, so claims up to an
-- hour before the period are looked at. An entry without a snapshot row has no answer.
WITH asked AS (
    SELECT *
    FROM unnest(CAST(:org_ids AS uuid[]), CAST(:to_numbers AS text[]), CAST(:run_ids AS uuid[]),
                CAST(:recipient_ids AS uuid[]), CAST(:claimed_ats AS timestamptz[]), CAST(:campaign_ids AS uuid[]),
                CAST(:nows AS timestamptz[]), CAST(:cap_days AS integer[]))
         WITH ORDINALITY AS a(org_id, to_number, run_id, recipient_id, claimed_at, campaign_id, now, cap_days, i)
)
SELECT a.i, p.address_state, p.address_time_zone, counts.marketing, counts.subject
FROM asked a
JOIN run_recipients p ON p.run_id = a.run_id AND p.recipient_id = a.recipient_id
CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE a.cap_days > 0 AND NOT c.transactional
                              AND coalesce(l.sent_at, l.claimed_at) > a.now - make_interval(days => a.cap_days))
               AS marketing,
           count(*) FILTER (WHERE r.campaign_id = a.campaign_id
                              AND coalesce(l.sent_at, l.claimed_at) > a.now - interval '24 hours') AS subject
    FROM send_ledger l
    JOIN campaign_runs r ON r.id = l.run_id
    JOIN campaigns c ON c.id = r.campaign_id
    WHERE l.org_id = a.org_id AND l.to_number = a.to_number
      AND l.claimed_at > a.now - make_interval(days => greatest(a.cap_days, 1)) - interval '1 hour'
      AND (l.state = 'sent'
           OR (l.state = 'claimed' AND (l.claimed_at, l.run_id, l.recipient_id)
                                       < (a.claimed_at, a.run_id, a.recipient_id)))
) counts;

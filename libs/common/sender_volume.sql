-- Volume caps of unverified toll-free senders (libs/common/sender_volume.py): the organisation's policy and
-- the segments each capped sender has used per period. The dispatcher's campaign sends and the API's test
-- sends reserve here, so both count against the same caps.

-- name: cap-policy
SELECT per_day, per_week, per_month, when_reached
FROM sender_cap_policies WHERE org_id = :org_id AND verification = :verification;

-- name: ensure-volume
INSERT INTO sender_volume (sender, period, period_start)
SELECT :sender, p, s FROM unnest(CAST(:periods AS text[]), CAST(:starts AS timestamptz[])) AS u(p, s)
ON CONFLICT DO NOTHING;

-- name: lock-volume
-- The sender's rows for the current periods, locked: every process reserving for this sender queues here,
-- so a cap is never passed by two sends that each saw room for themselves.
SELECT v.period, v.segments
FROM sender_volume v
JOIN unnest(CAST(:periods AS text[]), CAST(:starts AS timestamptz[])) AS u(p, s)
  ON v.period = u.p AND v.period_start = u.s
WHERE v.sender = :sender
ORDER BY v.period
FOR UPDATE OF v;

-- name: add-volume
UPDATE sender_volume v SET segments = v.segments + :segments
FROM unnest(CAST(:periods AS text[]), CAST(:starts AS timestamptz[])) AS u(p, s)
WHERE v.sender = :sender AND v.period = u.p AND v.period_start = u.s;

-- The e-mail digests of members' replies (services/usage/reply_digests.py).

-- name: campaigns-to-digest
-- Campaigns with replies not yet e-mailed, of organisations that turned the digests on (replies from
-- before that are left out), that have a contact and no digest yet in the current window (windows of
-- :window_s seconds from the epoch).
SELECT DISTINCT r.campaign_id, m.org_id
FROM inbound_messages m
JOIN organisations o ON o.id = m.org_id AND o.reply_digests_since IS NOT NULL
JOIN campaign_runs r ON r.id = m.run_id
JOIN campaigns c ON c.id = r.campaign_id AND nullif(btrim(c.contact_email), '') IS NOT NULL
WHERE m.kind = 'other' AND m.reply_digested_at IS NULL AND m.run_id IS NOT NULL
  AND m.received_at >= o.reply_digests_since
  AND NOT EXISTS (SELECT 1 FROM reply_digests d
                  WHERE d.campaign_id = r.campaign_id AND d.window_start = to_timestamp(floor(extract(epoch FROM now()) / :window_s) * :window_s))
LIMIT :limit;

-- name: claim-window
-- The campaign's digest for the window now is in; nothing when another pass took it first.
INSERT INTO reply_digests (campaign_id, window_start, org_id, replies)
VALUES (:campaign_id, to_timestamp(floor(extract(epoch FROM now()) / :window_s) * :window_s), :org_id, :replies)
ON CONFLICT DO NOTHING
RETURNING window_start;

-- name: take-replies
-- The campaign's replies not yet e-mailed, locked so a concurrent pass skips them, with who sent each
-- when the run's snapshot still says.
SELECT m.id, rr.member_id,
       coalesce(nullif(concat_ws(' ', rr.merge_values ->> 'FirstName', rr.merge_values ->> 'LastName'), ''),
                rr.merge_values ->> 'first_name', rr.merge_values ->> 'name') AS member_name
FROM inbound_messages m
JOIN organisations o ON o.id = m.org_id
JOIN campaign_runs r ON r.id = m.run_id
LEFT JOIN run_recipients rr ON rr.run_id = m.run_id AND rr.recipient_id = m.recipient_id
WHERE m.org_id = :org_id AND r.campaign_id = :campaign_id AND m.kind = 'other' AND m.reply_digested_at IS NULL
  AND o.reply_digests_since IS NOT NULL AND m.received_at >= o.reply_digests_since
ORDER BY m.received_at, m.id
FOR UPDATE OF m SKIP LOCKED;

-- name: mark-digested
UPDATE inbound_messages SET reply_digested_at = now() WHERE id = ANY(:ids);

-- name: record-alert
UPDATE reply_digests SET alert_id = :alert_id WHERE campaign_id = :campaign_id AND window_start = :window_start;

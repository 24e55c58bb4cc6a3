-- The replies inbox (migration 0049; services/api/routes/inbox.py).

-- name: conversations
-- The organisation's conversations, latest first, with the filters given (NULL: no filter). The member's
-- name and iMIS ID come from the snapshot of the run whose text they answered.
SELECT c.id, c.phone, c.sender, c.unread, c.state, c.assigned_to, u.email AS assigned_email, c.last_message_at,
       r.campaign_id, k.name AS campaign_name, rr.member_id,
       coalesce(nullif(concat_ws(' ', rr.merge_values ->> 'FirstName', rr.merge_values ->> 'LastName'), ''),
                rr.merge_values ->> 'first_name', rr.merge_values ->> 'name') AS member_name,
       (SELECT m.body FROM inbound_messages m
        WHERE m.org_id = c.org_id AND m.phone = c.phone AND m.to_number = c.sender
        ORDER BY m.received_at DESC LIMIT 1) AS last_reply,
       count(*) OVER () AS total
FROM inbox_conversations c
LEFT JOIN users u ON u.id = c.assigned_to
LEFT JOIN campaign_runs r ON r.id = c.run_id
LEFT JOIN campaigns k ON k.id = r.campaign_id
LEFT JOIN run_recipients rr ON rr.run_id = c.run_id AND rr.recipient_id = c.recipient_id
WHERE c.org_id = :org_id
  AND (CAST(:state AS text) IS NULL OR c.state = :state)
  AND (NOT :unread_only OR c.unread > 0)
  AND (CAST(:assigned_to AS uuid) IS NULL OR c.assigned_to = :assigned_to)
  AND (CAST(:campaign_id AS uuid) IS NULL OR r.campaign_id = :campaign_id)
  AND (CAST(:since AS timestamptz) IS NULL OR c.last_message_at >= :since)
  AND (CAST(:until AS timestamptz) IS NULL OR c.last_message_at < :until)
ORDER BY c.last_message_at DESC, c.id DESC
LIMIT :limit OFFSET :offset;

-- name: conversation-campaigns
-- The campaigns the organisation's conversations answer: the Inbox page's campaign filter.
SELECT DISTINCT k.id, k.name
FROM inbox_conversations c
JOIN campaign_runs r ON r.id = c.run_id
JOIN campaigns k ON k.id = r.campaign_id
WHERE c.org_id = :org_id
ORDER BY k.name, k.id;

-- name: unread-count
-- Open conversations with a reply nobody has read: the figure on Home and in the navigation.
SELECT count(*) FROM inbox_conversations WHERE org_id = :org_id AND state = 'open' AND unread > 0;

-- name: conversation
SELECT c.id, c.phone, c.sender, c.unread, c.state, c.assigned_to, u.email AS assigned_email, c.last_message_at,
       r.campaign_id, k.name AS campaign_name, rr.member_id,
       coalesce(nullif(concat_ws(' ', rr.merge_values ->> 'FirstName', rr.merge_values ->> 'LastName'), ''),
                rr.merge_values ->> 'first_name', rr.merge_values ->> 'name') AS member_name,
       is_suppressed(c.org_id, c.phone, c.sender) AS suppressed,
       (SELECT s.source FROM suppressions s
        WHERE s.org_id = c.org_id AND s.phone = c.phone AND s.scope IN ('', c.sender)
        ORDER BY s.scope LIMIT 1) AS suppressed_by
FROM inbox_conversations c
LEFT JOIN users u ON u.id = c.assigned_to
LEFT JOIN campaign_runs r ON r.id = c.run_id
LEFT JOIN campaigns k ON k.id = r.campaign_id
LEFT JOIN run_recipients rr ON rr.run_id = c.run_id AND rr.recipient_id = c.recipient_id
WHERE c.org_id = :org_id AND c.id = :id;

-- name: thread
-- Every text both ways between the member and the sender, oldest first: their replies, the campaign texts
-- and the one-off texts (staff replies, keyword answers, confirmations).
SELECT * FROM (
    SELECT 'in' AS direction, m.body, m.received_at AS at, NULL::text AS state, NULL::text AS author,
           NULL::text AS kind
    FROM inbound_messages m
    WHERE m.org_id = :org_id AND m.phone = :phone AND m.to_number = :sender
    UNION ALL
    SELECT 'out', rr.body, coalesce(l.sent_at, l.claimed_at), l.state, NULL, 'campaign'
    FROM send_ledger l
    JOIN run_recipients rr ON rr.run_id = l.run_id AND rr.recipient_id = l.recipient_id
    WHERE l.org_id = :org_id AND l.to_number = :phone AND l.sender = :sender AND l.run_id IS NOT NULL
    UNION ALL
    SELECT 'out', t.body, coalesce(t.sent_at, t.created_at), t.state, t.author, t.kind
    FROM one_off_texts t
    WHERE t.org_id = :org_id AND t.phone = :phone AND t.sender = :sender
) thread
ORDER BY at, direction;

-- name: mark-read
UPDATE inbox_conversations SET unread = 0 WHERE org_id = :org_id AND id = :id RETURNING id;

-- name: mark-done
UPDATE inbox_conversations SET state = 'done', unread = 0 WHERE org_id = :org_id AND id = :id RETURNING id;

-- name: assign
-- Only to an active user of the same organisation (NULL: nobody).
UPDATE inbox_conversations c SET assigned_to = :user_id
WHERE c.org_id = :org_id AND c.id = :id
  AND (CAST(:user_id AS uuid) IS NULL
       OR EXISTS (SELECT 1 FROM users u WHERE u.id = :user_id AND u.org_id = :org_id AND u.active))
RETURNING id;

-- name: one-off
SELECT id, state, segments, message_sid, reason FROM one_off_texts WHERE org_id = :org_id AND id = :id;

-- The inbox's side of the opt-out service (migration 0049; services/optout/inbox.py).

-- name: org-answers
-- What each organisation answers by itself: its help text's parts and its own keywords.
SELECT o.id, o.name, o.help_answered_by, o.help_contact,
       coalesce((SELECT array_agg(k.keyword ORDER BY k.keyword) FROM org_keywords k WHERE k.org_id = o.id), '{}')
           AS keywords,
       coalesce((SELECT array_agg(k.reply ORDER BY k.keyword) FROM org_keywords k WHERE k.org_id = o.id), '{}')
           AS replies
FROM organisations o
WHERE o.id = ANY(CAST(:org_ids AS uuid[]));

-- name: file-replies
-- One conversation per (organisation, number, sender): a reply opens it again, counts one unread more and
-- points it at the campaign it answers. Several replies of one number in a batch are summed first (an
-- upsert may touch a row only once).
INSERT INTO inbox_conversations AS c (org_id, phone, sender, run_id, recipient_id, unread, last_message_at)
SELECT org_id, phone, sender,
       (array_agg(run_id ORDER BY received_at DESC) FILTER (WHERE run_id IS NOT NULL))[1],
       (array_agg(recipient_id ORDER BY received_at DESC) FILTER (WHERE run_id IS NOT NULL))[1],
       count(*), max(received_at)
FROM unnest(CAST(:org_ids AS uuid[]), CAST(:phones AS text[]), CAST(:senders AS text[]),
            CAST(:run_ids AS uuid[]), CAST(:recipient_ids AS uuid[]), CAST(:received_ats AS timestamptz[]))
     AS u(org_id, phone, sender, run_id, recipient_id, received_at)
GROUP BY org_id, phone, sender
ON CONFLICT (org_id, phone, sender) DO UPDATE
SET unread = c.unread + EXCLUDED.unread,
    state = 'open',
    run_id = coalesce(EXCLUDED.run_id, c.run_id),
    recipient_id = CASE WHEN EXCLUDED.run_id IS NULL THEN c.recipient_id ELSE EXCLUDED.recipient_id END,
    last_message_at = greatest(c.last_message_at, EXCLUDED.last_message_at);

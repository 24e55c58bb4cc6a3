-- One-off texts (migration 0049; libs/common/one_off_texts.py).

-- name: queue-one-offs
-- Inserts what is new and returns every text of the batch with its key (the idempotency key of a staff
-- reply, the member message a keyword answer answers), so a retried request learns the text it queued first.
WITH given AS (
    SELECT *
    FROM unnest(CAST(:org_ids AS uuid[]), CAST(:kinds AS text[]), CAST(:senders AS text[]),
                CAST(:phones AS text[]), CAST(:bodies AS text[]), CAST(:segments AS int[]),
                CAST(:conversation_ids AS bigint[]), CAST(:idempotency_keys AS text[]),
                CAST(:reply_to_sids AS text[]), CAST(:authors AS text[]))
         AS g(org_id, kind, sender, phone, body, segments, conversation_id, idempotency_key, reply_to_sid, author)
), inserted AS (
    INSERT INTO one_off_texts (org_id, kind, sender, phone, body, segments, conversation_id, idempotency_key,
                               reply_to_sid, author)
    SELECT org_id, kind, sender, phone, body, segments, conversation_id, idempotency_key, reply_to_sid, author
    FROM given
    ON CONFLICT DO NOTHING
    RETURNING id, org_id, coalesce(idempotency_key, reply_to_sid) AS key
)
SELECT id, org_id, key FROM inserted
UNION ALL
SELECT t.id, t.org_id, coalesce(t.idempotency_key, t.reply_to_sid)
FROM given g
JOIN one_off_texts t ON t.org_id = g.org_id
                    AND (t.idempotency_key = g.idempotency_key OR t.reply_to_sid = g.reply_to_sid)
WHERE NOT EXISTS (SELECT 1 FROM inserted i WHERE i.id = t.id);

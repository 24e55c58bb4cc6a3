-- Keyword answers (migration 0049; services/api/routes/keyword_settings.py).

-- name: keywords
SELECT o.name, o.help_answered_by, o.help_contact,
       coalesce((SELECT array_agg(k.keyword ORDER BY k.keyword) FROM org_keywords k WHERE k.org_id = o.id), '{}')
           AS keywords,
       coalesce((SELECT array_agg(k.reply ORDER BY k.keyword) FROM org_keywords k WHERE k.org_id = o.id), '{}')
           AS replies
FROM organisations o WHERE o.id = :org_id;

-- name: set-help
UPDATE organisations SET help_answered_by = :answered_by, help_contact = :contact WHERE id = :org_id;

-- name: drop-keywords
DELETE FROM org_keywords WHERE org_id = :org_id;

-- name: add-keywords
INSERT INTO org_keywords (org_id, keyword, reply)
SELECT :org_id, keyword, reply
FROM unnest(CAST(:keywords AS text[]), CAST(:replies AS text[])) AS u(keyword, reply);

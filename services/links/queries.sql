-- The links service's statements: answering a short code, and recording clicks.

-- name: find-links
-- What short codes point at (primary key lookups, the codes asked for together); a code that is not known
-- has no row. Expired codes are answered with a page, not a redirect.
SELECT code, org_id, run_id, recipient_id, url, expires_at
FROM short_links
WHERE code = ANY(:codes::text[]);

-- name: record-click
-- One row per click, whoever writes it first: the consumer of link-clicks, or the redirect itself when
-- Kafka could not take the event (click_id is the event's id).
INSERT INTO link_clicks (click_id, code, org_id, run_id, recipient_id, clicked_at, agent_class, client_network)
VALUES (:click_id, :code, :org_id, :run_id, :recipient_id, :clicked_at, :agent_class, :client_network)
ON CONFLICT (click_id) DO NOTHING;

-- name: record-clicks
-- A batch of clicks from the link-clicks consumer in one statement, each stored once.
INSERT INTO link_clicks (click_id, code, org_id, run_id, recipient_id, clicked_at, agent_class, client_network)
SELECT * FROM unnest(:click_ids::uuid[], :codes::text[], :org_ids::uuid[], :run_ids::uuid[], :recipient_ids::uuid[],
                     :clicked_ats::timestamptz[], :agent_classes::text[], :client_networks::text[])
ON CONFLICT (click_id) DO NOTHING;

-- A run's audience, staged page by page while it is read, then settled and written as the snapshot.
-- services/audience/stage_db.py runs these on the one connection that holds the stage.
--
-- The stage is a temporary table: it lives in that connection's session only, so a consumer killed
-- mid-read leaves nothing behind (the redelivered event starts over, as before), two consumers resolving
-- one run in a rebalance overlap each have their own, and no row of a shared table is locked while iMIS
-- pages arrive. It is not WAL-logged; what is kept is only the snapshot written from it.

-- name: create-stage
-- Columns as run_recipients' (0006, address_state 0044), and the tracked links of each body ([{code, url}],
-- 0047). No index: it is read whole by the statements below.
CREATE TEMPORARY TABLE audience_stage (
    position     integer NOT NULL,
    member_id    text NOT NULL,
    raw_phone    text,
    e164         text,
    region       text,
    merge_values jsonb,
    body         text,
    encoding     text,
    segments     integer NOT NULL,
    reason       text,
    detail       text,
    duplicate_of text,
    links        jsonb,
    address_state text
);

-- name: drop-stage
DROP TABLE IF EXISTS pg_temp.audience_stage;

-- name: analyze-stage
-- Autovacuum never analyses temporary tables: without this the planner guesses the stage is tiny.
ANALYZE audience_stage;

-- name: mark-repeated-members
-- Rule 1 of libs/common/audience_rules.py, across every page: a member id already seen at an earlier
-- position. It wins over every other rule, so the row keeps only its member id and raw number.
UPDATE audience_stage s
SET reason = 'duplicate_member', detail = NULL, duplicate_of = s.member_id, e164 = NULL, region = NULL,
    merge_values = NULL, body = NULL, encoding = NULL, segments = 0, links = NULL, address_state = NULL
FROM (SELECT position, row_number() OVER (PARTITION BY member_id ORDER BY position) AS seen
      FROM audience_stage WHERE member_id <> '') d
WHERE d.seen > 1 AND s.position = d.position;

-- name: attribute-households
-- Rule 8: one text per E.164 number per run, to the member with the lowest id among those who passed
-- rules 1-7: ids of ASCII digits as numbers first, then other ids as text (code point order: COLLATE "C"),
-- then rows without an id, position breaking ties. The others are duplicate_number, naming that member.
UPDATE audience_stage s
SET reason = 'duplicate_number', detail = 'household', duplicate_of = h.keeper
FROM (SELECT position,
             first_value(member_id) OVER sharing AS keeper,
             row_number() OVER sharing AS rank
      FROM audience_stage
      WHERE reason IS NULL
      WINDOW sharing AS (
          PARTITION BY e164
          ORDER BY CASE WHEN member_id ~ '^[0-9]+$' THEN 0 WHEN member_id <> '' THEN 1 ELSE 2 END,
                   CASE WHEN member_id ~ '^[0-9]+$' THEN member_id::numeric END,
                   CASE WHEN member_id ~ '^[0-9]+$' THEN '' ELSE member_id END COLLATE "C",
                   position)) h
WHERE h.rank > 1 AND s.position = h.position;

-- name: stage-totals
-- What the settled stage adds up to, by reason (NULL: queued).
SELECT reason, count(*) AS members, coalesce(sum(segments), 0) AS segments,
       count(*) FILTER (WHERE starts_with(e164, :nanp_prefix)) AS nanp
FROM audience_stage
GROUP BY reason;

-- name: stage-cost-groups
-- Queued recipients by (region, segments): all the price estimate needs.
SELECT coalesce(region, '') AS region, segments, count(*) AS recipients
FROM audience_stage WHERE reason IS NULL
GROUP BY 1, 2;

-- name: write-snapshot
-- The settled stage becomes the run's snapshot, in the transaction that moves the run out of 'resolving'
-- (0006). A queued row carries the run's sender, frozen with it (0021), and the member's address state,
-- which the dispatcher's quiet hours read (0044).
INSERT INTO run_recipients (run_id, position, recipient_id, org_id, member_id, raw_phone, e164, region,
                            merge_values, body, encoding, segments, status, reason, detail, duplicate_of, sender,
                            address_state)
SELECT :run_id, position, gen_random_uuid(), :org_id, member_id, raw_phone, e164, region,
       merge_values, body, encoding, segments, CASE WHEN reason IS NULL THEN 'queued' ELSE 'excluded' END,
       reason, detail, duplicate_of, CASE WHEN reason IS NULL THEN :sender END, address_state
FROM audience_stage;

-- name: insert-staged-links
-- The short links of the queued recipients' bodies (0047), keyed by the recipient ids just written: in the
-- snapshot's transaction, so the code a member is sent is always one the links service knows.
INSERT INTO short_links (code, org_id, run_id, recipient_id, url, expires_at)
SELECT l.code, :org_id, :run_id, r.recipient_id, l.url, now() + make_interval(days => :link_days)
FROM audience_stage s
JOIN run_recipients r ON r.run_id = :run_id AND r.position = s.position
CROSS JOIN LATERAL jsonb_to_recordset(s.links) AS l(code text, url text)
WHERE s.reason IS NULL AND s.links IS NOT NULL;

-- name: index-staged-member-phones
-- Which members used which number (0004's member_phone_index), for the opt-out write-back to iMIS.
-- Pairs are distinct, as ON CONFLICT DO UPDATE may touch a row only once, and sorted, so two runs
-- indexing the same numbers lock them in the same order.
INSERT INTO member_phone_index (org_id, phone, member_id, last_run_id)
SELECT :org_id, p.e164, p.member_id, :run_id
FROM (SELECT DISTINCT e164, member_id FROM audience_stage
      WHERE e164 IS NOT NULL AND length(member_id) BETWEEN 1 AND 64) p
ORDER BY p.e164 COLLATE "C", p.member_id COLLATE "C"
ON CONFLICT (org_id, phone, member_id) DO UPDATE
SET last_seen_at = now(), last_run_id = excluded.last_run_id;

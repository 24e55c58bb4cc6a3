-- Erasure of one member (services/api/erasure.py; migration 0031). Every statement is scoped to one
-- organisation and takes the member's numbers as :phones (E.164) and their iMIS id as :member_ids (empty
-- for an erasure by number). Each erasing statement answers how many rows it changed; a row already erased
-- no longer matches, so running them again changes nothing.

-- name: member-numbers
-- The numbers Textpulse has seen an iMIS member use: the number index and the run snapshots. Snapshots
-- have only their primary key indexed (migration 0006): the scan is of this organisation's runs' rows.
SELECT phone FROM member_phone_index WHERE org_id = :org_id AND member_id = :member_id
UNION
SELECT r.e164 FROM campaign_runs c JOIN run_recipients r ON r.run_id = c.id
WHERE c.org_id = :org_id AND r.member_id = :member_id AND r.e164 IS NOT NULL;

-- name: member-typed-numbers
-- The member's numbers as typed into lists and CSV files; the caller normalises them.
SELECT e.mobile FROM member_lists l JOIN member_list_entries e ON e.list_id = l.id
WHERE l.org_id = :org_id AND e.member_id = :member_id AND e.mobile IS NOT NULL
UNION
SELECT w.mobile FROM csv_uploads u JOIN csv_upload_rows w ON w.upload_id = u.id
WHERE u.org_id = :org_id AND w.member_id = :member_id AND w.mobile <> '';

-- name: list-entry-candidates
-- List entries whose typed number ends like one of :phones (:tails, the last 7 digits); the caller keeps
-- those that normalise to one of them, and the entries of the member id.
SELECT e.list_id, e.member_id, e.mobile FROM member_lists l JOIN member_list_entries e ON e.list_id = l.id
WHERE l.org_id = :org_id
  AND (e.member_id = ANY(:member_ids::text[])
       OR right(regexp_replace(coalesce(e.mobile, ''), '\D', '', 'g'), 7) = ANY(:tails::text[]));

-- name: csv-row-candidates
SELECT w.upload_id, w.line, w.member_id, w.mobile FROM csv_uploads u JOIN csv_upload_rows w ON w.upload_id = u.id
WHERE u.org_id = :org_id
  AND (w.member_id = ANY(:member_ids::text[])
       OR right(regexp_replace(w.mobile, '\D', '', 'g'), 7) = ANY(:tails::text[]));

-- name: delete-list-entries
WITH gone AS (
    DELETE FROM member_list_entries e
    USING unnest(:list_ids::uuid[], :entry_member_ids::text[]) AS d(list_id, member_id)
    WHERE e.list_id = d.list_id AND e.member_id = d.member_id
    RETURNING 1
)
SELECT count(*) FROM gone;

-- name: delete-csv-rows
-- The upload's counts (rows_accepted) stay; its rows are what a campaign would send to.
WITH gone AS (
    DELETE FROM csv_upload_rows w
    USING unnest(:upload_ids::uuid[], :lines::integer[]) AS d(upload_id, line)
    WHERE w.upload_id = d.upload_id AND w.line = d.line
    RETURNING 1
)
SELECT count(*) FROM gone;

-- name: blank-csv-rejections
-- A refused row's raw text, when its digits contain one of the numbers' national digits (:patterns,
-- '%4155550123%'): refused rows hold numbers that did not normalise, so they are matched by digits.
WITH blanked AS (
    UPDATE csv_upload_rejections j SET raw = ''
    FROM csv_uploads u
    WHERE u.id = j.upload_id AND u.org_id = :org_id AND j.raw <> ''
      AND regexp_replace(j.raw, '\D', '', 'g') LIKE ANY(:patterns::text[])
    RETURNING 1
)
SELECT count(*) FROM blanked;

-- name: drop-unsent
-- Recipients of live runs not claimed yet are ended now, as the dispatcher ends a recipient suppressed
-- since the audience was resolved ('suppressed' counts as dropped, so the run still completes). Inserted
-- before the snapshot rows lose their number: a dispatcher that read the row earlier finds this outcome
-- instead of claiming it (ON CONFLICT); one already claimed is in flight and keeps its row.
WITH dropped AS (
    INSERT INTO send_ledger (run_id, recipient_id, org_id, sender, to_number, segments, state, claimed_by, reason)
    SELECT r.run_id, r.recipient_id, r.org_id, coalesce(r.sender, ''), 'erased', r.segments, 'suppressed',
           'erasure', 'member_erased'
    FROM campaign_runs c JOIN run_recipients r ON r.run_id = c.id
    WHERE c.org_id = :org_id AND c.state IN ('resolving', 'sending', 'paused') AND r.status = 'queued'
      AND r.erased_at IS NULL AND (r.e164 = ANY(:phones::text[]) OR r.member_id = ANY(:member_ids::text[]))
    ON CONFLICT (run_id, recipient_id) DO NOTHING
    RETURNING 1
)
SELECT count(*) FROM dropped;

-- name: delete-short-links
-- The member's tracked short links: their URL may carry the member's own details (a merge field), and the
-- code leads to them. Run before erase-run-recipients, which blanks what finds the member's snapshot rows;
-- a followed code that was theirs then gets the links service's plain "unknown link" page.
WITH gone AS (
    DELETE FROM short_links s
    USING campaign_runs c, run_recipients r
    WHERE c.org_id = :org_id AND s.org_id = :org_id AND r.run_id = c.id AND s.run_id = r.run_id
      AND s.recipient_id = r.recipient_id AND r.erased_at IS NULL
      AND (r.e164 = ANY(:phones::text[]) OR r.member_id = ANY(:member_ids::text[]))
    RETURNING 1
)
SELECT count(*) FROM gone;

-- name: erase-link-clicks
-- The member's clicks stay (the run's funnel counts them) without the network they came from; the same
-- order as delete-short-links.
WITH erased AS (
    UPDATE link_clicks k SET client_network = NULL
    FROM campaign_runs c, run_recipients r
    WHERE c.org_id = :org_id AND k.org_id = :org_id AND r.run_id = c.id AND k.run_id = r.run_id
      AND k.recipient_id = r.recipient_id AND r.erased_at IS NULL AND k.client_network IS NOT NULL
      AND (r.e164 = ANY(:phones::text[]) OR r.member_id = ANY(:member_ids::text[]))
    RETURNING 1
)
SELECT count(*) FROM erased;

-- name: erase-run-recipients
-- status, reason, region, encoding and segments stay: they are the run's counts. The address (0044) goes.
WITH erased AS (
    UPDATE run_recipients r
    SET member_id = '', raw_phone = NULL, e164 = NULL, merge_values = NULL, duplicate_of = NULL,
        body = CASE WHEN r.body IS NULL THEN NULL ELSE '' END, address_state = NULL, address_time_zone = NULL,
        erased_at = now()
    FROM campaign_runs c
    WHERE c.id = r.run_id AND c.org_id = :org_id AND r.erased_at IS NULL
      AND (r.e164 = ANY(:phones::text[]) OR r.member_id = ANY(:member_ids::text[])
           OR r.raw_phone = ANY(:phones::text[]))
    RETURNING 1
)
SELECT count(*) FROM erased;

-- name: unlink-duplicates
-- Household members' rows that name the erased member as the one who got the text.
UPDATE run_recipients r SET duplicate_of = NULL
FROM campaign_runs c
WHERE c.id = r.run_id AND c.org_id = :org_id AND r.duplicate_of = ANY(:member_ids::text[]);

-- name: erase-ledger
-- A 'claimed' row is in flight: the dispatcher may still reconcile it with Twilio by its number, so it
-- keeps it until it has an outcome (a repeated erasure takes it then).
WITH erased AS (
    UPDATE send_ledger SET to_number = 'erased'
    WHERE org_id = :org_id AND to_number = ANY(:phones::text[]) AND state <> 'claimed'
    RETURNING 1
)
SELECT count(*) FROM erased;

-- name: erase-replies
WITH erased AS (
    UPDATE inbound_messages SET from_number = '', phone = NULL, body = ''
    WHERE org_id = :org_id AND (phone = ANY(:phones::text[]) OR from_number = ANY(:phones::text[]))
    RETURNING 1
)
SELECT count(*) FROM erased;

-- name: erase-webhooks
-- Raw webhooks keep only the parameters that name no person (:kept). A pending one has not been applied
-- yet (it may be a STOP): it is left to the opt-out service, and a repeated erasure takes it.
WITH erased AS (
    UPDATE webhook_requests
    SET params = (SELECT coalesce(jsonb_object_agg(p.key, p.value), '{}') FROM jsonb_each(params) AS p
                  WHERE p.key = ANY(:kept::text[]))
    WHERE org_id = :org_id AND state <> 'pending'
      AND (params ->> 'From' = ANY(:phones::text[]) OR params ->> 'To' = ANY(:phones::text[]))
    RETURNING 1
)
SELECT count(*) FROM erased;

-- name: erase-consent-history
-- The one update migration 0031's trigger allows: the number becomes its digest, the member's words go.
WITH erased AS (
    UPDATE consent_history h SET phone = NULL, body = NULL, evidence = NULL, phone_digest = d.digest
    FROM unnest(:phones::text[], :digests::text[]) AS d(phone, digest)
    WHERE h.org_id = :org_id AND h.phone = d.phone
    RETURNING 1
)
SELECT count(*) FROM erased;

-- name: keep-suppressions-as-digests
-- Each suppression moves to erased_suppressions under the number's digest, with its scope, source and
-- date, so the audience service still refuses the number (services/audience/db.py excluded_numbers).
WITH moved AS (
    DELETE FROM suppressions s
    USING unnest(:phones::text[], :digests::text[]) AS d(phone, digest)
    WHERE s.org_id = :org_id AND s.phone = d.phone
    RETURNING s.org_id, d.digest, s.scope, s.source, s.created_at
), kept AS (
    INSERT INTO erased_suppressions (org_id, phone_digest, scope, source, suppressed_at)
    SELECT org_id, digest, scope, source, created_at FROM moved
    ON CONFLICT (org_id, phone_digest, scope) DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM moved) AS moved, (SELECT count(*) FROM kept) AS kept;

-- name: erased-suppressions
SELECT count(*) FROM erased_suppressions WHERE org_id = :org_id AND phone_digest = ANY(:digests::text[]);

-- name: erase-imis-jobs
-- Finished iMIS write-backs keep their action and dates; pending ones still have to reach iMIS.
WITH erased AS (
    UPDATE imis_outbox SET member_id = '', phone = '', source_text = ''
    WHERE org_id = :org_id AND state <> 'pending'
      AND (phone = ANY(:phones::text[]) OR member_id = ANY(:member_ids::text[]))
    RETURNING 1
)
SELECT count(*) FROM erased;

-- name: erase-revocation-confirmations
-- A revocation's confirmation text (migration 0042) loses its number; one not sent yet never will be.
WITH erased AS (
    UPDATE revocation_confirmations
    SET phone = NULL, state = CASE WHEN state = 'pending' THEN 'cancelled' ELSE state END, updated_at = now()
    WHERE org_id = :org_id AND phone = ANY(:phones::text[])
    RETURNING 1
)
SELECT count(*) FROM erased;

-- name: delete-conversations
-- The member's inbox conversations (migration 0049); their texts are erased in their own tables.
WITH erased AS (
    DELETE FROM inbox_conversations WHERE org_id = :org_id AND phone = ANY(:phones::text[])
    RETURNING 1
)
SELECT count(*) FROM erased;

-- name: erase-one-off-texts
-- A one-off text (a staff reply, a keyword answer) loses its number and its words; one not sent yet never
-- will be. A claimed one keeps them until it has an outcome, as the ledger's row does.
WITH erased AS (
    UPDATE one_off_texts
    SET phone = NULL, body = 'erased',
        state = CASE WHEN state = 'pending' THEN 'failed' ELSE state END,
        reason = CASE WHEN state = 'pending' THEN 'erased' ELSE reason END
    WHERE org_id = :org_id AND phone = ANY(:phones::text[]) AND state <> 'claimed'
    RETURNING 1
)
SELECT count(*) FROM erased;

-- name: delete-member-index
WITH gone AS (
    DELETE FROM member_phone_index
    WHERE org_id = :org_id AND (phone = ANY(:phones::text[]) OR member_id = ANY(:member_ids::text[]))
    RETURNING 1
)
SELECT count(*) FROM gone;

-- name: delete-bad-numbers
WITH gone AS (DELETE FROM bad_numbers WHERE org_id = :org_id AND phone = ANY(:phones::text[]) RETURNING 1)
SELECT count(*) FROM gone;

-- name: delete-test-numbers
WITH gone AS (DELETE FROM staff_test_numbers WHERE org_id = :org_id AND phone = ANY(:phones::text[]) RETURNING 1)
SELECT count(*) FROM gone;

-- name: erase-outbox-payloads
-- Published events that carry one of the numbers (:quoted, '%"+14155550123"%') and the organisation's id;
-- an unpublished one is still on its way to its consumers and is left to the relay.
WITH erased AS (
    UPDATE event_outbox SET payload = '{}'
    WHERE published_at IS NOT NULL AND payload LIKE '%' || CAST(:org_id AS uuid)::text || '%' AND payload LIKE ANY(:quoted::text[])
    RETURNING 1
)
SELECT count(*) FROM erased;

-- name: delete-webhook-events
-- Outgoing events about one of the numbers (services/events), with their deliveries: delivered or not, they
-- carry the member's number and words.
WITH gone AS (
    DELETE FROM webhook_events
    WHERE org_id = :org_id AND (member_key = ANY(:phones::text[]) OR body LIKE ANY(:quoted::text[]))
    RETURNING 1
)
SELECT count(*) FROM gone;

-- name: erased-before
SELECT EXISTS (SELECT 1 FROM erasures WHERE org_id = :org_id AND subject_digest = :subject_digest);

-- name: record-erasure
INSERT INTO erasures (org_id, subject_digest, erased_by, counts) VALUES (:org_id, :subject_digest, :erased_by, :counts);

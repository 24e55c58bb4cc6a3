-- The audience service's statements. A run is resolved by one consumer at a time in practice (campaign-due
-- is keyed by campaign), but a rebalance can hand the same event to two: 'resolving' is claimed with a
-- guarded UPDATE, and the snapshot is written only while the run is still 'resolving' under a row lock.

-- name: run-context
-- Everything a run's resolution needs, in one round trip. The content (body, audience, sender, limits) is
-- the run's own copy, taken when the run was created (0013): an edit of the campaign since then applies
-- to its next run, not this one. A sender of another organisation is ignored (treated as missing).
SELECT r.id AS run_id, r.org_id, r.campaign_id, r.state AS run_state,
       r.body, r.audience::text AS audience, r.segment_limit, r.validity_period_s,
       o.default_country_prefix,
       s.address AS sender, s.verification AS sender_verification,
       a.max_segments AS account_max_segments, o.run_member_cap,
       r.track_links, o.short_link_base_url
FROM campaign_runs r
JOIN organisations o ON o.id = r.org_id
LEFT JOIN senders s ON s.org_id = r.org_id AND s.id = r.sender_id
LEFT JOIN sms_accounts a ON a.org_id = r.org_id
WHERE r.id = :run_id;

-- name: run-due
-- A campaign-due event is only a pointer: the run it names must be due by the database's clock. The
-- scheduler publishes a run once occurrence_at <= its own clock, which may run a little ahead of this one.
SELECT occurrence_at <= now() + interval '1 minute' FROM campaign_runs WHERE id = :run_id;

-- name: begin-resolving
-- 'resolving' again is allowed: a consumer that died mid-resolution committed nothing (the snapshot is one
-- transaction), so the redelivered event starts over.
UPDATE campaign_runs
SET state = 'resolving', started_at = coalesce(started_at, now())
WHERE id = :run_id AND state IN ('pending', 'resolving')
RETURNING state;

-- name: lock-run
SELECT state FROM campaign_runs WHERE id = :run_id FOR UPDATE;

-- name: column-map
SELECT member_id_column, mobile_column, first_name_column, opt_out_column, state_column, country_column,
       merge_columns::text AS merge_columns
FROM audience_column_maps WHERE org_id = :org_id;

-- name: imis-account
SELECT base_url, username, password, query_endpoint FROM imis_accounts WHERE org_id = :org_id;

-- name: suppressed-numbers
-- Organisation-wide entries (scope '') and the ones for this run's sender; looked up for the audience's
-- numbers only, so the cost follows the audience, not the size of the suppression table.
SELECT DISTINCT phone FROM suppressions
WHERE org_id = :org_id AND scope IN ('', :sender) AND phone = ANY(:phones::text[]);

-- name: bad-numbers
SELECT phone, error_code FROM bad_numbers WHERE org_id = :org_id AND phone = ANY(:phones::text[]);

-- name: csv-upload
SELECT state, error_code, mapping::text AS mapping FROM csv_uploads WHERE id = :upload_id AND org_id = :org_id;

-- name: csv-upload-rows
-- Read through a cursor, a batch at a time: the primary key gives the file order.
SELECT member_id, mobile, merge_values::text AS merge_values FROM csv_upload_rows
WHERE upload_id = :upload_id ORDER BY line;

-- name: list-exists
SELECT EXISTS (SELECT 1 FROM member_lists WHERE id = :list_id AND org_id = :org_id);

-- name: list-entries
SELECT member_id, mobile, merge_values::text AS merge_values FROM member_list_entries
WHERE list_id = :list_id ORDER BY added_at, member_id;

-- name: list-fields
-- The merge fields a list's entries can fill: the union of their keys.
SELECT DISTINCT jsonb_object_keys(merge_values) AS field FROM member_list_entries WHERE list_id = :list_id;

-- name: index-member-phones
-- Which members used which number (0004's member_phone_index), for the opt-out write-back to iMIS.
-- Pairs are distinct (the caller dedupes), as ON CONFLICT DO UPDATE may touch a row only once.
INSERT INTO member_phone_index (org_id, phone, member_id, last_run_id)
SELECT :org_id, t.phone, t.member_id, :run_id
FROM unnest(:phones::text[], :member_ids::text[]) AS t(phone, member_id)
ON CONFLICT (org_id, phone, member_id) DO UPDATE
SET last_seen_at = now(), last_run_id = excluded.last_run_id;

-- name: finish-resolving
-- Rolls the snapshot up onto the run in the transaction that wrote it. 'sending' hands the run to the
-- dispatcher, which completes it once sent + failed + dropped reaches targeted; every other state is final.
UPDATE campaign_runs
SET state = :state, state_reason = :reason, state_reason_code = :reason_code,
    state_reason_detail = CAST(:reason_detail AS jsonb), targeted = :targeted, excluded = :excluded,
    exclusions = :exclusions::jsonb, planned_segments = :planned_segments, estimated_cost = :estimated_cost,
    resolved_at = now(),
    finished_at = CASE WHEN :state = 'sending' THEN NULL ELSE now() END
WHERE id = :run_id AND state = 'resolving';

-- name: end-unresolved-run
-- The audience could not be resolved (iMIS down after retries, a bad audience setting...: 'failed') or
-- may not be sent (more members than the cap: 'refused'): nothing was written to the snapshot and nothing
-- published, so the run ends here with the reason.
UPDATE campaign_runs
SET state = :state, state_reason = :reason, state_reason_code = :reason_code,
    state_reason_detail = CAST(:reason_detail AS jsonb), finished_at = now()
WHERE id = :run_id AND state IN ('pending', 'resolving') AND :state IN ('failed', 'refused')
RETURNING id;

-- name: audit-run
-- The run's outcome in the campaign's audit trail (0003), where alerting looks for what went wrong:
-- action run_failed, run_over_limit, run_refused or run_resolved.
INSERT INTO campaign_audit (org_id, campaign_id, run_id, actor, action, from_state, to_state, detail)
VALUES (:org_id, :campaign_id, :run_id, 'audience', :action, 'resolving', :to_state, :detail::jsonb);

-- name: unpublished-recipients
-- The next queued rows past the run's checkpoint (and past :after, what this handler already sent),
-- in position order: a range scan of the primary key. The sender is the row's, frozen with the snapshot
-- (0021): a redelivered campaign-due must not publish from a sender the campaign was changed to since.
SELECT position, recipient_id, e164, body, segments, sender
FROM run_recipients
WHERE run_id = :run_id AND status = 'queued'
  AND position > greatest(:after, (SELECT published_through FROM campaign_runs WHERE id = :run_id))
ORDER BY position
LIMIT :limit;

-- name: mark-published
-- After Kafka acknowledged every recipient up to :position. A crash before this line republishes that
-- batch; the dispatcher's ledger on (run_id, recipient_id) makes the second copy harmless. greatest():
-- two consumers overlapping in a rebalance never move the checkpoint back.
UPDATE campaign_runs SET published_through = greatest(published_through, :position) WHERE id = :run_id;

-- Run figures from one source, and per-organisation retention (issue 21).
--
-- run_figures: a run's figures as every reader shows them (the runs API, the campaign page, Home's
-- "Sending now", the alert e-mails). campaign_runs.delivered and .cost are written by nobody once a run is
-- live; the usage rollup (usage_runs) counts deliveries and money, and the dispatcher's ledger counters on
-- campaign_runs (refresh-run-counts) count sends first. Each figure takes the rollup where it has a row and
-- the ledger counter where the rollup has nothing yet; counts that both keep take the larger, since each
-- one only grows and either may lag the other. A delivered message was sent, so sent >= delivered.
CREATE VIEW run_figures AS
SELECT r.id AS run_id, r.org_id, r.campaign_id,
       r.targeted, r.excluded,
       greatest(r.sent, coalesce(u.messages, 0), coalesce(u.delivered, 0), r.delivered) AS sent,
       greatest(r.delivered, coalesce(u.delivered, 0)) AS delivered,
       coalesce(u.undelivered, 0) AS undelivered,
       greatest(r.failed, coalesce(u.failed, 0)) AS failed,
       greatest(r.dropped, coalesce(u.dropped, 0)) AS dropped,
       greatest(r.segments, coalesce(u.segments, 0)) AS segments,
       coalesce(u.cost, r.cost) AS cost,
       r.planned_segments, r.estimated_cost,
       u.opt_outs
FROM campaign_runs r
LEFT JOIN usage_runs u ON u.run_id = r.id;

-- How long an organisation keeps what members sent and what was rendered for them (services/usage/retention.py
-- prunes past it, in small batches). Counts, the rollups, suppressions and consent history are never pruned.
--   retention_webhook_days  raw Twilio webhook requests, status callbacks and unmatched held statuses
--   retention_reply_days    the text of members' replies (the reply row, its kind and keyword stay)
--   retention_body_days     rendered bodies and merge values in run snapshots, after the run ended
--   retention_csv_days      an uploaded CSV's rows and its rejected rows' raw text (the upload's counts stay)
ALTER TABLE organisations
    ADD COLUMN retention_webhook_days integer NOT NULL DEFAULT 30 CHECK (retention_webhook_days BETWEEN 1 AND 3650),
    ADD COLUMN retention_reply_days integer NOT NULL DEFAULT 180 CHECK (retention_reply_days BETWEEN 1 AND 3650),
    ADD COLUMN retention_body_days integer NOT NULL DEFAULT 90 CHECK (retention_body_days BETWEEN 1 AND 3650),
    ADD COLUMN retention_csv_days integer NOT NULL DEFAULT 90 CHECK (retention_csv_days BETWEEN 1 AND 3650);

-- A snapshot whose body has been pruned keeps its row (status, reason, segments): the CHECK that a queued
-- row has a body still holds with '' as the pruned body. This marks which runs were pruned, so the
-- pruner walks each ended run once.
ALTER TABLE campaign_runs ADD COLUMN content_pruned_at timestamptz;
CREATE INDEX campaign_runs_content_unpruned ON campaign_runs (finished_at) WHERE content_pruned_at IS NULL;

-- The pruner's range scans by age.
CREATE INDEX status_callbacks_by_org ON status_callbacks (org_id, received_at);
CREATE INDEX inbound_messages_unblanked ON inbound_messages (org_id, received_at) WHERE body <> '';
CREATE INDEX event_outbox_published ON event_outbox (published_at) WHERE published_at IS NOT NULL;

-- An upload whose rows (and rejected rows' raw text) have been pruned; its counts stay.
ALTER TABLE csv_uploads ADD COLUMN rows_pruned_at timestamptz;

-- What the dispatcher needs beyond the send ledger of 0002.

-- The token of the attempt that holds a ledger row's claim. A claimed row whose token is not the
-- current process's attempt belonged to an attempt that died or timed out: it is reconciled with
-- Twilio's message list before anything is sent again.
ALTER TABLE send_ledger ADD COLUMN claim_token uuid;

-- Pacing continues across a rebalance from the last send times of a sender.
CREATE INDEX send_ledger_by_sender_sent ON send_ledger (sender, sent_at DESC);
-- The run's health looks at its latest outcomes.
CREATE INDEX send_ledger_by_run_updated ON send_ledger (run_id, updated_at DESC);

-- Numbers Twilio said cannot receive texts (21211 invalid, 21612/21614 not reachable or landline,
-- 30003/30005/30006 unreachable or unknown). The audience service excludes them from later runs.
CREATE TABLE bad_numbers (
    org_id     uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    phone      text NOT NULL,
    error_code integer NOT NULL,
    first_seen timestamptz NOT NULL DEFAULT now(),
    last_seen  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, phone)
);

-- Recipients the dispatcher dropped at send time (suppressed since the audience was resolved). A run
-- is complete when sent + failed + dropped reaches targeted (the recipients handed to the dispatcher).
ALTER TABLE campaign_runs ADD COLUMN dropped integer NOT NULL DEFAULT 0;

-- Home's sending rate counts a run's messages by when they were sent (dashboard.sql sending-progress):
-- updated_at moves with every status callback, so it cannot say when a message went out.
CREATE INDEX send_ledger_by_run_sent ON send_ledger (run_id, sent_at DESC) WHERE sent_at IS NOT NULL;

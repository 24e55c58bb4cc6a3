-- One-off texts (staff replies, keyword answers, revocation confirmations; 0049) in usage and retention
-- (issue 27): services/usage/one_off_usage.py counts each one's outcome once, and the retention pruner
-- blanks their words (services/usage/retention.py).

-- A usage message is a run recipient's text (run_id, recipient_id) or a one-off text (one_off_id). A one-off
-- text adds to the organisation's day (usage_daily: the month's segments, cost and allowance), not to any run.
ALTER TABLE usage_messages DROP CONSTRAINT usage_messages_pkey;
ALTER TABLE usage_messages
    ALTER COLUMN run_id DROP NOT NULL,
    ALTER COLUMN recipient_id DROP NOT NULL,
    ADD COLUMN one_off_id bigint UNIQUE REFERENCES one_off_texts ON DELETE CASCADE,
    ADD CONSTRAINT usage_messages_run_recipient UNIQUE (run_id, recipient_id),
    ADD CONSTRAINT usage_messages_run_or_one_off
        CHECK (num_nonnulls(run_id, one_off_id) = 1 AND (run_id IS NULL) = (recipient_id IS NULL));

-- counted: usage has this text's outcome (sent, failed, or suppressed at send time); the partial index is
-- the poller's work list. Texts that had an outcome before this migration are counted on the day they
-- were sent (or queued).
ALTER TABLE one_off_texts ADD COLUMN counted boolean NOT NULL DEFAULT false;
CREATE INDEX one_off_texts_uncounted ON one_off_texts (id)
    WHERE state IN ('sent', 'failed', 'suppressed') AND NOT counted;

-- Retention blanks a sent text's words to '' (as run_recipients.body); a text still to send keeps them.
ALTER TABLE one_off_texts DROP CONSTRAINT one_off_texts_body_check;
ALTER TABLE one_off_texts ADD CONSTRAINT one_off_texts_body_check
    CHECK (length(body) <= 1600 AND (length(body) >= 1 OR state NOT IN ('pending', 'claimed')));

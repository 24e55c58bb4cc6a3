-- Issue 28: a run sends what it was started with, and every run ends with its campaign following it.

-- The content a run sends, copied from its campaign when the run row is created (send-now in the API,
-- each schedule occurrence in the scheduler, in the transaction that holds the campaign's lock). The
-- audience service reads these columns, never the campaign's: an edit after Send now applies to the
-- next run only. sender_id is the sender actually used: the campaign's, or else the organisation's
-- default at that moment (null: neither existed, and the run fails with sender_missing).
ALTER TABLE campaign_runs
    ADD COLUMN body              text,
    ADD COLUMN audience          jsonb,
    ADD COLUMN sender_id         uuid REFERENCES senders ON DELETE SET NULL,
    ADD COLUMN segment_limit     integer CHECK (segment_limit > 0),
    ADD COLUMN validity_period_s integer CHECK (validity_period_s BETWEEN 1 AND 36000);

UPDATE campaign_runs r
SET body = c.body, audience = c.audience, segment_limit = c.segment_limit,
    validity_period_s = c.validity_period_s,
    sender_id = coalesce(c.sender_id, (SELECT d.id FROM senders d WHERE d.org_id = c.org_id AND d.is_default))
FROM campaigns c
WHERE c.id = r.campaign_id;

-- One rule for every way a run is created (the API, the scheduler, the demo seed, tests): what the
-- insert does not give is taken from the campaign as it is now. A trigger rather than a copy of this
-- column list in each INSERT.
CREATE FUNCTION freeze_run_content() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    SELECT coalesce(NEW.body, c.body), coalesce(NEW.audience, c.audience),
           coalesce(NEW.sender_id, c.sender_id,
                    (SELECT d.id FROM senders d WHERE d.org_id = c.org_id AND d.is_default)),
           coalesce(NEW.segment_limit, c.segment_limit), coalesce(NEW.validity_period_s, c.validity_period_s)
    INTO NEW.body, NEW.audience, NEW.sender_id, NEW.segment_limit, NEW.validity_period_s
    FROM campaigns c
    WHERE c.id = NEW.campaign_id;
    RETURN NEW;
END
$$;

CREATE TRIGGER campaign_runs_freeze_content
    BEFORE INSERT ON campaign_runs
    FOR EACH ROW EXECUTE FUNCTION freeze_run_content();

ALTER TABLE campaign_runs
    ALTER COLUMN body SET NOT NULL,
    ALTER COLUMN audience SET NOT NULL,
    ALTER COLUMN segment_limit SET NOT NULL,
    ALTER COLUMN validity_period_s SET NOT NULL;

-- 'failed' reads "Not sent": the campaign's last run ended without sending (libs/common/campaign_states.py).
ALTER TABLE campaigns DROP CONSTRAINT campaigns_state_check;
ALTER TABLE campaigns ADD CONSTRAINT campaigns_state_check
    CHECK (state IN ('draft', 'scheduled', 'sending', 'paused', 'completed', 'cancelled', 'failed', 'archived'));

-- The alert watcher also reads completed runs that sent nothing (services/usage/conditions.py).
DROP INDEX campaign_runs_alertable;
CREATE INDEX campaign_runs_alertable ON campaign_runs (created_at)
    WHERE state IN ('paused', 'refused', 'over_limit', 'missed', 'failed') OR (state = 'completed' AND sent = 0);

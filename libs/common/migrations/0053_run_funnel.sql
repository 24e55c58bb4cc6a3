-- Issue 26: Home's 30-day click-through and opt-out rates read an organisation's runs by when they started
-- (services/api/funnel.sql recent-rates); without this they scan every organisation's runs.
CREATE INDEX campaign_runs_by_org_started ON campaign_runs (org_id, started_at) WHERE started_at IS NOT NULL;

-- Cost settled with Twilio's price (issue 21). Textpulse's own estimate (libs/common/pricing.py) stays the
-- provisional cost; once Twilio reports a message's price (a status callback's Price, or a later fetch of
-- the message by the usage service's settler), that price replaces the message's estimate in "actual".
--   settled_messages  accepted messages whose price Twilio has reported
--   settled_estimate  what Textpulse estimated for those messages (segments x price, the failed fee)
--   settled_price     what Twilio reported for them
-- actual cost = cost - settled_estimate + settled_price; it is provisional while settled_messages < messages.
-- Rows rolled up before this migration count as unsettled: their actual cost is their estimate.
ALTER TABLE usage_runs
    ADD COLUMN settled_messages integer NOT NULL DEFAULT 0,
    ADD COLUMN settled_estimate numeric(14, 5) NOT NULL DEFAULT 0,
    ADD COLUMN settled_price numeric(14, 5) NOT NULL DEFAULT 0;
ALTER TABLE usage_daily
    ADD COLUMN settled_messages integer NOT NULL DEFAULT 0,
    ADD COLUMN settled_estimate numeric(14, 5) NOT NULL DEFAULT 0,
    ADD COLUMN settled_price numeric(14, 5) NOT NULL DEFAULT 0;

-- When the settler last asked Twilio for the message's price (null: never). The partial index holds only
-- messages still waiting for a price, so the settler's scan stays as small as that backlog.
ALTER TABLE usage_messages ADD COLUMN price_checked_at timestamptz;
CREATE INDEX usage_messages_unsettled ON usage_messages (created_at)
    WHERE reported_price IS NULL AND message_sid IS NOT NULL AND outcome = 'sent' AND NOT test;

-- run_figures (migration 0027) gains the settled figures, after its columns (CREATE OR REPLACE VIEW may only
-- add columns at the end). cost stays Textpulse's estimate; actual_cost takes Twilio's price where known.
CREATE OR REPLACE VIEW run_figures AS
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
       u.opt_outs,
       coalesce(u.cost - u.settled_estimate + u.settled_price, r.cost) AS actual_cost,
       coalesce(u.settled_messages, 0) AS settled_messages,
       coalesce(u.settled_messages < u.messages, false) AS cost_provisional
FROM campaign_runs r
LEFT JOIN usage_runs u ON u.run_id = r.id;

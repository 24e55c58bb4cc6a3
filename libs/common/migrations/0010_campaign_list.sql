-- The campaign list pages an organisation's campaigns newest first (API: created_at; dashboard: updated_at),
-- with id breaking ties: with these the page is read from the index, not sorted from every campaign.
CREATE INDEX campaigns_by_org_created ON campaigns (org_id, created_at DESC, id);
CREATE INDEX campaigns_by_org_updated ON campaigns (org_id, updated_at DESC, id);

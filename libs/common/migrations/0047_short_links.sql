-- Issue 26: tracked short links, one code per recipient and link, and the clicks on them.

-- An organisation's own short domain (Settings), e.g. https://go.example.org; NULL: the platform's
-- TEXTPULSE_SHORT_LINK_BASE_URL. Checked by libs/common/links.py check_base_url before it is stored.
ALTER TABLE organisations
    ADD COLUMN short_link_base_url text CHECK (short_link_base_url ~ '^https?://[^/]+$');

-- Whether a campaign's links are replaced by tracked short links; a run takes its own copy when it is
-- created, as it does its body (0013), so an edit applies to the next run only.
ALTER TABLE campaigns ADD COLUMN track_links boolean NOT NULL DEFAULT false;
ALTER TABLE campaign_runs ADD COLUMN track_links boolean;

CREATE FUNCTION freeze_run_tracking() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    SELECT coalesce(NEW.track_links, c.track_links) INTO NEW.track_links FROM campaigns c WHERE c.id = NEW.campaign_id;
    NEW.track_links := coalesce(NEW.track_links, false);
    RETURN NEW;
END
$$;

CREATE TRIGGER campaign_runs_freeze_tracking
    BEFORE INSERT ON campaign_runs
    FOR EACH ROW EXECUTE FUNCTION freeze_run_tracking();

UPDATE campaign_runs SET track_links = false;
ALTER TABLE campaign_runs ALTER COLUMN track_links SET NOT NULL;

-- One row per (recipient, distinct link of their text), written by the audience service in the
-- transaction that writes the run's snapshot, from the bodies it stores: the code a member receives is
-- the code stored here, whatever is retried. The code is the key the links service answers by.
CREATE TABLE short_links (
    code         text PRIMARY KEY CHECK (code ~ '^[A-Za-z0-9_-]{12}$'),
    org_id       uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    run_id       uuid NOT NULL REFERENCES campaign_runs ON DELETE CASCADE,
    recipient_id uuid NOT NULL,
    url          text NOT NULL CHECK (url ~* '^https?://' AND length(url) <= 2048),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX short_links_run ON short_links (run_id, recipient_id);

-- Every followed short link, once per click (click_id is the LinkClicked event's id). The funnel counts
-- from here: total clicks, unique recipients, people (agent_class <> 'preview_bot') apart from bots.
-- No address is kept: client_network is the /24 or /48 the click came from.
CREATE TABLE link_clicks (
    click_id       uuid PRIMARY KEY,
    code           text NOT NULL,
    org_id         uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    run_id         uuid NOT NULL REFERENCES campaign_runs ON DELETE CASCADE,
    recipient_id   uuid NOT NULL,
    clicked_at     timestamptz NOT NULL,
    agent_class    text NOT NULL CHECK (agent_class IN ('preview_bot', 'mobile', 'desktop', 'other')),
    is_bot         boolean GENERATED ALWAYS AS (agent_class = 'preview_bot') STORED,
    client_network text,
    recorded_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX link_clicks_run ON link_clicks (run_id, recipient_id);

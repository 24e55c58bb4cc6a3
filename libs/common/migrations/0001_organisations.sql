-- Organisations are the tenants: every other table hangs off one.
CREATE TABLE organisations (
    id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug                   text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    name                   text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    time_zone              text NOT NULL DEFAULT 'America/New_York',
    -- Applied to numbers that do not start with '+' (see libs/common/phone.py).
    default_country_prefix text NOT NULL DEFAULT '+1' CHECK (default_country_prefix ~ '^\+[1-9][0-9]{0,2}$'),
    campaign_segment_limit integer NOT NULL DEFAULT 20000 CHECK (campaign_segment_limit > 0),
    alert_emails           text[] NOT NULL DEFAULT '{}',
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);

-- Events a consumer has already applied, for handlers whose effect is not naturally keyed.
-- (consumer, event_id) makes redelivery a no-op; rows older than the topic retention can be pruned.
CREATE TABLE processed_events (
    consumer     text NOT NULL,
    event_id     uuid NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

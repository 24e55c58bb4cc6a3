-- Outgoing signed events (issue 26; services/events, services/api/routes/webhook_endpoints.py).
-- An organisation's endpoints; the events the streams produced for it, each once (its id is derived from the
-- record it came from, so a redelivered Kafka record adds nothing); and one delivery per event and endpoint,
-- retried until delivered or past retry_until. A delivery waits while an earlier one of the same member to the
-- same endpoint is still pending (webhook_deliveries_pending), so each member's events arrive in order.
CREATE TABLE webhook_endpoints (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id      uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    url         text NOT NULL,
    secret      text NOT NULL,  -- sealed (libs/common/secret_store.py, WEBHOOK_ENDPOINT_SECRET)
    event_types text[] NOT NULL CHECK (cardinality(event_types) > 0),
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_by_org ON webhook_endpoints (org_id);

CREATE TABLE webhook_events (
    id          uuid PRIMARY KEY,
    org_id      uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    type        text NOT NULL CHECK (type IN ('sent', 'delivered', 'failed', 'clicked', 'replied', 'opted_out',
                                              'opted_in', 'run_completed')),
    member_key  text NOT NULL,  -- the member's number, or what stands for it (a run for run_completed)
    body        text NOT NULL,  -- the JSON POSTed, exactly as signed
    occurred_at timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_events_created ON webhook_events (created_at);

CREATE TABLE webhook_deliveries (
    id              bigserial PRIMARY KEY,  -- creation order: the order of a member's events
    event_id        uuid NOT NULL REFERENCES webhook_events ON DELETE CASCADE,
    endpoint_id     uuid NOT NULL REFERENCES webhook_endpoints ON DELETE CASCADE,
    org_id          uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    member_key      text NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    last_status     integer,
    last_error      text,
    last_attempt_at timestamptz,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    retry_until     timestamptz NOT NULL DEFAULT now() + interval '24 hours',
    delivered_at    timestamptz,
    failed_at       timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (endpoint_id, member_key, id)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX webhook_deliveries_recent ON webhook_deliveries (endpoint_id, id DESC);

-- Runs announced as run_completed: the events service looks for ended runs not yet here.
CREATE TABLE webhook_run_announcements (
    run_id     uuid PRIMARY KEY REFERENCES campaign_runs ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now()
);

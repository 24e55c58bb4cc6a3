-- Usage accounting, subscriptions and e-mail alerts (services/usage, libs/common/alerts.py; issue 11).
--
-- Usage: every recipient's outcome is kept once in usage_messages, with what it contributes to the
-- rollups (usage_daily per organisation and day, usage_runs per campaign run, and their error-code
-- breakdowns). An event changes a message row, and the difference between the row's contribution before
-- and after is added to the rollups in the same transaction: a redelivered event changes nothing, so it
-- adds nothing. Money is numeric (USD), never a float.
--
-- Alerts: raise_alert() claims the condition in alert_conditions (one row per organisation and dedupe
-- key; a condition raised again inside its quiet period is a no-op) and writes the rendered e-mail to
-- alerts, the outbox the usage service's mailer drains over SMTP.

-- An organisation's plan. No row, or a null allowance, means no allowance alerts.
CREATE TABLE subscriptions (
    org_id                    uuid PRIMARY KEY REFERENCES organisations ON DELETE CASCADE,
    plan                      text NOT NULL CHECK (length(plan) BETWEEN 1 AND 100),
    monthly_segment_allowance integer CHECK (monthly_segment_allowance > 0),
    updated_at                timestamptz NOT NULL DEFAULT now()
);

-- One row per recipient of a run that produced a send-result. day is the day of its send in the
-- organisation's time zone (a message delivered after midnight still counts on the day it was sent);
-- test is the account's test mode when it was sent. unit_price is the per-segment price of region when
-- the result arrived (null: no price known), kept so a later price change cannot skew the difference
-- applied when a status arrives. status/error_code/reported_price are the latest from Twilio's callbacks.
CREATE TABLE usage_messages (
    run_id         uuid NOT NULL REFERENCES campaign_runs ON DELETE CASCADE,
    recipient_id   uuid NOT NULL,
    org_id         uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    message_sid    text UNIQUE,
    day            date NOT NULL,
    test           boolean NOT NULL,
    region         text NOT NULL,
    unit_price     numeric(10, 5),
    outcome        text NOT NULL CHECK (outcome IN ('sent', 'failed', 'suppressed', 'expired', 'cancelled')),
    segments       integer NOT NULL CHECK (segments >= 0),
    status         text,
    error_code     integer,
    reported_price numeric(10, 5),
    pumping_fee    numeric(10, 5),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, recipient_id)
);

-- A status callback whose message has no send-result yet (the two travel on different topics). It is
-- applied, and deleted, when the send-result with its SID arrives. Rows that never match (a message not
-- sent by Textpulse) may be pruned after the status topic's retention.
CREATE TABLE usage_pending_statuses (
    message_sid    text NOT NULL,
    status         text NOT NULL,
    error_code     integer,
    reported_price numeric(10, 5),
    org_id         uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    received_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_sid, status)
);
CREATE INDEX usage_pending_statuses_received ON usage_pending_statuses (received_at);

-- Opt-outs caused by a run: a member who replied STOP to a run's text counts once for that run, however
-- many STOPs or consent events (one per scope) follow.
CREATE TABLE usage_optouts (
    run_id       uuid NOT NULL REFERENCES campaign_runs ON DELETE CASCADE,
    recipient_id uuid NOT NULL,
    org_id       uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    day          date NOT NULL,
    counted_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, recipient_id)
);

-- The counters and money both rollups carry:
--   messages            accepted by Twilio (send-result 'sent'); segments are theirs
--   delivered / undelivered / failed
--                       final statuses; failed also counts refusals at submission (API errors, and 21610)
--   dropped             never sent: suppressed at send time, expired or cancelled
--   opted_out_failures  failures because the member had opted out with Twilio (21610)
--   opt_outs            STOP replies to the run's texts
--   unpriced_segments   charged segments to a destination without a price (left out of segment_cost)
--   segment_cost        segments x price by destination, for messages Twilio charges (not 'failed')
--   failed_fees         $0.001 per message ending 'failed', except the exempt error codes (twilio.md §10)
--   pumping_fees        SMS Pumping Protection charges Twilio reported, outside US/CA only
--   reported_cost       the sum of the prices Twilio reported, to reconcile against
CREATE TABLE usage_daily (
    org_id             uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    day                date NOT NULL,
    test               boolean NOT NULL DEFAULT false,
    messages           integer NOT NULL DEFAULT 0,
    segments           integer NOT NULL DEFAULT 0,
    delivered          integer NOT NULL DEFAULT 0,
    undelivered        integer NOT NULL DEFAULT 0,
    failed             integer NOT NULL DEFAULT 0,
    dropped            integer NOT NULL DEFAULT 0,
    opted_out_failures integer NOT NULL DEFAULT 0,
    opt_outs           integer NOT NULL DEFAULT 0,
    unpriced_segments  integer NOT NULL DEFAULT 0,
    segment_cost       numeric(14, 5) NOT NULL DEFAULT 0,
    failed_fees        numeric(14, 5) NOT NULL DEFAULT 0,
    pumping_fees       numeric(14, 5) NOT NULL DEFAULT 0,
    reported_cost      numeric(14, 5) NOT NULL DEFAULT 0,
    cost               numeric(14, 5) GENERATED ALWAYS AS (segment_cost + failed_fees + pumping_fees) STORED,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    -- Today, this month and the 30-day chart are range scans of one organisation's days.
    PRIMARY KEY (org_id, day, test)
);

CREATE TABLE usage_runs (
    run_id             uuid PRIMARY KEY REFERENCES campaign_runs ON DELETE CASCADE,
    org_id             uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    campaign_id        uuid NOT NULL REFERENCES campaigns ON DELETE CASCADE,
    test               boolean NOT NULL DEFAULT false,
    messages           integer NOT NULL DEFAULT 0,
    segments           integer NOT NULL DEFAULT 0,
    delivered          integer NOT NULL DEFAULT 0,
    undelivered        integer NOT NULL DEFAULT 0,
    failed             integer NOT NULL DEFAULT 0,
    dropped            integer NOT NULL DEFAULT 0,
    opted_out_failures integer NOT NULL DEFAULT 0,
    opt_outs           integer NOT NULL DEFAULT 0,
    unpriced_segments  integer NOT NULL DEFAULT 0,
    segment_cost       numeric(14, 5) NOT NULL DEFAULT 0,
    failed_fees        numeric(14, 5) NOT NULL DEFAULT 0,
    pumping_fees       numeric(14, 5) NOT NULL DEFAULT 0,
    reported_cost      numeric(14, 5) NOT NULL DEFAULT 0,
    cost               numeric(14, 5) GENERATED ALWAYS AS (segment_cost + failed_fees + pumping_fees) STORED,
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX usage_runs_by_campaign ON usage_runs (campaign_id);

-- Failed and undelivered messages by Twilio error code (0: Twilio gave none).
CREATE TABLE usage_daily_errors (
    org_id     uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    day        date NOT NULL,
    test       boolean NOT NULL DEFAULT false,
    error_code integer NOT NULL,
    messages   integer NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, day, test, error_code)
);

CREATE TABLE usage_run_errors (
    run_id     uuid NOT NULL REFERENCES campaign_runs ON DELETE CASCADE,
    error_code integer NOT NULL,
    messages   integer NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, error_code)
);

-- ---------------------------------------------------------------------------------------------
-- Alerts

-- One row per condition ever raised for an organisation. A condition raised again is claimed (and so
-- e-mailed again, as a reminder) only once its quiet period has passed since last_raised_at; a null
-- quiet period means never again (e.g. 'usage_80:2026-03').
CREATE TABLE alert_conditions (
    org_id          uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    dedupe_key      text NOT NULL CHECK (length(dedupe_key) BETWEEN 1 AND 300),
    kind            text NOT NULL,
    times           integer NOT NULL DEFAULT 1,
    first_raised_at timestamptz NOT NULL DEFAULT now(),
    last_raised_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, dedupe_key)
);

-- The alert outbox: each row is one e-mail, rendered when raised (plain-text and HTML parts), listed in
-- the dashboard with its delivery state. state: pending (due at next_attempt_at; attempts > 0 and
-- last_error say it is retrying) -> sent | failed (the server refused it, or attempts ran out);
-- skipped: nobody to send it to (no alert addresses and no campaign contact), still listed.
-- message_id is the Message-ID header: a resend after a crash between SMTP and the commit keeps it.
CREATE TABLE alerts (
    id              bigserial PRIMARY KEY,
    org_id          uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    kind            text NOT NULL CHECK (kind ~ '^[a-z0-9_]{1,64}$'),
    dedupe_key      text NOT NULL,
    run_id          uuid REFERENCES campaign_runs ON DELETE SET NULL,
    campaign_id     uuid REFERENCES campaigns ON DELETE SET NULL,
    test            boolean NOT NULL DEFAULT false,
    reminder        boolean NOT NULL DEFAULT false,
    recipients      text[] NOT NULL,
    subject         text NOT NULL,
    body_text       text NOT NULL,
    body_html       text NOT NULL,
    context         jsonb NOT NULL DEFAULT '{}',
    message_id      text NOT NULL UNIQUE,
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed', 'skipped')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz
);
-- The mailer claims due rows; the partial index stays as small as the backlog.
CREATE INDEX alerts_due ON alerts (next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX alerts_by_org ON alerts (org_id, created_at DESC);

-- The run state the alert watcher last looked at, so each run in an alertable state is examined once
-- per change of state or reason (and a paused run again when its reminder is due).
CREATE TABLE run_alert_marks (
    run_id       uuid PRIMARY KEY REFERENCES campaign_runs ON DELETE CASCADE,
    state        text NOT NULL,
    state_reason text,
    kind         text,            -- the alert raised for it; null when the state needs none (a staff pause)
    marked_at    timestamptz NOT NULL DEFAULT now()
);

-- The watcher's poll reads only runs in these states: a partial index keeps it off the completed ones.
CREATE INDEX campaign_runs_alertable ON campaign_runs (created_at)
    WHERE state IN ('paused', 'refused', 'over_limit', 'missed', 'failed');

-- The tables several services share. Each service's own tables come in later migrations.

-- An organisation's Twilio account. The auth token validates webhook signatures (X-Twilio-Signature)
-- and, without an API key, authenticates calls to Twilio.
-- TODO(secrets): encrypt auth_token / api_key_secret at rest with a key from settings.
CREATE TABLE sms_accounts (
    org_id           uuid PRIMARY KEY REFERENCES organisations ON DELETE CASCADE,
    account_sid      text NOT NULL UNIQUE CHECK (account_sid ~ '^AC[0-9a-f]{32}$'),
    auth_token       text NOT NULL,
    api_key_sid      text CHECK (api_key_sid ~ '^SK[0-9a-f]{32}$'),
    api_key_secret   text,
    friendly_name    text NOT NULL DEFAULT '',
    account_type     text NOT NULL DEFAULT 'Full' CHECK (account_type IN ('Trial', 'Full')),
    -- Up to 11 letters, digits, spaces and -+_&, not only digits; not usable in the US or Canada.
    alpha_sender_id  text CHECK (alpha_sender_id ~ '^[A-Za-z0-9 +_&-]{1,11}$' AND alpha_sender_id ~ '[A-Za-z]'),
    max_segments     integer CHECK (max_segments > 0),
    test_mode        boolean NOT NULL DEFAULT false,
    -- The public base URL Twilio calls us on; signatures are computed over it.
    webhook_base_url text NOT NULL CHECK (webhook_base_url ~ '^https?://'),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((api_key_sid IS NULL) = (api_key_secret IS NULL))
);

-- Who a text is sent from: a toll-free (or other) number, or a Messaging Service.
CREATE TABLE senders (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id              uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    address             text NOT NULL CHECK (address ~ '^(\+[1-9][0-9]{6,14}|MG[0-9a-f]{32})$'),
    kind                text NOT NULL DEFAULT 'toll_free'
                        CHECK (kind IN ('toll_free', 'long_code', 'short_code', 'messaging_service')),
    -- Toll-free verification as Twilio reports it; unverified numbers cannot text US/Canada.
    verification        text NOT NULL DEFAULT 'verified'
                        CHECK (verification IN ('verified', 'pending', 'restricted', 'rejected')),
    segments_per_second numeric(7, 2) NOT NULL DEFAULT 3 CHECK (segments_per_second > 0),
    is_default          boolean NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, address)
);
CREATE UNIQUE INDEX senders_one_default ON senders (org_id) WHERE is_default;

-- A campaign: what to send, to whom, from where, when. Its state is derived from its runs and schedule
-- by the campaign state machine (services/api and services/scheduler).
CREATE TABLE campaigns (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id            uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    name              text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    body              text NOT NULL DEFAULT '',
    audience          jsonb NOT NULL DEFAULT '{}',   -- {"kind": "iqa"|"csv"|"list", ...}
    sender_id         uuid REFERENCES senders,        -- null: the organisation's default sender
    contact_email     text,
    segment_limit     integer NOT NULL DEFAULT 20000 CHECK (segment_limit > 0),
    validity_period_s integer NOT NULL DEFAULT 14400 CHECK (validity_period_s BETWEEN 1 AND 36000),
    schedule          jsonb NOT NULL DEFAULT '{"kind": "none"}',
    state             text NOT NULL DEFAULT 'draft'
                      CHECK (state IN ('draft', 'scheduled', 'sending', 'paused', 'completed', 'cancelled', 'archived')),
    created_by        text,
    updated_by        text,
    approved_by       text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX campaigns_by_org_state ON campaigns (org_id, state);

-- Every send of a campaign: one for a one-time campaign, one per occurrence of a recurring one.
CREATE TABLE campaign_runs (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id         uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    campaign_id    uuid NOT NULL REFERENCES campaigns ON DELETE CASCADE,
    occurrence_at  timestamptz NOT NULL,
    state          text NOT NULL DEFAULT 'pending'
                   CHECK (state IN ('pending', 'resolving', 'sending', 'paused', 'completed', 'cancelled',
                                    'failed', 'missed', 'over_limit', 'refused')),
    state_reason   text,
    published_at   timestamptz,   -- when its campaign-due event was acknowledged by Kafka
    started_at     timestamptz,
    finished_at    timestamptz,
    targeted       integer NOT NULL DEFAULT 0,
    excluded       integer NOT NULL DEFAULT 0,
    sent           integer NOT NULL DEFAULT 0,
    delivered      integer NOT NULL DEFAULT 0,
    failed         integer NOT NULL DEFAULT 0,
    segments       integer NOT NULL DEFAULT 0,
    cost           numeric(14, 5) NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now(),
    -- One run per occurrence, whoever creates it: the scheduler's exactly-once rests on this.
    UNIQUE (campaign_id, occurrence_at)
);
CREATE INDEX campaign_runs_due ON campaign_runs (occurrence_at) WHERE state = 'pending';

-- The send ledger: one row per (run, recipient), written before the Twilio call (claimed) and after it
-- (outcome). Exactly-once rests on this row, not on Kafka offsets.
CREATE TABLE send_ledger (
    run_id        uuid NOT NULL REFERENCES campaign_runs ON DELETE CASCADE,
    recipient_id  uuid NOT NULL,
    org_id        uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    sender        text NOT NULL,
    to_number     text NOT NULL,
    segments      integer NOT NULL,
    state         text NOT NULL CHECK (state IN ('claimed', 'sent', 'failed', 'suppressed', 'expired', 'cancelled')),
    attempt       integer NOT NULL DEFAULT 1,
    claimed_by    text,
    claimed_at    timestamptz NOT NULL DEFAULT now(),
    message_sid   text UNIQUE CHECK (message_sid ~ '^(SM|MM)[0-9a-f]{32}$'),
    -- Twilio's status as last reported (create response, callbacks, fetches), never moved backwards.
    twilio_status text,
    error_code    integer,
    price         numeric(10, 5),
    sent_at       timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, recipient_id)
);
CREATE INDEX send_ledger_claimed ON send_ledger (sender, claimed_at) WHERE state = 'claimed';

-- Numbers that must not be texted. scope '' is organisation-wide (the platform's own rule); otherwise the
-- sender address the member replied STOP to (Twilio blocks per sender or Messaging Service).
CREATE TABLE suppressions (
    org_id     uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    phone      text NOT NULL CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    scope      text NOT NULL DEFAULT '',
    source     text NOT NULL CHECK (source IN ('keyword', 'twilio_21610', 'staff', 'import')),
    reason     text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, phone, scope)
);

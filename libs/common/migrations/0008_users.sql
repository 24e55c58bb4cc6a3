-- Who may use the dashboard and the API (services/api, issue 10): users with a role in one
-- organisation, their server-side sessions, and API keys for integrations.
--
-- Secrets are never stored as given: a password as its argon2id hash (argon2-cffi, parameters in the
-- hash itself, so they can be raised later and old hashes still verify); a session token and an API
-- key as the SHA-256 of 32 random bytes. A fast hash is enough for those: they are random, not chosen
-- by people, so there is nothing to guess, and a copy of this table cannot be used to sign in.

-- One person in one organisation. The e-mail address signs in, so it is unique across organisations
-- (compared case-insensitively). A user is never deleted, only deactivated, so audit rows keep a name.
CREATE TABLE users (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id               uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    email                text NOT NULL CHECK (email ~ '^[^@\s]+@[^@\s]+\.[^@\s]+$' AND length(email) <= 254),
    name                 text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    password_hash        text NOT NULL,
    -- admin: settings, users, API keys; staff: campaigns.
    role                 text NOT NULL DEFAULT 'staff' CHECK (role IN ('admin', 'staff')),
    active               boolean NOT NULL DEFAULT true,
    -- Failed sign-ins since the last good one; too many in a short time refuse the address for a while.
    failed_sign_ins      integer NOT NULL DEFAULT 0,
    last_failed_at       timestamptz,
    last_signed_in_at    timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email ON users (lower(email));
CREATE INDEX users_by_org ON users (org_id, lower(email));

-- A signed-in browser. token_hash is sha256(cookie value); the cookie carries the only copy of the
-- token. csrf_token is sent back by the page in X-CSRF-Token on every change (synchroniser token).
-- A session ends at expires_at (pushed forward while it is used, up to absolute_expires_at), when
-- its user signs out, or when the user is deactivated (every session of theirs is deleted).
CREATE TABLE sessions (
    token_hash          text PRIMARY KEY,
    user_id             uuid NOT NULL REFERENCES users ON DELETE CASCADE,
    org_id              uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    csrf_token          text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    last_seen_at        timestamptz NOT NULL DEFAULT now(),
    expires_at          timestamptz NOT NULL,
    absolute_expires_at timestamptz NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_expired ON sessions (expires_at);

-- A key an integration sends as "Authorization: Bearer tpk_...". prefix (the first characters after
-- tpk_) lets staff tell keys apart; the key itself is shown once, when it is created.
CREATE TABLE api_keys (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id       uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    prefix       text NOT NULL,
    key_hash     text NOT NULL UNIQUE,
    role         text NOT NULL DEFAULT 'staff' CHECK (role IN ('admin', 'staff')),
    created_by   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_keys_by_org ON api_keys (org_id, created_at DESC);

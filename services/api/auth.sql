-- Users, sessions and API keys (migration 0008; services/api/auth_db.py). Everything a caller can
-- reach is scoped by org_id; sign-in looks a user up by e-mail alone, because that is what says
-- which organisation they belong to.

-- name: session-principal
-- The signed-in user of a session cookie, with their organisation, in one round trip. An expired
-- session or a deactivated user is simply not found. Uses sessions' primary key.
SELECT s.csrf_token, s.last_seen_at, s.expires_at, s.absolute_expires_at,
       u.id AS user_id, u.email, u.name AS user_name, u.role,
       o.id AS org_id, o.name AS org_name, o.time_zone, o.campaign_segment_limit, o.default_country_prefix,
       o.run_member_cap, o.require_approval, a.max_segments AS account_max_segments, o.short_link_base_url
FROM sessions s
JOIN users u ON u.id = s.user_id AND u.active
JOIN organisations o ON o.id = s.org_id
LEFT JOIN sms_accounts a ON a.org_id = o.id
WHERE s.token_hash = :token_hash AND s.expires_at > now();

-- name: touch-session
-- Slides the idle expiry forward, never past the absolute one. Called at most every few minutes per
-- session (the caller checks last_seen_at), so reading a page is not a write each time.
UPDATE sessions
SET last_seen_at = now(), expires_at = least(now() + make_interval(secs => :idle_s), absolute_expires_at)
WHERE token_hash = :token_hash;

-- name: api-key-principal
-- The organisation of a Bearer key; a revoked or expired key is not found.
SELECT k.id AS key_id, k.name AS key_name, k.role, k.last_used_at,
       o.id AS org_id, o.name AS org_name, o.time_zone, o.campaign_segment_limit, o.default_country_prefix,
       o.run_member_cap, o.require_approval, a.max_segments AS account_max_segments, o.short_link_base_url
FROM api_keys k
JOIN organisations o ON o.id = k.org_id
LEFT JOIN sms_accounts a ON a.org_id = o.id
WHERE k.key_hash = :key_hash AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now());

-- name: touch-api-key
UPDATE api_keys SET last_used_at = now() WHERE id = :key_id;

-- name: user-for-sign-in
SELECT id, org_id, email, password_hash, role, active
FROM users
WHERE lower(email) = lower(:email);

-- name: count-sign-in-attempt
-- One statement per attempt, before any password is checked: each concurrent attempt gets its own count
-- (the row lock of ON CONFLICT serialises them). A window older than :window_s starts again at 1.
-- Keys come sorted, so two attempts lock their rows in the same order.
INSERT INTO sign_in_throttle AS t (key, attempts)
SELECT key, 1 FROM unnest(:keys::text[]) AS key
ON CONFLICT (key) DO UPDATE
SET attempts = CASE WHEN t.window_started_at > now() - make_interval(secs => :window_s) THEN t.attempts + 1 ELSE 1 END,
    window_started_at = CASE WHEN t.window_started_at > now() - make_interval(secs => :window_s)
                             THEN t.window_started_at ELSE now() END
RETURNING key, attempts;

-- name: clear-sign-in-attempts
DELETE FROM sign_in_throttle WHERE key = :key;

-- name: refund-sign-in-attempt
-- A good sign-in gives its address back the attempt it used, so an office behind one address signing in
-- each morning is never throttled; only failures add up.
UPDATE sign_in_throttle SET attempts = attempts - 1 WHERE key = :key AND attempts > 0;

-- name: delete-old-sign-in-attempts
DELETE FROM sign_in_throttle
WHERE key IN (SELECT key FROM sign_in_throttle
              WHERE window_started_at < now() - make_interval(secs => :window_s) LIMIT 100);

-- name: record-sign-in
UPDATE users
SET last_signed_in_at = now(),
    password_hash = coalesce(:new_hash, password_hash)
WHERE id = :user_id;

-- name: insert-session
INSERT INTO sessions (token_hash, user_id, org_id, csrf_token, expires_at, absolute_expires_at)
VALUES (:token_hash, :user_id, :org_id, :csrf_token,
        now() + make_interval(secs => :idle_s), now() + make_interval(secs => :absolute_s));

-- name: delete-session
DELETE FROM sessions WHERE token_hash = :token_hash;

-- name: delete-user-sessions
DELETE FROM sessions WHERE user_id = :user_id;

-- name: delete-expired-sessions
-- Expired rows are never read again (session-principal filters them); sign-in prunes a few at a time.
DELETE FROM sessions
WHERE token_hash IN (SELECT token_hash FROM sessions WHERE expires_at < now() LIMIT 100);

-- ---------------------------------------------------------------------------------------------
-- Users (admin)

-- name: list-users
SELECT id, email, name, role, active, last_signed_in_at, created_at, count(*) OVER () AS total
FROM users
WHERE org_id = :org_id
ORDER BY lower(email)
LIMIT :limit OFFSET :offset;

-- name: get-user
SELECT id, email, name, role, active, last_signed_in_at, created_at
FROM users
WHERE id = :user_id AND org_id = :org_id;

-- name: lock-user
SELECT id, role, active FROM users WHERE id = :user_id AND org_id = :org_id FOR UPDATE;

-- name: insert-user
-- Null when the address is taken (by anyone, in any organisation).
INSERT INTO users (org_id, email, name, password_hash, role)
VALUES (:org_id, :email, :user_name, :password_hash, :role)
ON CONFLICT DO NOTHING
RETURNING id;

-- name: update-user
UPDATE users
SET name = :user_name, role = :role, active = :active, updated_at = now()
WHERE id = :user_id AND org_id = :org_id;

-- name: set-password
UPDATE users SET password_hash = :password_hash, updated_at = now() WHERE id = :user_id AND org_id = :org_id;

-- name: count-active-admins
-- Locks the organisation's active admins, so two demotions at once cannot both pass the last-admin check.
SELECT count(*) FROM (SELECT id FROM users WHERE org_id = :org_id AND role = 'admin' AND active FOR UPDATE) a;

-- ---------------------------------------------------------------------------------------------
-- API keys (admin)

-- name: list-api-keys
SELECT id, name, prefix, role, created_by, created_at, last_used_at, revoked_at, expires_at
FROM api_keys
WHERE org_id = :org_id
ORDER BY created_at DESC, id;

-- name: insert-api-key
INSERT INTO api_keys (org_id, name, prefix, key_hash, role, created_by, expires_at)
VALUES (:org_id, :key_name, :prefix, :key_hash, :role, :actor, :expires_at)
RETURNING id, name, prefix, role, created_by, created_at, last_used_at, revoked_at, expires_at;

-- name: revoke-api-key
UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
WHERE id = :key_id AND org_id = :org_id
RETURNING id, name, prefix, role, created_by, created_at, last_used_at, revoked_at, expires_at;

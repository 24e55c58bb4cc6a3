-- Sign-in attempts counted per account and per client address (services/api/routes/session.py).
-- key is 'account:<e-mail, lower case>' (known or not, so the answer never tells which addresses exist)
-- or 'address:<client IP>'. Every attempt is counted in one statement before its password is checked,
-- so concurrent guesses cannot all slip in under the limit; a good sign-in clears its account's row.
CREATE TABLE sign_in_throttle (
    key               text PRIMARY KEY CHECK (length(key) <= 300),
    attempts          integer NOT NULL CHECK (attempts >= 0),  -- a good sign-in gives its address one back
    window_started_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sign_in_throttle_window ON sign_in_throttle (window_started_at);

-- The per-user failure count this replaces was read and written in two steps (not atomic).
ALTER TABLE users DROP COLUMN failed_sign_ins, DROP COLUMN last_failed_at;

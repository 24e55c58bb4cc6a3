-- An API key may be given an expiry; past it the key is refused as if revoked (services/api/deps.py).
ALTER TABLE api_keys ADD COLUMN expires_at timestamptz;

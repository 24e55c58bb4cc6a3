-- The one rule for "may this number be texted from this sender": a suppression for the whole organisation
-- (scope '') or for this very sender (Twilio blocks per sender or Messaging Service). PL/pgSQL rather than
-- SQL: PostgreSQL cannot inline a SQL function with a sub-select, and would plan its query at every call;
-- PL/pgSQL plans it once per connection.
CREATE FUNCTION is_suppressed(org_id uuid, phone text, sender text) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM suppressions s WHERE s.org_id = $1 AND s.phone = $2 AND s.scope IN ('', $3));
END
$$;

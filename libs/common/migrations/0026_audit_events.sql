-- The organisation's audit log (services/api/audit.py writes it; Settings shows it to admins). Append-only in
-- the database itself: UPDATE, DELETE and TRUNCATE are refused whoever asks, so no route, script or admin can
-- rewrite history. The one exception is the cascade when an organisation itself is deleted (its rows go with
-- it): a DELETE is allowed only once the organisation's row is gone.
CREATE TABLE audit_events (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id         uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    at             timestamptz NOT NULL DEFAULT now(),
    actor          text NOT NULL CHECK (length(actor) BETWEEN 1 AND 400),
    actor_kind     text NOT NULL CHECK (actor_kind IN ('user', 'api_key', 'system')),
    action         text NOT NULL CHECK (action ~ '^[a-z][a-z0-9_.]{0,99}$'),
    target_type    text NOT NULL CHECK (length(target_type) BETWEEN 1 AND 100),
    target_id      text CHECK (length(target_id) <= 400),
    before         jsonb,
    after          jsonb,
    client_address text CHECK (length(client_address) <= 100),
    detail         jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_by_org_time ON audit_events (org_id, at DESC, id DESC);

CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND NOT EXISTS (SELECT 1 FROM organisations WHERE id = OLD.org_id) THEN
        RETURN OLD;  -- the cascade of deleting the organisation
    END IF;
    RAISE EXCEPTION 'audit_events is append-only: % is not allowed', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_events_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

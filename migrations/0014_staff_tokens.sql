-- People sign in with tokens: only a hash of each is kept, with its expiry and revocation.
-- A token is 32 random bytes, so an unsalted SHA-256 is enough to make the table useless to
-- whoever reads it; the token itself is printed once, when issued.
CREATE TABLE staff_tokens (
    token_id     bigserial PRIMARY KEY,
    staff_id     text NOT NULL REFERENCES staff (staff_id) ON DELETE CASCADE,
    token_hash   bytea NOT NULL UNIQUE,
    issued_at    timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    last_used_at timestamptz,
    CHECK (expires_at > issued_at)
);
CREATE INDEX staff_tokens_staff_idx ON staff_tokens (staff_id) WHERE revoked_at IS NULL;

-- orderflow_api: the staff API's role. It reads what people see (orders, their timeline, the
-- anomaly inbox, who works where) and keeps the tokens; the workers' service role neither
-- reads the timeline's details nor touches tokens. A NOLOGIN group role, as in 0007: a login
-- role is granted it, e.g. CREATE ROLE orderflow_staff_api LOGIN PASSWORD '...' IN ROLE
-- orderflow_api.
DO $$
DECLARE
    may_create boolean;
    t text;
BEGIN
    SELECT rolsuper OR rolcreaterole INTO may_create FROM pg_roles WHERE rolname = current_user;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orderflow_api') THEN
        IF coalesce(may_create, false) THEN
            BEGIN
                CREATE ROLE orderflow_api NOLOGIN;
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created meanwhile by a migration of another database on this server
            END;
        ELSE
            RAISE NOTICE 'role orderflow_api is missing and % may not create roles: grants '
                'to it skipped', current_user;
        END IF;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orderflow_service') THEN
        EXECUTE 'REVOKE ALL ON staff_tokens FROM orderflow_service';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orderflow_api') THEN
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO orderflow_api', current_schema());
        FOREACH t IN ARRAY ARRAY[
            'orders', 'order_events', 'anomalies', 'assignments', 'departments', 'staff',
            'feedback', 'refunds', 'schema_migrations'
        ] LOOP
            EXECUTE format('GRANT SELECT ON %I TO orderflow_api', t);
        END LOOP;
        EXECUTE 'GRANT SELECT, INSERT, UPDATE ON staff_tokens TO orderflow_api';
        EXECUTE 'GRANT USAGE, SELECT ON SEQUENCE staff_tokens_token_id_seq TO orderflow_api';
    END IF;
END
$$;

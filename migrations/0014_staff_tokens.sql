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

-- The staff API's role is the service role (0007's default privileges cover the new table);
-- reporting never reads tokens.
DO $$
BEGIN
    -- The staff API shows an order's timeline from the event log; reading it keeps the log
    -- append-only (still no UPDATE or DELETE).
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orderflow_service') THEN
        EXECUTE 'GRANT SELECT ON order_events TO orderflow_service';
    END IF;
END
$$;

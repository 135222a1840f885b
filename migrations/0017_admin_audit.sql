-- What people change by hand outside an order (R5.3.3 customers banned and bans lifted, R7.1
-- people and their skills, R2.2.1 stock restocked or counted): who, when, what it was before and
-- after, and why. Append-only.
CREATE TABLE admin_audit (
    audit_id bigserial PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now(),
    actor    text NOT NULL,
    action   text NOT NULL,
    target   text NOT NULL,
    before   jsonb,
    after    jsonb,
    reason   text NOT NULL DEFAULT ''
);
CREATE INDEX admin_audit_target_idx ON admin_audit (target, at);

-- Stock moved by a person goes in the ledger beside the orders' moves: a delivery restocked, a
-- count that found less (written off). Their order_id is `admin:<id>`.
ALTER TABLE stock_ledger DROP CONSTRAINT stock_ledger_kind_check;
ALTER TABLE stock_ledger ADD CONSTRAINT stock_ledger_kind_check
    CHECK (kind IN ('reserve', 'commit', 'release', 'restock', 'writeoff'));

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orderflow_service') THEN
        EXECUTE 'REVOKE ALL ON admin_audit FROM orderflow_service';  -- the API's record
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orderflow_api') THEN
        -- Admins act through the staff API: a customer's standing, never their name or phone.
        EXECUTE 'GRANT SELECT (customer_id, credit_score, status, first_seen_at, last_order_at), '
                'UPDATE (status, credit_score, updated_at) ON customers TO orderflow_api';
        EXECUTE 'GRANT SELECT (customer_id, order_id, kind, delta, score_after, at) '
                'ON credit_events TO orderflow_api';
        EXECUTE 'GRANT SELECT, INSERT ON admin_audit TO orderflow_api';
        EXECUTE 'GRANT INSERT, UPDATE (name, department, region, role, capacity, active, '
                'updated_at) ON staff TO orderflow_api';
        EXECUTE 'GRANT SELECT, INSERT, DELETE ON staff_skills TO orderflow_api';
        EXECUTE 'GRANT SELECT, UPDATE (on_hand, updated_at) ON stock TO orderflow_api';
        EXECUTE 'GRANT SELECT ON catalogue TO orderflow_api';
        EXECUTE 'GRANT INSERT ON stock_ledger TO orderflow_api';
        EXECUTE 'GRANT USAGE ON SEQUENCE stock_ledger_entry_id_seq TO orderflow_api';
        EXECUTE 'GRANT USAGE ON SEQUENCE admin_audit_audit_id_seq TO orderflow_api';
    END IF;
END
$$;

-- A store's own terms and hours, set by an admin through the staff API (audited in
-- admin_audit).
--
-- store_policies  terms on top of the policy for the store's order type (schemas/policy.py
--                 `with_store_terms`): an order takes them when it is recorded and keeps them.
-- store_hours     when the store is open, by ISO weekday (1 Monday .. 7 Sunday), in the
--                 business's time zone; several ranges a day for a break. A store without
--                 hours is taken to be always open. An order due outside them is an anomaly
--                 for a manager (review rule `store_open`).
CREATE TABLE store_policies (
    store_code text PRIMARY KEY REFERENCES stores (code) ON DELETE CASCADE,
    terms      jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE store_hours (
    store_code text NOT NULL REFERENCES stores (code) ON DELETE CASCADE,
    weekday    smallint NOT NULL CHECK (weekday BETWEEN 1 AND 7),
    opens      time NOT NULL,
    closes     time NOT NULL,
    PRIMARY KEY (store_code, weekday, opens),
    CHECK (opens < closes)
);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orderflow_service') THEN
        EXECUTE 'REVOKE ALL ON store_policies, store_hours FROM orderflow_service';
        EXECUTE 'GRANT SELECT ON store_policies, store_hours TO orderflow_service';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orderflow_api') THEN
        EXECUTE 'GRANT SELECT, INSERT, UPDATE, DELETE ON store_policies, store_hours '
                'TO orderflow_api';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orderflow_reporting') THEN
        EXECUTE 'GRANT SELECT ON store_policies, store_hours TO orderflow_reporting';
    END IF;
END
$$;

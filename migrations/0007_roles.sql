-- Least privilege: the services get only the rights their statements need, reporting reads
-- views with the customers' personal data left out (R4.3.1 statistics; PIPL minimisation).
--
-- orderflow_service   SELECT/INSERT/UPDATE on the operational tables; INSERT on the event log
--                     (R4.1.3 append-only: plus SELECT of its key, which ON CONFLICT and
--                     RETURNING need); DELETE only on order_items (an order's lines are
--                     rewritten when the customer changes them); no DDL, no TRUNCATE.
-- orderflow_reporting SELECT on the masked views and on tables without personal data.
--
-- Both are NOLOGIN group roles: a login role is granted one of them, e.g.
--   CREATE ROLE orderflow_app LOGIN PASSWORD '...' IN ROLE orderflow_service;
-- Migrations and `db_cli load-demo` keep running as the owner of the tables.
--
-- Roles belong to the whole server, so they are created only when missing, and only when the
-- migrating user may create roles; otherwise a DBA creates them and the grants below apply
-- as soon as they exist (re-run this file's DO blocks then). The file is safe to run again.

DO $$
DECLARE
    wanted text;
    may_create boolean;
BEGIN
    SELECT rolsuper OR rolcreaterole INTO may_create FROM pg_roles WHERE rolname = current_user;
    FOREACH wanted IN ARRAY ARRAY['orderflow_service', 'orderflow_reporting'] LOOP
        CONTINUE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = wanted);
        IF NOT coalesce(may_create, false) THEN
            RAISE NOTICE 'role % is missing and % may not create roles: grants to it skipped',
                wanted, current_user;
            CONTINUE;
        END IF;
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN', wanted);
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- created meanwhile by a migration of another database on this server
        END;
    END LOOP;
END
$$;

-- Masks phone numbers inside free text (remarks, subjects): mobiles and privacy numbers
-- (13812345678_1234) keep their first 3 and last 4 digits, landlines their area code.
CREATE OR REPLACE FUNCTION orderflow_mask_phones(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT regexp_replace(
        regexp_replace(
            value,
            '(?<![0-9])(?:\+?86[ -]?)?(1[3-9][0-9])[ -]?[0-9]{4}[ -]?([0-9]{4})([_,#][0-9]{1,6})?(?![0-9])',
            '\1****\2', 'g'),
        '(?<![0-9])(0[0-9]{2,3})[ -]?[0-9]{3,4}[ -]?[0-9]{4}(?![0-9])',
        '\1-********', 'g')
$$;

CREATE OR REPLACE VIEW orders_masked AS
SELECT order_id, view_id, store_code, order_type, region, delivery_mode,
       customer_id,  -- a salted hash of the phone: repeat customers count, nobody is named
       stage, stage_seq,
       round(latitude::numeric, 2) AS latitude_approx,  -- about 1 km: areas, not doors
       round(longitude::numeric, 2) AS longitude_approx,
       items_total, box_total, shipping_fee, package_fee, discount_total, total,
       original_price, discounts, skills,
       orderflow_mask_phones(remarks) AS remarks,
       expected_at, day_seq, created_at, received_at, source, updated_at
FROM orders;

CREATE OR REPLACE VIEW notifications_masked AS
SELECT key, order_id, audience,
       CASE WHEN audience = 'customer' THEN NULL ELSE recipient END AS recipient,
       store_code, orderflow_mask_phones(subject) AS subject, channel, attempts,
       last_error IS NOT NULL AS failed, created_at, sent_at
FROM notifications;

CREATE OR REPLACE VIEW customers_masked AS
SELECT customer_id, credit_score, status, first_seen_at, last_order_at, updated_at
FROM customers;

CREATE OR REPLACE VIEW staff_masked AS
SELECT staff_id, department, region, role, capacity, active_load, shift_start, shift_end,
       active, updated_at
FROM staff;

-- Event details and feedback texts quote customers; the views keep what is countable.
CREATE OR REPLACE VIEW order_events_masked AS
SELECT order_id, seq, at, event, stage, actor, recorded_at
FROM order_events;

CREATE OR REPLACE VIEW feedback_masked AS
SELECT order_id, case_no, kind, channel, owner, state, rounds, satisfied, opened_at, updated_at
FROM feedback;

CREATE OR REPLACE VIEW anomalies_masked AS
SELECT anomaly_id, order_id, kind, decision, opened_at, closed_at, updated_at
FROM anomalies;

DO $$
DECLARE
    t text;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orderflow_service') THEN
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO orderflow_service', current_schema());
        FOREACH t IN ARRAY ARRAY[
            'stores', 'catalogue', 'prices', 'store_scopes', 'departments', 'staff',
            'staff_skills', 'customers', 'orders', 'order_items', 'credit_events', 'anomalies',
            'feedback', 'order_summaries', 'assignments', 'stock', 'stock_ledger',
            'service_slots', 'service_bookings', 'notifications', 'rejected_pushes',
            'patrol_day_seqs', 'patrol_reports'
        ] LOOP
            EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %I TO orderflow_service', t);
        END LOOP;
        EXECUTE 'GRANT DELETE ON order_items TO orderflow_service';
        EXECUTE 'GRANT INSERT, SELECT (order_id, seq) ON order_events TO orderflow_service';
        -- Services check the migrations are applied; only the owner applies them.
        EXECUTE 'GRANT SELECT ON schema_migrations TO orderflow_service';
        EXECUTE format(
            'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO orderflow_service',
            current_schema());
        -- Tables later migrations add are operational by default; an append-only one
        -- revokes UPDATE in its own migration.
        EXECUTE format(
            'ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE ON TABLES '
            'TO orderflow_service', current_schema());
        EXECUTE format(
            'ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT USAGE, SELECT ON SEQUENCES '
            'TO orderflow_service', current_schema());
    END IF;

    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orderflow_reporting') THEN
        -- Nothing by default: a new table may hold personal data until a migration says not.
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO orderflow_reporting', current_schema());
        FOREACH t IN ARRAY ARRAY[
            'orders_masked', 'notifications_masked', 'customers_masked', 'staff_masked',
            'order_events_masked', 'feedback_masked', 'anomalies_masked',
            'stores', 'catalogue', 'prices', 'store_scopes', 'departments', 'staff_skills',
            'order_items', 'order_summaries', 'assignments', 'stock', 'stock_ledger',
            'service_slots', 'service_bookings', 'patrol_day_seqs'
        ] LOOP
            EXECUTE format('GRANT SELECT ON %I TO orderflow_reporting', t);
        END LOOP;
    END IF;
END
$$;

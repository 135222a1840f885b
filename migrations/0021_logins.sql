-- Every process logs in as a role of its own (`python -m starter.db_cli logins`, README
-- "Production"), each a member of the group role its work needs:
--
--   the gateway, the workers   orderflow_service (0007): the gateway writes what the pushes
--                              bring (rejected_pushes, refused_push_counts, a refund case for
--                              an ended order) and reads an order's stage, as the activities do
--   the staff API              orderflow_api (0014)
--   the codec server           orderflow_signin (below): who a sign-in token belongs to, nothing
--                              of the orders
--   `orderctl stats` / report  orderflow_reporting (0007): masked views and the rollup, read-only
--
-- The statistics' rollup (0008) is refreshed by the workers on a Temporal Schedule
-- (`order-stats-refresh`), so that the reporting role only reads it. Both read the event log and
-- the anomalies through the masked views, which now carry the facts the statistics count and no
-- more: who took or handed over an order, a deadline's key, a case's number and round, a
-- reminder's or refund's id, a kind, a score, a cancel code and who cancelled. Never the details
-- that quote the customer (a changed phone or address), nor an anomaly's note or corrections.

CREATE OR REPLACE VIEW order_events_masked AS
SELECT order_id, seq, at, event, stage, actor, recorded_at,
       details ->> 'assignee' AS assignee,
       details ->> 'to_staff' AS to_staff,
       details ->> 'key' AS key,
       details ->> 'case' AS case_no,
       details ->> 'round' AS round,
       COALESCE(details ->> 'remind_id', details ->> 'refund_id') AS ref,
       details ->> 'kind' AS kind,
       details ->> 'score' AS score,
       details ->> 'cancel_code' AS cancel_code,
       details ->> 'by' AS by_whom
FROM order_events;

CREATE OR REPLACE VIEW anomalies_masked AS
SELECT anomaly_id, order_id, kind, decision, opened_at, closed_at, updated_at,
       outcome ->> 'decided_by' AS decided_by,  -- a person's id, `policy` or `system`
       COALESCE((outcome ->> 'escalations')::int, 0) AS escalations,
       COALESCE((outcome ->> 'resume')::boolean, false) AS resumed
FROM anomalies;

DO $$
DECLARE
    may_create boolean;
    t text;
BEGIN
    SELECT rolsuper OR rolcreaterole INTO may_create FROM pg_roles WHERE rolname = current_user;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orderflow_signin') THEN
        IF coalesce(may_create, false) THEN
            BEGIN
                CREATE ROLE orderflow_signin NOLOGIN;
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created meanwhile by a migration of another database on this server
            END;
        ELSE
            RAISE NOTICE 'role orderflow_signin is missing and % may not create roles: grants '
                'to it skipped', current_user;
        END IF;
    END IF;

    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orderflow_signin') THEN
        -- starter.api.tokens.person_for, as the codec server asks it.
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO orderflow_signin', current_schema());
        EXECUTE 'GRANT SELECT (token_hash, staff_id, revoked_at, expires_at), '
            'UPDATE (last_used_at) ON staff_tokens TO orderflow_signin';
        EXECUTE 'GRANT SELECT (staff_id, name, role, region, department, active) ON staff '
            'TO orderflow_signin';
        EXECUTE 'GRANT SELECT (code, manager_id) ON departments TO orderflow_signin';
    END IF;

    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orderflow_service') THEN
        -- The rollup's refresh (analytics.rollup) and the regular reports (analytics.delivery):
        -- they read what reporting reads, and rewrite the rollup's rows, which hold counts and
        -- sums only.
        FOREACH t IN ARRAY ARRAY[
            'orders_masked', 'order_events_masked', 'feedback_masked', 'anomalies_masked',
            'staff_masked'
        ] LOOP
            EXECUTE format('GRANT SELECT ON %I TO orderflow_service', t);
        END LOOP;
        FOREACH t IN ARRAY ARRAY[
            'stats_dirty', 'stats_pending', 'stats_orders', 'stats_durations',
            'stats_deadlines', 'stats_anomalies', 'stats_cancels', 'stats_feedback',
            'stats_staff', 'stats_staff_deadlines'
        ] LOOP
            EXECUTE format('GRANT DELETE ON %I TO orderflow_service', t);
        END LOOP;
    END IF;

    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orderflow_reporting') THEN
        -- A read's live part (analytics.reads): the pairs not yet rolled up, and the patrol's
        -- runs without their report, which quotes the orders it found.
        EXECUTE 'GRANT SELECT ON stats_dirty TO orderflow_reporting';
        EXECUTE 'GRANT SELECT (patrol_id, at, stores, walked, found) ON patrol_reports '
            'TO orderflow_reporting';
    END IF;
END
$$;

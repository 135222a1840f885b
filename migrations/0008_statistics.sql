-- R4.3.1 statistics: a rollup of finished orders per (business day, store), so that a period
-- of a million orders is summed from a few hundred thousand narrow rows instead of read again.
--
-- What keeps it correct as orders finish (starter/stats.py runs the statements):
--   * An order is rolled up once it is finished (closed, rejected or cancelled): reaching its
--     terminal stage puts it in stats_pending, in the same transaction, and the next refresh
--     adds its figures to the rollup and takes it out of stats_pending, in one transaction.
--   * A finished order already rolled up whose figures change later (its summary written after
--     the refresh, a late feedback or anomaly row) marks its (day, store) in stats_dirty; the
--     next refresh recomputes that pair from the raw tables.
--   * `orderctl stats` refreshes first (under an advisory lock) and then reads, in one
--     snapshot, the rollup of clean pairs plus, from the raw tables: running orders (the
--     partial index below finds them without reading the finished ones), pending orders and
--     the finished orders of marked pairs. A change committed at any moment is therefore
--     counted exactly once.
--   * stats_state holds the business time zone the days were cut in and the rollup's format;
--     a change of either marks every pair, so the next refresh rebuilds everything.
--
-- The rollup holds counts, sums and histograms only: no customer data (PIPL minimisation), so
-- the reporting role may read it.

CREATE TABLE stats_state (
    singleton    boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    zone         text NOT NULL,
    format       text NOT NULL,  -- how the rows are cut (bucket width, ...); another rebuilds all
    refreshed_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE stats_dirty (
    day        date NOT NULL,
    store_code text NOT NULL,
    marked_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (day, store_code)
);

CREATE TABLE stats_pending (
    order_id   text PRIMARY KEY,
    day        date NOT NULL,
    store_code text NOT NULL,
    marked_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per (day, store, hour of creation, outcome): counts and money (R4.3.1).
CREATE TABLE stats_orders (
    day               date NOT NULL,
    store_code        text NOT NULL,
    order_type        text NOT NULL,
    region            text NOT NULL,
    hour              smallint NOT NULL,
    outcome           text NOT NULL,
    orders            integer NOT NULL,
    gross             numeric(14, 2) NOT NULL,
    discounts         numeric(14, 2) NOT NULL,
    paid              numeric(14, 2) NOT NULL,
    refunded          numeric(14, 2) NOT NULL,
    rated             integer NOT NULL,
    rating_sum        integer NOT NULL,
    rating_1          integer NOT NULL,
    rating_2          integer NOT NULL,
    rating_3          integer NOT NULL,
    rating_4          integer NOT NULL,
    rating_5          integer NOT NULL,
    complained_orders integer NOT NULL,
    breached_orders   integer NOT NULL,
    hard_orders       integer NOT NULL,
    anomaly_orders    integer NOT NULL,
    patrol_found      integer NOT NULL,
    PRIMARY KEY (day, store_code, order_type, region, hour, outcome)
);

-- Durations as log-scale histograms (bucket b holds ln(1 + seconds) * 20 in [b, b + 1), about
-- 5 % wide), so p50 / p90 of any period and group are read within 2.5 % (of 1 + seconds)
-- without the values.
-- metric: stage:<stage> (R3.3.3 stage_seconds), handling, first_response (R4.2.2).
CREATE TABLE stats_durations (
    day        date NOT NULL,
    store_code text NOT NULL,
    order_type text NOT NULL,
    region     text NOT NULL,
    metric     text NOT NULL,
    bucket     smallint NOT NULL,
    n          integer NOT NULL,
    seconds    double precision NOT NULL,
    PRIMARY KEY (day, store_code, order_type, region, metric, bucket)
);

-- Deadlines per clause: met on time, breached (late, within the hard limit), hard (past it).
CREATE TABLE stats_deadlines (
    day        date NOT NULL,
    store_code text NOT NULL,
    order_type text NOT NULL,
    region     text NOT NULL,
    clause     text NOT NULL,
    met        integer NOT NULL,
    breached   integer NOT NULL,
    hard       integer NOT NULL,
    PRIMARY KEY (day, store_code, order_type, region, clause)
);

-- R5.2.4 anomalies by kind and decision ('open' while undecided).
CREATE TABLE stats_anomalies (
    day        date NOT NULL,
    store_code text NOT NULL,
    order_type text NOT NULL,
    region     text NOT NULL,
    kind       text NOT NULL,
    decision   text NOT NULL,
    n          integer NOT NULL,
    escalated  integer NOT NULL,
    resumed    integer NOT NULL,
    PRIMARY KEY (day, store_code, order_type, region, kind, decision)
);

-- Cancellations and rejections by reason code and by whom.
CREATE TABLE stats_cancels (
    day        date NOT NULL,
    store_code text NOT NULL,
    order_type text NOT NULL,
    region     text NOT NULL,
    outcome    text NOT NULL,
    code       integer NOT NULL,
    by_whom    text NOT NULL,
    n          integer NOT NULL,
    PRIMARY KEY (day, store_code, order_type, region, outcome, code, by_whom)
);

-- R4.2 feedback cases by kind.
CREATE TABLE stats_feedback (
    day         date NOT NULL,
    store_code  text NOT NULL,
    order_type  text NOT NULL,
    region      text NOT NULL,
    kind        text NOT NULL,
    cases       integer NOT NULL,
    responded   integer NOT NULL,
    rounds      integer NOT NULL,
    multi_round integer NOT NULL,
    satisfied   integer NOT NULL,
    escalated   integer NOT NULL,
    PRIMARY KEY (day, store_code, order_type, region, kind)
);

-- R7.2 per person: what they held (by the event log's assignments) and decided.
CREATE TABLE stats_staff (
    day               date NOT NULL,
    store_code        text NOT NULL,
    staff_id          text NOT NULL,
    orders            integer NOT NULL,
    handled           integer NOT NULL,
    handling_seconds  double precision NOT NULL,
    rated             integer NOT NULL,
    rating_sum        integer NOT NULL,
    complaints        integer NOT NULL,
    anomalies_decided integer NOT NULL,
    PRIMARY KEY (day, store_code, staff_id)
);

CREATE TABLE stats_staff_deadlines (
    day        date NOT NULL,
    store_code text NOT NULL,
    staff_id   text NOT NULL,
    clause     text NOT NULL,
    met        integer NOT NULL,
    breached   integer NOT NULL,
    hard       integer NOT NULL,
    PRIMARY KEY (day, store_code, staff_id, clause)
);

-- Running orders of a period, without reading the finished ones.
CREATE INDEX orders_open_created_idx ON orders (created_at)
    WHERE stage NOT IN ('closed', 'rejected', 'cancelled');

-- Security definer: the services write the tables that fire these and need no rights on the
-- rollup for that.
CREATE FUNCTION stats_order_finished() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO stats_pending (order_id, day, store_code)
    SELECT NEW.order_id, (NEW.created_at AT TIME ZONE st.zone)::date, NEW.store_code
    FROM stats_state st
    ON CONFLICT (order_id) DO NOTHING;
    RETURN NULL;
END;
$$;

-- A pending order is read whole when it is rolled up. The lock waits for a refresh rolling it
-- up right now; once that one committed the order is no longer pending and its pair is marked.
CREATE FUNCTION stats_order_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM 1 FROM stats_pending WHERE order_id = NEW.order_id FOR UPDATE;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    INSERT INTO stats_dirty (day, store_code)
    SELECT (o.created_at AT TIME ZONE st.zone)::date, o.store_code
    FROM orders o CROSS JOIN stats_state st
    WHERE o.order_id = NEW.order_id AND o.stage IN ('closed', 'rejected', 'cancelled')
    ON CONFLICT (day, store_code) DO NOTHING;
    RETURN NULL;
END;
$$;

CREATE TRIGGER stats_order_finished
    AFTER UPDATE OF stage ON orders
    FOR EACH ROW
    WHEN (NEW.stage IN ('closed', 'rejected', 'cancelled') AND OLD.stage IS DISTINCT FROM NEW.stage)
    EXECUTE FUNCTION stats_order_finished();
CREATE TRIGGER stats_summary_written
    AFTER INSERT OR UPDATE ON order_summaries
    FOR EACH ROW EXECUTE FUNCTION stats_order_changed();
CREATE TRIGGER stats_feedback_written
    AFTER INSERT OR UPDATE ON feedback
    FOR EACH ROW EXECUTE FUNCTION stats_order_changed();
CREATE TRIGGER stats_anomaly_written
    AFTER INSERT OR UPDATE ON anomalies
    FOR EACH ROW EXECUTE FUNCTION stats_order_changed();

DO $$
DECLARE
    t text;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orderflow_reporting') THEN
        FOREACH t IN ARRAY ARRAY[
            'stats_state', 'stats_pending', 'stats_orders', 'stats_durations', 'stats_deadlines',
            'stats_anomalies', 'stats_cancels', 'stats_feedback', 'stats_staff',
            'stats_staff_deadlines'
        ] LOOP
            EXECUTE format('GRANT SELECT ON %I TO orderflow_reporting', t);
        END LOOP;
    END IF;
END
$$;

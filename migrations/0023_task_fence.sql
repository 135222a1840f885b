-- Lines written by a workflow task that never completed give way to the task that did.
--
-- An order whose record's writes are local activities (patch `local-writes`) writes its lines
-- from inside a workflow task. A task whose worker dies before it completes is attempted again,
-- with the events that came meanwhile, and may log other lines at the same numbers: the lines
-- the first attempt wrote describe a course the order never took. Each such write carries its
-- task: when the task started, in microseconds of workflow time, later for every later attempt
-- (not the history's length, which a failed speculative task, one an update brought, gives
-- back to the next attempt):
--   orders.recorded_task  the newest task that wrote the order's record; a write from an older
--                         one comes from an attempt that did not complete, and changes nothing
--   order_events.task     the task that wrote the line (0: a server activity, before the patch)
-- The event log stays append-only for everyone: only `orderflow_supersede_lines` removes lines,
-- and only an older task's from where a newer task's write begins.
ALTER TABLE orders ADD COLUMN recorded_task bigint NOT NULL DEFAULT 0;
ALTER TABLE order_events ADD COLUMN task bigint NOT NULL DEFAULT 0;

CREATE OR REPLACE FUNCTION order_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('orderflow.superseding', true) = OLD.order_id
       AND OLD.task < current_setting('orderflow.superseding_task', true)::bigint THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'order_events is append-only (% refused)', TG_OP;
END;
$$;

-- Removes the lines of `order_id` numbered `from_seq` or later that a task older than `task`
-- wrote, and takes the order's stage back to its last line left; how many lines went.
CREATE FUNCTION orderflow_supersede_lines(order_id text, task bigint, from_seq integer)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    removed integer;
BEGIN
    PERFORM set_config('orderflow.superseding', order_id, true);
    PERFORM set_config('orderflow.superseding_task', task::text, true);
    DELETE FROM order_events e
    WHERE e.order_id = orderflow_supersede_lines.order_id
      AND e.seq >= from_seq AND e.task < orderflow_supersede_lines.task;
    GET DIAGNOSTICS removed = ROW_COUNT;
    PERFORM set_config('orderflow.superseding', '', true);
    IF removed > 0 THEN
        UPDATE orders o SET stage = coalesce(last.stage, o.stage),
                            stage_seq = coalesce(last.seq, 0), updated_at = now()
        FROM (SELECT NULL) AS one
        LEFT JOIN LATERAL (
            SELECT e.stage, e.seq FROM order_events e
            WHERE e.order_id = orderflow_supersede_lines.order_id
            ORDER BY e.seq DESC LIMIT 1
        ) AS last ON true
        WHERE o.order_id = orderflow_supersede_lines.order_id;
    END IF;
    RETURN removed;
END;
$$;
REVOKE ALL ON FUNCTION orderflow_supersede_lines(text, bigint, integer) FROM PUBLIC;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orderflow_service') THEN
        EXECUTE 'GRANT EXECUTE ON FUNCTION orderflow_supersede_lines(text, bigint, integer) '
                'TO orderflow_service';
    END IF;
END
$$;

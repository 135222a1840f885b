-- R4.2.1 reminders (催单) and refund requests (退款申请) the platform pushes are feedback cases
-- too, linked to the platform's remind_id / refund_id; R4.3.1 every refund request is on record
-- with the money given back once agreed, so the statistics' net is net of partial refunds.

ALTER TABLE feedback DROP CONSTRAINT feedback_kind_check;
ALTER TABLE feedback ADD CONSTRAINT feedback_kind_check CHECK (kind IN (
    'inquiry', 'complaint', 'suggestion', 'dispute', 'reminder', 'refund'));
ALTER TABLE feedback ADD COLUMN ref text;

-- One row per (order, refund request), replaced by each newer state; a decided request stays
-- decided (its first decision), so a late retry of the request's opening changes nothing.
CREATE TABLE refunds (
    order_id     text NOT NULL,
    refund_id    text NOT NULL,
    partial      boolean NOT NULL,
    amount       numeric(12, 2),  -- what a partial refund asks for
    reason       text NOT NULL DEFAULT '',
    state        text NOT NULL DEFAULT 'awaiting_decision'
        CHECK (state IN ('awaiting_decision', 'agreed', 'rejected', 'withdrawn')),
    refunded     numeric(12, 2) NOT NULL DEFAULT 0 CHECK (refunded >= 0),  -- given back
    decided_by   text,
    requested_at timestamptz NOT NULL,
    decided_at   timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, refund_id),
    CHECK (state = 'agreed' OR refunded = 0)
);
CREATE INDEX refunds_requested_idx ON refunds (requested_at);

-- A refund agreed after the order's figures were rolled up marks its pair (migration 0008).
CREATE TRIGGER stats_refund_written
    AFTER INSERT OR UPDATE ON refunds
    FOR EACH ROW EXECUTE FUNCTION stats_order_changed();

-- The customer's reason quotes them; the views keep what is countable. Columns added at the end.
CREATE OR REPLACE VIEW feedback_masked AS
SELECT order_id, case_no, kind, channel, owner, state, rounds, satisfied, opened_at, updated_at,
       ref, jsonb_array_length(responses) AS responses
FROM feedback;

CREATE VIEW refunds_masked AS
SELECT order_id, refund_id, partial, amount, state, refunded, decided_by, requested_at,
       decided_at, updated_at
FROM refunds;

DO $$
BEGIN
    -- The service role gets the new table by 0007's default privileges.
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orderflow_reporting') THEN
        EXECUTE 'GRANT SELECT ON refunds_masked TO orderflow_reporting';
    END IF;
END
$$;

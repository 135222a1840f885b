-- People read orders from the system of record, not from the workflows (R1.3, R4.1.3): each
-- order's row keeps the workflow's status as it last wrote it, and what listings filter and
-- sort by in columns of their own.
--
-- view          the workflow's OrderStatus (schemas/status.py) without its timeline, which is
--               order_events; NULL for orders recorded before this migration.
-- view_version  orders the writes of the view: an older one, retried or late, never replaces a
--               newer one.
-- data_version  the view version that last rewrote the order's data (a customer change, a
--               corrected phone or address, an adjusted price): same rule.
-- assignee      the staff id the order is assigned to (R2.3), for "my work".
-- next_due_at   the earliest due time of a deadline still open (R4.1.1), to sort "my work".
--
-- The service role has these columns by 0007's grants on orders. Reporting reads orders_masked,
-- which names its columns and so leaves these out: the view quotes the customer (the promise,
-- feedback, anomaly details).

ALTER TABLE orders
    ADD COLUMN view jsonb,
    ADD COLUMN view_version integer NOT NULL DEFAULT 0,
    ADD COLUMN data_version integer NOT NULL DEFAULT 0,
    ADD COLUMN assignee text,
    ADD COLUMN next_due_at timestamptz;

-- "My work": a person's orders, the most urgent first.
CREATE INDEX orders_assignee_due_idx ON orders (assignee, next_due_at) WHERE assignee IS NOT NULL;

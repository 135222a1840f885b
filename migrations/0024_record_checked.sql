-- The newest writing task of each order's record that the record check has held against the
-- order's history (`activities/record_check.py`): a task that wrote and never completed leaves
-- lines the order never logged, until the order writes again (0023). An order waiting on a
-- person may not write again, so the check looks at each order once its record has been quiet
-- a while, and asks the order to write again when the history holds no such task completed.
ALTER TABLE orders ADD COLUMN record_checked_task bigint NOT NULL DEFAULT 0;
CREATE INDEX orders_record_unchecked ON orders (updated_at)
    WHERE recorded_task > record_checked_task;

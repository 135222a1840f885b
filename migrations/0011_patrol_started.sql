-- R2.1.2 an order whose workflow the patrol started, or found already started, is not looked
-- at again: one start per order, beyond Temporal's retention of closed workflows.
ALTER TABLE patrol_day_seqs ADD COLUMN started_at timestamptz;  -- its workflow is known to exist
CREATE INDEX patrol_day_seqs_order_idx ON patrol_day_seqs (order_id);

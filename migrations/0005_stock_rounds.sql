-- R3.1.2 an order whose items change reserves again: each reservation round has its own
-- ledger rows, so a retried step of one round is still a no-op.
ALTER TABLE stock_ledger ADD COLUMN round integer NOT NULL DEFAULT 1 CHECK (round >= 1);
ALTER TABLE stock_ledger DROP CONSTRAINT stock_ledger_order_id_sku_kind_key;
ALTER TABLE stock_ledger ADD CONSTRAINT stock_ledger_once UNIQUE (order_id, round, sku, kind);

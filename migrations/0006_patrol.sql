-- R2.1.2 the patrol: which order each store's daily sequence number is (asked once), and a
-- report of every run (R6.3.2 the integration checked; faults raised).
CREATE TABLE patrol_day_seqs (
    store_code    text NOT NULL REFERENCES stores (code),
    platform_date text NOT NULL,  -- yyyyMMdd in platform time
    day_seq       integer NOT NULL,
    order_id      text NOT NULL,
    PRIMARY KEY (store_code, platform_date, day_seq)
);

CREATE TABLE patrol_reports (
    patrol_id   text PRIMARY KEY,  -- the PatrolWorkflow run
    at          timestamptz NOT NULL,
    stores      text[] NOT NULL,
    walked      integer NOT NULL,
    found       text[] NOT NULL,   -- orders only the patrol found: the push feed missed them
    report      jsonb NOT NULL
);
CREATE INDEX patrol_reports_at_idx ON patrol_reports (at);

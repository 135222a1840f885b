-- Orders, their append-only event log, customers and credit, anomalies, feedback, summaries
-- (R1.3 data accuracy, R2.1.1, R3.3.3, R4.1.3, R4.2, R5.2.4, R5.3.3).

CREATE TABLE customers (
    customer_id   text PRIMARY KEY,
    name          text NOT NULL DEFAULT '',
    phone         text NOT NULL DEFAULT '',
    credit_score  integer NOT NULL DEFAULT 100,
    status        text NOT NULL DEFAULT 'good' CHECK (status IN ('good', 'restricted', 'banned')),
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    last_order_at timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX customers_status_idx ON customers (status) WHERE status <> 'good';

CREATE TABLE orders (
    order_id         text PRIMARY KEY,
    view_id          text NOT NULL DEFAULT '',
    store_code       text NOT NULL REFERENCES stores (code),
    order_type       text NOT NULL CHECK (order_type IN ('goods', 'service')),
    region           text NOT NULL,
    delivery_mode    text NOT NULL
        CHECK (delivery_mode IN ('self_delivery', 'platform_courier', 'pickup', 'on_site')),
    customer_id      text NOT NULL REFERENCES customers (customer_id),
    stage            text NOT NULL DEFAULT 'received' CHECK (stage IN (
        'received', 'reviewing', 'accepted', 'assigned', 'confirmed', 'in_progress',
        'delivering', 'delivered', 'closed', 'rejected', 'cancelled', 'on_hold')),
    stage_seq        integer NOT NULL DEFAULT 0,
    customer_name    text NOT NULL DEFAULT '',
    customer_phone   text NOT NULL DEFAULT '',
    customer_address text NOT NULL DEFAULT '',
    latitude         double precision,
    longitude        double precision,
    items_total      numeric(12, 2) NOT NULL DEFAULT 0,
    box_total        numeric(12, 2) NOT NULL DEFAULT 0,
    shipping_fee     numeric(12, 2) NOT NULL DEFAULT 0,
    package_fee      numeric(12, 2) NOT NULL DEFAULT 0,
    discount_total   numeric(12, 2) NOT NULL DEFAULT 0,
    total            numeric(12, 2) NOT NULL,
    original_price   numeric(12, 2),
    discounts        jsonb NOT NULL DEFAULT '[]',
    skills           text[] NOT NULL DEFAULT '{}',
    remarks          text NOT NULL DEFAULT '',
    expected_at      timestamptz,
    day_seq          integer,
    created_at       timestamptz NOT NULL,
    received_at      timestamptz NOT NULL,
    source           text NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_store_created_idx ON orders (store_code, created_at);
CREATE INDEX orders_customer_created_idx ON orders (customer_id, created_at);
CREATE INDEX orders_stage_idx ON orders (stage);
CREATE INDEX orders_created_idx ON orders (created_at);
CREATE INDEX orders_store_day_seq_idx ON orders (store_code, day_seq);

CREATE TABLE order_items (
    order_id   text NOT NULL REFERENCES orders (order_id) ON DELETE CASCADE,
    line_no    integer NOT NULL,
    sku        text NOT NULL,
    name       text NOT NULL,
    quantity   integer NOT NULL CHECK (quantity > 0),
    unit_price numeric(12, 2) NOT NULL,
    box_num    integer NOT NULL DEFAULT 0,
    box_price  numeric(12, 2) NOT NULL DEFAULT 0,
    spec       text NOT NULL DEFAULT '',
    PRIMARY KEY (order_id, line_no)
);
CREATE INDEX order_items_sku_idx ON order_items (sku);

-- R4.1.3 append-only: a row, once written, is never changed or removed.
CREATE TABLE order_events (
    order_id    text NOT NULL,
    seq         integer NOT NULL,
    at          timestamptz NOT NULL,
    event       text NOT NULL,
    stage       text NOT NULL,
    actor       text NOT NULL DEFAULT 'system',
    details     jsonb NOT NULL DEFAULT '{}',
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, seq)
);
CREATE INDEX order_events_at_idx ON order_events (at);
CREATE INDEX order_events_event_idx ON order_events (event, at);

CREATE FUNCTION order_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'order_events is append-only (% refused)', TG_OP;
END;
$$;
CREATE TRIGGER order_events_append_only
    BEFORE UPDATE OR DELETE ON order_events
    FOR EACH ROW EXECUTE FUNCTION order_events_append_only();

CREATE TABLE credit_events (
    order_id    text NOT NULL,
    kind        text NOT NULL
        CHECK (kind IN ('fraud', 'no_show', 'cancellation', 'complaint', 'completed')),
    customer_id text NOT NULL REFERENCES customers (customer_id),
    delta       integer NOT NULL,
    score_after integer NOT NULL,
    note        text NOT NULL DEFAULT '',
    at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, kind)
);
CREATE INDEX credit_events_customer_idx ON credit_events (customer_id, at);

CREATE TABLE anomalies (
    anomaly_id text PRIMARY KEY,
    order_id   text NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('info', 'price', 'prohibited', 'fraud', 'other')),
    detail     text NOT NULL,
    opened_at  timestamptz NOT NULL,
    decision   text,
    outcome    jsonb,
    closed_at  timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX anomalies_order_idx ON anomalies (order_id);
CREATE INDEX anomalies_kind_opened_idx ON anomalies (kind, opened_at);
CREATE INDEX anomalies_open_idx ON anomalies (opened_at) WHERE closed_at IS NULL;

-- R4.2 feedback cases, one row per (order, case number).
CREATE TABLE feedback (
    order_id    text NOT NULL,
    case_no     integer NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('inquiry', 'complaint', 'suggestion', 'dispute')),
    text        text NOT NULL,
    channel     text NOT NULL DEFAULT 'platform',
    owner       text,
    state       text NOT NULL DEFAULT 'awaiting_response',
    rounds      integer NOT NULL DEFAULT 1,
    responses   jsonb NOT NULL DEFAULT '[]',
    resolutions jsonb NOT NULL DEFAULT '[]',
    satisfied   boolean,
    opened_at   timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, case_no)
);
CREATE INDEX feedback_open_idx ON feedback (opened_at) WHERE state <> 'satisfied';

-- R3.3.3 the post-execution summary; R4.3.1 statistics read it.
CREATE TABLE order_summaries (
    order_id        text PRIMARY KEY,
    order_type      text NOT NULL CHECK (order_type IN ('goods', 'service')),
    outcome         text NOT NULL,
    stage_seconds   jsonb NOT NULL DEFAULT '{}',
    breaches        jsonb NOT NULL DEFAULT '[]',
    exceptions      jsonb NOT NULL DEFAULT '[]',
    anomalies       jsonb NOT NULL DEFAULT '[]',
    feedback_rounds integer NOT NULL DEFAULT 0,
    rating          smallint CHECK (rating BETWEEN 1 AND 5),
    improvements    jsonb NOT NULL DEFAULT '[]',
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX order_summaries_outcome_idx ON order_summaries (order_type, outcome);

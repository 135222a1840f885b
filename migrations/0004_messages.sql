-- Notifications (delivered once per key) and pushes the gateway refused (R6.3.2).

CREATE TABLE notifications (
    key        text PRIMARY KEY,
    order_id   text NOT NULL,
    audience   text NOT NULL
        CHECK (audience IN ('staff', 'supervisor', 'manager', 'customer', 'platform_liaison')),
    recipient  text,
    store_code text NOT NULL,
    subject    text NOT NULL,
    text       text NOT NULL,
    channel    text NOT NULL,
    attempts   integer NOT NULL DEFAULT 0,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz
);
CREATE INDEX notifications_order_idx ON notifications (order_id);
CREATE INDEX notifications_unsent_idx ON notifications (created_at) WHERE sent_at IS NULL;

CREATE TABLE rejected_pushes (
    push_id     bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    route       text NOT NULL,
    method      text NOT NULL DEFAULT 'POST',
    query       text NOT NULL DEFAULT '',
    raw_body    text NOT NULL DEFAULT '',
    headers     jsonb NOT NULL DEFAULT '{}',
    reason      text NOT NULL
);
CREATE INDEX rejected_pushes_received_idx ON rejected_pushes (received_at);

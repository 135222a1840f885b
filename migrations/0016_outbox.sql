-- Notifications reach a person without holding up an order (R2.3.3, R5.2.1, R6.2).
--
-- notifications   each row is an entry in its recipient's inbox (read_at: the read mark),
--                 rendered in the recipient's language when it was written. `channel`,
--                 `attempts`, `last_error` and `sent_at` now summarise its deliveries.
-- notify_routes   where a person, a department or a store is reached: a group robot (WeCom,
--                 DingTalk, Feishu) or a plain webhook, and whom to @-mention on it. A person
--                 without a URL of their own is @-mentioned on their department's robot.
-- deliveries      the outbox: one row per notification and route, written in the same
--                 transaction as the notification; the dispatcher (workers/dispatcher.py)
--                 sends each once, within its channel's rate, with retries and a dead letter.
--                 `channel_key` names the robot (a hash of its URL, never the URL) so the rate
--                 is counted per robot.
ALTER TABLE notifications
    ADD COLUMN topic    text,
    ADD COLUMN due_at   timestamptz,
    ADD COLUMN language text NOT NULL DEFAULT 'zh-CN',
    ADD COLUMN read_at  timestamptz;
CREATE INDEX notifications_inbox_idx ON notifications (recipient, created_at DESC)
    WHERE audience <> 'customer';
-- What came before the inbox is not news to anyone: it starts read.
UPDATE notifications SET read_at = created_at;

CREATE TABLE notify_routes (
    scope      text NOT NULL CHECK (scope IN ('person', 'department', 'store')),
    owner      text NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('wecom', 'dingtalk', 'feishu', 'webhook')),
    url        text,
    secret     text,
    mention    text,  -- WeCom userid, DingTalk userId, Feishu open_id
    mobile     text,  -- @-mention by mobile (WeCom, DingTalk)
    language   text NOT NULL DEFAULT 'zh-CN' CHECK (language IN ('zh-CN', 'en')),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, owner),
    CHECK (scope = 'person' OR url IS NOT NULL),
    CHECK (url IS NULL OR url ~ '^https?://[^[:space:]]+$')
);

CREATE TABLE deliveries (
    notification_key text NOT NULL REFERENCES notifications (key) ON DELETE CASCADE,
    route            text NOT NULL,  -- 'person:S-101', 'department:D-GOODS-SH', 'default'
    kind             text NOT NULL CHECK (kind IN ('wecom', 'dingtalk', 'feishu', 'webhook')),
    channel_key      text NOT NULL,
    mention          text,
    mobile           text,
    state            text NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'sent', 'dead')),
    attempts         integer NOT NULL DEFAULT 0,
    next_at          timestamptz NOT NULL DEFAULT now(),
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    PRIMARY KEY (notification_key, route)
);
CREATE INDEX deliveries_due_idx ON deliveries (next_at) WHERE state = 'pending';
CREATE INDEX deliveries_rate_idx ON deliveries (channel_key, sent_at) WHERE state = 'sent';

-- Each time a customer's contact number is shown to a person (the assignee or a manager of the
-- order): who and when (PIPL: access to personal data on record).
CREATE TABLE contact_reveals (
    reveal_id  bigserial PRIMARY KEY,
    order_id   text NOT NULL,
    staff_id   text NOT NULL,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX contact_reveals_order_idx ON contact_reveals (order_id, at);

CREATE OR REPLACE VIEW staff_inbox AS
SELECT n.key, n.order_id, n.audience, n.recipient, n.store_code, n.topic, n.subject, n.text,
       n.due_at, n.created_at, n.read_at,
       (SELECT string_agg(d.route || '=' || d.state, ',' ORDER BY d.route)
          FROM deliveries d WHERE d.notification_key = n.key) AS deliveries
FROM notifications n
WHERE n.audience <> 'customer';

-- What everyone was told about an order, the customer included (R2.4.3, R3.3.1, R3.4.1): shown
-- with the order to those who may read it; whom a customer notification went to is left out.
CREATE OR REPLACE VIEW order_told AS
SELECT n.order_id, n.audience,
       CASE WHEN n.audience = 'customer' THEN NULL ELSE n.recipient END AS recipient,
       n.subject, n.text, n.created_at,
       (SELECT bool_or(d.state = 'sent') FROM deliveries d
         WHERE d.notification_key = n.key) AS delivered
FROM notifications n;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orderflow_service') THEN
        EXECUTE 'GRANT SELECT, INSERT, UPDATE ON notify_routes, deliveries TO orderflow_service';
        EXECUTE 'REVOKE ALL ON contact_reveals FROM orderflow_service';  -- the API's record
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orderflow_api') THEN
        -- The inbox: a person reads what is addressed to them and marks it read; the
        -- customers' notifications stay out of the staff API's reach.
        EXECUTE 'GRANT SELECT ON staff_inbox, order_told, stores, order_items TO orderflow_api';
        EXECUTE 'GRANT INSERT ON contact_reveals TO orderflow_api';
        EXECUTE 'GRANT USAGE ON SEQUENCE contact_reveals_reveal_id_seq TO orderflow_api';
        EXECUTE 'GRANT SELECT (key, recipient, audience, read_at), UPDATE (read_at) ON notifications '
                'TO orderflow_api';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orderflow_reporting') THEN
        EXECUTE 'GRANT SELECT (notification_key, route, kind, channel_key, state, attempts, '
                'next_at, created_at, sent_at) ON deliveries TO orderflow_reporting';
    END IF;
END
$$;

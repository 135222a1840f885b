-- What an order claims while it runs: a person's capacity, stock, a service slot (R2.3, R3.1.2, R3.2.1).

-- At most one active assignment per order; claimed capacity is staff.active_load.
CREATE TABLE assignments (
    assignment_id  bigserial PRIMARY KEY,
    order_id       text NOT NULL,
    staff_id       text NOT NULL REFERENCES staff (staff_id),
    department     text NOT NULL,
    round          integer NOT NULL DEFAULT 1,
    active         boolean NOT NULL DEFAULT true,
    claimed_at     timestamptz NOT NULL DEFAULT now(),
    released_at    timestamptz,
    release_reason text,
    CHECK (active = (released_at IS NULL))
);
CREATE UNIQUE INDEX assignments_one_active_idx ON assignments (order_id) WHERE active;
CREATE INDEX assignments_staff_active_idx ON assignments (staff_id) WHERE active;
CREATE INDEX assignments_order_idx ON assignments (order_id);

-- R3.1.2 never oversold: available = on_hand - reserved, never negative.
CREATE TABLE stock (
    store_code text NOT NULL REFERENCES stores (code),
    sku        text NOT NULL REFERENCES catalogue (sku),
    on_hand    integer NOT NULL CHECK (on_hand >= 0),
    reserved   integer NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    low_water  integer NOT NULL DEFAULT 0 CHECK (low_water >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (store_code, sku),
    CHECK (reserved <= on_hand)
);

-- One row per (order, sku, kind): a retried step finds its row and changes nothing.
-- quantity is always positive; kind says what it did: reserve adds to stock.reserved,
-- release takes it back off, commit takes it off both reserved and on_hand.
CREATE TABLE stock_ledger (
    entry_id   bigserial PRIMARY KEY,
    order_id   text NOT NULL,
    store_code text NOT NULL,
    sku        text NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('reserve', 'commit', 'release')),
    quantity   integer NOT NULL CHECK (quantity > 0),
    at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (order_id, sku, kind)
);
CREATE INDEX stock_ledger_store_sku_idx ON stock_ledger (store_code, sku);

CREATE TABLE service_slots (
    slot_id    bigserial PRIMARY KEY,
    staff_id   text NOT NULL REFERENCES staff (staff_id),
    store_code text NOT NULL REFERENCES stores (code),
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL,
    CHECK (ends_at > starts_at),
    UNIQUE (staff_id, starts_at)
);
CREATE INDEX service_slots_starts_idx ON service_slots (starts_at);

-- R3.2.1 a slot is held by at most one active booking: double booking is impossible.
CREATE TABLE service_bookings (
    booking_id  bigserial PRIMARY KEY,
    order_id    text NOT NULL,
    staff_id    text NOT NULL REFERENCES staff (staff_id),
    slot_id     bigint NOT NULL REFERENCES service_slots (slot_id),
    active      boolean NOT NULL DEFAULT true,
    booked_at   timestamptz NOT NULL DEFAULT now(),
    released_at timestamptz,
    CHECK (active = (released_at IS NULL))
);
CREATE UNIQUE INDEX service_bookings_slot_once_idx ON service_bookings (staff_id, slot_id) WHERE active;
CREATE INDEX service_bookings_order_idx ON service_bookings (order_id) WHERE active;

-- The company: stores, what they sell and at what price, departments and staff (R2.2.2, R2.2.3, R2.3).

CREATE TABLE stores (
    code               text PRIMARY KEY,
    name               text NOT NULL,
    region             text NOT NULL,
    order_type         text NOT NULL CHECK (order_type IN ('goods', 'service')),
    address            text NOT NULL DEFAULT '',
    phone              text NOT NULL DEFAULT '',
    latitude           double precision,
    longitude          double precision,
    delivery_radius_km numeric(6, 2) NOT NULL DEFAULT 0 CHECK (delivery_radius_km >= 0),
    self_delivery      boolean NOT NULL DEFAULT false,
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stores_region_type_idx ON stores (region, order_type);

CREATE TABLE catalogue (
    sku              text PRIMARY KEY,
    name             text NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('goods', 'service')),
    scope            text NOT NULL,
    prohibited       boolean NOT NULL DEFAULT false,
    skill            text,
    duration_minutes integer CHECK (duration_minutes > 0),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX catalogue_scope_idx ON catalogue (scope);

-- tolerance: the share of unit_price a pushed price may differ by; NULL means the review default.
CREATE TABLE prices (
    sku        text PRIMARY KEY REFERENCES catalogue (sku) ON DELETE CASCADE,
    unit_price numeric(12, 2) NOT NULL CHECK (unit_price >= 0),
    box_price  numeric(12, 2) NOT NULL DEFAULT 0 CHECK (box_price >= 0),
    tolerance  numeric(5, 4) CHECK (tolerance >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- R2.2.2 the business scope each store may sell.
CREATE TABLE store_scopes (
    store_code text NOT NULL REFERENCES stores (code) ON DELETE CASCADE,
    scope      text NOT NULL,
    PRIMARY KEY (store_code, scope)
);

CREATE TABLE departments (
    code       text PRIMARY KEY,
    name       text NOT NULL,
    order_type text NOT NULL CHECK (order_type IN ('goods', 'service')),
    region     text NOT NULL,
    manager_id text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX departments_type_region_idx ON departments (order_type, region);

-- active_load counts active assignments; it only moves by a conditional update (R2.3.2).
CREATE TABLE staff (
    staff_id    text PRIMARY KEY,
    name        text NOT NULL,
    department  text NOT NULL REFERENCES departments (code),
    region      text NOT NULL,
    role        text NOT NULL,
    phone       text NOT NULL DEFAULT '',
    capacity    integer NOT NULL CHECK (capacity >= 0),
    active_load integer NOT NULL DEFAULT 0 CHECK (active_load >= 0),
    shift_start time,
    shift_end   time,
    active      boolean NOT NULL DEFAULT true,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX staff_department_idx ON staff (department) WHERE active;

-- R7.1 skill levels recorded for assignment.
CREATE TABLE staff_skills (
    staff_id text NOT NULL REFERENCES staff (staff_id) ON DELETE CASCADE,
    skill    text NOT NULL,
    level    smallint NOT NULL CHECK (level BETWEEN 1 AND 5),
    PRIMARY KEY (staff_id, skill)
);
CREATE INDEX staff_skills_skill_idx ON staff_skills (skill);

-- siyu schema v1 (SQLite). Instants: microseconds since the epoch, UTC. Money: fen.
-- The foreign keys to tenants document the model; the connection does not enforce them
-- (an import checks its tenant once instead).
CREATE TABLE tenants (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    time_zone   TEXT NOT NULL DEFAULT 'Asia/Shanghai',
    created_at  INTEGER NOT NULL
);

CREATE TABLE customers (
    tenant_id        INTEGER NOT NULL REFERENCES tenants (id),
    customer_id      TEXT NOT NULL,
    name             TEXT,
    phone            TEXT,
    gender           TEXT CHECK (gender IN ('female', 'male', 'other')),
    birthday         TEXT,
    region           TEXT,
    channel          TEXT,
    -- 1 while the channel is only that of the earliest order seen (no customers file gave it)
    channel_inferred INTEGER NOT NULL DEFAULT 0,
    referrer_id      TEXT,
    joined_at        INTEGER NOT NULL,
    -- 1 while joined_at is only the first sighting (an order, an event, an import without
    -- joined_at): an earlier sighting moves it earlier.
    joined_inferred  INTEGER NOT NULL CHECK (joined_inferred IN (0, 1)),
    version          INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (tenant_id, customer_id)
) WITHOUT ROWID;

CREATE TABLE orders (
    tenant_id    INTEGER NOT NULL REFERENCES tenants (id),
    order_id     TEXT NOT NULL,
    customer_id  TEXT NOT NULL,
    ordered_at   INTEGER NOT NULL,
    amount       INTEGER NOT NULL,   -- >= 0, checked by siyu-core (a CHECK here costs imports ~15%)
    discount     INTEGER NOT NULL,   -- >= 0, likewise
    coupon_code  TEXT,
    channel      TEXT,
    status       TEXT NOT NULL,      -- 'paid' or 'refunded', likewise
    version      INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (tenant_id, order_id)
) WITHOUT ROWID;

CREATE INDEX orders_by_customer ON orders (tenant_id, customer_id);

CREATE TABLE events (
    tenant_id    INTEGER NOT NULL REFERENCES tenants (id),
    event_id     TEXT NOT NULL,
    customer_id  TEXT NOT NULL,
    type         TEXT NOT NULL,
    occurred_at  INTEGER NOT NULL,
    properties   TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant_id, event_id)
) WITHOUT ROWID;

CREATE INDEX events_by_customer ON events (tenant_id, customer_id);

CREATE TABLE customer_tags (
    tenant_id    INTEGER NOT NULL REFERENCES tenants (id),
    customer_id  TEXT NOT NULL,
    tag          TEXT NOT NULL,
    -- where the tag came from: 'import' (customers file), 'manual:<who>', 'rule:<name>'
    source       TEXT NOT NULL,
    since        INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, customer_id, tag)
) WITHOUT ROWID;

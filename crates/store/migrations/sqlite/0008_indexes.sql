-- Indexes fitted to the queries that use them.
--
-- A customer's orders and events by time: the 360 view asks for the latest few, and
-- without the time in the index SQLite's planner walked the tenant's whole table for them
-- (the ORDER BY … LIMIT made it prefer the primary key). With it, the latest rows are
-- read straight off the end of the customer's range, newest first.
DROP INDEX orders_by_customer;
CREATE INDEX orders_by_customer ON orders (tenant_id, customer_id, ordered_at);
DROP INDEX events_by_customer;
CREATE INDEX events_by_customer ON events (tenant_id, customer_id, occurred_at);

-- A CHECK of `x IN (a, b, c)` made SQLite build a temporary b-tree of the three values
-- for every row inserted: a third of the cost of creating a customer. The same checks as
-- comparisons cost nothing. SQLite cannot alter a CHECK, so the two tables written row by
-- row (customers, and rule_members by every segment change) are copied into new ones.
CREATE TABLE customers_new (
    tenant_id        INTEGER NOT NULL REFERENCES tenants (id),
    customer_id      TEXT NOT NULL,
    name             TEXT,
    phone            TEXT,
    gender           TEXT CHECK (gender = 'female' OR gender = 'male' OR gender = 'other'),
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
    opted_out_at     INTEGER,
    PRIMARY KEY (tenant_id, customer_id)
) WITHOUT ROWID;
INSERT INTO customers_new (tenant_id, customer_id, name, phone, gender, birthday, region,
                           channel, channel_inferred, referrer_id, joined_at,
                           joined_inferred, version, opted_out_at)
SELECT tenant_id, customer_id, name, phone, gender, birthday, region, channel,
       channel_inferred, referrer_id, joined_at, joined_inferred, version, opted_out_at
FROM customers;
DROP TABLE customers;
ALTER TABLE customers_new RENAME TO customers;
-- Referrers are looked up only by a referrer that is there; most customers name none, and
-- no longer cost every insert an index entry.
CREATE INDEX customers_by_referrer ON customers (tenant_id, referrer_id)
    WHERE referrer_id IS NOT NULL;

CREATE TABLE rule_members_new (
    tenant_id    INTEGER NOT NULL REFERENCES tenants (id),
    kind         TEXT NOT NULL CHECK (kind = 'segment' OR kind = 'tag' OR kind = 'level'),
    name         TEXT NOT NULL,
    customer_id  TEXT NOT NULL,
    since        INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, kind, name, customer_id)
) WITHOUT ROWID;
INSERT INTO rule_members_new (tenant_id, kind, name, customer_id, since)
SELECT tenant_id, kind, name, customer_id, since FROM rule_members;
DROP TABLE rule_members;
ALTER TABLE rule_members_new RENAME TO rule_members;
CREATE INDEX rule_members_by_customer ON rule_members (tenant_id, customer_id);

-- What the planner must know of the data, which SQLite otherwise guesses: a tenant holds
-- most rows of every table (its first key column narrows nothing), a customer only a few.
-- Without these, an equality on `tenant_id` looked as selective as one on a customer, and
-- a customer's events were read by walking the tenant's whole table. Shapes of a large
-- shop, not counts: the plans they give do not change as the data grows.
-- (ANALYZE of the tiny tenants table only creates sqlite_stat1; ANALYZE sqlite_schema
-- loads what is written here.)
ANALYZE tenants;
DELETE FROM sqlite_stat1 WHERE tbl IN ('customers', 'orders', 'events', 'profiles',
    'customer_tags', 'rule_members', 'rule_history', 'ingest_messages', 'audit_log',
    'suppressions');
INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES
    ('customers', 'customers', '1000000 1000000 1'),
    ('customers', 'customers_by_referrer', '100000 100000 5'),
    ('orders', 'orders', '10000000 10000000 1'),
    ('orders', 'orders_by_customer', '10000000 10000000 10 2'),
    ('events', 'events', '10000000 10000000 1'),
    ('events', 'events_by_customer', '10000000 10000000 20 2'),
    ('profiles', 'profiles', '1000000 1000000 1'),
    ('customer_tags', 'customer_tags', '1000000 1000000 3 1'),
    ('rule_members', 'rule_members', '1000000 1000000 200000 50000 1'),
    ('rule_members', 'rule_members_by_customer', '1000000 1000000 5'),
    ('rule_history', 'rule_history_by_rule', '1000000 1000000 200000 50000 2'),
    ('rule_history', 'rule_history_by_customer', '1000000 1000000 10 1'),
    ('ingest_messages', 'ingest_messages', '10000000 10000000 1'),
    ('audit_log', 'audit_log_by_subject', '100000 100000 3 1'),
    ('audit_log', 'audit_log_by_time', '100000 100000 1'),
    ('suppressions', 'suppressions', '10000 10000 1');
ANALYZE sqlite_schema;

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

-- Referrers are looked up only by a referrer that is there; most customers name none, and
-- no longer cost every insert an index entry.
DROP INDEX customers_by_referrer;
CREATE INDEX customers_by_referrer ON customers (tenant_id, referrer_id)
    WHERE referrer_id IS NOT NULL;

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

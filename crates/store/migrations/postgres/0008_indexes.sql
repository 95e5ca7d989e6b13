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

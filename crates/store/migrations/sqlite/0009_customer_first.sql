-- A customer's orders and events indexed by customer first, then tenant. Lookups give
-- both (`tenant_id = ? AND customer_id = ?`), so the order of the two changes no plan; but
-- an import rebuilds these indexes by sorting, and with the tenant first, which is the
-- same in every entry, each comparison of the sort had to unpack both records to get past
-- it (half the instructions of the rebuild). A text first column is compared directly.
-- Primary keys keep the tenant first.
DROP INDEX orders_by_customer;
CREATE INDEX orders_by_customer ON orders (customer_id, tenant_id, ordered_at);
DROP INDEX events_by_customer;
CREATE INDEX events_by_customer ON events (customer_id, tenant_id, occurred_at);

-- Dropping an index dropped its planner statistics (migration 8): the same shapes again.
DELETE FROM sqlite_stat1 WHERE idx IN ('orders_by_customer', 'events_by_customer');
INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES
    ('orders', 'orders_by_customer', '10000000 10 10 2'),
    ('events', 'events_by_customer', '10000000 20 20 2');
ANALYZE sqlite_schema;

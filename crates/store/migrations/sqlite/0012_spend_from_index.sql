-- A customer's paid amount over a period from the index alone: the sweep sums the year's
-- spend of every customer (for the thresholds, then slice by slice), and with only the
-- order's time in the index each order was a second lookup in the table.
DROP INDEX orders_by_customer;
CREATE INDEX orders_by_customer ON orders (customer_id, tenant_id, ordered_at, status, amount);

-- Dropping an index dropped its planner statistics (migration 9): the same shape again.
DELETE FROM sqlite_stat1 WHERE idx = 'orders_by_customer';
INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES
    ('orders', 'orders_by_customer', '10000000 10 10 2 2 2');
ANALYZE sqlite_schema;

-- A customer's paid amount over a period from the index alone: a write's evaluation sums
-- the year's spend of every customer it touched, and the sweep of everyone; with only the
-- order's time in the index each order was a second read in the table.
DROP INDEX orders_by_customer;
CREATE INDEX orders_by_customer ON orders (tenant_id, customer_id, ordered_at)
    INCLUDE (status, amount);

-- The pool-wide figures stages and RFM classes are judged against, fixed for a local day
-- (see docs/definitions.md, "Always current"): the super users' spend threshold and the
-- exact sums behind the RFM means. One row per tenant, replaced when recomputed.
CREATE TABLE pool_thresholds (
    tenant_id            BIGINT PRIMARY KEY,
    day                  TEXT NOT NULL,
    super_user           BIGINT CHECK (super_user > 0),  -- fen; NULL: nobody paid
    rfm_customers        BIGINT NOT NULL CHECK (rfm_customers >= 0),
    rfm_recency_days     BIGINT NOT NULL CHECK (rfm_recency_days >= 0),
    rfm_orders           BIGINT NOT NULL CHECK (rfm_orders >= 0),
    rfm_monetary         BIGINT NOT NULL,
    computed_at          BIGINT NOT NULL
);

-- A write reads the memberships of the customers it touched: from the index alone.
DROP INDEX rule_members_by_customer;
CREATE INDEX rule_members_by_customer ON rule_members (tenant_id, customer_id, kind, name, since);

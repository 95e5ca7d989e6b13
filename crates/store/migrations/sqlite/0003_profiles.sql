-- Per-customer figures, kept current by every import in the same transaction (and
-- rebuilt from raw orders and events by `siyu profiles rebuild`). One row per customer.
CREATE TABLE profiles (
    tenant_id            INTEGER NOT NULL REFERENCES tenants (id),
    customer_id          TEXT NOT NULL,
    first_order_at       INTEGER,
    last_order_at        INTEGER,
    orders               INTEGER NOT NULL,
    purchase_days        INTEGER NOT NULL,
    first_purchase_day   TEXT,
    last_purchase_day    TEXT,
    net_spend            INTEGER NOT NULL,
    coupon_orders        INTEGER NOT NULL,
    last_interaction_at  INTEGER,
    left_at              INTEGER,
    -- {"post_like": 3, …}
    event_counts         TEXT NOT NULL,
    referrals            INTEGER NOT NULL DEFAULT 0,
    referral_revenue     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, customer_id)
) WITHOUT ROWID;

CREATE INDEX customers_by_referrer ON customers (tenant_id, referrer_id);

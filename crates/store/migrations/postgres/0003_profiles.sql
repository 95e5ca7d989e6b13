-- Per-customer figures, kept current by every import in the same transaction (and
-- rebuilt from raw orders and events by `siyu profiles rebuild`). One row per customer.
CREATE TABLE profiles (
    tenant_id            BIGINT NOT NULL,
    customer_id          TEXT COLLATE "C" NOT NULL,
    first_order_at       BIGINT,
    last_order_at        BIGINT,
    orders               INTEGER NOT NULL,
    purchase_days        INTEGER NOT NULL,
    first_purchase_day   TEXT,
    last_purchase_day    TEXT,
    net_spend            BIGINT NOT NULL,
    coupon_orders        INTEGER NOT NULL,
    last_interaction_at  BIGINT,
    left_at              BIGINT,
    -- {"post_like": 3, …}
    event_counts         TEXT NOT NULL,
    referrals            INTEGER NOT NULL DEFAULT 0,
    referral_revenue     BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, customer_id)
);

CREATE INDEX customers_by_referrer ON customers (tenant_id, referrer_id);

-- Campaigns (see DESIGN.md, "Campaign rules"): offers (coupon templates), campaigns, their
-- runs, one decision per customer and run with its reason, and the coupons issued. An
-- offer's and a campaign's definition is siyu-core's JSON (`spec`); money in fen.
CREATE TABLE offers (
    tenant_id   BIGINT NOT NULL REFERENCES tenants (id),
    name        TEXT NOT NULL,
    spec        TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

-- `secret` keys the holdout's hash: the same customers held out on every run, and nobody
-- without it can tell who.
CREATE TABLE campaigns (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   BIGINT NOT NULL REFERENCES tenants (id),
    name        TEXT NOT NULL,
    spec        TEXT NOT NULL,
    secret      TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('active', 'paused')),
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE campaign_runs (
    campaign_id BIGINT NOT NULL REFERENCES campaigns (id),
    run         BIGINT NOT NULL,
    ran_at      BIGINT NOT NULL,
    PRIMARY KEY (campaign_id, run)
);

-- A send (`outcome` 'send') goes out on `channel` not before `not_before` (quiet hours);
-- an exported one is `sent_at` when the operator downloaded it.
CREATE TABLE campaign_decisions (
    tenant_id   BIGINT NOT NULL REFERENCES tenants (id),
    campaign_id BIGINT NOT NULL REFERENCES campaigns (id),
    run         BIGINT NOT NULL,
    customer_id TEXT NOT NULL,
    tier        TEXT,
    outcome     TEXT NOT NULL CHECK (outcome IN ('send', 'holdout', 'held', 'never')),
    reason      TEXT NOT NULL,
    detail      TEXT,
    decided_at  BIGINT NOT NULL,
    channel     TEXT,
    not_before  BIGINT,
    coupon_code TEXT,
    sent_at     BIGINT,
    PRIMARY KEY (campaign_id, run, customer_id)
);
-- The frequency and platform caps read the recent runs' sends by this key.

CREATE TABLE coupons (
    tenant_id   BIGINT NOT NULL REFERENCES tenants (id),
    code        TEXT NOT NULL,
    offer       TEXT NOT NULL,
    campaign_id BIGINT NOT NULL REFERENCES campaigns (id),
    customer_id TEXT NOT NULL,
    face        BIGINT NOT NULL,
    issued_at   BIGINT NOT NULL,
    valid_until BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, code)
);
CREATE INDEX coupons_by_campaign ON coupons (campaign_id);

-- Redemption: the orders that name a coupon code.
CREATE INDEX orders_by_coupon ON orders (tenant_id, coupon_code) WHERE coupon_code IS NOT NULL;

-- Campaigns (see DESIGN.md, "Campaign rules"): offers (coupon templates), campaigns, their
-- runs, one decision per customer and run with its reason, and the coupons issued. An
-- offer's and a campaign's definition is siyu-core's JSON (`spec`); money in fen.
CREATE TABLE offers (
    tenant_id   INTEGER NOT NULL REFERENCES tenants (id),
    name        TEXT NOT NULL,
    spec        TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, name)
) WITHOUT ROWID;

-- `secret` keys the holdout's hash: the same customers held out on every run, and nobody
-- without it can tell who.
CREATE TABLE campaigns (
    id          INTEGER PRIMARY KEY,
    tenant_id   INTEGER NOT NULL REFERENCES tenants (id),
    name        TEXT NOT NULL,
    spec        TEXT NOT NULL,
    secret      TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('active', 'paused')),
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE campaign_runs (
    campaign_id INTEGER NOT NULL REFERENCES campaigns (id),
    run         INTEGER NOT NULL,
    ran_at      INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, run)
) WITHOUT ROWID;

-- A send (`outcome` 'send') goes out on `channel` not before `not_before` (quiet hours);
-- an exported one is `sent_at` when the operator downloaded it.
CREATE TABLE campaign_decisions (
    tenant_id   INTEGER NOT NULL REFERENCES tenants (id),
    campaign_id INTEGER NOT NULL REFERENCES campaigns (id),
    run         INTEGER NOT NULL,
    customer_id TEXT NOT NULL,
    tier        TEXT,
    outcome     TEXT NOT NULL CHECK (outcome IN ('send', 'holdout', 'held', 'never')),
    reason      TEXT NOT NULL,
    detail      TEXT,
    decided_at  INTEGER NOT NULL,
    channel     TEXT,
    not_before  INTEGER,
    coupon_code TEXT,
    sent_at     INTEGER,
    PRIMARY KEY (campaign_id, run, customer_id)
) WITHOUT ROWID;
-- The frequency and platform caps read the recent runs' sends by this key.

CREATE TABLE coupons (
    tenant_id   INTEGER NOT NULL REFERENCES tenants (id),
    code        TEXT NOT NULL,
    offer       TEXT NOT NULL,
    campaign_id INTEGER NOT NULL REFERENCES campaigns (id),
    customer_id TEXT NOT NULL,
    face        INTEGER NOT NULL,
    issued_at   INTEGER NOT NULL,
    valid_until INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, code)
) WITHOUT ROWID;
CREATE INDEX coupons_by_campaign ON coupons (campaign_id);

-- Redemption: the orders that name a coupon code.
CREATE INDEX orders_by_coupon ON orders (tenant_id, coupon_code) WHERE coupon_code IS NOT NULL;

-- What a merchant spent to acquire customers, per source channel and month (fen).
CREATE TABLE channel_costs (
    tenant_id  BIGINT NOT NULL REFERENCES tenants (id),
    channel    TEXT NOT NULL,
    month      TEXT NOT NULL,   -- YYYY-MM
    amount     BIGINT NOT NULL CHECK (amount >= 0),
    PRIMARY KEY (tenant_id, channel, month)
);

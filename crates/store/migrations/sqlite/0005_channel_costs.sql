-- What a merchant spent to acquire customers, per source channel and month (fen).
CREATE TABLE channel_costs (
    tenant_id  INTEGER NOT NULL REFERENCES tenants (id),
    channel    TEXT NOT NULL,
    month      TEXT NOT NULL,   -- YYYY-MM
    amount     INTEGER NOT NULL CHECK (amount >= 0),
    PRIMARY KEY (tenant_id, channel, month)
) WITHOUT ROWID;

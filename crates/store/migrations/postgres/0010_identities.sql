-- A customer's identities: (namespace, value) pairs naming the one person across the ids
-- the merchant's sources use (unionid, wecom external_userid, oa openid, phone, platform
-- buyer keys). A pair belongs to one customer; the first to bring it keeps it.
CREATE TABLE identities (
    tenant_id   BIGINT NOT NULL REFERENCES tenants (id),
    namespace   TEXT COLLATE "C" NOT NULL,
    value       TEXT COLLATE "C" NOT NULL,
    customer_id TEXT COLLATE "C" NOT NULL,
    source      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, namespace, value)
);
CREATE INDEX identities_by_customer ON identities (tenant_id, customer_id);

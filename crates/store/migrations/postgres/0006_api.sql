-- API tokens: only a SHA-256 of each token is kept (the token is shown once, at creation).
-- Looked up by hash, not by tenant: under Citus this is a small reference table.
CREATE TABLE api_tokens (
    token_hash  TEXT PRIMARY KEY,
    tenant_id   BIGINT NOT NULL REFERENCES tenants (id),
    role        TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer', 'ingest')),
    label       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);

CREATE INDEX api_tokens_by_tenant ON api_tokens (tenant_id);

-- Message ids of ingested batch items: a repeated id is a duplicate, never applied twice.
CREATE TABLE ingest_messages (
    tenant_id    BIGINT NOT NULL REFERENCES tenants (id),
    message_id   TEXT COLLATE "C" NOT NULL,
    received_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, message_id)
);

-- API tokens: only a SHA-256 of each token is kept (the token is shown once, at creation).
-- Looked up by hash, not by tenant: under Citus this is a small reference table.
CREATE TABLE api_tokens (
    token_hash  TEXT PRIMARY KEY,
    tenant_id   INTEGER NOT NULL REFERENCES tenants (id),
    role        TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer', 'ingest')),
    label       TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);

CREATE INDEX api_tokens_by_tenant ON api_tokens (tenant_id);

-- Message ids of ingested batch items: a repeated id is a duplicate, never applied twice.
CREATE TABLE ingest_messages (
    tenant_id    INTEGER NOT NULL REFERENCES tenants (id),
    message_id   TEXT NOT NULL,
    received_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, message_id)
) WITHOUT ROWID;

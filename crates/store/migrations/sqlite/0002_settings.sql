-- A tenant's settings (repurchase_cycle_days, …); the time zone lives on tenants.
CREATE TABLE tenant_settings (
    tenant_id   INTEGER NOT NULL REFERENCES tenants (id),
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, key)
) WITHOUT ROWID;

-- A tenant's settings (repurchase_cycle_days, …); the time zone lives on tenants.
CREATE TABLE tenant_settings (
    tenant_id   BIGINT NOT NULL REFERENCES tenants (id),
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, key)
);

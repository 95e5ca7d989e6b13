-- A tenant's change counter: bumped by every write transaction of the tenant (in the
-- transaction, last) and after each simple write that moves a figure (settings, channel
-- costs, identities), by every process. A figure cache keeps a figure with the counter it
-- read before computing it, and uses it while the counter has not moved.
CREATE TABLE tenant_changes (
    tenant_id INTEGER PRIMARY KEY REFERENCES tenants (id),
    changes   INTEGER NOT NULL
);

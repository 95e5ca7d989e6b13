-- Privacy (PIPL): a marketing opt-out on customers, the purpose of a segment (an opted-out
-- customer is never in a marketing segment), the suppression keys of erased customers
-- (no id is kept: a salted SHA-256 of it) and an audit log of exports, erasures and
-- opt-outs, who and when.
ALTER TABLE customers ADD COLUMN opted_out_at INTEGER;

ALTER TABLE rules ADD COLUMN purpose TEXT NOT NULL DEFAULT 'marketing'
    CHECK (purpose IN ('marketing', 'analysis'));

CREATE TABLE suppressions (
    tenant_id   INTEGER NOT NULL REFERENCES tenants (id),
    key         TEXT NOT NULL,
    erased_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, key)
) WITHOUT ROWID;

CREATE TABLE audit_log (
    tenant_id   INTEGER NOT NULL REFERENCES tenants (id),
    at          INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL CHECK (action IN ('export', 'erase', 'opt_out', 'opt_in')),
    -- the customer's suppression key, never the id: the log outlives an erasure
    subject     TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT ''
);

CREATE INDEX audit_log_by_subject ON audit_log (tenant_id, subject, at);
CREATE INDEX audit_log_by_time ON audit_log (tenant_id, at);

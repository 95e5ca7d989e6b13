-- Privacy (PIPL): a marketing opt-out on customers, the purpose of a segment (an opted-out
-- customer is never in a marketing segment), the suppression keys of erased customers
-- (no id is kept: a salted SHA-256 of it) and an audit log of exports, erasures and
-- opt-outs, who and when. Every table keyed by tenant, as before.
ALTER TABLE customers ADD COLUMN opted_out_at BIGINT;

ALTER TABLE rules ADD COLUMN purpose TEXT NOT NULL DEFAULT 'marketing'
    CHECK (purpose IN ('marketing', 'analysis'));

CREATE TABLE suppressions (
    tenant_id   BIGINT NOT NULL,
    key         TEXT COLLATE "C" NOT NULL,
    erased_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, key)
);

CREATE TABLE audit_log (
    tenant_id   BIGINT NOT NULL,
    seq         BIGINT GENERATED ALWAYS AS IDENTITY,
    at          BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL CHECK (action IN ('export', 'erase', 'opt_out', 'opt_in')),
    -- the customer's suppression key, never the id: the log outlives an erasure
    subject     TEXT COLLATE "C" NOT NULL,
    detail      TEXT NOT NULL DEFAULT ''
);

CREATE INDEX audit_log_by_subject ON audit_log (tenant_id, subject, at);
CREATE INDEX audit_log_by_time ON audit_log (tenant_id, at);

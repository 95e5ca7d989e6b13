-- The audit log also records a customer's phone shown unmasked in the console
-- (`view_phone`: an admin's reveal). SQLite cannot alter a CHECK, so the table is copied
-- into a new one (as in 0010), keeping its rowids, which order the entries; its planner
-- statistics are kept aside and put back.
CREATE TEMP TABLE siyu_stat AS SELECT tbl, idx, stat FROM sqlite_stat1;

CREATE TABLE audit_log_new (
    tenant_id   INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL
        CHECK (action IN ('export', 'erase', 'opt_out', 'opt_in', 'view_phone')),
    -- the customer's suppression key, never the id: the log outlives an erasure
    subject     TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT ''
);
INSERT INTO audit_log_new (rowid, tenant_id, at, actor, action, subject, detail)
    SELECT rowid, tenant_id, at, actor, action, subject, detail FROM audit_log;
DROP TABLE audit_log;
ALTER TABLE audit_log_new RENAME TO audit_log;
CREATE INDEX audit_log_by_subject ON audit_log (tenant_id, subject, at);
CREATE INDEX audit_log_by_time ON audit_log (tenant_id, at);

DELETE FROM sqlite_stat1;
INSERT INTO sqlite_stat1 (tbl, idx, stat) SELECT tbl, idx, stat FROM temp.siyu_stat;
DROP TABLE temp.siyu_stat;
ANALYZE sqlite_schema;

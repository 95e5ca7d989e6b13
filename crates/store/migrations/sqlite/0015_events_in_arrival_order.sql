-- Events in arrival order. The table was keyed by its random event id (WITHOUT ROWID), so
-- every event ingested landed its whole row on a leaf of its own at random, and its track
-- item's message id (the same id) on another in ingest_messages. Now the rows are appended
-- (a rowid table: a group commit's events fill a few pages at the end), the id is in a
-- narrow unique index, event id first (a scan of a tenant's events never picks it, and a
-- lookup gives both columns), and that index is what makes a track item's message id a
-- duplicate: track items' ids are no longer written to ingest_messages (the ids written
-- there before stay, and still count).
CREATE TABLE events_new (
    tenant_id    INTEGER NOT NULL,
    event_id     TEXT NOT NULL,
    customer_id  TEXT NOT NULL,
    type         TEXT NOT NULL,
    occurred_at  INTEGER NOT NULL,
    properties   TEXT NOT NULL DEFAULT '{}'
);
INSERT INTO events_new (tenant_id, event_id, customer_id, type, occurred_at, properties)
    SELECT tenant_id, event_id, customer_id, type, occurred_at, properties FROM events;
DROP TABLE events;
ALTER TABLE events_new RENAME TO events;
CREATE UNIQUE INDEX events_by_id ON events (event_id, tenant_id);
CREATE INDEX events_by_customer ON events (customer_id, tenant_id, occurred_at);

-- Dropping the table dropped its planner statistics (migrations 8 and 9): the shapes again.
DELETE FROM sqlite_stat1 WHERE tbl = 'events';
INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES
    ('events', 'events_by_id', '10000000 1 1'),
    ('events', 'events_by_customer', '10000000 20 20 2');
ANALYZE sqlite_schema;

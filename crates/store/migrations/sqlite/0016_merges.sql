-- One person under many ids: merges of one customer (the merged) into another (the
-- survivor), exactly undoable. The merged customer's row leaves `customers` (so that every
-- figure, which reads `customers`, counts persons with no change of its own) and is kept
-- here with the survivor's as it was, the merged one's tags, and the key of every row the
-- merge moved or that arrived later naming the merged id. An unmerge puts them back.
-- `unmerged_at` keeps an undone merge in the history; the snapshots go with the undoing.
CREATE TABLE merges (
    tenant_id    INTEGER NOT NULL,
    merged_id    TEXT NOT NULL,
    survivor_id  TEXT NOT NULL,
    -- unionid, wecom, phone (an identity both held), manual, alias
    reason       TEXT NOT NULL,
    merged_at    INTEGER NOT NULL,
    unmerged_at  INTEGER,
    PRIMARY KEY (tenant_id, merged_id, merged_at)
) WITHOUT ROWID;
CREATE INDEX merges_by_survivor ON merges (tenant_id, survivor_id);

-- Both customers' rows as they were just before the merge (role 'merged' or 'survivor').
CREATE TABLE merge_snapshots (
    tenant_id        INTEGER NOT NULL,
    merged_id        TEXT NOT NULL,
    role             TEXT NOT NULL,
    customer_id      TEXT NOT NULL,
    name             TEXT,
    phone            TEXT,
    gender           TEXT,
    birthday         TEXT,
    region           TEXT,
    channel          TEXT,
    channel_inferred INTEGER NOT NULL,
    referrer_id      TEXT,
    joined_at        INTEGER NOT NULL,
    joined_inferred  INTEGER NOT NULL,
    version          INTEGER NOT NULL,
    opted_out_at     INTEGER,
    PRIMARY KEY (tenant_id, merged_id, role)
) WITHOUT ROWID;

-- The merged customer's manual and imported tags as they were.
CREATE TABLE merge_tags (
    tenant_id  INTEGER NOT NULL,
    merged_id  TEXT NOT NULL,
    tag        TEXT NOT NULL,
    source     TEXT NOT NULL,
    since      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, merged_id, tag)
) WITHOUT ROWID;

-- Every row under the survivor that belongs to the merged id: kind 'order' and 'event'
-- (the order or event id; moved by the merge or arrived since naming the merged id),
-- 'identity' ('<namespace> <value>'), 'referee' (a customer who named the merged id as
-- referrer), 'tag' (a tag the survivor gained from the merged one).
CREATE TABLE merged_rows (
    tenant_id  INTEGER NOT NULL,
    merged_id  TEXT NOT NULL,
    kind       TEXT NOT NULL,
    row_key    TEXT NOT NULL,
    PRIMARY KEY (tenant_id, merged_id, kind, row_key)
) WITHOUT ROWID;

-- Pairs of customers the merchant said are two persons (`a` < `b`): never merged.
CREATE TABLE never_merge (
    tenant_id  INTEGER NOT NULL,
    a          TEXT NOT NULL,
    b          TEXT NOT NULL,
    at         INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, a, b)
) WITHOUT ROWID;

-- One person under many ids: merges of one customer (the merged) into another (the
-- survivor), exactly undoable. The merged customer's row leaves `customers` (so that every
-- figure, which reads `customers`, counts persons with no change of its own) and is kept
-- here with the survivor's as it was, the merged one's tags, and the key of every row the
-- merge moved or that arrived later naming the merged id. An unmerge puts them back.
-- `unmerged_at` keeps an undone merge in the history; the snapshots go with the undoing.
CREATE TABLE merges (
    tenant_id    BIGINT NOT NULL,
    merged_id    TEXT COLLATE "C" NOT NULL,
    survivor_id  TEXT COLLATE "C" NOT NULL,
    -- unionid, wecom, phone (an identity both held), manual, alias
    reason       TEXT NOT NULL,
    merged_at    BIGINT NOT NULL,
    unmerged_at  BIGINT,
    PRIMARY KEY (tenant_id, merged_id, merged_at)
);
CREATE INDEX merges_by_survivor ON merges (tenant_id, survivor_id);

-- Both customers' rows as they were just before the merge (role 'merged' or 'survivor').
CREATE TABLE merge_snapshots (
    tenant_id        BIGINT NOT NULL,
    merged_id        TEXT COLLATE "C" NOT NULL,
    role             TEXT NOT NULL,
    customer_id      TEXT COLLATE "C" NOT NULL,
    name             TEXT,
    phone            TEXT,
    gender           TEXT,
    birthday         TEXT,
    region           TEXT,
    channel          TEXT,
    channel_inferred BOOLEAN NOT NULL,
    referrer_id      TEXT COLLATE "C",
    joined_at        BIGINT NOT NULL,
    joined_inferred  BOOLEAN NOT NULL,
    version          BIGINT NOT NULL,
    opted_out_at     BIGINT,
    PRIMARY KEY (tenant_id, merged_id, role)
);

-- The merged customer's manual and imported tags as they were.
CREATE TABLE merge_tags (
    tenant_id  BIGINT NOT NULL,
    merged_id  TEXT COLLATE "C" NOT NULL,
    tag        TEXT NOT NULL,
    source     TEXT NOT NULL,
    since      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, merged_id, tag)
);

-- Every row under the survivor that belongs to the merged id: kind 'order' and 'event'
-- (the order or event id; moved by the merge or arrived since naming the merged id),
-- 'identity' ('<namespace> <value>'), 'referee' (a customer who named the merged id as
-- referrer), 'tag' (a tag the survivor gained from the merged one).
CREATE TABLE merged_rows (
    tenant_id  BIGINT NOT NULL,
    merged_id  TEXT COLLATE "C" NOT NULL,
    kind       TEXT NOT NULL,
    row_key    TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant_id, merged_id, kind, row_key)
);

-- Pairs of customers the merchant said are two persons (`a` < `b`): never merged.
CREATE TABLE never_merge (
    tenant_id  BIGINT NOT NULL,
    a          TEXT COLLATE "C" NOT NULL,
    b          TEXT COLLATE "C" NOT NULL,
    at         BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, a, b)
);

-- The same constraints as PostgreSQL's schema (crates/store/tests/schema.rs compares them):
-- - orders get the CHECKs PostgreSQL has always had (amount and discount >= 0, status paid
--   or refunded), as comparisons: an `IN` list costs every insert a temporary b-tree
--   (see 0008), comparisons next to nothing;
-- - the foreign keys to tenants stay only where PostgreSQL has them (tenant_settings,
--   channel_costs, api_tokens, ingest_messages), and the connection now enforces them
--   (ingest_messages' at commit, see below);
--   the tables of a tenant's rows drop theirs, which were declared and never enforced:
--   their writers check the tenant once, as on PostgreSQL;
-- - api_tokens.token_hash is NOT NULL (a TEXT PRIMARY KEY of a rowid table admits NULL).
-- SQLite cannot alter a constraint, so each table is copied into a new one (the 12-step
-- rebuild of "ALTER TABLE" in SQLite's documentation); the rowid tables (rule_history,
-- audit_log, api_tokens) keep their rowids, which order their entries. Dropping a table
-- drops its planner statistics (0008, 0009): they are kept aside and put back.
CREATE TEMP TABLE siyu_stat AS SELECT tbl, idx, stat FROM sqlite_stat1;

CREATE TABLE customers_new (
    tenant_id        INTEGER NOT NULL,
    customer_id      TEXT NOT NULL,
    name             TEXT,
    phone            TEXT,
    gender           TEXT CHECK (gender = 'female' OR gender = 'male' OR gender = 'other'),
    birthday         TEXT,
    region           TEXT,
    channel          TEXT,
    -- 1 while the channel is only that of the earliest order seen (no customers file gave it)
    channel_inferred INTEGER NOT NULL DEFAULT 0,
    referrer_id      TEXT,
    joined_at        INTEGER NOT NULL,
    -- 1 while joined_at is only the first sighting (an order, an event, an import without
    -- joined_at): an earlier sighting moves it earlier.
    joined_inferred  INTEGER NOT NULL CHECK (joined_inferred IN (0, 1)),
    version          INTEGER NOT NULL DEFAULT 1,
    opted_out_at     INTEGER,
    PRIMARY KEY (tenant_id, customer_id)
) WITHOUT ROWID;
INSERT INTO customers_new SELECT tenant_id, customer_id, name, phone, gender, birthday,
    region, channel, channel_inferred, referrer_id, joined_at, joined_inferred, version,
    opted_out_at FROM customers;
DROP TABLE customers;
ALTER TABLE customers_new RENAME TO customers;
CREATE INDEX customers_by_referrer ON customers (tenant_id, referrer_id)
    WHERE referrer_id IS NOT NULL;

CREATE TABLE orders_new (
    tenant_id    INTEGER NOT NULL,
    order_id     TEXT NOT NULL,
    customer_id  TEXT NOT NULL,
    ordered_at   INTEGER NOT NULL,
    amount       INTEGER NOT NULL CHECK (amount >= 0),
    discount     INTEGER NOT NULL CHECK (discount >= 0),
    coupon_code  TEXT,
    channel      TEXT,
    status       TEXT NOT NULL CHECK (status = 'paid' OR status = 'refunded'),
    version      INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (tenant_id, order_id)
) WITHOUT ROWID;
INSERT INTO orders_new SELECT tenant_id, order_id, customer_id, ordered_at, amount,
    discount, coupon_code, channel, status, version FROM orders;
DROP TABLE orders;
ALTER TABLE orders_new RENAME TO orders;
CREATE INDEX orders_by_customer ON orders (customer_id, tenant_id, ordered_at);

CREATE TABLE events_new (
    tenant_id    INTEGER NOT NULL,
    event_id     TEXT NOT NULL,
    customer_id  TEXT NOT NULL,
    type         TEXT NOT NULL,
    occurred_at  INTEGER NOT NULL,
    properties   TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant_id, event_id)
) WITHOUT ROWID;
INSERT INTO events_new SELECT tenant_id, event_id, customer_id, type, occurred_at,
    properties FROM events;
DROP TABLE events;
ALTER TABLE events_new RENAME TO events;
CREATE INDEX events_by_customer ON events (customer_id, tenant_id, occurred_at);

CREATE TABLE customer_tags_new (
    tenant_id    INTEGER NOT NULL,
    customer_id  TEXT NOT NULL,
    tag          TEXT NOT NULL,
    -- where the tag came from: 'import' (customers file), 'manual:<who>', 'rule:<name>'
    source       TEXT NOT NULL,
    since        INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, customer_id, tag)
) WITHOUT ROWID;
INSERT INTO customer_tags_new SELECT tenant_id, customer_id, tag, source, since
    FROM customer_tags;
DROP TABLE customer_tags;
ALTER TABLE customer_tags_new RENAME TO customer_tags;

CREATE TABLE profiles_new (
    tenant_id            INTEGER NOT NULL,
    customer_id          TEXT NOT NULL,
    first_order_at       INTEGER,
    last_order_at        INTEGER,
    orders               INTEGER NOT NULL,
    purchase_days        INTEGER NOT NULL,
    first_purchase_day   TEXT,
    last_purchase_day    TEXT,
    net_spend            INTEGER NOT NULL,
    coupon_orders        INTEGER NOT NULL,
    last_interaction_at  INTEGER,
    left_at              INTEGER,
    -- {"post_like": 3, …}
    event_counts         TEXT NOT NULL,
    referrals            INTEGER NOT NULL DEFAULT 0,
    referral_revenue     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, customer_id)
) WITHOUT ROWID;
INSERT INTO profiles_new SELECT tenant_id, customer_id, first_order_at, last_order_at,
    orders, purchase_days, first_purchase_day, last_purchase_day, net_spend, coupon_orders,
    last_interaction_at, left_at, event_counts, referrals, referral_revenue FROM profiles;
DROP TABLE profiles;
ALTER TABLE profiles_new RENAME TO profiles;

CREATE TABLE rules_new (
    tenant_id   INTEGER NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('segment', 'tag')),
    name        TEXT NOT NULL,
    rule        TEXT NOT NULL,       -- the canonical text of the rule
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    purpose     TEXT NOT NULL DEFAULT 'marketing' CHECK (purpose IN ('marketing', 'analysis')),
    PRIMARY KEY (tenant_id, kind, name)
) WITHOUT ROWID;
INSERT INTO rules_new SELECT tenant_id, kind, name, rule, created_by, created_at, purpose
    FROM rules;
DROP TABLE rules;
ALTER TABLE rules_new RENAME TO rules;

CREATE TABLE rule_members_new (
    tenant_id    INTEGER NOT NULL,
    kind         TEXT NOT NULL CHECK (kind = 'segment' OR kind = 'tag' OR kind = 'level'),
    name         TEXT NOT NULL,
    customer_id  TEXT NOT NULL,
    since        INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, kind, name, customer_id)
) WITHOUT ROWID;
INSERT INTO rule_members_new SELECT tenant_id, kind, name, customer_id, since
    FROM rule_members;
DROP TABLE rule_members;
ALTER TABLE rule_members_new RENAME TO rule_members;
CREATE INDEX rule_members_by_customer ON rule_members (tenant_id, customer_id);

CREATE TABLE rule_history_new (
    tenant_id    INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    name         TEXT NOT NULL,
    customer_id  TEXT NOT NULL,
    change       TEXT NOT NULL CHECK (change IN ('entered', 'exited')),
    at           INTEGER NOT NULL,
    -- what was being done when the change was seen: 'import orders.csv', 'tag add', …
    cause        TEXT NOT NULL
);
INSERT INTO rule_history_new (rowid, tenant_id, kind, name, customer_id, change, at, cause)
    SELECT rowid, tenant_id, kind, name, customer_id, change, at, cause FROM rule_history;
DROP TABLE rule_history;
ALTER TABLE rule_history_new RENAME TO rule_history;
CREATE INDEX rule_history_by_rule ON rule_history (tenant_id, kind, name, at);
CREATE INDEX rule_history_by_customer ON rule_history (tenant_id, customer_id, at);

CREATE TABLE tag_families_new (
    tenant_id  INTEGER NOT NULL,
    tag        TEXT NOT NULL,
    family     TEXT NOT NULL CHECK (family IN ('static', 'consumption', 'behaviour', 'level')),
    PRIMARY KEY (tenant_id, tag)
) WITHOUT ROWID;
INSERT INTO tag_families_new SELECT tenant_id, tag, family FROM tag_families;
DROP TABLE tag_families;
ALTER TABLE tag_families_new RENAME TO tag_families;

CREATE TABLE suppressions_new (
    tenant_id   INTEGER NOT NULL,
    key         TEXT NOT NULL,
    erased_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, key)
) WITHOUT ROWID;
INSERT INTO suppressions_new SELECT tenant_id, key, erased_at FROM suppressions;
DROP TABLE suppressions;
ALTER TABLE suppressions_new RENAME TO suppressions;

CREATE TABLE audit_log_new (
    tenant_id   INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL CHECK (action IN ('export', 'erase', 'opt_out', 'opt_in')),
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

CREATE TABLE api_tokens_new (
    token_hash  TEXT NOT NULL PRIMARY KEY,
    tenant_id   INTEGER NOT NULL REFERENCES tenants (id),
    role        TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer', 'ingest')),
    label       TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
INSERT INTO api_tokens_new (rowid, token_hash, tenant_id, role, label, created_at, revoked_at)
    SELECT rowid, token_hash, tenant_id, role, label, created_at, revoked_at FROM api_tokens;
DROP TABLE api_tokens;
ALTER TABLE api_tokens_new RENAME TO api_tokens;
CREATE INDEX api_tokens_by_tenant ON api_tokens (tenant_id);

-- Deferred, in SQLite only: checked at commit, a foreign key does not make the multi-row
-- `INSERT OR IGNORE` of a batch's message ids keep a statement journal (an immediate one
-- may abort the statement half-way, which a statement journal must be able to undo).
CREATE TABLE ingest_messages_new (
    tenant_id    INTEGER NOT NULL REFERENCES tenants (id) DEFERRABLE INITIALLY DEFERRED,
    message_id   TEXT NOT NULL,
    received_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, message_id)
) WITHOUT ROWID;
INSERT INTO ingest_messages_new SELECT tenant_id, message_id, received_at
    FROM ingest_messages;
DROP TABLE ingest_messages;
ALTER TABLE ingest_messages_new RENAME TO ingest_messages;

DELETE FROM sqlite_stat1;
INSERT INTO sqlite_stat1 (tbl, idx, stat) SELECT tbl, idx, stat FROM temp.siyu_stat;
DROP TABLE temp.siyu_stat;
ANALYZE sqlite_schema;

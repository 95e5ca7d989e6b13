-- (As in 0001, no foreign keys to tenants: the writers check their tenant once.)
-- Saved rules (segments and rule tags), who each currently selects, and every change
-- of that membership. The built-in level tags (stage:<stage>, rfm:<class>) keep their
-- members here too, under kind 'level', without a row in rules.
CREATE TABLE rules (
    tenant_id   BIGINT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('segment', 'tag')),
    name        TEXT COLLATE "C" NOT NULL,
    rule        TEXT NOT NULL,       -- the canonical text of the rule
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, kind, name)
);

CREATE TABLE rule_members (
    tenant_id    BIGINT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('segment', 'tag', 'level')),
    name         TEXT COLLATE "C" NOT NULL,
    customer_id  TEXT COLLATE "C" NOT NULL,
    since        BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, kind, name, customer_id)
);

CREATE INDEX rule_members_by_customer ON rule_members (tenant_id, customer_id);

CREATE TABLE rule_history (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY,  -- the order changes were recorded in
    tenant_id    BIGINT NOT NULL,
    kind         TEXT NOT NULL,
    name         TEXT COLLATE "C" NOT NULL,
    customer_id  TEXT COLLATE "C" NOT NULL,
    change       TEXT NOT NULL CHECK (change IN ('entered', 'exited')),
    at           BIGINT NOT NULL,
    -- what was being done when the change was seen: 'import orders.csv', 'tag add', …
    cause        TEXT NOT NULL
);

CREATE INDEX rule_history_by_rule ON rule_history (tenant_id, kind, name, at);
CREATE INDEX rule_history_by_customer ON rule_history (tenant_id, customer_id, at);

-- The family of a tag (static, consumption, behaviour, level); absent: static for manual
-- tags, consumption for rule tags.
CREATE TABLE tag_families (
    tenant_id  BIGINT NOT NULL,
    tag        TEXT NOT NULL,
    family     TEXT NOT NULL CHECK (family IN ('static', 'consumption', 'behaviour', 'level')),
    PRIMARY KEY (tenant_id, tag)
);

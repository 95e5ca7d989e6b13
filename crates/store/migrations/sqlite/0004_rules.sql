-- Saved rules (segments and rule tags), who each currently selects, and every change
-- of that membership. The built-in level tags (stage:<stage>, rfm:<class>) keep their
-- members here too, under kind 'level', without a row in rules.
CREATE TABLE rules (
    tenant_id   INTEGER NOT NULL REFERENCES tenants (id),
    kind        TEXT NOT NULL CHECK (kind IN ('segment', 'tag')),
    name        TEXT NOT NULL,
    rule        TEXT NOT NULL,       -- the canonical text of the rule
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, kind, name)
) WITHOUT ROWID;

CREATE TABLE rule_members (
    tenant_id    INTEGER NOT NULL REFERENCES tenants (id),
    kind         TEXT NOT NULL CHECK (kind IN ('segment', 'tag', 'level')),
    name         TEXT NOT NULL,
    customer_id  TEXT NOT NULL,
    since        INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, kind, name, customer_id)
) WITHOUT ROWID;

CREATE INDEX rule_members_by_customer ON rule_members (tenant_id, customer_id);

CREATE TABLE rule_history (
    tenant_id    INTEGER NOT NULL REFERENCES tenants (id),
    kind         TEXT NOT NULL,
    name         TEXT NOT NULL,
    customer_id  TEXT NOT NULL,
    change       TEXT NOT NULL CHECK (change IN ('entered', 'exited')),
    at           INTEGER NOT NULL,
    -- what was being done when the change was seen: 'import orders.csv', 'tag add', …
    cause        TEXT NOT NULL
);

CREATE INDEX rule_history_by_rule ON rule_history (tenant_id, kind, name, at);
CREATE INDEX rule_history_by_customer ON rule_history (tenant_id, customer_id, at);

-- The family of a tag (static, consumption, behaviour, level); absent: static for manual
-- tags, consumption for rule tags.
CREATE TABLE tag_families (
    tenant_id  INTEGER NOT NULL REFERENCES tenants (id),
    tag        TEXT NOT NULL,
    family     TEXT NOT NULL CHECK (family IN ('static', 'consumption', 'behaviour', 'level')),
    PRIMARY KEY (tenant_id, tag)
) WITHOUT ROWID;

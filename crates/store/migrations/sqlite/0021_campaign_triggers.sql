-- Triggered campaigns (see docs/campaigns.md): a campaign's steps, each `delay_secs` after
-- a customer enters a segment (`kind` 'segment') or a lifecycle stage ('level',
-- 'stage:NAME'); and the queue of steps due, written in the transaction that records the
-- entry (one row per entry and step: a retried write queues nothing twice) and removed in
-- the transaction that records the step's decision.
CREATE TABLE campaign_triggers (
    tenant_id   INTEGER NOT NULL REFERENCES tenants (id),
    campaign_id INTEGER NOT NULL REFERENCES campaigns (id),
    step        INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    delay_secs  INTEGER NOT NULL CHECK (delay_secs >= 0),
    PRIMARY KEY (campaign_id, step)
) WITHOUT ROWID;
CREATE INDEX campaign_triggers_on ON campaign_triggers (tenant_id, kind, name);

CREATE TABLE campaign_step_queue (
    tenant_id   INTEGER NOT NULL REFERENCES tenants (id),
    campaign_id INTEGER NOT NULL REFERENCES campaigns (id),
    step        INTEGER NOT NULL,
    customer_id TEXT NOT NULL,
    entered_at  INTEGER NOT NULL,
    due_at      INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, customer_id, entered_at, step)
) WITHOUT ROWID;
CREATE INDEX campaign_step_queue_due ON campaign_step_queue (tenant_id, due_at);
-- The ticker of `siyu serve` asks which tenants have a step due, by this.
CREATE INDEX campaign_step_queue_by_due ON campaign_step_queue (due_at);

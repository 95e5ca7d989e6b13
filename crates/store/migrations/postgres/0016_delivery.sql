-- Delivery (see docs/delivery.md): the tenant's webhook endpoints and the outbox of sends
-- to them. A send is written to the outbox in the transaction that decided it; the
-- dispatcher of `siyu serve` delivers it, at least once, and marks it delivered only
-- after the receiver's 2xx. Instants are microseconds since the epoch.
CREATE TABLE webhook_endpoints (
    tenant_id      BIGINT NOT NULL REFERENCES tenants (id),
    name           TEXT NOT NULL,
    url            TEXT NOT NULL,
    -- The HMAC-SHA256 key of the signature header; shown to the operator once.
    secret         TEXT NOT NULL,
    max_attempts   BIGINT NOT NULL CHECK (max_attempts >= 1 AND max_attempts <= 100),
    max_in_flight  BIGINT NOT NULL CHECK (max_in_flight >= 1 AND max_in_flight <= 1000),
    -- 0: no limit.
    max_per_second BIGINT NOT NULL CHECK (max_per_second >= 0),
    timeout_ms     BIGINT NOT NULL CHECK (timeout_ms > 0),
    -- The first retry's delay; each further one doubles it (with jitter), up to an hour.
    backoff_ms     BIGINT NOT NULL CHECK (backoff_ms > 0),
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

-- One row a send. `customer_id` is the payload's top-level "customer_id" (so that an
-- erasure cancels the customer's pending sends). A pending row whose attempt is under way
-- has `next_attempt_at` at the end of the attempt's lease: should the dispatcher die, the
-- row comes due again then and is sent again, with the same send id.
CREATE TABLE outbox (
    tenant_id       BIGINT NOT NULL REFERENCES tenants (id),
    send_id         TEXT NOT NULL,
    endpoint        TEXT NOT NULL,
    customer_id     TEXT,
    payload         TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead', 'cancelled')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    delivered_at    BIGINT,
    PRIMARY KEY (tenant_id, send_id)
);
CREATE INDEX outbox_due ON outbox (tenant_id, endpoint, next_attempt_at) WHERE state = 'pending';
CREATE INDEX outbox_of_customer ON outbox (tenant_id, customer_id) WHERE customer_id IS NOT NULL;

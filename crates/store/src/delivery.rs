//! Delivery's rows (see docs/delivery.md): the tenant's webhook endpoints and the outbox.
//! Sends are enqueued inside the write transaction that decided them ([`DeliveryWrites`]);
//! the dispatcher claims due rows, each claim an attempt with a lease, and records each
//! attempt's outcome ([`DeliveryStore`]). Written once for both backends over [`Db`].

use siyu_core::{CustomerId, Timestamp};

use crate::shared::{OnDb, TxOnDb};
use crate::sql::{Arg, Db, Dialect, RowAccess, in_transaction, rows};
use crate::{Result, StoreError, Tenant, corrupt, from_micros, micros, other};

/// A send to enqueue: `payload` (a JSON object, as text) goes to the endpoint named
/// `endpoint` no earlier than `not_before`. A send id already in the tenant's outbox is
/// left alone, so enqueueing is idempotent. The payload's top-level `"customer_id"`, if
/// any, names the customer the send is about: an erasure cancels it while it is pending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub send_id: String,
    pub endpoint: String,
    pub payload: String,
    pub not_before: Timestamp,
}

/// A webhook endpoint of a tenant and its limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    pub name: String,
    pub url: String,
    /// The key of the HMAC-SHA256 signature.
    pub secret: String,
    /// Attempts before a send is dead.
    pub max_attempts: u32,
    /// Requests under way at once.
    pub max_in_flight: u32,
    /// Requests begun per second; 0 for no limit.
    pub max_per_second: u32,
    /// How long an attempt may take, connecting included.
    pub timeout_ms: u64,
    /// The first retry's delay; each further one doubles it (with jitter), up to an hour.
    pub backoff_ms: u64,
    pub created_at: Timestamp,
}

/// A send claimed for an attempt: the `attempt`-th (from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub send_id: String,
    pub payload: String,
    pub attempt: u32,
}

/// What an attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The receiver answered 2xx.
    Delivered { send_id: String, at: Timestamp },
    /// It did not: tried again at `retry_at`, or dead when `None`.
    Failed {
        send_id: String,
        attempt: u32,
        error: String,
        retry_at: Option<Timestamp>,
    },
}

/// The state of a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SendState {
    Pending,
    Delivered,
    Dead,
    /// Its customer was erased before it was delivered.
    Cancelled,
}

impl SendState {
    pub fn as_str(self) -> &'static str {
        match self {
            SendState::Pending => "pending",
            SendState::Delivered => "delivered",
            SendState::Dead => "dead",
            SendState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<SendState> {
        Some(match s {
            "pending" => SendState::Pending,
            "delivered" => SendState::Delivered,
            "dead" => SendState::Dead,
            "cancelled" => SendState::Cancelled,
            _ => return None,
        })
    }
}

/// A send as the outbox holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub send_id: String,
    pub endpoint: String,
    pub state: SendState,
    pub attempts: u32,
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub delivered_at: Option<Timestamp>,
}

/// How many sends of an endpoint are in a state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxCount {
    pub endpoint: String,
    pub state: SendState,
    pub sends: u64,
}

/// Sends enqueued and cancelled inside a write transaction, so that they commit (or not)
/// with what decided them.
pub trait DeliveryWrites {
    /// Adds sends to the outbox, pending; a send id the tenant's outbox holds already is
    /// left alone. How many were new. `NotFound` if an endpoint is not the tenant's.
    fn enqueue_deliveries(&mut self, batch: &[NewDelivery], now: Timestamp) -> Result<u64>;
    /// Cancels the customer's pending sends, blanks the payloads of all their sends and
    /// drops their queued campaign steps (an erasure). How many pending sends were
    /// cancelled.
    fn cancel_deliveries_of(&mut self, id: &CustomerId) -> Result<u64>;
}

/// Webhook endpoints and the dispatcher's reads and writes of the outbox.
pub trait DeliveryStore {
    /// Adds an endpoint; false when the tenant has one of that name.
    fn add_webhook(&mut self, tenant: &Tenant, endpoint: &WebhookEndpoint) -> Result<bool>;
    /// The tenant's endpoints, by name.
    fn webhooks(&mut self, tenant: &Tenant) -> Result<Vec<WebhookEndpoint>>;
    /// [`DeliveryWrites::enqueue_deliveries`] in a transaction of its own.
    fn enqueue(&mut self, tenant: &Tenant, batch: &[NewDelivery], now: Timestamp) -> Result<u64>;
    /// Claims up to `limit` of the endpoint's pending sends due at `now`, earliest first:
    /// each one's attempts counted up and its next attempt moved to `lease_until`, so that
    /// it comes due again (and is sent again) should its outcome never be recorded.
    fn claim_deliveries(
        &mut self,
        tenant: &Tenant,
        endpoint: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<Claimed>>;
    /// Records attempts' outcomes, in one transaction. A send no longer pending (cancelled
    /// meanwhile) is left alone, as is a failure of an attempt that is not the latest.
    fn record_outcomes(&mut self, tenant: &Tenant, outcomes: &[Outcome]) -> Result<()>;
    /// Sends per endpoint and state, by endpoint and state.
    fn outbox_counts(&mut self, tenant: &Tenant) -> Result<Vec<OutboxCount>>;
    /// Up to `limit` sends, of one state or all, by send id.
    fn outbox_rows(
        &mut self,
        tenant: &Tenant,
        state: Option<SendState>,
        limit: usize,
    ) -> Result<Vec<OutboxRow>>;
}

const INSERT_WEBHOOK: &str = "INSERT INTO webhook_endpoints (tenant_id, name, url, secret,
    max_attempts, max_in_flight, max_per_second, timeout_ms, backoff_ms, created_at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (tenant_id, name) DO NOTHING";

const WEBHOOKS_OF: &str = "SELECT name, url, secret, max_attempts, max_in_flight,
    max_per_second, timeout_ms, backoff_ms, created_at
    FROM webhook_endpoints WHERE tenant_id = ?1 ORDER BY name";

const HAS_WEBHOOK: &str = "SELECT 1 FROM webhook_endpoints WHERE tenant_id = ?1 AND name = ?2";

const INSERT_SEND: &str = "INSERT INTO outbox (tenant_id, send_id, endpoint, customer_id,
    payload, state, attempts, next_attempt_at, created_at)
    VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 0, ?6, ?7) ON CONFLICT (tenant_id, send_id) DO NOTHING";

const CANCEL_PENDING: &str = "UPDATE outbox SET state = 'cancelled', last_error = 'customer erased'
    WHERE tenant_id = ?1 AND customer_id = ?2 AND state = 'pending'";

const BLANK_PAYLOADS: &str = "UPDATE outbox SET payload = '{}', customer_id = NULL
    WHERE tenant_id = ?1 AND customer_id = ?2";

/// The due sends of an endpoint, earliest first: a read by the index of pending sends, so
/// that an idle dispatcher never takes SQLite's write lock (nor waits for it behind an
/// import).
const DUE: &str = "SELECT send_id FROM outbox WHERE tenant_id = ?1 AND endpoint = ?2
    AND state = 'pending' AND next_attempt_at <= ?3 ORDER BY next_attempt_at LIMIT ?4";

/// Claims the sends read by [`DUE`] by their keys (`?4…`), each still pending and due: a
/// send another dispatcher claimed in between has its next attempt at its lease and is
/// passed over (on PostgreSQL re-checked under the row's lock). By key, not by a subquery:
/// with no statistics yet on a new outbox, PostgreSQL planned the subquery's form as a
/// nested loop over every pending send (0.4 s a claim at 20,000).
fn claim_sql(sends: usize) -> String {
    let ids: Vec<String> = (0..sends).map(|i| format!("?{}", i + 4)).collect();
    format!(
        "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?3
         WHERE tenant_id = ?1 AND state = 'pending' AND next_attempt_at <= ?2
         AND send_id IN ({})
         RETURNING send_id, payload, attempts",
        ids.join(", ")
    )
}

/// Sends delivered, recorded together: `?2` their latest time, `?3…` their ids.
fn delivered_sql(sends: usize) -> String {
    let ids: Vec<String> = (0..sends).map(|i| format!("?{}", i + 3)).collect();
    format!(
        "UPDATE outbox SET state = 'delivered', delivered_at = ?2, last_error = NULL
         WHERE tenant_id = ?1 AND state = 'pending' AND send_id IN ({})",
        ids.join(", ")
    )
}

/// Delivered sends recorded in one statement.
const DELIVERED_AT_ONCE: usize = 200;

const RETRY: &str = "UPDATE outbox SET next_attempt_at = ?4, last_error = ?5
    WHERE tenant_id = ?1 AND send_id = ?2 AND state = 'pending' AND attempts = ?3";

const DEAD: &str = "UPDATE outbox SET state = 'dead', last_error = ?4
    WHERE tenant_id = ?1 AND send_id = ?2 AND state = 'pending' AND attempts = ?3";

const OUTBOX_COUNTS: &str = "SELECT endpoint, state, count(*) FROM outbox WHERE tenant_id = ?1
    GROUP BY endpoint, state ORDER BY endpoint, state";

fn outbox_rows_sql(d: Dialect, one_state: bool) -> String {
    format!(
        "SELECT send_id, endpoint, state, attempts, next_attempt_at, last_error, created_at,
         delivered_at FROM outbox WHERE tenant_id = ?1 {} ORDER BY send_id{} LIMIT ?2",
        if one_state { "AND state = ?3" } else { "" },
        d.bytewise()
    )
}

fn webhook_from(r: &(impl RowAccess + ?Sized)) -> Result<WebhookEndpoint> {
    let small = |i: usize| -> Result<u32> {
        u32::try_from(r.int(i)?).map_err(|_| corrupt("a webhook limit out of range"))
    };
    let long = |i: usize| -> Result<u64> {
        u64::try_from(r.int(i)?).map_err(|_| corrupt("a webhook duration out of range"))
    };
    Ok(WebhookEndpoint {
        name: r.text(0)?.to_owned(),
        url: r.text(1)?.to_owned(),
        secret: r.text(2)?.to_owned(),
        max_attempts: small(3)?,
        max_in_flight: small(4)?,
        max_per_second: small(5)?,
        timeout_ms: long(6)?,
        backoff_ms: long(7)?,
        created_at: from_micros(r.int(8)?)?,
    })
}

fn attempts(n: i64) -> Result<u32> {
    u32::try_from(n).map_err(|_| corrupt("stored attempts out of range"))
}

fn state(s: &str) -> Result<SendState> {
    SendState::parse(s).ok_or_else(|| corrupt(format!("stored send state '{s}'")))
}

fn outbox_row_from(r: &(impl RowAccess + ?Sized)) -> Result<OutboxRow> {
    Ok(OutboxRow {
        send_id: r.text(0)?.to_owned(),
        endpoint: r.text(1)?.to_owned(),
        state: state(r.text(2)?)?,
        attempts: attempts(r.int(3)?)?,
        next_attempt_at: from_micros(r.int(4)?)?,
        last_error: r.opt_text(5)?.map(str::to_owned),
        created_at: from_micros(r.int(6)?)?,
        delivered_at: r.opt_int(7)?.map(from_micros).transpose()?,
    })
}

fn to_i64(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

/// The customer a payload names: its top-level `"customer_id"` string.
fn customer_of(payload: &str, send_id: &str) -> Result<Option<String>> {
    let value: serde_json::Value = serde_json::from_str(payload)
        .map_err(|e| corrupt(format!("the payload of send {send_id} is not JSON: {e}")))?;
    let serde_json::Value::Object(map) = value else {
        return Err(corrupt(format!(
            "the payload of send {send_id} is not a JSON object"
        )));
    };
    Ok(map
        .get("customer_id")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned))
}

pub(crate) fn enqueue(
    db: &mut dyn Db,
    tenant: i64,
    batch: &[NewDelivery],
    now: Timestamp,
) -> Result<u64> {
    let mut known: Vec<&str> = Vec::new();
    let mut inserted = 0;
    for d in batch {
        if d.send_id.is_empty() || d.send_id.len() > 200 {
            return Err(corrupt(format!(
                "a send id must have 1 to 200 bytes: '{}'",
                d.send_id
            )));
        }
        if !known.contains(&d.endpoint.as_str()) {
            let found = rows(
                db,
                HAS_WEBHOOK,
                &[Arg::Int(tenant), Arg::Text(&d.endpoint)],
                |_| Ok(()),
            )?;
            if found.is_empty() {
                return Err(StoreError::NotFound(format!(
                    "webhook endpoint {}",
                    d.endpoint
                )));
            }
            known.push(&d.endpoint);
        }
        let customer = customer_of(&d.payload, &d.send_id)?;
        inserted += db.exec(
            INSERT_SEND,
            &[
                Arg::Int(tenant),
                Arg::Text(&d.send_id),
                Arg::Text(&d.endpoint),
                Arg::OptText(customer.as_deref()),
                Arg::Text(&d.payload),
                Arg::Int(micros(d.not_before)),
                Arg::Int(micros(now)),
            ],
        )?;
    }
    Ok(inserted)
}

impl<T: TxOnDb> DeliveryWrites for T {
    fn enqueue_deliveries(&mut self, batch: &[NewDelivery], now: Timestamp) -> Result<u64> {
        let tenant = self.tenant_id();
        enqueue(self.tx_db(), tenant, batch, now)
    }

    fn cancel_deliveries_of(&mut self, id: &CustomerId) -> Result<u64> {
        let args = [Arg::Int(self.tenant_id()), Arg::Text(id.as_str())];
        let db = self.tx_db();
        let cancelled = db.exec(CANCEL_PENDING, &args)?;
        db.exec(BLANK_PAYLOADS, &args)?;
        db.exec(
            "DELETE FROM campaign_step_queue WHERE tenant_id = ?1 AND customer_id = ?2",
            &args,
        )?;
        Ok(cancelled)
    }
}

impl<T: OnDb> DeliveryStore for T {
    fn add_webhook(&mut self, tenant: &Tenant, e: &WebhookEndpoint) -> Result<bool> {
        let args = [
            Arg::Int(tenant.id),
            Arg::Text(&e.name),
            Arg::Text(&e.url),
            Arg::Text(&e.secret),
            Arg::Int(e.max_attempts.into()),
            Arg::Int(e.max_in_flight.into()),
            Arg::Int(e.max_per_second.into()),
            Arg::Int(to_i64(e.timeout_ms)),
            Arg::Int(to_i64(e.backoff_ms)),
            Arg::Int(micros(e.created_at)),
        ];
        Ok(self.db().exec(INSERT_WEBHOOK, &args)? > 0)
    }

    fn webhooks(&mut self, tenant: &Tenant) -> Result<Vec<WebhookEndpoint>> {
        rows(self.db(), WEBHOOKS_OF, &[Arg::Int(tenant.id)], |r| {
            webhook_from(r)
        })
    }

    fn enqueue(&mut self, tenant: &Tenant, batch: &[NewDelivery], now: Timestamp) -> Result<u64> {
        in_transaction(self.db(), |db| enqueue(db, tenant.id, batch, now))
    }

    fn claim_deliveries(
        &mut self,
        tenant: &Tenant,
        endpoint: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<Claimed>> {
        let due = rows(
            self.db(),
            DUE,
            &[
                Arg::Int(tenant.id),
                Arg::Text(endpoint),
                Arg::Int(micros(now)),
                Arg::Int(to_i64(limit)),
            ],
            |r| Ok(r.text(0)?.to_owned()),
        )?;
        if due.is_empty() {
            return Ok(Vec::new());
        }
        let mut args = vec![
            Arg::Int(tenant.id),
            Arg::Int(micros(now)),
            Arg::Int(micros(lease_until)),
        ];
        args.extend(due.iter().map(|id| Arg::Text(id)));
        let mut claimed = rows(self.db(), &claim_sql(due.len()), &args, |r| {
            Ok(Claimed {
                send_id: r.text(0)?.to_owned(),
                payload: r.text(1)?.to_owned(),
                attempt: attempts(r.int(2)?)?,
            })
        })?;
        // Earliest first, as read (RETURNING keeps no order).
        let order: std::collections::HashMap<&str, usize> = due
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i))
            .collect();
        claimed.sort_by_key(|c| order.get(c.send_id.as_str()).copied());
        Ok(claimed)
    }

    fn record_outcomes(&mut self, tenant: &Tenant, outcomes: &[Outcome]) -> Result<()> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let delivered: Vec<(&str, Timestamp)> = outcomes
            .iter()
            .filter_map(|o| match o {
                Outcome::Delivered { send_id, at } => Some((send_id.as_str(), *at)),
                Outcome::Failed { .. } => None,
            })
            .collect();
        in_transaction(self.db(), |db| {
            for chunk in delivered.chunks(DELIVERED_AT_ONCE) {
                let latest = chunk.iter().map(|(_, at)| *at).max().unwrap_or_default();
                let mut args = vec![Arg::Int(tenant.id), Arg::Int(micros(latest))];
                args.extend(chunk.iter().map(|(id, _)| Arg::Text(id)));
                db.exec(&delivered_sql(chunk.len()), &args)?;
            }
            for o in outcomes {
                match o {
                    Outcome::Delivered { .. } => {}
                    Outcome::Failed {
                        send_id,
                        attempt,
                        error,
                        retry_at,
                    } => {
                        let (tenant, send, attempt) = (
                            Arg::Int(tenant.id),
                            Arg::Text(send_id),
                            Arg::Int((*attempt).into()),
                        );
                        match retry_at {
                            Some(at) => db.exec(
                                RETRY,
                                &[
                                    tenant,
                                    send,
                                    attempt,
                                    Arg::Int(micros(*at)),
                                    Arg::Text(error),
                                ],
                            )?,
                            None => db.exec(DEAD, &[tenant, send, attempt, Arg::Text(error)])?,
                        };
                    }
                }
            }
            Ok(())
        })
    }

    fn outbox_counts(&mut self, tenant: &Tenant) -> Result<Vec<OutboxCount>> {
        rows(self.db(), OUTBOX_COUNTS, &[Arg::Int(tenant.id)], |r| {
            Ok(OutboxCount {
                endpoint: r.text(0)?.to_owned(),
                state: state(r.text(1)?)?,
                sends: u64::try_from(r.int(2)?).map_err(other)?,
            })
        })
    }

    fn outbox_rows(
        &mut self,
        tenant: &Tenant,
        state: Option<SendState>,
        limit: usize,
    ) -> Result<Vec<OutboxRow>> {
        let db = self.db();
        let sql = outbox_rows_sql(db.dialect(), state.is_some());
        let mut args = vec![Arg::Int(tenant.id), Arg::Int(to_i64(limit))];
        if let Some(s) = state {
            args.push(Arg::Text(s.as_str()));
        }
        rows(db, &sql, &args, |r| outbox_row_from(r))
    }
}

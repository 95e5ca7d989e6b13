//! Campaigns' rows, written once for both backends over [`Db`]: offers, campaigns, a run's
//! decisions and coupons (in one transaction), the recent sends the caps read, the export
//! of manual sends, and what redemption and attribution read.

use crate::delivery::NewDelivery;
use siyu_core::{Money, Timestamp};

use crate::shared::OnDb;
use crate::sql::{Arg, Db, RowAccess, in_transaction, rows};
use crate::{Result, StoreError, Tenant, from_micros, micros};

/// An offer as stored: its definition is siyu-core's JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOffer {
    pub name: String,
    pub spec: String,
    pub created_by: String,
    pub created_at: Timestamp,
    /// Coupons of it issued so far, over every campaign, and their face value.
    pub issued: u64,
    pub issued_face: Money,
}

/// A campaign as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCampaign {
    pub id: i64,
    pub name: String,
    pub spec: String,
    /// The key of the holdout's hash.
    pub secret: String,
    /// `active` or `paused`.
    pub status: String,
    pub created_by: String,
    pub created_at: Timestamp,
    /// When each run decided, the first first.
    pub runs: Vec<Timestamp>,
}

/// A coupon issued by a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCoupon {
    pub code: String,
    pub offer: String,
    pub face: Money,
    pub valid_until: Timestamp,
}

/// One decision of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDecision<'a> {
    pub customer_id: &'a str,
    pub tier: Option<&'a str>,
    pub outcome: &'static str,
    pub reason: &'static str,
    pub detail: Option<String>,
    /// Boxed: most decisions issue none, and a run holds a million of them.
    pub coupon: Option<Box<NewCoupon>>,
}

/// What a run decided, written in one transaction.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    pub campaign_id: i64,
    /// The run's number, as the caller read the runs before it: a run recorded meanwhile
    /// makes this one a `Conflict`, nothing written.
    pub run: u32,
    pub at: Timestamp,
    /// Where its sends go (`export`, `webhook:NAME`) and not before when (quiet hours).
    pub channel: &'a str,
    pub not_before: Timestamp,
    pub decisions: Vec<NewDecision<'a>>,
    /// The queued steps of a triggered campaign this run decides: removed from the queue
    /// in its transaction.
    pub steps_done: &'a [DueStep],
}

/// A step of a triggered campaign: `delay_secs` after a customer enters the segment
/// (`kind` "segment") or the lifecycle stage ("level", "stage:NAME") named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTrigger {
    pub step: u32,
    pub kind: String,
    pub name: String,
    pub delay_secs: i64,
}

/// A queued step: due for a customer at `due_at`, from their entry at `entered_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueStep {
    pub campaign_id: i64,
    pub step: u32,
    pub customer_id: String,
    pub entered_at: Timestamp,
    pub due_at: Timestamp,
}

/// A decision as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionRow {
    pub run: u32,
    pub customer_id: String,
    pub tier: Option<String>,
    pub outcome: String,
    pub reason: String,
    pub detail: Option<String>,
    pub decided_at: Timestamp,
    pub channel: Option<String>,
    pub not_before: Option<Timestamp>,
    pub coupon_code: Option<String>,
    pub sent_at: Option<Timestamp>,
}

/// A row of a manual-sending export: the send and the customer's contact fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRow {
    pub run: u32,
    pub customer_id: String,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub tier: Option<String>,
    pub coupon_code: Option<String>,
    pub not_before: Option<Timestamp>,
}

/// A coupon as stored, with the order that redeemed it (if one did).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouponRow {
    pub code: String,
    pub offer: String,
    pub customer_id: String,
    pub face: Money,
    pub issued_at: Timestamp,
    pub valid_until: Timestamp,
}

/// A use of a coupon code: an order naming it, or a `coupon_redeemed` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeUse {
    pub code: String,
    pub customer_id: String,
    pub at: Timestamp,
    /// The order's id; none for an event.
    pub order_id: Option<String>,
}

pub trait CampaignStore {
    /// Saves an offer; false when the tenant has one of that name.
    fn create_offer(
        &mut self,
        tenant: &Tenant,
        name: &str,
        spec: &str,
        by: &str,
        at: Timestamp,
    ) -> Result<bool>;
    /// The tenant's offers by name, with what each has issued.
    fn offers(&mut self, tenant: &Tenant) -> Result<Vec<StoredOffer>>;
    /// Saves a campaign (active) with its triggered steps (none: not triggered), in one
    /// transaction; false when the tenant has one of that name.
    #[allow(clippy::too_many_arguments)]
    fn create_campaign(
        &mut self,
        tenant: &Tenant,
        name: &str,
        spec: &str,
        secret: &str,
        by: &str,
        at: Timestamp,
        triggers: &[NewTrigger],
    ) -> Result<bool>;
    /// The tenants with a queued step of an active campaign due at or before `now`.
    fn tenants_with_due_steps(&mut self, now: Timestamp) -> Result<Vec<i64>>;
    /// The tenant's queued steps of active campaigns due at or before `now` (all of them,
    /// paused campaigns' too, when `now` is none), of one campaign or of all, the first due
    /// first, at most `limit`.
    fn due_steps(
        &mut self,
        tenant: &Tenant,
        campaign_id: Option<i64>,
        now: Option<Timestamp>,
        limit: usize,
    ) -> Result<Vec<DueStep>>;
    /// The tenant's campaigns by name.
    fn campaigns(&mut self, tenant: &Tenant) -> Result<Vec<StoredCampaign>>;
    /// Sets a campaign's status; false when there is none of that name.
    fn set_campaign_status(&mut self, tenant: &Tenant, name: &str, status: &str) -> Result<bool>;
    /// Every send decided at or after `since`, across campaigns: (customer, channel,
    /// decided at), in no particular order.
    fn sends_since(
        &mut self,
        tenant: &Tenant,
        since: Timestamp,
        each: &mut dyn FnMut(&str, &str, Timestamp),
    ) -> Result<()>;
    /// Records a run: its decisions and the coupons they issued, and the webhook sends'
    /// deliveries, in one transaction. Returns the run's number (1 for the first).
    fn record_run(
        &mut self,
        tenant: &Tenant,
        run: &NewRun<'_>,
        deliveries: &[NewDelivery],
    ) -> Result<u32>;
    /// A campaign's decisions, of one customer or of all, by run and customer.
    fn decisions(
        &mut self,
        tenant: &Tenant,
        campaign_id: i64,
        customer: Option<&str>,
        each: &mut dyn FnMut(DecisionRow),
    ) -> Result<()>;
    /// The campaign's export sends not yet exported, with contact fields, marked sent at
    /// `at` in the same transaction.
    fn export_sends(
        &mut self,
        tenant: &Tenant,
        campaign_id: i64,
        at: Timestamp,
    ) -> Result<Vec<ExportRow>>;
    /// The coupons a campaign issued.
    fn coupons_of(&mut self, tenant: &Tenant, campaign_id: i64) -> Result<Vec<CouponRow>>;
    /// The tenant's coupons of one offer, or of all.
    fn coupons(&mut self, tenant: &Tenant, offer: Option<&str>) -> Result<Vec<CouponRow>>;
    /// The uses of the codes a campaign issued: paid orders naming them and
    /// `coupon_redeemed` events whose `coupon_code` property names them.
    fn code_uses(&mut self, tenant: &Tenant, campaign_id: i64) -> Result<Vec<CodeUse>>;
}

fn due_step_from(r: &dyn RowAccess) -> Result<DueStep> {
    Ok(DueStep {
        campaign_id: r.int(0)?,
        step: u32::try_from(r.int(1)?).unwrap_or(0),
        customer_id: r.text(2)?.to_owned(),
        entered_at: at(r.int(3)?)?,
        due_at: at(r.int(4)?)?,
    })
}

/// Queues the steps of the tenant's active triggered campaigns that these changes (at
/// `entered`, microseconds) start: called in the transaction that records them, so that a
/// step is queued exactly when the entry that starts it is recorded (a retried write that
/// records nothing queues nothing).
pub(crate) fn queue_steps(
    db: &mut dyn Db,
    tenant: i64,
    changes: &[crate::MemberChange],
    entered: i64,
) -> Result<()> {
    use siyu_core::segment::rules::Change;
    let starts: Vec<(&str, &str, &str)> = changes
        .iter()
        .filter(|c| c.change == Change::Entered)
        .map(|c| (c.kind.as_str(), c.name.as_str(), c.customer_id.as_str()))
        .collect();
    queue_starts(db, tenant, &starts, entered)
}

/// Queues the steps that these (trigger kind, name, customer) starts begin, at `entered`.
fn queue_starts(
    db: &mut dyn Db,
    tenant: i64,
    starts: &[(&str, &str, &str)],
    entered: i64,
) -> Result<()> {
    if starts.is_empty() {
        return Ok(());
    }
    let triggers = rows(
        db,
        "SELECT t.campaign_id, t.step, t.kind, t.name, t.delay_secs FROM campaign_triggers t
         JOIN campaigns c ON c.id = t.campaign_id
         WHERE t.tenant_id = ?1 AND c.status = 'active'",
        &[Arg::Int(tenant)],
        |r| {
            Ok((
                r.int(0)?,
                r.int(1)?,
                r.text(2)?.to_owned(),
                r.text(3)?.to_owned(),
                r.int(4)?,
            ))
        },
    )?;
    if triggers.is_empty() {
        return Ok(());
    }
    // A few hundred rows a statement: a sweep can move many customers into a segment.
    let mut queued: Vec<Vec<Arg<'_>>> = Vec::new();
    for (kind, name, customer) in starts {
        for (campaign, step, k, n, delay) in &triggers {
            if k != kind || n != name {
                continue;
            }
            queued.push(vec![
                Arg::Int(tenant),
                Arg::Int(*campaign),
                Arg::Int(*step),
                Arg::Text(customer),
                Arg::Int(entered),
                Arg::Int(entered.saturating_add(delay.saturating_mul(1_000_000))),
            ]);
        }
    }
    let columns = [
        "tenant_id",
        "campaign_id",
        "step",
        "customer_id",
        "entered_at",
        "due_at",
    ];
    for chunk in queued.chunks(ROWS_PER_INSERT) {
        let sql =
            insert_sql("campaign_step_queue", &columns, chunk.len()) + " ON CONFLICT DO NOTHING";
        let args: Vec<Arg<'_>> = chunk.iter().flatten().cloned().collect();
        db.exec(&sql, &args)?;
    }
    Ok(())
}

/// Steps started inside a write's transaction by what it writes besides memberships.
pub trait StepWrites {
    /// Queues the steps of campaigns triggered by these events (customer, event type),
    /// written at `now`: a customer's events of one type in one write start one sequence.
    fn queue_event_steps(&mut self, events: &[(&str, &str)], now: Timestamp) -> Result<()>;
}

impl<T: crate::shared::TxOnDb> StepWrites for T {
    fn queue_event_steps(&mut self, events: &[(&str, &str)], now: Timestamp) -> Result<()> {
        let tenant = self.tenant_id();
        let starts: Vec<(&str, &str, &str)> =
            events.iter().map(|(c, k)| ("event", *k, *c)).collect();
        queue_starts(self.tx_db(), tenant, &starts, micros(now))
    }
}

fn at(us: i64) -> Result<Timestamp> {
    from_micros(us)
}

fn opt_at(us: Option<i64>) -> Result<Option<Timestamp>> {
    us.map(from_micros).transpose()
}

const ISSUED_BY_OFFER: &str = "SELECT offer, count(*), CAST(coalesce(sum(face), 0) AS BIGINT) FROM coupons WHERE tenant_id = ?1 GROUP BY offer";

const CAMPAIGN_COLUMNS: &str = "id, name, spec, secret, status, created_by, created_at";

/// Rows per statement of a multi-row insert: under both drivers' limits on parameters.
const ROWS_PER_INSERT: usize = 400;

/// `INSERT INTO table (columns) VALUES (?1, …), …` for `n` rows.
fn insert_sql(table: &str, columns: &[&str], n: usize) -> String {
    let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
    let mut p = 1;
    for row in 0..n {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..columns.len() {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push('?');
            sql.push_str(&p.to_string());
            p += 1;
        }
        sql.push(')');
    }
    sql
}

/// Inserts rows of `columns` values each, a few hundred a statement.
fn insert_all<'a>(
    db: &mut dyn Db,
    table: &str,
    columns: &[&str],
    values: impl Iterator<Item = Vec<Arg<'a>>>,
) -> Result<()> {
    let full = insert_sql(table, columns, ROWS_PER_INSERT);
    let mut batch: Vec<Arg<'a>> = Vec::with_capacity(ROWS_PER_INSERT * columns.len());
    let mut n = 0;
    for row in values {
        batch.extend(row);
        n += 1;
        if n == ROWS_PER_INSERT {
            db.exec(&full, &batch)?;
            batch.clear();
            n = 0;
        }
    }
    if n > 0 {
        db.exec(&insert_sql(table, columns, n), &batch)?;
    }
    Ok(())
}

fn decision_from(r: &dyn RowAccess) -> Result<DecisionRow> {
    Ok(DecisionRow {
        run: u32::try_from(r.int(0)?).unwrap_or(u32::MAX),
        customer_id: r.text(1)?.to_owned(),
        tier: r.opt_text(2)?.map(str::to_owned),
        outcome: r.text(3)?.to_owned(),
        reason: r.text(4)?.to_owned(),
        detail: r.opt_text(5)?.map(str::to_owned),
        decided_at: at(r.int(6)?)?,
        channel: r.opt_text(7)?.map(str::to_owned),
        not_before: opt_at(r.opt_int(8)?)?,
        coupon_code: r.opt_text(9)?.map(str::to_owned),
        sent_at: opt_at(r.opt_int(10)?)?,
    })
}

fn coupon_from(r: &dyn RowAccess) -> Result<CouponRow> {
    Ok(CouponRow {
        code: r.text(0)?.to_owned(),
        offer: r.text(1)?.to_owned(),
        customer_id: r.text(2)?.to_owned(),
        face: Money::from_fen(r.int(3)?),
        issued_at: at(r.int(4)?)?,
        valid_until: at(r.int(5)?)?,
    })
}

const COUPON_COLUMNS: &str = "code, offer, customer_id, face, issued_at, valid_until";

impl<T: OnDb> CampaignStore for T {
    fn create_offer(
        &mut self,
        tenant: &Tenant,
        name: &str,
        spec: &str,
        by: &str,
        now: Timestamp,
    ) -> Result<bool> {
        let n = self.db().exec(
            "INSERT INTO offers (tenant_id, name, spec, created_by, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (tenant_id, name) DO NOTHING",
            &[
                Arg::Int(tenant.id),
                Arg::Text(name),
                Arg::Text(spec),
                Arg::Text(by),
                Arg::Int(micros(now)),
            ],
        )?;
        Ok(n > 0)
    }

    fn offers(&mut self, tenant: &Tenant) -> Result<Vec<StoredOffer>> {
        let db = self.db();
        let issued = rows(db, ISSUED_BY_OFFER, &[Arg::Int(tenant.id)], |r| {
            Ok((r.text(0)?.to_owned(), r.int(1)?, r.int(2)?))
        })?;
        let sql = format!(
            "SELECT name, spec, created_by, created_at FROM offers WHERE tenant_id = ?1 ORDER BY name{}",
            db.dialect().bytewise()
        );
        rows(db, &sql, &[Arg::Int(tenant.id)], |r| {
            let name = r.text(0)?.to_owned();
            let (n, face) = issued
                .iter()
                .find(|(o, _, _)| *o == name)
                .map_or((0, 0), |(_, n, f)| (*n, *f));
            Ok(StoredOffer {
                spec: r.text(1)?.to_owned(),
                created_by: r.text(2)?.to_owned(),
                created_at: at(r.int(3)?)?,
                issued: u64::try_from(n).unwrap_or(0),
                issued_face: Money::from_fen(face),
                name,
            })
        })
    }

    fn create_campaign(
        &mut self,
        tenant: &Tenant,
        name: &str,
        spec: &str,
        secret: &str,
        by: &str,
        now: Timestamp,
        triggers: &[NewTrigger],
    ) -> Result<bool> {
        in_transaction(self.db(), |db| {
            let n = db.exec(
                "INSERT INTO campaigns (tenant_id, name, spec, secret, status, created_by, created_at)
                 VALUES (?1, ?2, ?3, ?4, 'active', ?5, ?6) ON CONFLICT (tenant_id, name) DO NOTHING",
                &[
                    Arg::Int(tenant.id),
                    Arg::Text(name),
                    Arg::Text(spec),
                    Arg::Text(secret),
                    Arg::Text(by),
                    Arg::Int(micros(now)),
                ],
            )?;
            if n == 0 {
                return Ok(false);
            }
            for t in triggers {
                db.exec(
                    "INSERT INTO campaign_triggers (tenant_id, campaign_id, step, kind, name, delay_secs)
                     SELECT ?1, id, ?3, ?4, ?5, ?6 FROM campaigns WHERE tenant_id = ?1 AND name = ?2",
                    &[
                        Arg::Int(tenant.id),
                        Arg::Text(name),
                        Arg::Int(i64::from(t.step)),
                        Arg::Text(&t.kind),
                        Arg::Text(&t.name),
                        Arg::Int(t.delay_secs),
                    ],
                )?;
            }
            Ok(true)
        })
    }

    fn tenants_with_due_steps(&mut self, now: Timestamp) -> Result<Vec<i64>> {
        rows(
            self.db(),
            "SELECT DISTINCT q.tenant_id FROM campaign_step_queue q
             JOIN campaigns c ON c.id = q.campaign_id
             WHERE q.due_at <= ?1 AND c.status = 'active'",
            &[Arg::Int(micros(now))],
            |r| r.int(0),
        )
    }

    fn due_steps(
        &mut self,
        tenant: &Tenant,
        campaign_id: Option<i64>,
        now: Option<Timestamp>,
        limit: usize,
    ) -> Result<Vec<DueStep>> {
        rows(
            self.db(),
            "SELECT q.campaign_id, q.step, q.customer_id, q.entered_at, q.due_at
             FROM campaign_step_queue q JOIN campaigns c ON c.id = q.campaign_id
             WHERE q.tenant_id = ?1 AND (CAST(?2 AS BIGINT) IS NULL OR q.campaign_id = ?2)
               AND (CAST(?3 AS BIGINT) IS NULL OR (q.due_at <= ?3 AND c.status = 'active'))
             ORDER BY q.due_at, q.campaign_id, q.step, q.customer_id LIMIT ?4",
            &[
                Arg::Int(tenant.id),
                Arg::OptInt(campaign_id),
                Arg::OptInt(now.map(micros)),
                Arg::Int(i64::try_from(limit).unwrap_or(i64::MAX)),
            ],
            due_step_from,
        )
    }

    fn campaigns(&mut self, tenant: &Tenant) -> Result<Vec<StoredCampaign>> {
        let db = self.db();
        let runs = rows(
            db,
            "SELECT r.campaign_id, r.ran_at FROM campaign_runs r
             JOIN campaigns c ON c.id = r.campaign_id WHERE c.tenant_id = ?1 ORDER BY r.run",
            &[Arg::Int(tenant.id)],
            |r| Ok((r.int(0)?, at(r.int(1)?)?)),
        )?;
        let sql = format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE tenant_id = ?1 ORDER BY name{}",
            db.dialect().bytewise()
        );
        rows(db, &sql, &[Arg::Int(tenant.id)], |r| {
            let id = r.int(0)?;
            Ok(StoredCampaign {
                id,
                name: r.text(1)?.to_owned(),
                spec: r.text(2)?.to_owned(),
                secret: r.text(3)?.to_owned(),
                status: r.text(4)?.to_owned(),
                created_by: r.text(5)?.to_owned(),
                created_at: at(r.int(6)?)?,
                runs: runs
                    .iter()
                    .filter(|(c, _)| *c == id)
                    .map(|(_, t)| *t)
                    .collect(),
            })
        })
    }

    fn set_campaign_status(&mut self, tenant: &Tenant, name: &str, status: &str) -> Result<bool> {
        let n = self.db().exec(
            "UPDATE campaigns SET status = ?3 WHERE tenant_id = ?1 AND name = ?2",
            &[Arg::Int(tenant.id), Arg::Text(name), Arg::Text(status)],
        )?;
        Ok(n > 0)
    }

    fn sends_since(
        &mut self,
        tenant: &Tenant,
        since: Timestamp,
        each: &mut dyn FnMut(&str, &str, Timestamp),
    ) -> Result<()> {
        // By the runs since then (a small table), each run's decisions by its key: no
        // index of the decisions by time to keep up at every run.
        self.db().each_row(
            "SELECT d.customer_id, d.channel, d.decided_at
             FROM campaigns c
             JOIN campaign_runs r ON r.campaign_id = c.id
             JOIN campaign_decisions d ON d.campaign_id = r.campaign_id AND d.run = r.run
             WHERE c.tenant_id = ?1 AND r.ran_at >= ?2 AND d.outcome = 'send'",
            &[Arg::Int(tenant.id), Arg::Int(micros(since))],
            &mut |r| {
                each(r.text(0)?, r.opt_text(1)?.unwrap_or(""), at(r.int(2)?)?);
                Ok(())
            },
        )
    }

    fn record_run(
        &mut self,
        tenant: &Tenant,
        run: &NewRun<'_>,
        deliveries: &[NewDelivery],
    ) -> Result<u32> {
        in_transaction(self.db(), |db| {
            let owned = rows(
                db,
                "SELECT count(*) FROM campaigns WHERE id = ?1 AND tenant_id = ?2",
                &[Arg::Int(run.campaign_id), Arg::Int(tenant.id)],
                |r| r.int(0),
            )?;
            if owned.first() != Some(&1) {
                return Err(StoreError::NotFound(format!(
                    "campaign {}",
                    run.campaign_id
                )));
            }
            let number = rows(
                db,
                "SELECT coalesce(max(run), 0) + 1 FROM campaign_runs WHERE campaign_id = ?1",
                &[Arg::Int(run.campaign_id)],
                |r| r.int(0),
            )?
            .first()
            .copied()
            .unwrap_or(1);
            if number != i64::from(run.run) {
                return Err(StoreError::Conflict(format!(
                    "run {} of the campaign was recorded meanwhile",
                    run.run
                )));
            }
            let decided = micros(run.at);
            db.exec(
                "INSERT INTO campaign_runs (campaign_id, run, ran_at) VALUES (?1, ?2, ?3)",
                &[
                    Arg::Int(run.campaign_id),
                    Arg::Int(number),
                    Arg::Int(decided),
                ],
            )?;
            let not_before = micros(run.not_before);
            insert_all(
                db,
                "campaign_decisions",
                &[
                    "tenant_id",
                    "campaign_id",
                    "run",
                    "customer_id",
                    "tier",
                    "outcome",
                    "reason",
                    "detail",
                    "decided_at",
                    "channel",
                    "not_before",
                    "coupon_code",
                ],
                run.decisions.iter().map(|d| {
                    let send = d.outcome == "send";
                    vec![
                        Arg::Int(tenant.id),
                        Arg::Int(run.campaign_id),
                        Arg::Int(number),
                        Arg::Text(d.customer_id),
                        Arg::OptText(d.tier),
                        Arg::Text(d.outcome),
                        Arg::Text(d.reason),
                        Arg::OptText(d.detail.as_deref()),
                        Arg::Int(decided),
                        Arg::OptText(send.then_some(run.channel)),
                        Arg::OptInt(send.then_some(not_before)),
                        Arg::OptText(d.coupon.as_ref().map(|c| c.code.as_str())),
                    ]
                }),
            )?;
            insert_all(
                db,
                "coupons",
                &[
                    "tenant_id",
                    "code",
                    "offer",
                    "campaign_id",
                    "customer_id",
                    "face",
                    "issued_at",
                    "valid_until",
                ],
                run.decisions.iter().filter_map(|d| {
                    let c = d.coupon.as_ref()?;
                    Some(vec![
                        Arg::Int(tenant.id),
                        Arg::Text(&c.code),
                        Arg::Text(&c.offer),
                        Arg::Int(run.campaign_id),
                        Arg::Text(d.customer_id),
                        Arg::Int(c.face.fen()),
                        Arg::Int(decided),
                        Arg::Int(micros(c.valid_until)),
                    ])
                }),
            )?;
            // The sends to webhooks go to the outbox in this same transaction: a run's
            // sends exist exactly when its decisions do.
            crate::delivery::enqueue(db, tenant.id, deliveries, run.at)?;
            // The queued steps decided leave the queue with their decisions recorded.
            for d in run.steps_done {
                let n = db.exec(
                    "DELETE FROM campaign_step_queue WHERE campaign_id = ?1 AND customer_id = ?2
                       AND entered_at = ?3 AND step = ?4",
                    &[
                        Arg::Int(d.campaign_id),
                        Arg::Text(&d.customer_id),
                        Arg::Int(micros(d.entered_at)),
                        Arg::Int(i64::from(d.step)),
                    ],
                )?;
                if n == 0 {
                    return Err(StoreError::Conflict(format!(
                        "step {} of the campaign was decided meanwhile",
                        d.step
                    )));
                }
            }
            Ok(u32::try_from(number).unwrap_or(u32::MAX))
        })
    }

    fn decisions(
        &mut self,
        tenant: &Tenant,
        campaign_id: i64,
        customer: Option<&str>,
        each: &mut dyn FnMut(DecisionRow),
    ) -> Result<()> {
        let db = self.db();
        let sql = format!(
            "SELECT run, customer_id, tier, outcome, reason, detail, decided_at, channel,
                    not_before, coupon_code, sent_at
             FROM campaign_decisions
             WHERE tenant_id = ?1 AND campaign_id = ?2 AND (CAST(?3 AS TEXT) IS NULL OR customer_id = ?3)
             ORDER BY run, customer_id{}",
            db.dialect().bytewise()
        );
        db.each_row(
            &sql,
            &[
                Arg::Int(tenant.id),
                Arg::Int(campaign_id),
                Arg::OptText(customer),
            ],
            &mut |r| {
                each(decision_from(r)?);
                Ok(())
            },
        )
    }

    fn export_sends(
        &mut self,
        tenant: &Tenant,
        campaign_id: i64,
        now: Timestamp,
    ) -> Result<Vec<ExportRow>> {
        in_transaction(self.db(), |db| {
            let sql = format!(
                "SELECT d.run, d.customer_id, c.name, c.phone, d.tier, d.coupon_code, d.not_before
                 FROM campaign_decisions d
                 LEFT JOIN customers c ON c.tenant_id = d.tenant_id AND c.customer_id = d.customer_id
                 WHERE d.tenant_id = ?1 AND d.campaign_id = ?2 AND d.outcome = 'send'
                   AND d.channel = 'export' AND d.sent_at IS NULL
                 ORDER BY d.run, d.customer_id{}",
                db.dialect().bytewise()
            );
            let out = rows(
                db,
                &sql,
                &[Arg::Int(tenant.id), Arg::Int(campaign_id)],
                |r| {
                    Ok(ExportRow {
                        run: u32::try_from(r.int(0)?).unwrap_or(u32::MAX),
                        customer_id: r.text(1)?.to_owned(),
                        name: r.opt_text(2)?.map(str::to_owned),
                        phone: r.opt_text(3)?.map(str::to_owned),
                        tier: r.opt_text(4)?.map(str::to_owned),
                        coupon_code: r.opt_text(5)?.map(str::to_owned),
                        not_before: opt_at(r.opt_int(6)?)?,
                    })
                },
            )?;
            db.exec(
                "UPDATE campaign_decisions SET sent_at = ?3
                 WHERE tenant_id = ?1 AND campaign_id = ?2 AND outcome = 'send'
                   AND channel = 'export' AND sent_at IS NULL",
                &[
                    Arg::Int(tenant.id),
                    Arg::Int(campaign_id),
                    Arg::Int(micros(now)),
                ],
            )?;
            Ok(out)
        })
    }

    fn coupons_of(&mut self, tenant: &Tenant, campaign_id: i64) -> Result<Vec<CouponRow>> {
        let db = self.db();
        let sql = format!(
            "SELECT {COUPON_COLUMNS} FROM coupons WHERE tenant_id = ?1 AND campaign_id = ?2
             ORDER BY code{}",
            db.dialect().bytewise()
        );
        rows(
            db,
            &sql,
            &[Arg::Int(tenant.id), Arg::Int(campaign_id)],
            |r| coupon_from(r),
        )
    }

    fn coupons(&mut self, tenant: &Tenant, offer: Option<&str>) -> Result<Vec<CouponRow>> {
        let db = self.db();
        let sql = format!(
            "SELECT {COUPON_COLUMNS} FROM coupons WHERE tenant_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR offer = ?2)
             ORDER BY issued_at, code{}",
            db.dialect().bytewise()
        );
        rows(db, &sql, &[Arg::Int(tenant.id), Arg::OptText(offer)], |r| {
            coupon_from(r)
        })
    }

    fn code_uses(&mut self, tenant: &Tenant, campaign_id: i64) -> Result<Vec<CodeUse>> {
        let db = self.db();
        let args = [Arg::Int(tenant.id), Arg::Int(campaign_id)];
        let mut uses = rows(
            db,
            "SELECT k.code, o.customer_id, o.ordered_at, o.order_id
             FROM coupons k JOIN orders o ON o.tenant_id = k.tenant_id AND o.coupon_code = k.code
             WHERE k.tenant_id = ?1 AND k.campaign_id = ?2 AND o.status = 'paid'",
            &args,
            |r| {
                Ok(CodeUse {
                    code: r.text(0)?.to_owned(),
                    customer_id: r.text(1)?.to_owned(),
                    at: at(r.int(2)?)?,
                    order_id: Some(r.text(3)?.to_owned()),
                })
            },
        )?;
        // The events' codes are read in Rust: JSON in SQL differs between the two.
        let codes: std::collections::HashSet<String> = rows(
            db,
            "SELECT code FROM coupons WHERE tenant_id = ?1 AND campaign_id = ?2",
            &args,
            |r| Ok(r.text(0)?.to_owned()),
        )?
        .into_iter()
        .collect();
        if codes.is_empty() {
            return Ok(uses);
        }
        db.each_row(
            "SELECT customer_id, occurred_at, properties FROM events
             WHERE tenant_id = ?1 AND type = 'coupon_redeemed'",
            &args[..1],
            &mut |r| {
                let props: serde_json::Value =
                    serde_json::from_str(r.text(2)?).unwrap_or(serde_json::Value::Null);
                if let Some(code) = props.get("coupon_code").and_then(|c| c.as_str())
                    && codes.contains(code)
                {
                    uses.push(CodeUse {
                        code: code.to_owned(),
                        customer_id: r.text(0)?.to_owned(),
                        at: at(r.int(1)?)?,
                        order_id: None,
                    });
                }
                Ok(())
            },
        )?;
        Ok(uses)
    }
}

//! Keeping segments and tags current without evaluating the whole pool at every write.
//!
//! A customer's memberships depend on their own facts, on the tenant's local day and on two
//! pool-wide figures, the [`Thresholds`] (the super users' spend cut-off, the RFM means).
//! The thresholds are fixed for a day: computed when the day begins (the sweep of `siyu
//! serve`, or `siyu segment refresh` from cron), on a large import and when a setting they
//! depend on changes. In between, a write evaluates only the customers it touched,
//! against the day's thresholds, which gives exactly what evaluating everyone would give.
//! A whole-pool evaluation goes a slice of customers at a time, so that it holds little in
//! memory; the sweep reads on snapshots and writes only the customers who move, in short
//! writes that `siyu serve` runs on its own writer.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use jiff::civil::Date;

use siyu_core::segment::pool::{Pool, PoolBuilder, Thresholds, ThresholdsBuilder};
use siyu_core::segment::rules::{Change, Definition, RuleKind, evaluate, membership_changes};
use siyu_core::{CustomerId, TenantZone, Timestamp};
use siyu_store::{Member, MemberChange, PoolTx, Store, Tenant};

use super::segments::{RuleSettings, RulesError, definitions, rule_settings};

/// Customers evaluated together in a slice of a whole-pool evaluation: a slice's pool
/// is a few megabytes, and the sweep holds the write lock for one slice at a time.
pub const SLICE: usize = 20_000;

/// What an evaluation did: who entered and exited, how many customers it judged.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Moved {
    pub entered: u64,
    pub exited: u64,
    pub customers: u64,
    pub seconds: f64,
}

/// The spend period of the pool as of `as_of`: the 365 local days D − 365 < d ≤ D.
fn spend_period(zone: &TenantZone, as_of: Date) -> anyhow::Result<(Timestamp, Timestamp)> {
    let first_day = as_of
        .checked_sub(jiff::Span::new().days(364))
        .unwrap_or(Date::MIN);
    Ok((zone.start_of(first_day), zone.start_of(as_of.tomorrow()?)))
}

/// The thresholds of the whole pool as of `as_of`, read customer by customer.
pub fn compute_thresholds(
    tx: &mut dyn PoolTx,
    zone: &TenantZone,
    as_of: Date,
) -> anyhow::Result<Thresholds> {
    Ok(thresholds_and_ends(tx, zone, as_of, usize::MAX)?.0)
}

/// The thresholds of the whole pool as of `as_of`, and the last customer of each slice of
/// `slice` customers, in id order: one pass gives both.
fn thresholds_and_ends(
    tx: &mut dyn PoolTx,
    zone: &TenantZone,
    as_of: Date,
    slice: usize,
) -> anyhow::Result<(Thresholds, Vec<CustomerId>)> {
    let (from, until) = spend_period(zone, as_of)?;
    let mut builder = ThresholdsBuilder::new(as_of);
    let (mut ends, mut in_slice, mut last) = (Vec::new(), 0, String::new());
    let mut bad_id = None;
    tx.pool_figures(from, until, &mut |id, f| {
        builder.push_figures(f.last_purchase_day, f.orders, f.net_spend, f.spend);
        in_slice += 1;
        if in_slice == slice {
            in_slice = 0;
            match CustomerId::parse(id) {
                Ok(end) => ends.push(end),
                Err(e) => bad_id = Some(e),
            }
        } else if slice != usize::MAX {
            last.clear();
            last.push_str(id);
        }
    })
    .context("reading the pool for its thresholds")?;
    if let Some(e) = bad_id {
        return Err(e).context("a customer id in the pool");
    }
    if in_slice > 0 && slice != usize::MAX {
        ends.push(CustomerId::parse(&last).context("a customer id in the pool")?);
    }
    Ok((builder.finish(), ends))
}

/// The pool of these customers (sorted, no repeats) as of the thresholds' day, their
/// stages and classes judged against the thresholds.
pub fn pool_of(
    tx: &mut dyn PoolTx,
    zone: &TenantZone,
    settings: &RuleSettings,
    thresholds: &Thresholds,
    ids: &[CustomerId],
) -> anyhow::Result<Pool> {
    let as_of = thresholds.day;
    let (from, until) = spend_period(zone, as_of)?;
    let mut builder = PoolBuilder::new(as_of, zone, settings.lifecycle);
    builder.reserve(ids.len());
    tx.pool_customers_of(ids, from, until, &mut |c| {
        builder.push(&c.profile, &c.attributes, &c.tags, c.spend);
    })
    .context("reading the customers to evaluate")?;
    builder
        .finish_with(thresholds, settings.vip_rule.as_ref())
        .map_err(|e| anyhow!("the tenant's vip_rule: {e}"))
}

/// What customers are judged by: the tenant's zone and settings, the saved rules that
/// read, and the day's thresholds.
pub struct Judge<'a> {
    pub zone: &'a TenantZone,
    pub settings: &'a RuleSettings,
    pub defs: &'a [Definition],
    pub thresholds: &'a Thresholds,
}

/// Evaluates every definition and level tag for these customers (sorted, no repeats)
/// against the judge's thresholds, and records who entered and exited, as caused by
/// `cause`. A customer without a profile any more leaves everything they were in.
pub fn evaluate_customers(
    tx: &mut dyn PoolTx,
    judge: &Judge<'_>,
    ids: &[CustomerId],
    at: Timestamp,
    cause: &str,
) -> Result<Moved, RulesError> {
    if ids.is_empty() {
        return Ok(Moved::default());
    }
    let mut pool = pool_of(tx, judge.zone, judge.settings, judge.thresholds, ids)?;
    let before = tx
        .memberships_of(ids)
        .context("reading the customers' memberships")?;
    let changes = changes(judge, &mut pool, &before)?;
    record(tx, &changes, pool.table.len(), at, cause)
}

/// Who enters and who exits: every definition and level tag evaluated over `pool`,
/// against `before`, the kept memberships of the same customers (a saved rule that does
/// not read keeps its members as they were). In one order whatever the hashes: by rule,
/// then customer, exits before entries.
fn changes(
    judge: &Judge<'_>,
    pool: &mut Pool,
    before: &[Member],
) -> Result<Vec<MemberChange>, RulesError> {
    let selections = evaluate(pool, judge.defs)?;
    // The kept members of each rule, sorted; then each rule's sorted merge with its
    // members now (the table's rows are in customer-id order).
    let mut kept: HashMap<(RuleKind, &str), Vec<&str>> = HashMap::with_capacity(selections.len());
    for m in before {
        kept.entry((m.kind, m.name.as_str()))
            .or_default()
            .push(m.customer_id.as_str());
    }
    let mut changes: Vec<MemberChange> = Vec::new();
    for s in &selections {
        let mut before = kept.remove(&(s.kind, s.name.as_str())).unwrap_or_default();
        before.sort_unstable();
        let now = s.members.rows().map(|row| pool.table.customer_id(row));
        let (entered, exited) = membership_changes(&before, now);
        for (ids, change) in [(exited, Change::Exited), (entered, Change::Entered)] {
            for id in ids {
                changes.push(MemberChange {
                    kind: s.kind,
                    name: s.name.clone(),
                    customer_id: CustomerId::parse(id).map_err(anyhow::Error::from)?,
                    change,
                });
            }
        }
    }
    // One order whatever the hashes: by rule, then customer, exits before entries.
    changes.sort_by(|a, b| {
        (a.kind, &a.name, &a.customer_id, a.change == Change::Entered).cmp(&(
            b.kind,
            &b.name,
            &b.customer_id,
            b.change == Change::Entered,
        ))
    });
    Ok(changes)
}

/// Records `changes` with `cause`; what moved among `judged` customers.
fn record(
    tx: &mut dyn PoolTx,
    changes: &[MemberChange],
    judged: usize,
    at: Timestamp,
    cause: &str,
) -> Result<Moved, RulesError> {
    let entered = changes
        .iter()
        .filter(|c| c.change == Change::Entered)
        .count() as u64;
    tx.apply_changes(changes, at, cause)
        .context("recording who entered and exited")?;
    Ok(Moved {
        entered,
        exited: changes.len() as u64 - entered,
        customers: judged as u64,
        seconds: 0.0,
    })
}

/// The customers after `after` up to and including `through`, read in one pass, as the
/// rules read them against the judge's thresholds; room for `rows` of them made first.
fn slice_pool(
    tx: &mut dyn PoolTx,
    judge: &Judge<'_>,
    after: Option<&CustomerId>,
    through: &CustomerId,
    rows: usize,
) -> Result<Pool, RulesError> {
    let as_of = judge.thresholds.day;
    let (from, until) = spend_period(judge.zone, as_of)?;
    let mut builder = PoolBuilder::new(as_of, judge.zone, judge.settings.lifecycle);
    builder.reserve(rows);
    tx.pool_customers_between(after, through, from, until, &mut |c| {
        builder.push(&c.profile, &c.attributes, &c.tags, c.spend);
    })
    .context("reading a slice of the pool")?;
    Ok(builder
        .finish_with(judge.thresholds, judge.settings.vip_rule.as_ref())
        .map_err(|e| anyhow!("the tenant's vip_rule: {e}"))?)
}

/// The customers after `after` up to and including `through` whose memberships an
/// evaluation against the judge's thresholds would change, read in one pass (no write).
/// Each rule's evaluation is merged with its kept members of the slice, read rule by rule
/// in id order into one buffer: reading every membership row whole (rule, name, customer,
/// since) cost a sixth of the sweep.
fn movers_between(
    tx: &mut dyn PoolTx,
    judge: &Judge<'_>,
    after: Option<&CustomerId>,
    through: &CustomerId,
) -> Result<(Vec<CustomerId>, u64), RulesError> {
    let mut pool = slice_pool(tx, judge, after, through, 0)?;
    let selections = evaluate(&mut pool, judge.defs)?;
    let mut movers: Vec<CustomerId> = Vec::new();
    let (mut kept, mut ends) = (String::new(), Vec::<usize>::new());
    for s in &selections {
        kept.clear();
        ends.clear();
        tx.rule_members_between((s.kind, &s.name), after, through, &mut |id| {
            kept.push_str(id);
            ends.push(kept.len());
        })
        .context("reading a slice's memberships")?;
        let mut start = 0;
        let before: Vec<&str> = ends
            .iter()
            .map(|&end| {
                let id = &kept[start..end];
                start = end;
                id
            })
            .collect();
        let now = s.members.rows().map(|row| pool.table.customer_id(row));
        let (entered, exited) = membership_changes(&before, now);
        for id in entered.into_iter().chain(exited) {
            movers.push(CustomerId::parse(id).map_err(anyhow::Error::from)?);
        }
    }
    movers.sort_unstable();
    movers.dedup();
    Ok((movers, pool.table.len() as u64))
}

/// Evaluates the whole pool against `thresholds`, a slice at a time inside `tx`.
fn evaluate_everyone(
    tx: &mut dyn PoolTx,
    judge: &Judge<'_>,
    at: Timestamp,
    cause: &str,
) -> Result<Moved, RulesError> {
    let mut moved = Moved::default();
    let mut after: Option<CustomerId> = None;
    loop {
        let ids = tx
            .pool_ids_after(after.as_ref(), SLICE)
            .context("listing the pool")?;
        let Some(last) = ids.last().cloned() else {
            break;
        };
        let slice = evaluate_slice(tx, judge, after.as_ref(), &last, at, cause)?;
        moved.entered += slice.entered;
        moved.exited += slice.exited;
        moved.customers += slice.customers;
        after = Some(last);
    }
    Ok(moved)
}

/// Evaluates the customers after `after` up to and including `through`, read in one pass,
/// and records the changes, all inside `tx`. Written in the same transaction as read, the
/// changes are recorded straight from the slice: the sweep, which reads on a snapshot and
/// writes elsewhere, reads those who move a second time; a large import or a rule saved
/// need not (at a first import of orders, most of a slice moves, and that second read was
/// a fifth of the import).
fn evaluate_slice(
    tx: &mut dyn PoolTx,
    judge: &Judge<'_>,
    after: Option<&CustomerId>,
    through: &CustomerId,
    at: Timestamp,
    cause: &str,
) -> Result<Moved, RulesError> {
    let mut pool = slice_pool(tx, judge, after, through, 0)?;
    let before = tx
        .memberships_between(after, through)
        .context("reading a slice's memberships")?;
    let changes = changes(judge, &mut pool, &before)?;
    record(tx, &changes, pool.table.len(), at, cause)
}

/// How an evaluation of the whole pool takes its thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recompute {
    /// Compute them again (the day's sweep, `segment refresh`, a large import, a setting
    /// they depend on).
    Always,
    /// Keep today's if computed today (a rule saved or deleted, a tag given).
    IfStale,
}

/// Evaluates every customer, and records the changes with `cause`: all in `tx`.
pub fn evaluate_all(
    tx: &mut dyn PoolTx,
    zone: &TenantZone,
    settings: &RuleSettings,
    recompute: Recompute,
    cause: &str,
) -> Result<Moved, RulesError> {
    let started = Instant::now();
    let defs = locked_rules(tx)?;
    let at = Timestamp::now();
    let today = zone.day_of(at);
    let (thresholds, _) = day_thresholds(tx, zone, today, recompute == Recompute::IfStale)?;
    let judge = Judge {
        zone,
        settings,
        defs: &defs,
        thresholds: &thresholds,
    };
    let mut moved = evaluate_everyone(tx, &judge, at, cause)?;
    moved.seconds = started.elapsed().as_secs_f64();
    Ok(moved)
}

/// The thresholds for `today`: the stored ones when computed today and `reuse`, else
/// computed and saved; and whether none were stored before (the tenant's first evaluation).
fn day_thresholds(
    tx: &mut dyn PoolTx,
    zone: &TenantZone,
    today: Date,
    reuse: bool,
) -> Result<(Thresholds, bool), RulesError> {
    let stored = tx.thresholds().context("reading the day's thresholds")?;
    let first_ever = stored.is_none();
    let thresholds = match stored {
        Some(t) if t.day == today && reuse => t,
        _ => {
            let t = compute_thresholds(tx, zone, today)?;
            tx.save_thresholds(&t).context("saving the thresholds")?;
            t
        }
    };
    Ok((thresholds, first_ever))
}

/// Evaluates the customers a write touched (sorted, no repeats), recording the changes
/// with `cause`. On the first write of a day the sweep has not reached, the day's
/// thresholds are computed first (everyone else waits for the sweep, or for `siyu segment
/// refresh`); on a tenant's first evaluation ever, everyone is evaluated.
pub fn evaluate_touched(
    tx: &mut dyn PoolTx,
    zone: &TenantZone,
    settings: &RuleSettings,
    ids: &[CustomerId],
    cause: &str,
) -> Result<Moved, RulesError> {
    let started = Instant::now();
    let defs = locked_rules(tx)?;
    let at = Timestamp::now();
    let today = zone.day_of(at);
    let (thresholds, first_ever) = day_thresholds(tx, zone, today, true)?;
    let judge = Judge {
        zone,
        settings,
        defs: &defs,
        thresholds: &thresholds,
    };
    let mut moved = if first_ever {
        evaluate_everyone(tx, &judge, at, cause)?
    } else {
        evaluate_customers(tx, &judge, ids, at, cause)?
    };
    moved.seconds = started.elapsed().as_secs_f64();
    Ok(moved)
}

/// The saved rules that read.
fn rules(tx: &mut dyn PoolTx) -> anyhow::Result<Vec<Definition>> {
    Ok(definitions(tx)?.into_iter().map(|(_, d)| d).collect())
}

/// The saved rules that read, once no other transaction is evaluating the tenant's (and
/// none can until this one ends).
fn locked_rules(tx: &mut dyn PoolTx) -> anyhow::Result<Vec<Definition>> {
    tx.lock_evaluation()
        .context("waiting for another evaluation")?;
    rules(tx)
}

/// A write of a sweep's, run on whichever connection writes for it.
pub type SweepWrite = Box<dyn FnOnce(&mut dyn Store) + Send>;

/// Where a sweep's writes (the thresholds, then the movers of each slice) run.
#[derive(Clone, Copy)]
pub enum Writes<'a> {
    /// In short transactions of the sweep's own connections, which queue for the write
    /// lock with everyone else's (`siyu segment refresh`).
    Own,
    /// Handed to a writer that runs them in turn with its other work: `siyu serve`'s
    /// group commit, so that the sweep never polls for the lock beside its ingest.
    Writer(&'a (dyn Fn(SweepWrite) -> anyhow::Result<()> + Sync)),
}

/// Customers judged again in one write of a sweep, at most: what a writer that also
/// serves ingest spends on a sweep's write stays short (a day moves a few hundred
/// customers of a slice of 20,000; a rule saved with its evaluation deferred, all of them).
const MOVERS_PER_WRITE: usize = 2_000;

/// A thread's sweep writes handed on and not yet answered, at most: it goes on reading
/// while the writer, busy with ingest, catches up, and holds little (a few hundred ids a
/// write on a day).
const PENDING_WRITES: usize = 8;

/// The day's sweep of one tenant, for `siyu serve` and `siyu segment refresh`, which
/// never holds the write lock for long:
/// 1. the thresholds are computed on a read snapshot, then saved (a short write), so that
///    every write from then on judges its customers by them;
/// 2. the pool is cut into slices (their ends taken from the thresholds' pass, and from a
///    snapshot taken after the save for the customers past the last of them), and
///    slice by slice, each on a read snapshot of its own, the customers whose memberships
///    would change are found (most customers change nothing on a day);
/// 3. those are judged again as they are then and their changes recorded, in a short
///    write of their own (at most [`MOVERS_PER_WRITE`] customers), run where `writes`
///    says.
///
/// With a `helper`, a second connection to the same database, two threads take the
/// slices in turn (the reading and judging is most of a sweep, and the machine has two
/// cores or more).
///
/// A customer a write touched meanwhile was judged by the new thresholds already, and is
/// judged again in step 3 only if step 2 saw them move; either way they end as a full
/// evaluation with the day and thresholds gives.
pub fn sweep(
    store: &mut dyn Store,
    helper: Option<&mut dyn Store>,
    tenant: &Tenant,
    cause: &str,
    writes: Writes<'_>,
) -> Result<Moved, RulesError> {
    sweep_in_slices(
        store,
        helper,
        tenant,
        cause,
        writes,
        (SLICE, MOVERS_PER_WRITE),
    )
}

/// [`sweep`], `slice` customers at a time, and at most `per_write` movers a write.
pub(crate) fn sweep_in_slices(
    store: &mut dyn Store,
    helper: Option<&mut dyn Store>,
    tenant: &Tenant,
    cause: &str,
    writes: Writes<'_>,
    (slice, per_write): (usize, usize),
) -> Result<Moved, RulesError> {
    let started = Instant::now();
    let settings = Arc::new(rule_settings(store, tenant)?);
    let zone = &tenant.zone;
    let today = zone.day_of(Timestamp::now());
    // The slices' ends come from the thresholds' pass over every customer, and are
    // extended past the last of them once the thresholds are saved.
    let (thresholds, mut ends) = {
        let mut tx = store.read_pool(tenant)?;
        thresholds_and_ends(tx.as_mut(), zone, today, slice)?
    };
    let saved = {
        let tenant = tenant.clone();
        hand_on(store, writes, move |store| {
            let mut tx = store.begin_pool(&tenant)?;
            tx.lock_evaluation()
                .context("waiting for another evaluation")?;
            tx.save_thresholds(&thresholds)
                .context("saving the thresholds")?;
            tx.commit()?;
            Ok(())
        })?
    };
    let computed = started.elapsed();
    saved
        .recv()
        .map_err(|_| anyhow!("the writer dropped the sweep's thresholds"))??;
    let saved = started.elapsed();
    {
        // Customers whose ids come after the last end listed, added since: on a snapshot
        // taken once the thresholds were saved, so that whoever it misses was added after
        // the save, and judged by the day's thresholds as it was written.
        let mut tx = store.read_pool(tenant)?;
        let more = slice_ends(tx.as_mut(), ends.last(), slice)?;
        ends.extend(more);
    }
    tracing::debug!(
        thresholds_ms = computed.as_millis() as u64,
        saved_ms = saved.as_millis() as u64,
        listed_ms = started.elapsed().as_millis() as u64,
        "the sweep's thresholds saved and its slices listed"
    );
    let sweeping = Sweeping {
        tenant,
        settings,
        thresholds,
        ends: &ends,
        next: AtomicUsize::new(0),
        failed: AtomicBool::new(false),
        per_write,
        cause,
        writes,
    };
    let mut moved = std::thread::scope(|scope| {
        let other = helper.map(|h| scope.spawn(|| sweep_slices(h, &sweeping)));
        let mine = sweep_slices(store, &sweeping);
        let theirs = match other {
            Some(thread) => thread
                .join()
                .map_err(|_| anyhow!("the sweep's second thread panicked"))??,
            None => Moved::default(),
        };
        let mine = mine?;
        Ok::<_, RulesError>(Moved {
            entered: mine.entered + theirs.entered,
            exited: mine.exited + theirs.exited,
            customers: mine.customers + theirs.customers,
            seconds: 0.0,
        })
    })?;
    moved.seconds = started.elapsed().as_secs_f64();
    Ok(moved)
}

/// Runs `write` where `writes` says (at once on `store`, or handed to the writer); its
/// answer comes through the channel returned.
fn hand_on<T: Send + 'static>(
    store: &mut dyn Store,
    writes: Writes<'_>,
    write: impl FnOnce(&mut dyn Store) -> Result<T, RulesError> + Send + 'static,
) -> Result<mpsc::Receiver<Result<T, RulesError>>, RulesError> {
    let (reply, answer) = mpsc::sync_channel(1);
    let job: SweepWrite = Box::new(move |store| {
        let _ = reply.send(write(store));
    });
    match writes {
        Writes::Own => job(store),
        Writes::Writer(writer) => writer(job)?,
    }
    Ok(answer)
}

/// The last customer of each slice of `slice` customers after `after` (from the first
/// when `None`), in id order.
fn slice_ends(
    tx: &mut dyn PoolTx,
    after: Option<&CustomerId>,
    slice: usize,
) -> anyhow::Result<Vec<CustomerId>> {
    let mut ends: Vec<CustomerId> = Vec::new();
    loop {
        let ids = tx
            .pool_ids_after(ends.last().or(after), slice)
            .context("listing the pool")?;
        match ids.into_iter().last() {
            Some(last) => ends.push(last),
            None => return Ok(ends),
        }
    }
}

/// A sweep's steps 2 and 3 shared by its threads: the slices and the next one to take.
struct Sweeping<'a> {
    tenant: &'a Tenant,
    settings: Arc<RuleSettings>,
    thresholds: Thresholds,
    ends: &'a [CustomerId],
    next: AtomicUsize,
    /// Set by a thread that failed, so that the other stops at its next slice.
    failed: AtomicBool,
    /// Movers judged again in one write, at most.
    per_write: usize,
    cause: &'a str,
    writes: Writes<'a>,
}

/// Judges `movers` (sorted, no repeats) again as they are now, against the sweep's day and
/// thresholds, and records their changes: one short write transaction on `store`. The
/// changes bear the time they are recorded, not the sweep's start: writes that came in
/// between recorded theirs earlier, and the history replays in time order.
fn record_movers(
    store: &mut dyn Store,
    tenant: &Tenant,
    settings: &RuleSettings,
    thresholds: &Thresholds,
    movers: &[CustomerId],
    cause: &str,
) -> Result<Moved, RulesError> {
    let mut tx = store.begin_pool(tenant)?;
    let defs = locked_rules(tx.as_mut())?;
    let judge = Judge {
        zone: &tenant.zone,
        settings,
        defs: &defs,
        thresholds,
    };
    let moved = evaluate_customers(tx.as_mut(), &judge, movers, Timestamp::now(), cause)?;
    tx.commit()?;
    Ok(moved)
}

/// Adds what a write of the sweep's recorded to `moved`, once it is answered; the time
/// waited for it to `waited`.
fn add_written(
    moved: &mut Moved,
    waited: &mut Duration,
    answer: mpsc::Receiver<Result<Moved, RulesError>>,
) -> Result<(), RulesError> {
    let started = Instant::now();
    let written = answer
        .recv()
        .map_err(|_| anyhow!("the writer dropped a write of the sweep"))??;
    *waited += started.elapsed();
    moved.entered += written.entered;
    moved.exited += written.exited;
    Ok(())
}

/// Takes the sweep's slices one after another until none is left: finds each one's
/// movers on a read snapshot, then has them judged again and their changes recorded,
/// in writes of at most `per_write`: at once while the thread has no write unanswered,
/// else gathered until the writer answers or `per_write` are waiting.
fn sweep_slices(store: &mut dyn Store, s: &Sweeping<'_>) -> Result<Moved, RulesError> {
    let result = (|| {
        let started = Instant::now();
        let mut moved = Moved::default();
        let (mut waited, mut read) = (Duration::ZERO, Duration::ZERO);
        let mut pending: VecDeque<mpsc::Receiver<Result<Moved, RulesError>>> = VecDeque::new();
        // Movers found and not yet handed on: while the writer is behind, a write judges
        // those of several slices (a day moves a few hundred of a slice), as each write has
        // its cost besides its customers (the rules read, a commit synced).
        let mut waiting: Vec<CustomerId> = Vec::new();
        let hand = |store: &mut dyn Store,
                    chunk: Vec<CustomerId>,
                    pending: &mut VecDeque<_>,
                    moved: &mut Moved,
                    waited: &mut Duration|
         -> Result<(), RulesError> {
            if pending.len() >= PENDING_WRITES
                && let Some(answer) = pending.pop_front()
            {
                add_written(moved, waited, answer)?;
            }
            let (tenant, settings, thresholds) =
                (s.tenant.clone(), Arc::clone(&s.settings), s.thresholds);
            let cause = s.cause.to_owned();
            pending.push_back(hand_on(store, s.writes, move |store| {
                record_movers(store, &tenant, &settings, &thresholds, &chunk, &cause)
            })?);
            Ok(())
        };
        let zone = &s.tenant.zone;
        while !s.failed.load(Ordering::Relaxed) {
            let i = s.next.fetch_add(1, Ordering::Relaxed);
            let Some(through) = s.ends.get(i) else { break };
            let after = i.checked_sub(1).map(|p| &s.ends[p]);
            let reading = Instant::now();
            let (movers, judged) = {
                let mut tx = store.read_pool(s.tenant)?;
                let defs = rules(tx.as_mut())?;
                let judge = Judge {
                    zone,
                    settings: &s.settings,
                    defs: &defs,
                    thresholds: &s.thresholds,
                };
                movers_between(tx.as_mut(), &judge, after, through)?
            };
            read += reading.elapsed();
            moved.customers += judged;
            // The thread's slices come in id order: its movers stay sorted.
            waiting.extend(movers);
            // The writes answered already; then the movers go on at once while the writer
            // keeps up (one write of the thread's in its hands at most), and gather while it
            // does not.
            while let Some(answer) = pending.front() {
                match answer.try_recv() {
                    Ok(written) => {
                        pending.pop_front();
                        let written = written?;
                        moved.entered += written.entered;
                        moved.exited += written.exited;
                    }
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => {
                        return Err(anyhow!("the writer dropped a write of the sweep").into());
                    }
                }
            }
            while waiting.len() >= s.per_write || (!waiting.is_empty() && pending.is_empty()) {
                let rest = waiting.split_off(s.per_write.min(waiting.len()));
                let chunk = std::mem::replace(&mut waiting, rest);
                hand(store, chunk, &mut pending, &mut moved, &mut waited)?;
            }
        }
        if !waiting.is_empty() {
            hand(store, waiting, &mut pending, &mut moved, &mut waited)?;
        }
        let last_read = started.elapsed();
        while let Some(answer) = pending.pop_front() {
            add_written(&mut moved, &mut waited, answer)?;
        }
        tracing::debug!(
            read_ms = read.as_millis() as u64,
            last_read_ms = last_read.as_millis() as u64,
            waited_ms = waited.as_millis() as u64,
            took_ms = started.elapsed().as_millis() as u64,
            "a thread of the sweep is done with its slices"
        );
        Ok(moved)
    })();
    if result.is_err() {
        s.failed.store(true, Ordering::Relaxed);
    }
    result
}

/// How many customers a rule would hold now, for a segment of `purpose` (the console's
/// live count as an operator types): the pool judged slice by slice on a read snapshot
/// against the day's thresholds, beside the saved rules whose tags it may name. Nothing
/// is written.
pub fn count_rule(
    store: &mut dyn Store,
    tenant: &Tenant,
    rule: siyu_core::rule::Rule,
    purpose: siyu_core::segment::rules::Purpose,
) -> Result<u64, RulesError> {
    CountPool::read(store, tenant)?.count(&rule, purpose)
}

/// The pool as [`count_rule`] judges a rule: every slice of it, read on one snapshot and
/// built against the day's thresholds, with the saved tag rules evaluated into it. Read
/// once, it counts any number of rules (the console keeps it while the tenant's change
/// counter stands still, so each key an operator types judges columns in memory).
pub struct CountPool {
    slices: Vec<Pool>,
}

/// The name the counted rule goes by in a refusal (no saved rule can have it).
const COUNTED: &str = "\u{1}count";

impl CountPool {
    pub fn read(store: &mut dyn Store, tenant: &Tenant) -> Result<CountPool, RulesError> {
        let settings = rule_settings(store, tenant)?;
        let mut tx = store.read_pool(tenant)?;
        let zone = &tenant.zone;
        let today = zone.day_of(Timestamp::now());
        let thresholds = match tx.thresholds()? {
            Some(t) if t.day == today => t,
            _ => compute_thresholds(tx.as_mut(), zone, today)?,
        };
        let defs: Vec<Definition> = definitions(tx.as_mut())?
            .into_iter()
            .map(|(_, d)| d)
            .filter(|d| d.kind == RuleKind::Tag)
            .collect();
        let judge = Judge {
            zone,
            settings: &settings,
            defs: &defs,
            thresholds: &thresholds,
        };
        let (mut slices, mut after) = (Vec::new(), None::<CustomerId>);
        loop {
            let ids = tx
                .pool_ids_after(after.as_ref(), SLICE)
                .context("listing the pool")?;
            let Some(last) = ids.last().cloned() else {
                break;
            };
            // Its columns exactly as long as the slice: they are kept.
            let mut pool = slice_pool(tx.as_mut(), &judge, after.as_ref(), &last, ids.len())?;
            // The tag rules' columns, as an evaluation with the counted rule adds them
            // before it judges a segment; the stages and classes a rule reads are columns.
            evaluate(&mut pool, &defs)?;
            pool.rows = Vec::new();
            slices.push(pool);
            after = Some(last);
        }
        tx.commit()?;
        Ok(CountPool { slices })
    }

    /// How many customers `rule` holds as a segment of `purpose`: what an evaluation of
    /// the saved tag rules and this one as a segment would give it.
    pub fn count(
        &self,
        rule: &siyu_core::rule::Rule,
        purpose: siyu_core::segment::rules::Purpose,
    ) -> Result<u64, RulesError> {
        let mut count = 0;
        for pool in &self.slices {
            let mut members = rule.members(&pool.table).map_err(|error| {
                siyu_core::segment::rules::EvaluationError::Rule {
                    kind: RuleKind::Segment,
                    name: COUNTED.to_owned(),
                    error,
                }
            })?;
            if purpose == siyu_core::segment::rules::Purpose::Marketing {
                members.and_not(&pool.opted_out);
            }
            count += members.count() as u64;
        }
        Ok(count)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::fmt::Write as _;

    use super::*;
    use crate::service::import::{ImportOptions, import_file};
    use crate::service::segments::{NewRule, save_rule};
    use siyu_core::import::Kind;
    use siyu_core::segment::rules::Purpose;
    use siyu_store::MemberFilter;

    /// A full evaluation after a sweep finds nothing left to move; the history and the
    /// memberships then, for the caller to check.
    pub(crate) fn nothing_left(
        store: &mut dyn Store,
        tenant: &Tenant,
    ) -> (Vec<siyu_store::HistoryRecord>, Vec<siyu_store::Member>) {
        let settings = rule_settings(store, tenant).expect("settings");
        let mut tx = store.begin_pool(tenant).expect("tx");
        let again = evaluate_all(
            tx.as_mut(),
            &tenant.zone,
            &settings,
            Recompute::IfStale,
            "check",
        )
        .expect("evaluate");
        assert_eq!(
            (again.entered, again.exited),
            (0, 0),
            "left over: {again:?}"
        );
        let history = tx.history(MemberFilter::All, 10_000).expect("history");
        let members = tx.members(MemberFilter::All).expect("members");
        tx.commit().expect("commit");
        (history, members)
    }

    /// A pool of 23 customers (most with orders) whose rules were saved before the
    /// imports, which judged nobody: everything is left for the sweep to record.
    pub(crate) fn stale_pool(store: &mut dyn Store, tenant: &Tenant, dir: &std::path::Path) {
        for rule in [
            NewRule::segment("buyers", "orders >= 1", Purpose::Analysis),
            NewRule::segment("lapsing", "days_since_order > 30", Purpose::Analysis),
            NewRule::tag("spender", "spend_365d >= 100", None),
        ] {
            save_rule(store, tenant, rule, "test", false).expect("rule");
        }
        let today = tenant.zone.day_of(Timestamp::now());
        let (mut customers, mut orders) = (
            "customer_id,joined_at\n".to_owned(),
            "order_id,customer_id,ordered_at,amount,status\n".to_owned(),
        );
        for k in 0..23 {
            writeln!(customers, "c{k:02},2024-01-01 00:00:00").expect("line");
            if k % 4 != 3 {
                let day = today
                    .checked_sub(jiff::Span::new().days(k * 3))
                    .expect("day");
                writeln!(
                    orders,
                    "o{k},c{k:02},{day} 12:00:00,{}.00,paid",
                    20 + k * 10
                )
                .expect("line");
            }
        }
        let deferred = ImportOptions {
            defer_segments: true,
            ..ImportOptions::default()
        };
        for (kind, text) in [(Kind::Customers, customers), (Kind::Orders, orders)] {
            let path = dir.join(format!("{}.csv", kind.name()));
            std::fs::write(&path, text).expect("written");
            import_file(store, tenant, kind, &path, deferred).expect("imported");
        }
    }

    #[test]
    fn the_thresholds_pass_gives_the_slices_ends_a_listing_of_the_pool_gives() {
        let dir = tempfile::tempdir().expect("dir");
        let db = dir.path().join("pool.db");
        let mut store = siyu_store::open(&db.to_string_lossy()).expect("open");
        let tenant = store.tenant("shop").expect("tenant");
        stale_pool(store.as_mut(), &tenant, dir.path());
        let today = tenant.zone.day_of(Timestamp::now());
        let mut tx = store.read_pool(&tenant).expect("tx");
        let whole = compute_thresholds(tx.as_mut(), &tenant.zone, today).expect("thresholds");
        // 23 customers: slices that end short, exactly, and one for all.
        for slice in [1, 3, 5, 23, 24] {
            let (thresholds, ends) =
                thresholds_and_ends(tx.as_mut(), &tenant.zone, today, slice).expect("pass");
            assert_eq!(thresholds, whole, "slices of {slice}");
            let listed = slice_ends(tx.as_mut(), None, slice).expect("listed");
            assert_eq!(ends, listed, "slices of {slice}");
            assert_eq!(ends.len(), 23_usize.div_ceil(slice), "slices of {slice}");
        }
    }

    #[test]
    fn a_sweep_gathers_the_movers_of_the_slices_it_reads_while_the_writer_is_behind() {
        let dir = tempfile::tempdir().expect("dir");
        let db = dir.path().join("pool.db").to_string_lossy().into_owned();
        let mut store = siyu_store::open(&db).expect("open");
        let tenant = store.tenant("shop").expect("tenant");
        stale_pool(store.as_mut(), &tenant, dir.path());
        // A writer that runs the thresholds at once, then holds the first write of movers
        // until a second comes: the sweep reads its other slices meanwhile.
        let (jobs, queue) = mpsc::channel::<SweepWrite>();
        let mut writer = siyu_store::open(&db).expect("open");
        let runner = std::thread::spawn(move || {
            let mut held = Vec::new();
            for (k, job) in queue.into_iter().enumerate() {
                if k == 0 {
                    job(writer.as_mut());
                    continue;
                }
                held.push(job);
                if held.len() >= 2 {
                    for job in held.drain(..) {
                        job(writer.as_mut());
                    }
                }
            }
            held.len()
        });
        let write = move |job: SweepWrite| {
            jobs.send(job)
                .map_err(|_| anyhow!("the writer has stopped"))
        };
        let moved = sweep_in_slices(
            store.as_mut(),
            None,
            &tenant,
            "midnight",
            Writes::Writer(&write),
            (3, 100),
        )
        .expect("sweep");
        drop(write);
        assert_eq!(runner.join().expect("runner"), 0, "every write was run");
        assert!(moved.entered > 20, "{moved:?}");
        let (history, _) = nothing_left(store.as_mut(), &tenant);
        // A write records its changes at one time, and each write at its own.
        let writes: std::collections::BTreeSet<Timestamp> = history
            .iter()
            .filter(|h| h.cause == "midnight")
            .map(|h| h.at)
            .collect();
        assert_eq!(
            writes.len(),
            2,
            "the first slice's movers, then the 7 others' together"
        );
    }

    /// Sweeps on two connections in slices of 3, then checks that an evaluation of
    /// everyone has nothing left to record and that the history holds each change once.
    fn two_threads_sweep_everyone(store: &mut dyn Store, helper: &mut dyn Store, tenant: &Tenant) {
        let dir = tempfile::tempdir().expect("dir");
        stale_pool(store, tenant, dir.path());
        let moved = sweep_in_slices(store, Some(helper), tenant, "midnight", Writes::Own, (3, 2))
            .expect("sweep");
        assert_eq!(moved.customers, 23);
        assert!(moved.entered > 20, "{moved:?}");
        let (history, members) = nothing_left(store, tenant);
        let swept: Vec<_> = history.iter().filter(|h| h.cause == "midnight").collect();
        assert_eq!(swept.len() as u64, moved.entered + moved.exited);
        assert_eq!(members.len() as u64, moved.entered - moved.exited);
    }

    #[test]
    fn a_sweep_on_two_threads_records_every_slices_changes_once_on_sqlite() {
        let dir = tempfile::tempdir().expect("dir");
        let db = dir.path().join("pool.db");
        let db = db.to_string_lossy();
        let mut store = siyu_store::open(&db).expect("open");
        let mut helper = siyu_store::open(&db).expect("open");
        let tenant = store.tenant("shop").expect("tenant");
        two_threads_sweep_everyone(store.as_mut(), helper.as_mut(), &tenant);
    }

    #[test]
    fn a_sweep_on_two_threads_records_every_slices_changes_once_on_postgres() {
        let Ok(url) = std::env::var("SIYU_TEST_POSTGRES") else {
            return;
        };
        let mut store = siyu_store::open(&url).expect("open");
        let mut helper = siyu_store::open(&url).expect("open");
        let name = format!(
            "sweep-{}-{}",
            std::process::id(),
            Timestamp::now().as_microsecond()
        );
        let tenant = store.tenant(&name).expect("tenant");
        two_threads_sweep_everyone(store.as_mut(), helper.as_mut(), &tenant);
    }
}

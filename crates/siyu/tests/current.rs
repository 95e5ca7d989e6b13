//! Always current, incrementally: after any sequence of imports, tags, opt-outs, saved
//! rules, refreshes and midnights, every kept membership (segments, rule tags, level tags)
//! is exactly what a full evaluation of the whole pool gives with the same day and the
//! thresholds stored for it, though a write evaluates only the customers it touched; the
//! history replays to the kept members; and the thresholds are those of the pool when they
//! were last recomputed; also when the midnight sweep hands its writes to a writer that
//! writes batches between them, as `siyu serve`'s does. SQLite always; PostgreSQL too when
//! `SIYU_TEST_POSTGRES` is set.

mod common;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;

use siyu::service::evaluate::{SweepWrite, Writes, compute_thresholds, sweep as evaluate_sweep};
use siyu::service::import::{ImportOptions, import_file};
use siyu::service::privacy::set_opt_out;
use siyu::service::segments::{
    NewRule, add_tag, definitions, evaluate_now, remove_tag, rule_settings, save_rule, sweep,
};
use siyu_core::import::Kind;
use siyu_core::segment::pool::PoolBuilder;
use siyu_core::segment::rules::{Change, Purpose, RuleKind, evaluate};
use siyu_core::{CustomerId, Timestamp};
use siyu_store::{MemberChange, MemberFilter, Store, Tenant};

/// Rules that read the thresholds (stages, RFM classes), the day, tags and opt-outs.
const TAG_RULES: [(&str, &str); 1] = [("spender", "spend_365d >= 300")];
const SEGMENTS: [(&str, &str, Purpose); 4] = [
    ("vips", r#"stage = "vip""#, Purpose::Marketing),
    (
        "valued",
        r#"rfm in ("important_value", "important_retention") or has_tag("spender")"#,
        Purpose::Marketing,
    ),
    ("lapsing", "days_since_order > 60", Purpose::Analysis),
    (
        "outdoor",
        r#"has_tag("outdoor") and orders >= 1"#,
        Purpose::Marketing,
    ),
];
/// A rule saved part way through.
const LATE_SEGMENT: (&str, &str) = ("late_regulars", r#"orders >= 2 and stage != "lost""#);

#[derive(Debug, Clone)]
enum Op {
    /// Orders: (order, customer, days ago, yuan, refunded).
    Orders(Vec<(u8, u8, u16, u16, bool)>),
    /// Many customers at once: more than a tenth of the pool, so the thresholds move.
    Large(u8),
    Tag(u8),
    Untag(u8),
    OptOut(u8, bool),
    SaveLate,
    Refresh,
    Midnight,
    /// Memberships of one customer left as an earlier day judged them (in or out of
    /// `lapsing` and the `spender` tag, whatever their facts say now), then the midnight
    /// sweep: it must find customers who only exit, as time alone moves them.
    Yesterday(u8),
    /// A customer's memberships left as [`Op::Yesterday`] leaves them, then the midnight
    /// sweep as `siyu serve` runs it, its writes handed to a writer on a connection of its
    /// own, which writes batches before them: these orders before the thresholds are
    /// saved (so they are the pool's as the sweep read it, not as it is after), and an
    /// order of that customer (days ago, yuan) between the read and the write of the
    /// movers, who include them.
    Served(u8, u16, u16, Vec<(u8, u8, u16, u16, bool)>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => prop::collection::vec(
            (0u8..60, 0u8..20, 0u16..400, 1u16..900, prop::bool::weighted(0.15)),
            1..5
        )
        .prop_map(Op::Orders),
        1 => (0u8..4).prop_map(Op::Large),
        2 => (0u8..20).prop_map(Op::Tag),
        1 => (0u8..20).prop_map(Op::Untag),
        1 => (0u8..20, any::<bool>()).prop_map(|(c, on)| Op::OptOut(c, on)),
        1 => Just(Op::SaveLate),
        1 => Just(Op::Refresh),
        1 => Just(Op::Midnight),
        1 => (0u8..20).prop_map(Op::Yesterday),
        2 => (
            0u8..20,
            0u16..400,
            1u16..900,
            prop::collection::vec(
                (60u8..90, 0u8..24, 0u16..400, 1u16..900, prop::bool::weighted(0.15)),
                0..4
            ),
        )
            .prop_map(|(c, days, yuan, rows)| Op::Served(c, days, yuan, rows)),
    ]
}

fn id(customer: u8) -> CustomerId {
    CustomerId::parse(&format!("c{customer:02}")).expect("id")
}

fn import_orders(
    store: &mut dyn Store,
    tenant: &Tenant,
    rows: &[(String, String, u16, u16, bool)],
    path: &std::path::Path,
) {
    let mut text = String::from("order_id,customer_id,ordered_at,amount,status\n");
    let now = Timestamp::now();
    for (order, customer, days_ago, yuan, refunded) in rows {
        let second = now.as_second() - 86_400 * i64::from(*days_ago);
        let at = Timestamp::from_second(second).expect("time").to_string();
        let status = if *refunded { "refunded" } else { "paid" };
        let _ = writeln!(text, "{order},{customer},{at},{yuan},{status}");
    }
    std::fs::write(path, text).expect("write");
    import_file(store, tenant, Kind::Orders, path, ImportOptions::default()).expect("import");
}

/// The served midnight sweep of [`Op::Served`]: a writer on a second connection to `db`
/// that writes `first` as a batch before the sweep's first write (the thresholds), and
/// `then` before each later one (the movers).
fn served_sweep(
    store: &mut dyn Store,
    db: &str,
    tenant: &Tenant,
    first: Vec<(String, String, u16, u16, bool)>,
    then: (String, String, u16, u16, bool),
    dir: &std::path::Path,
) {
    let writer = Mutex::new(siyu_store::open(db).expect("the writer's connection"));
    let calls = AtomicUsize::new(0);
    let write = |work: SweepWrite| {
        let mut conn = writer.lock().expect("writer");
        let k = calls.fetch_add(1, Ordering::SeqCst);
        let rows = if k == 0 {
            &first[..]
        } else {
            std::slice::from_ref(&then)
        };
        if !rows.is_empty() {
            import_orders(conn.as_mut(), tenant, rows, &dir.join(format!("w{k}.csv")));
        }
        work(conn.as_mut());
        Ok(())
    };
    evaluate_sweep(store, None, tenant, "midnight", Writes::Writer(&write)).expect("sweep");
}

fn apply(
    store: &mut dyn Store,
    db: &str,
    tenant: &Tenant,
    op: &Op,
    path: &std::path::Path,
    round: usize,
) {
    match op {
        Op::Orders(rows) => {
            let rows: Vec<_> = rows
                .iter()
                .map(|(o, c, d, y, r)| (format!("o{o}"), id(*c).to_string(), *d, *y, *r))
                .collect();
            import_orders(store, tenant, &rows, path);
        }
        Op::Large(seed) => {
            let rows: Vec<_> = (0..40u16)
                .map(|k| {
                    let c = format!("n{seed}_{k:02}");
                    (
                        format!("big{round}_{k}"),
                        c,
                        k * 7 % 380,
                        50 + k * 31 % 700,
                        false,
                    )
                })
                .collect();
            import_orders(store, tenant, &rows, path);
        }
        Op::Tag(c) => {
            // Tagging a customer the pool lacks is refused; that is fine here.
            let _ = add_tag(store, tenant, &id(*c), "outdoor", "test", None);
        }
        Op::Untag(c) => {
            let _ = remove_tag(store, tenant, &id(*c), "outdoor", "test");
        }
        Op::OptOut(c, on) => {
            let _ = set_opt_out(store, tenant, &id(*c), *on, "test");
        }
        Op::SaveLate => {
            let rule = NewRule::segment(LATE_SEGMENT.0, LATE_SEGMENT.1, Purpose::Analysis);
            save_rule(store, tenant, rule, "test", true).expect("late segment");
        }
        Op::Refresh => {
            evaluate_now(store, tenant, "refresh").expect("refresh");
        }
        Op::Midnight => {
            sweep(store, None, tenant, "midnight").expect("sweep");
        }
        Op::Yesterday(c) => {
            yesterday(store, tenant, &id(*c));
            sweep(store, None, tenant, "midnight").expect("sweep");
        }
        Op::Served(c, days, yuan, rows) => {
            yesterday(store, tenant, &id(*c));
            let first = rows
                .iter()
                .map(|(o, c, d, y, r)| (format!("w{o}"), id(*c).to_string(), *d, *y, *r))
                .collect();
            let then = (format!("w{round}"), id(*c).to_string(), *days, *yuan, false);
            let dir = path.with_extension("served");
            std::fs::create_dir_all(&dir).expect("dir");
            served_sweep(store, db, tenant, first, then, &dir);
        }
    }
}

/// Flips the customer's kept membership of `lapsing` and of the `spender` tag, as a
/// judgement of an earlier day would have left them: an entry where they are not a
/// member, an exit where they are (so the sweep sees exits that come with no entry).
fn yesterday(store: &mut dyn Store, tenant: &Tenant, customer: &CustomerId) {
    let mut tx = store.begin_pool(tenant).expect("tx");
    let kept = tx
        .memberships_of(std::slice::from_ref(customer))
        .expect("memberships");
    let changes: Vec<MemberChange> = [(RuleKind::Segment, "lapsing"), (RuleKind::Tag, "spender")]
        .into_iter()
        .map(|(kind, name)| {
            let member = kept.iter().any(|m| m.kind == kind && m.name == name);
            MemberChange {
                kind,
                name: name.to_owned(),
                customer_id: customer.clone(),
                change: if member {
                    Change::Exited
                } else {
                    Change::Entered
                },
            }
        })
        .collect();
    if !kept.is_empty() {
        // A customer the pool lacks has no memberships to leave behind.
        tx.apply_changes(&changes, Timestamp::now(), "yesterday")
            .expect("changes");
    }
    tx.commit().expect("commit");
}

/// Kept memberships against a full evaluation of the whole pool with the stored day and
/// thresholds, and the history replayed against them.
fn check_round(
    store: &mut dyn Store,
    tenant: &Tenant,
    round: usize,
    recomputed: bool,
) -> Result<(), TestCaseError> {
    let settings = rule_settings(store, tenant).expect("settings");
    let mut tx = store.read_pool(tenant).expect("tx");
    let Some(thresholds) = tx.thresholds().expect("thresholds") else {
        prop_assert!(false, "no thresholds after round {}", round);
        unreachable!()
    };
    let today = tenant.zone.day_of(Timestamp::now());
    prop_assert_eq!(thresholds.day, today);
    if recomputed {
        let fresh = compute_thresholds(tx.as_mut(), &tenant.zone, today).expect("compute");
        prop_assert_eq!(
            fresh,
            thresholds,
            "thresholds recomputed in round {}",
            round
        );
    }
    let defs: Vec<_> = definitions(tx.as_mut())
        .expect("rules")
        .into_iter()
        .map(|(_, d)| d)
        .collect();
    let first_day = today.checked_sub(jiff::Span::new().days(364)).expect("day");
    let (from, until) = (
        tenant.zone.start_of(first_day),
        tenant.zone.start_of(today.tomorrow().expect("day")),
    );
    let mut builder = PoolBuilder::new(today, &tenant.zone, settings.lifecycle);
    tx.pool_customers(from, until, &mut |c| {
        builder.push(&c.profile, &c.attributes, &c.tags, c.spend);
    })
    .expect("pool");
    if recomputed {
        // The store's lean reading of the figures gives what the whole pool gives.
        prop_assert_eq!(builder.thresholds(), thresholds, "round {}", round);
    }
    let mut pool = builder
        .finish_with(&thresholds, settings.vip_rule.as_ref())
        .expect("pool");
    let selections = evaluate(&mut pool, &defs).expect("evaluate");
    let mut expected: BTreeSet<(String, String, String)> = BTreeSet::new();
    for s in &selections {
        for row in s.members.rows() {
            expected.insert((
                s.kind.to_string(),
                s.name.clone(),
                pool.table.customer_id(row).to_owned(),
            ));
        }
    }
    let kept: BTreeSet<(String, String, String)> = tx
        .members(MemberFilter::All)
        .expect("members")
        .into_iter()
        .map(|m| (m.kind.to_string(), m.name, m.customer_id.to_string()))
        .collect();
    let missing: Vec<_> = expected.difference(&kept).take(5).collect();
    let extra: Vec<_> = kept.difference(&expected).take(5).collect();
    prop_assert!(
        missing.is_empty() && extra.is_empty(),
        "round {}: missing {:?}, not expected {:?}",
        round,
        missing,
        extra
    );
    let mut history = tx.history(MemberFilter::All, usize::MAX).expect("history");
    history.reverse();
    let mut replayed: BTreeSet<(String, String, String)> = BTreeSet::new();
    for h in history {
        let key = (h.kind.to_string(), h.name, h.customer_id.to_string());
        match h.change {
            Change::Entered => prop_assert!(replayed.insert(key), "entered twice"),
            Change::Exited => prop_assert!(replayed.remove(&key), "exited unseen"),
        }
    }
    prop_assert_eq!(&replayed, &kept, "the history replays in round {}", round);
    Ok(())
}

fn check(
    store: &mut dyn Store,
    db: &str,
    tenant: &Tenant,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, rule) in TAG_RULES {
        save_rule(store, tenant, NewRule::tag(name, rule, None), "test", true).expect("tag");
    }
    for (name, rule, purpose) in SEGMENTS {
        let rule = NewRule::segment(name, rule, purpose);
        save_rule(store, tenant, rule, "test", false).expect("segment");
    }
    // A pool to start from, so that later writes are small beside it.
    let seed: Vec<_> = (0..20u8)
        .flat_map(|c| {
            (0..=c % 3).map(move |k| {
                let days = u16::from(c) * 19 % 390 + u16::from(k) * 45;
                (
                    format!("s{c}_{k}"),
                    id(c).to_string(),
                    days,
                    20 + u16::from(c) * 37,
                    false,
                )
            })
        })
        .collect();
    import_orders(store, tenant, &seed, &dir.path().join("seed.csv"));
    check_round(store, tenant, 0, true)?;
    for (i, op) in ops.iter().enumerate() {
        let round = i + 1;
        apply(
            store,
            db,
            tenant,
            op,
            &dir.path().join(format!("{round}.csv")),
            round,
        );
        let recomputed = matches!(
            op,
            Op::Refresh | Op::Midnight | Op::Yesterday(_) | Op::Large(_)
        );
        check_round(store, tenant, round, recomputed)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn kept_memberships_are_a_full_evaluation_with_the_days_thresholds_on_sqlite(
        ops in prop::collection::vec(op(), 1..10)
    ) {
        // A file, not memory: the served sweep's writer has a connection of its own.
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("current.db").to_string_lossy().into_owned();
        let mut store = siyu_store::open(&db).expect("sqlite");
        let tenant = store.tenant("shop").expect("tenant");
        check(store.as_mut(), &db, &tenant, &ops)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]

    #[test]
    fn kept_memberships_are_a_full_evaluation_with_the_days_thresholds_on_postgres(
        ops in prop::collection::vec(op(), 1..10)
    ) {
        let Some((mut store, tenant)) = common::postgres_tenant("current") else { return Ok(()) };
        let url = std::env::var("SIYU_TEST_POSTGRES").expect("url");
        check(store.as_mut(), &url, &tenant, &ops)?;
    }
}

/// A small write does not recompute the thresholds: the customers it did not touch keep
/// memberships judged against the day's thresholds, though the pool's means moved.
#[test]
fn a_small_write_keeps_the_days_thresholds() {
    let mut store = siyu_store::open(":memory:").expect("sqlite");
    let tenant = store.tenant("shop").expect("tenant");
    let dir = tempfile::tempdir().expect("tempdir");
    let seed: Vec<_> = (0..30u8)
        .map(|c| {
            (
                format!("s{c}"),
                id(c).to_string(),
                u16::from(c) * 3,
                100,
                false,
            )
        })
        .collect();
    import_orders(store.as_mut(), &tenant, &seed, &dir.path().join("seed.csv"));
    let before = {
        let mut tx = store.read_pool(&tenant).expect("tx");
        tx.thresholds().expect("read").expect("thresholds")
    };
    // One customer spends a great deal: the pool's mean spend moves, the day's does not.
    let rows = vec![("whale".to_owned(), id(1).to_string(), 0, 60_000, false)];
    import_orders(
        store.as_mut(),
        &tenant,
        &rows,
        &dir.path().join("whale.csv"),
    );
    let after = {
        let mut tx = store.read_pool(&tenant).expect("tx");
        tx.thresholds().expect("read").expect("thresholds")
    };
    assert_eq!(before, after);
    let fresh = {
        let mut tx = store.read_pool(&tenant).expect("tx");
        compute_thresholds(tx.as_mut(), &tenant.zone, before.day).expect("compute")
    };
    assert_ne!(fresh, before, "the pool's means moved");
    // segment refresh recomputes them.
    evaluate_now(store.as_mut(), &tenant, "refresh").expect("refresh");
    let mut tx = store.read_pool(&tenant).expect("tx");
    assert_eq!(tx.thresholds().expect("read"), Some(fresh));
}

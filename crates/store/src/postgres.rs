//! Scale-out: PostgreSQL, selected by a `postgres://` URL. Same observable behaviour as
//! the SQLite backend; imports write a batch at a time: COPY (binary) into a temporary
//! staging table, then one `INSERT … SELECT … ON CONFLICT` whose `RETURNING version`
//! gives the counts (1 inserted, more updated, no row unchanged).

use std::collections::HashSet;
use std::fmt;
use std::hash::Hash;

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{ToSql, Type};
use postgres::{Client, Config, IsolationLevel, NoTls, Transaction};

use siyu_core::CustomerFact;
use siyu_core::profile::{Profile, ProfileSink};
use siyu_core::{
    Channel, CustomerId, Gender, Money, NewCustomer, NewEvent, NewOrder, OrderFact, SeenCustomer,
    Timestamp,
};

use crate::shared::{OnDb, TxOnDb, scan};
use crate::sql::{Db, SCAN_ALL_ABOVE};
use crate::sql::{
    SCAN_ORDER_FACTS, SCAN_ORDERS, customer_fact_from, customer_facts_sql, event_line_into,
    event_lines_sql, order_fact_from, order_from, order_line_into, order_lines_sql,
    parse_customer_id, pg, profile_from, profiles_sql, referees_sql,
};
use crate::{
    ImportStore, ImportTx, IngestWrites, MergeTx, OrderStore, PrivacyStore, PrivacyTx,
    ProfileWrites, Result, Scope, Store, StoreError, TableCounts, Tenant, WriteCounts, micros,
    other,
};

mod api;
mod pool;
mod report;

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_init.sql")),
    (2, include_str!("../migrations/postgres/0002_settings.sql")),
    (3, include_str!("../migrations/postgres/0003_profiles.sql")),
    (4, include_str!("../migrations/postgres/0004_rules.sql")),
    (
        5,
        include_str!("../migrations/postgres/0005_channel_costs.sql"),
    ),
    (6, include_str!("../migrations/postgres/0006_api.sql")),
    (7, include_str!("../migrations/postgres/0007_privacy.sql")),
    (8, include_str!("../migrations/postgres/0008_indexes.sql")),
    (
        9,
        include_str!("../migrations/postgres/0009_thresholds.sql"),
    ),
    (
        10,
        include_str!("../migrations/postgres/0010_identities.sql"),
    ),
    (11, include_str!("../migrations/postgres/0011_console.sql")),
    (12, include_str!("../migrations/postgres/0012_merges.sql")),
    (
        13,
        include_str!("../migrations/postgres/0013_view_phone_audit.sql"),
    ),
    (
        14,
        include_str!("../migrations/postgres/0014_tenant_changes.sql"),
    ),
    (
        15,
        include_str!("../migrations/postgres/0015_campaigns.sql"),
    ),
    (16, include_str!("../migrations/postgres/0016_delivery.sql")),
    (
        17,
        include_str!("../migrations/postgres/0017_campaign_triggers.sql"),
    ),
];

/// The advisory lock that serialises migrations and schema creation across processes.
const MIGRATION_LOCK: i64 = 0x7369_7975_6d69_6772; // "siyumigr"

pub struct PgStore {
    client: Client,
    /// The connection of a server's ingest (see [`Store::serve_writes`]): its writes
    /// take the tenant's evaluation lock before their first profile.
    serving: bool,
}

/// A database error without its DETAIL, HINT and WHERE parts: those quote row values
/// (a failing row holds names and phones), which must not reach logs or users.
#[derive(Debug)]
struct PgFailure {
    code: String,
    message: String,
}

impl fmt::Display for PgFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "postgres: {} (SQLSTATE {})", self.message, self.code)
    }
}

impl std::error::Error for PgFailure {}

/// Whether `e` is PostgreSQL's deadlock or serialization failure: a conflict with a
/// concurrent transaction, which the same transaction run again may not meet.
pub(crate) fn is_transient(e: &(dyn std::error::Error + 'static)) -> bool {
    e.downcast_ref::<PgFailure>()
        .is_some_and(|f| matches!(f.code.as_str(), "40P01" | "40001"))
}

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) => StoreError::Other(Box::new(PgFailure {
                code: db.code().code().to_owned(),
                message: db.message().to_owned(),
            })),
            None => other(e),
        }
    }
}

/// `"name"`, safe to splice into SQL whatever the name holds.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user@host:port/db`, no TLS).
    pub fn connect(url: &str) -> Result<PgStore> {
        let mut config: Config = url.parse()?;
        if config.get_application_name().is_none() {
            config.application_name("siyu");
        }
        let client = config.connect(NoTls)?;
        Ok(PgStore {
            client,
            serving: false,
        })
    }

    /// Connects and works inside `schema` (created if missing) instead of the default
    /// search path: one database can hold many independent stores, as tests need.
    pub fn connect_in_schema(url: &str, schema: &str) -> Result<PgStore> {
        let mut store = PgStore::connect(url)?;
        let schema = quote_ident(schema);
        let mut tx = store.client.transaction()?;
        // Concurrent `CREATE SCHEMA IF NOT EXISTS` of one name can still collide.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))?;
        tx.commit()?;
        store
            .client
            .batch_execute(&format!("SET search_path TO {schema}"))?;
        Ok(store)
    }

    /// Creates `schema` (if missing) and gives a URL whose every connection works in it:
    /// for processes that open the database themselves (a server, the command line).
    pub fn schema_url(url: &str, schema: &str) -> Result<String> {
        drop(PgStore::connect_in_schema(url, schema)?);
        let sep = if url.contains('?') { '&' } else { '?' };
        Ok(format!("{url}{sep}options=-csearch_path%3D{schema}"))
    }

    /// Drops a schema made by `connect_in_schema`, with everything in it.
    pub fn drop_schema(url: &str, schema: &str) -> Result<()> {
        let mut store = PgStore::connect(url)?;
        store.client.batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {} CASCADE",
            quote_ident(schema)
        ))?;
        Ok(())
    }
}

fn now_micros() -> i64 {
    micros(Timestamp::now())
}

impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn ping(&mut self) -> Result<()> {
        self.client.simple_query("SELECT 1")?;
        Ok(())
    }

    fn serve_writes(&mut self) -> Result<()> {
        // Whatever the server's default: a commit returns once its WAL is flushed.
        self.client.batch_execute("SET synchronous_commit = on")?;
        self.serving = true;
        Ok(())
    }

    fn migrate(&mut self) -> Result<usize> {
        // Read committed: after waiting for the lock, the next statement sees what the
        // process that held it applied.
        let mut tx = self
            .client
            .build_transaction()
            .isolation_level(IsolationLevel::ReadCommitted)
            .start()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )?;
        let current: i64 = tx
            .query_one(
                "SELECT coalesce(max(version), 0)::bigint FROM schema_migrations",
                &[],
            )?
            .try_get(0)?;
        let mut applied = 0;
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
            tx.batch_execute(sql)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                &[version, &now_micros()],
            )?;
            applied += 1;
        }
        tx.commit()?;
        Ok(applied)
    }

    fn table_counts(&mut self, tenant: &Tenant) -> Result<TableCounts> {
        crate::shared::table_counts(&mut self.client, tenant)
    }
}

impl OnDb for PgStore {
    fn db(&mut self) -> &mut dyn Db {
        &mut self.client
    }
}

impl OrderStore for PgStore {
    fn scan_orders(&mut self, tenant: &Tenant, each: &mut dyn FnMut(NewOrder)) -> Result<()> {
        scan(
            &mut self.client,
            SCAN_ORDERS,
            tenant,
            |r| order_from(r),
            each,
        )
    }

    fn scan_order_facts(&mut self, tenant: &Tenant, each: &mut dyn FnMut(OrderFact)) -> Result<()> {
        scan(
            &mut self.client,
            SCAN_ORDER_FACTS,
            tenant,
            |r| order_fact_from(r),
            each,
        )
    }

    fn order_facts_of(
        &mut self,
        tenant: &Tenant,
        customers: &[CustomerId],
        each: &mut dyn FnMut(OrderFact),
    ) -> Result<()> {
        let ids: Vec<&str> = customers.iter().map(CustomerId::as_str).collect();
        let rows = self.client.query(
            "SELECT customer_id, ordered_at, amount, status FROM orders
             WHERE tenant_id = $1 AND customer_id = ANY($2)",
            &[&tenant.id, &ids],
        )?;
        for r in rows {
            each(order_fact_from(&r)?);
        }
        Ok(())
    }
}

impl ImportStore for PgStore {
    fn begin_import<'s>(&'s mut self, tenant: &Tenant) -> Result<Box<dyn ImportTx + 's>> {
        let mut import = PgImport::begin(&mut self.client, tenant)?;
        import.lock_before_profiles = self.serving;
        Ok(Box::new(import))
    }
}

impl PrivacyStore for PgStore {
    fn begin_privacy<'s>(&'s mut self, tenant: &Tenant) -> Result<Box<dyn PrivacyTx + 's>> {
        Ok(Box::new(PgImport::begin(&mut self.client, tenant)?))
    }
}

impl<'c> PgImport<'c> {
    /// A write transaction for the tenant (which must exist).
    fn begin(client: &'c mut Client, tenant: &Tenant) -> Result<PgImport<'c>> {
        // In place of a foreign key checked on every row (see the migration): the tenant
        // must exist, and cannot go away before the transaction commits.
        let tx = client.transaction()?;
        PgImport::of(
            tx,
            tenant,
            "SELECT 1 FROM tenants WHERE id = $1 FOR KEY SHARE",
            true,
        )
    }

    /// A transaction that only reads, on one snapshot (repeatable read).
    fn begin_read(client: &'c mut Client, tenant: &Tenant) -> Result<PgImport<'c>> {
        let tx = client
            .build_transaction()
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()?;
        PgImport::of(tx, tenant, "SELECT 1 FROM tenants WHERE id = $1", false)
    }

    /// The transaction `tx` of the tenant, which `check` (`$1` its id) finds.
    fn of(
        mut tx: Transaction<'c>,
        tenant: &Tenant,
        check: &str,
        writes: bool,
    ) -> Result<PgImport<'c>> {
        tx.query_opt(check, &[&tenant.id])?
            .ok_or_else(|| StoreError::NotFound(format!("tenant {}", tenant.id)))?;
        Ok(PgImport {
            tx,
            tenant: tenant.id,
            staged: HashSet::new(),
            displaced: Vec::new(),
            created: Vec::new(),
            lock_before_profiles: false,
            evaluation_locked: false,
            writes,
        })
    }
}

/// An import: one transaction (rolled back when dropped uncommitted) and the staging
/// tables it has created so far (temporary, dropped at commit).
struct PgImport<'c> {
    tx: Transaction<'c>,
    tenant: i64,
    /// Whether it may write (and so moves the tenant's change counter at its commit).
    writes: bool,
    staged: HashSet<&'static str>,
    /// Customers who lost an order to another customer in this import.
    displaced: Vec<CustomerId>,
    /// Customers this import created from sightings.
    created: Vec<CustomerId>,
    /// Whether the tenant's evaluation lock is taken before the first profile is written
    /// (a server's group commit), not only when the segments are evaluated. The group
    /// writes its batches' profiles one statement after another, each in id order but
    /// not all of them in one order, so two servers' groups could otherwise lock the same
    /// profiles in opposite orders and deadlock (PostgreSQL then stops one after a
    /// second). Its message ids, events, orders and new customers still go in while the
    /// other server holds the lock.
    lock_before_profiles: bool,
    evaluation_locked: bool,
}

/// A temporary table a batch is copied into before one statement merges it.
struct Stage {
    table: &'static str,
    columns: &'static [(&'static str, Type)],
}

const STAGE_CUSTOMERS: Stage = Stage {
    table: "pg_temp.siyu_stage_customers",
    columns: &[
        ("customer_id", Type::TEXT),
        ("name", Type::TEXT),
        ("phone", Type::TEXT),
        ("gender", Type::TEXT),
        ("birthday", Type::TEXT),
        ("region", Type::TEXT),
        ("channel", Type::TEXT),
        ("referrer_id", Type::TEXT),
        ("joined_at", Type::INT8),
    ],
};

const STAGE_TAGS: Stage = Stage {
    table: "pg_temp.siyu_stage_tags",
    columns: &[("customer_id", Type::TEXT), ("tag", Type::TEXT)],
};

const STAGE_SEEN: Stage = Stage {
    table: "pg_temp.siyu_stage_seen",
    columns: &[
        ("customer_id", Type::TEXT),
        ("channel", Type::TEXT),
        ("at", Type::INT8),
    ],
};

const STAGE_ORDERS: Stage = Stage {
    table: "pg_temp.siyu_stage_orders",
    columns: &[
        ("order_id", Type::TEXT),
        ("customer_id", Type::TEXT),
        ("ordered_at", Type::INT8),
        ("amount", Type::INT8),
        ("discount", Type::INT8),
        ("coupon_code", Type::TEXT),
        ("channel", Type::TEXT),
        ("status", Type::TEXT),
    ],
};

const STAGE_EVENTS: Stage = Stage {
    table: "pg_temp.siyu_stage_events",
    columns: &[
        ("event_id", Type::TEXT),
        ("customer_id", Type::TEXT),
        ("type", Type::TEXT),
        ("occurred_at", Type::INT8),
        ("properties", Type::TEXT),
    ],
};

/// Runs of up to this many rows reach their merge as arrays, one per column, in the
/// merge's own parameters; longer runs (imports) are copied into a staging table first.
/// A staging table costs a batch of a few hundred rows more than its merge: it is created
/// in the transaction (catalog rows written, and dropped at the commit), then emptied and
/// filled in two more round trips.
const ARRAY_ROWS: usize = 1_000;

/// A column of a run, as an array parameter of a merge.
type Param<'r> = Box<dyn ToSql + Sync + 'r>;

/// Where a merge reads a run's rows from.
enum Rows<'r> {
    /// The stage's table.
    Staged,
    /// The stage's columns as arrays, from `$2` on.
    Arrays(Vec<Param<'r>>),
}

/// One column of a run's rows.
fn column<'r, T, V: ToSql + Sync + 'r>(run: &'r [T], value: impl Fn(&'r T) -> V) -> Param<'r> {
    Box::new(run.iter().map(value).collect::<Vec<V>>())
}

impl Stage {
    /// The rows as a `FROM` item named `s` with the stage's columns.
    fn from(&self, rows: &Rows<'_>) -> String {
        match rows {
            Rows::Staged => format!("{} AS s", self.table),
            Rows::Arrays(_) => {
                let arrays = self
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, (_, ty))| {
                        let ty = if *ty == Type::INT8 { "bigint" } else { "text" };
                        format!("${}::{ty}[]", i + 2)
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                let names = self
                    .columns
                    .iter()
                    .map(|(name, _)| *name)
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("unnest({arrays}) AS s ({names})")
            }
        }
    }
}

impl Rows<'_> {
    /// The parameters of a merge of these rows: `$1` the tenant, then the arrays.
    fn params<'p>(&'p self, tenant: &'p i64) -> Vec<&'p (dyn ToSql + Sync)> {
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![tenant];
        if let Rows::Arrays(arrays) = self {
            params.extend(arrays.iter().map(|a| a.as_ref() as &(dyn ToSql + Sync)));
        }
        params
    }
}

// The merges. $1 is the tenant, $2 (customers) the import time. Rows go in key order so
// that concurrent imports lock rows in one order. A joined_at given by the file is
// explicit; absent, the row joins now, inferred (`excluded.joined_inferred`).
const MERGE_CUSTOMERS: &str = "
WITH up AS (
    INSERT INTO customers (tenant_id, customer_id, name, phone, gender, birthday, region,
                           channel, referrer_id, joined_at, joined_inferred, version)
    SELECT $1::bigint, customer_id, name, phone, gender, birthday, region, channel,
           referrer_id, coalesce(joined_at, $2::bigint), joined_at IS NULL, 1
    FROM pg_temp.siyu_stage_customers
    ORDER BY customer_id
    ON CONFLICT (tenant_id, customer_id) DO UPDATE SET
        name = coalesce(excluded.name, customers.name),
        phone = coalesce(excluded.phone, customers.phone),
        gender = coalesce(excluded.gender, customers.gender),
        birthday = coalesce(excluded.birthday, customers.birthday),
        region = coalesce(excluded.region, customers.region),
        channel = coalesce(excluded.channel, customers.channel),
        channel_inferred = customers.channel_inferred AND excluded.channel IS NULL,
        referrer_id = coalesce(excluded.referrer_id, customers.referrer_id),
        joined_at = CASE WHEN excluded.joined_inferred THEN customers.joined_at
                         ELSE excluded.joined_at END,
        joined_inferred = customers.joined_inferred AND excluded.joined_inferred,
        version = customers.version + 1
    WHERE (excluded.name IS NOT NULL AND excluded.name IS DISTINCT FROM customers.name)
       OR (excluded.phone IS NOT NULL AND excluded.phone IS DISTINCT FROM customers.phone)
       OR (excluded.gender IS NOT NULL AND excluded.gender IS DISTINCT FROM customers.gender)
       OR (excluded.birthday IS NOT NULL
           AND excluded.birthday IS DISTINCT FROM customers.birthday)
       OR (excluded.region IS NOT NULL AND excluded.region IS DISTINCT FROM customers.region)
       OR (excluded.channel IS NOT NULL
           AND excluded.channel IS DISTINCT FROM customers.channel)
       OR (excluded.referrer_id IS NOT NULL
           AND excluded.referrer_id IS DISTINCT FROM customers.referrer_id)
       OR (NOT excluded.joined_inferred
           AND (excluded.joined_at IS DISTINCT FROM customers.joined_at
                OR customers.joined_inferred))
    RETURNING customers.customer_id, customers.version
), tagged AS (
    INSERT INTO customer_tags (tenant_id, customer_id, tag, source, since)
    SELECT DISTINCT $1::bigint, customer_id, tag, 'import', $2::bigint
    FROM pg_temp.siyu_stage_tags
    ORDER BY 2, 3
    ON CONFLICT DO NOTHING
    RETURNING customer_id
)
-- A row whose only news is a tag counts as updated.
SELECT count(*) FILTER (WHERE up.version = 1),
       count(*) FILTER (WHERE up.version IS DISTINCT FROM 1)
FROM up FULL JOIN (SELECT DISTINCT customer_id FROM tagged) AS t USING (customer_id)";

// A sighting creates the customer (joined then, from that channel) or, for one whose join
// is only inferred, moves the join earlier; its channel replaces an inferred one when it is
// earlier, and fills a missing one always. A channel from the customers file stays.
// Sightings that change nothing are left out before the insert: a row the insert meets
// on conflict is locked to the end of the transaction even when it is not updated, and
// two servers' groups sighting the same customers in other orders then deadlock.
fn merge_seen(rows: &str) -> String {
    format!(
        "
WITH up AS (
    INSERT INTO customers (tenant_id, customer_id, channel, channel_inferred, joined_at,
                           joined_inferred, version)
    SELECT $1::bigint, s.customer_id, s.channel, true, s.at, true, 1
    FROM {rows}
    WHERE NOT EXISTS (
        SELECT 1 FROM customers c
        WHERE c.tenant_id = $1 AND c.customer_id = s.customer_id
          AND NOT (c.joined_inferred AND s.at < c.joined_at)
          AND NOT (c.channel IS NULL AND s.channel IS NOT NULL))
    ORDER BY s.customer_id COLLATE \"C\"
    ON CONFLICT (tenant_id, customer_id) DO UPDATE SET
        channel = CASE
            WHEN excluded.channel IS NOT NULL
                 AND (customers.channel IS NULL
                      OR (customers.channel_inferred AND customers.joined_inferred
                          AND excluded.joined_at < customers.joined_at))
            THEN excluded.channel ELSE customers.channel END,
        channel_inferred = customers.channel_inferred
            OR (customers.channel IS NULL AND excluded.channel IS NOT NULL),
        joined_at = CASE
            WHEN customers.joined_inferred AND excluded.joined_at < customers.joined_at
            THEN excluded.joined_at ELSE customers.joined_at END,
        version = customers.version + 1
    WHERE (customers.joined_inferred AND excluded.joined_at < customers.joined_at)
       OR (customers.channel IS NULL AND excluded.channel IS NOT NULL)
    RETURNING customers.customer_id, customers.version
)
SELECT customer_id FROM up WHERE version = 1"
    )
}

fn merge_orders(rows: &str) -> String {
    format!(
        "
WITH up AS (
    INSERT INTO orders (tenant_id, order_id, customer_id, ordered_at, amount, discount,
                        coupon_code, channel, status, version)
    SELECT $1::bigint, order_id, customer_id, ordered_at, amount, discount, coupon_code,
           channel, status, 1
    FROM {rows}
    ORDER BY s.order_id COLLATE \"C\"
    ON CONFLICT (tenant_id, order_id) DO UPDATE SET
        customer_id = excluded.customer_id,
        ordered_at = excluded.ordered_at,
        amount = excluded.amount,
        discount = excluded.discount,
        coupon_code = excluded.coupon_code,
        channel = excluded.channel,
        status = excluded.status,
        version = orders.version + 1
    WHERE orders.customer_id IS DISTINCT FROM excluded.customer_id
       OR orders.ordered_at IS DISTINCT FROM excluded.ordered_at
       OR orders.amount IS DISTINCT FROM excluded.amount
       OR orders.discount IS DISTINCT FROM excluded.discount
       OR orders.coupon_code IS DISTINCT FROM excluded.coupon_code
       OR orders.channel IS DISTINCT FROM excluded.channel
       OR orders.status IS DISTINCT FROM excluded.status
    RETURNING orders.version
)
SELECT count(*) FILTER (WHERE version = 1), count(*) FILTER (WHERE version > 1) FROM up"
    )
}

fn merge_events(rows: &str) -> String {
    format!(
        "
WITH ins AS (
    INSERT INTO events (tenant_id, event_id, customer_id, type, occurred_at, properties)
    SELECT $1::bigint, event_id, customer_id, type, occurred_at, properties
    FROM {rows}
    ORDER BY s.event_id COLLATE \"C\"
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT count(*), 0::bigint FROM ins"
    )
}

/// Splits a batch into runs that repeat no key. A run is merged by one statement, which
/// cannot touch a row twice; run by run, a repeated key behaves as row by row in SQLite.
fn runs<'b, T, K: Eq + Hash>(batch: &'b [T], key: impl Fn(&'b T) -> K) -> Vec<&'b [T]> {
    let mut runs = Vec::new();
    let mut seen = HashSet::with_capacity(batch.len());
    let mut start = 0;
    for (i, item) in batch.iter().enumerate() {
        if !seen.insert(key(item)) {
            runs.push(&batch[start..i]);
            seen.clear();
            seen.insert(key(item));
            start = i;
        }
    }
    if start < batch.len() {
        runs.push(&batch[start..]);
    }
    runs
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl PgImport<'_> {
    /// Takes the tenant's evaluation lock (held to the end of the transaction) if this
    /// transaction has not yet.
    fn lock_evaluation_once(&mut self) -> Result<()> {
        if !self.evaluation_locked {
            // The second of two waits, then reads what the first committed (each
            // statement sees the latest commits).
            self.tx.execute(
                "SELECT pg_advisory_xact_lock(7301, $1::bigint::int)",
                &[&self.tenant],
            )?;
            self.evaluation_locked = true;
        }
        Ok(())
    }

    /// Called before a statement that writes profiles: see `lock_before_profiles`.
    fn before_profiles(&mut self) -> Result<()> {
        if self.lock_before_profiles {
            self.lock_evaluation_once()?;
        }
        Ok(())
    }

    /// An empty staging table, created on first use, and a COPY into it.
    fn copy_into(&mut self, stage: &Stage) -> Result<BinaryCopyInWriter<'_>> {
        let names = stage
            .columns
            .iter()
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(", ");
        if self.staged.insert(stage.table) {
            let columns = stage
                .columns
                .iter()
                .map(|(name, ty)| {
                    if *ty == Type::INT8 {
                        format!("{name} bigint")
                    } else {
                        format!("{name} text COLLATE \"C\"")
                    }
                })
                .collect::<Vec<_>>()
                .join(", ");
            self.tx.batch_execute(&format!(
                "CREATE TEMP TABLE {} ({columns}) ON COMMIT DROP",
                stage.table
            ))?;
        } else {
            self.tx
                .batch_execute(&format!("TRUNCATE {}", stage.table))?;
        }
        let sink = self.tx.copy_in(&format!(
            "COPY {} ({names}) FROM STDIN (FORMAT binary)",
            stage.table
        ))?;
        let types: Vec<Type> = stage.columns.iter().map(|(_, ty)| ty.clone()).collect();
        Ok(BinaryCopyInWriter::new(sink, &types))
    }

    fn stage_customers(&mut self, run: &[NewCustomer]) -> Result<()> {
        let mut w = self.copy_into(&STAGE_CUSTOMERS)?;
        for c in run {
            let birthday = c.birthday.map(|d| d.to_string());
            w.write(&[
                &c.id.as_str(),
                &c.name,
                &c.phone,
                &c.gender.map(Gender::as_str),
                &birthday,
                &c.region,
                &c.channel.as_ref().map(Channel::as_str),
                &c.referrer_id.as_ref().map(CustomerId::as_str),
                &c.joined_at.map(micros),
            ])?;
        }
        w.finish()?;
        let mut w = self.copy_into(&STAGE_TAGS)?;
        for c in run {
            for tag in &c.tags {
                w.write(&[&c.id.as_str(), tag])?;
            }
        }
        w.finish()?;
        Ok(())
    }

    /// The rows of a run for a merge: as arrays, or copied into a staging table.
    fn rows<'r, T>(
        &mut self,
        stage: &Stage,
        run: &'r [T],
        arrays: impl FnOnce(&'r [T]) -> Vec<Param<'r>>,
        copy: impl Fn(&T, &mut BinaryCopyInWriter<'_>) -> Result<()>,
    ) -> Result<Rows<'r>> {
        if run.len() <= ARRAY_ROWS {
            return Ok(Rows::Arrays(arrays(run)));
        }
        let mut w = self.copy_into(stage)?;
        for row in run {
            copy(row, &mut w)?;
        }
        w.finish()?;
        Ok(Rows::Staged)
    }

    fn stage_seen<'r>(&mut self, run: &'r [SeenCustomer]) -> Result<Rows<'r>> {
        self.rows(
            &STAGE_SEEN,
            run,
            |run| {
                vec![
                    column(run, |c| c.id.as_str()),
                    column(run, |c| c.channel.as_ref().map(Channel::as_str)),
                    column(run, |c| micros(c.at)),
                ]
            },
            |c, w| {
                w.write(&[
                    &c.id.as_str(),
                    &c.channel.as_ref().map(Channel::as_str),
                    &micros(c.at),
                ])?;
                Ok(())
            },
        )
    }

    fn stage_orders<'r>(&mut self, run: &'r [NewOrder]) -> Result<Rows<'r>> {
        self.rows(
            &STAGE_ORDERS,
            run,
            |run| {
                vec![
                    column(run, |o| o.id.as_str()),
                    column(run, |o| o.customer_id.as_str()),
                    column(run, |o| micros(o.ordered_at)),
                    column(run, |o| o.amount.fen()),
                    column(run, |o| o.discount.fen()),
                    column(run, |o| o.coupon_code.as_deref()),
                    column(run, |o| o.channel.as_ref().map(Channel::as_str)),
                    column(run, |o| o.status.as_str()),
                ]
            },
            |o, w| {
                w.write(&[
                    &o.id.as_str(),
                    &o.customer_id.as_str(),
                    &micros(o.ordered_at),
                    &o.amount.fen(),
                    &o.discount.fen(),
                    &o.coupon_code,
                    &o.channel.as_ref().map(Channel::as_str),
                    &o.status.as_str(),
                ])?;
                Ok(())
            },
        )
    }

    fn stage_events<'r>(&mut self, run: &'r [NewEvent]) -> Result<Rows<'r>> {
        self.rows(
            &STAGE_EVENTS,
            run,
            |run| {
                vec![
                    column(run, |e| e.id.as_str()),
                    column(run, |e| e.customer_id.as_str()),
                    column(run, |e| e.kind.as_str()),
                    column(run, |e| micros(e.occurred_at)),
                    column(run, |e| e.properties.as_str()),
                ]
            },
            |e, w| {
                w.write(&[
                    &e.id.as_str(),
                    &e.customer_id.as_str(),
                    &e.kind.as_str(),
                    &micros(e.occurred_at),
                    &e.properties,
                ])?;
                Ok(())
            },
        )
    }

    /// Runs a merge and reads its two counts: inserted and updated.
    fn merge(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        rows: usize,
    ) -> Result<WriteCounts> {
        let row = self.tx.query_one(sql, params)?;
        let inserted = count(row.try_get(0)?);
        let updated = count(row.try_get(1)?);
        Ok(WriteCounts {
            inserted,
            updated,
            unchanged: (rows as u64).saturating_sub(inserted + updated),
        })
    }
}

impl IngestWrites for PgImport<'_> {
    fn upsert_customers(&mut self, batch: &[NewCustomer], now: Timestamp) -> Result<WriteCounts> {
        let mut counts = WriteCounts::default();
        for run in runs(batch, |c| c.id.as_str()) {
            self.stage_customers(run)?;
            let tenant = self.tenant;
            counts += self.merge(MERGE_CUSTOMERS, &[&tenant, &micros(now)], run.len())?;
        }
        Ok(counts)
    }

    fn see_customers(&mut self, batch: &[SeenCustomer]) -> Result<u64> {
        let mut created = 0;
        for run in runs(batch, |c| c.id.as_str()) {
            let rows = self.stage_seen(run)?;
            let tenant = self.tenant;
            let sql = merge_seen(&STAGE_SEEN.from(&rows));
            for row in self.tx.query(&sql, &rows.params(&tenant))? {
                self.created.push(parse_customer_id(row.try_get(0)?)?);
                created += 1;
            }
        }
        Ok(created)
    }

    fn upsert_orders(&mut self, batch: &[NewOrder]) -> Result<WriteCounts> {
        let mut counts = WriteCounts::default();
        for run in runs(batch, |o| o.id.as_str()) {
            let rows = self.stage_orders(run)?;
            let tenant = self.tenant;
            let params = rows.params(&tenant);
            let from = STAGE_ORDERS.from(&rows);
            // An order moving to another customer changes its former customer's profile.
            // One lookup per staged order: joined plainly, the planner (which takes
            // `tenant_id = $1` for a few rows, the import's rows being unanalysed) hashed
            // the tenant's every order for each batch, and imports slowed as they grew.
            for row in self.tx.query(
                &format!(
                    "SELECT DISTINCT o.customer_id FROM {from}
                     CROSS JOIN LATERAL (
                         SELECT customer_id FROM orders
                         WHERE tenant_id = $1 AND order_id = s.order_id LIMIT 1
                     ) o
                     WHERE o.customer_id <> s.customer_id"
                ),
                &params,
            )? {
                self.displaced.push(parse_customer_id(row.try_get(0)?)?);
            }
            counts += self.merge(&merge_orders(&from), &params, run.len())?;
        }
        Ok(counts)
    }

    fn insert_events(&mut self, batch: &[NewEvent]) -> Result<WriteCounts> {
        let mut counts = WriteCounts::default();
        for run in runs(batch, |e| e.id.as_str()) {
            let rows = self.stage_events(run)?;
            let tenant = self.tenant;
            let sql = merge_events(&STAGE_EVENTS.from(&rows));
            counts += self.merge(&sql, &rows.params(&tenant), run.len())?;
        }
        Ok(counts)
    }

    fn claim_messages(&mut self, ids: &[&str], now: Timestamp) -> Result<Vec<bool>> {
        self.claim(ids, now)
    }

    fn claim_event_ids(&mut self, ids: &[&str], now: Timestamp) -> Result<Vec<bool>> {
        // Written to ingest_messages like any other: two servers claiming one id then
        // wait for each other there, and one answers it a duplicate.
        self.claim(ids, now)
    }

    fn created_customers(&mut self) -> Result<Vec<CustomerId>> {
        Ok(std::mem::take(&mut self.created))
    }

    fn displaced_customers(&mut self) -> Result<Vec<CustomerId>> {
        Ok(std::mem::take(&mut self.displaced))
    }
}

impl ProfileWrites for PgImport<'_> {
    fn customer_facts(&mut self, scope: Scope<'_>) -> Result<Vec<CustomerFact>> {
        let (filter, ids) = scope_filter(scope, "customer_id");
        let tenant = self.tenant;
        let params = scope_params(&tenant, ids.as_ref());
        let rows = self.tx.query(&pg(&customer_facts_sql(&filter)), &params)?;
        rows.iter().map(customer_fact_from).collect()
    }

    fn profile_facts(&mut self, scope: Scope<'_>, sink: &mut dyn ProfileSink) -> Result<()> {
        for c in self.customer_facts(scope)? {
            sink.customer(c);
        }
        let scope = match scope {
            Scope::Customers(ids) if ids.len() > SCAN_ALL_ABOVE => Scope::All,
            scope => scope,
        };
        let (filter, ids) = scope_filter(scope, "customer_id");
        let tenant = self.tenant;
        let params = scope_params(&tenant, ids.as_ref());
        let mut rows = self
            .tx
            .query_raw(&pg(&order_lines_sql(&filter)), params.iter().copied())?;
        while let Some(r) = rows.next()? {
            order_line_into(&r, sink)?;
        }
        drop(rows);
        let mut rows = self
            .tx
            .query_raw(&pg(&event_lines_sql(&filter)), params.iter().copied())?;
        while let Some(r) = rows.next()? {
            event_line_into(&r, sink)?;
        }
        Ok(())
    }

    fn referees(&mut self, referrers: Scope<'_>) -> Result<Vec<(CustomerId, Money)>> {
        let (filter, ids) = scope_filter(referrers, "c.referrer_id");
        let tenant = self.tenant;
        let params = scope_params(&tenant, ids.as_ref());
        let rows = self.tx.query(&pg(&referees_sql(&filter)), &params)?;
        rows.iter()
            .map(|r| {
                Ok((
                    parse_customer_id(r.try_get(0)?)?,
                    Money::from_fen(r.try_get(1)?),
                ))
            })
            .collect()
    }

    fn profiles_of(&mut self, ids: &[CustomerId]) -> Result<Vec<Profile>> {
        let ids: Vec<&str> = ids.iter().map(CustomerId::as_str).collect();
        // The ids on both tables, as in the pool's reads (see `pool::by_customer`).
        let sql = profiles_sql(
            "AND p.customer_id = ANY(?2) AND c.customer_id = ANY(?2) ORDER BY p.customer_id",
        );
        let rows = self.tx.query(&pg(&sql), &[&self.tenant, &ids])?;
        rows.iter().map(profile_from).collect()
    }

    fn save_profiles(&mut self, profiles: &[Profile]) -> Result<()> {
        self.before_profiles()?;
        for chunk in profiles.chunks(10_000) {
            let mut ids = Vec::with_capacity(chunk.len());
            let mut first = Vec::with_capacity(chunk.len());
            let mut last = Vec::with_capacity(chunk.len());
            let mut orders = Vec::with_capacity(chunk.len());
            let mut days = Vec::with_capacity(chunk.len());
            let mut first_day = Vec::with_capacity(chunk.len());
            let mut last_day = Vec::with_capacity(chunk.len());
            let mut spend = Vec::with_capacity(chunk.len());
            let mut coupons = Vec::with_capacity(chunk.len());
            let mut interaction = Vec::with_capacity(chunk.len());
            let mut left = Vec::with_capacity(chunk.len());
            let mut counts = Vec::with_capacity(chunk.len());
            for p in chunk {
                ids.push(p.customer_id.as_str());
                first.push(p.first_order_at.map(micros));
                last.push(p.last_order_at.map(micros));
                orders.push(i64::from(p.orders));
                days.push(i64::from(p.purchase_days));
                first_day.push(p.first_purchase_day.map(|d| d.to_string()));
                last_day.push(p.last_purchase_day.map(|d| d.to_string()));
                spend.push(p.net_spend.fen());
                coupons.push(i64::from(p.coupon_orders));
                interaction.push(p.last_interaction_at.map(micros));
                left.push(p.left_at.map(micros));
                counts.push(serde_json::to_string(&p.event_counts).map_err(other)?);
            }
            self.tx.execute(
                SAVE_PROFILES,
                &[
                    &self.tenant,
                    &ids,
                    &first,
                    &last,
                    &orders,
                    &days,
                    &first_day,
                    &last_day,
                    &spend,
                    &coupons,
                    &interaction,
                    &left,
                    &counts,
                ],
            )?;
        }
        Ok(())
    }

    fn save_referrals(&mut self, figures: &[(CustomerId, u32, Money)]) -> Result<()> {
        if figures.is_empty() {
            return Ok(());
        }
        self.before_profiles()?;
        for chunk in figures.chunks(10_000) {
            let ids: Vec<&str> = chunk.iter().map(|f| f.0.as_str()).collect();
            let referrals: Vec<i64> = chunk.iter().map(|f| i64::from(f.1)).collect();
            let revenue: Vec<i64> = chunk.iter().map(|f| f.2.fen()).collect();
            self.tx.execute(
                "UPDATE profiles p SET referrals = u.referrals, referral_revenue = u.revenue
                 FROM unnest($2::text[], $3::bigint[], $4::bigint[]) AS u(id, referrals, revenue)
                 WHERE p.tenant_id = $1 AND p.customer_id = u.id",
                &[&self.tenant, &ids, &referrals, &revenue],
            )?;
        }
        Ok(())
    }
}

impl TxOnDb for PgImport<'_> {
    fn tx_db(&mut self) -> &mut dyn Db {
        &mut self.tx
    }

    fn tenant_id(&self) -> i64 {
        self.tenant
    }

    fn erasing(&mut self, _id: &CustomerId, _remains: &CustomerId) -> Result<()> {
        Ok(())
    }

    fn rewriting(&mut self, _ids: &[&CustomerId]) -> Result<()> {
        Ok(())
    }
}

impl ImportTx for PgImport<'_> {}

impl PrivacyTx for PgImport<'_> {}

impl MergeTx for PgImport<'_> {}

/// `$1` the tenant and, for a scope of customers, `$2` their ids.
fn scope_params<'p>(tenant: &'p i64, ids: Option<&'p Vec<&str>>) -> Vec<&'p (dyn ToSql + Sync)> {
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![tenant];
    if let Some(ids) = ids {
        params.push(ids);
    }
    params
}

/// `AND <column> = ANY($2)` and the ids for `$2`, or nothing for all customers.
fn scope_filter<'a>(scope: Scope<'a>, column: &str) -> (String, Option<Vec<&'a str>>) {
    match scope {
        Scope::All => (String::new(), None),
        Scope::Customers(ids) => (
            format!("AND {column} = ANY($2)"),
            Some(ids.iter().map(CustomerId::as_str).collect()),
        ),
    }
}

const SAVE_PROFILES: &str = "
INSERT INTO profiles (tenant_id, customer_id, first_order_at, last_order_at, orders,
                      purchase_days, first_purchase_day, last_purchase_day, net_spend,
                      coupon_orders, last_interaction_at, left_at, event_counts)
SELECT $1::bigint, u.id, u.first_at, u.last_at, u.orders::int, u.days::int, u.first_day,
       u.last_day, u.spend, u.coupons::int, u.interaction, u.left_at, u.counts
FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::text[],
            $8::text[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], $13::text[])
     AS u(id, first_at, last_at, orders, days, first_day, last_day, spend, coupons,
          interaction, left_at, counts)
ORDER BY u.id
ON CONFLICT (tenant_id, customer_id) DO UPDATE SET
    first_order_at = excluded.first_order_at,
    last_order_at = excluded.last_order_at,
    orders = excluded.orders,
    purchase_days = excluded.purchase_days,
    first_purchase_day = excluded.first_purchase_day,
    last_purchase_day = excluded.last_purchase_day,
    net_spend = excluded.net_spend,
    coupon_orders = excluded.coupon_orders,
    last_interaction_at = excluded.last_interaction_at,
    left_at = excluded.left_at,
    event_counts = excluded.event_counts";

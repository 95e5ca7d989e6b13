//! The embedded default: one SQLite file in WAL mode.

use std::borrow::Cow;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use siyu_core::CustomerFact;
use siyu_core::fasthash::{FastHashMap, FastHashSet};
use siyu_core::profile::{Interactions, Profile, ProfileSink};
use siyu_core::{
    Channel, CustomerId, Gender, Money, NewCustomer, NewEvent, NewOrder, OrderFact, SeenCustomer,
    Timestamp,
};

use crate::shared::{OnDb, TxOnDb, scan};
use crate::sql::{Db, SCAN_ALL_ABOVE};
use crate::sql::{
    SCAN_ORDER_FACTS, SCAN_ORDERS, customer_fact_from, customer_facts_sql, event_line_into,
    event_lines_sql, order_fact_from, order_from, order_line_into, order_lines_sql,
    parse_customer_id, profile_from, profile_of, referees_sql,
};
use crate::{
    ImportStore, ImportTx, IngestWrites, MergeTx, OrderStore, PrivacyStore, PrivacyTx,
    ProfileWrites, Result, Scope, Store, StoreError, TableCounts, Tenant, WriteCounts, micros,
    other,
};

mod api;
mod known;
mod log;
mod pool;
mod report;

use known::{Known, KnownCustomers, Staged};

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../migrations/sqlite/0002_settings.sql")),
    (3, include_str!("../migrations/sqlite/0003_profiles.sql")),
    (4, include_str!("../migrations/sqlite/0004_rules.sql")),
    (
        5,
        include_str!("../migrations/sqlite/0005_channel_costs.sql"),
    ),
    (6, include_str!("../migrations/sqlite/0006_api.sql")),
    (7, include_str!("../migrations/sqlite/0007_privacy.sql")),
    (8, include_str!("../migrations/sqlite/0008_indexes.sql")),
    (
        9,
        include_str!("../migrations/sqlite/0009_customer_first.sql"),
    ),
    (10, include_str!("../migrations/sqlite/0010_parity.sql")),
    (11, include_str!("../migrations/sqlite/0011_thresholds.sql")),
    (
        12,
        include_str!("../migrations/sqlite/0012_spend_from_index.sql"),
    ),
    (13, include_str!("../migrations/sqlite/0013_identities.sql")),
    (14, include_str!("../migrations/sqlite/0014_console.sql")),
    (
        15,
        include_str!("../migrations/sqlite/0015_events_in_arrival_order.sql"),
    ),
    (16, include_str!("../migrations/sqlite/0016_merges.sql")),
    (
        17,
        include_str!("../migrations/sqlite/0017_view_phone_audit.sql"),
    ),
    (
        18,
        include_str!("../migrations/sqlite/0018_tenant_changes.sql"),
    ),
    (19, include_str!("../migrations/sqlite/0019_campaigns.sql")),
    (20, include_str!("../migrations/sqlite/0020_delivery.sql")),
    (
        21,
        include_str!("../migrations/sqlite/0021_campaign_triggers.sql"),
    ),
];

pub struct SqliteStore {
    conn: Connection,
    /// Customers this connection knows to be in the pool (see `known`).
    known: KnownCustomers,
    /// Set when the connection is a server's writer (see `log`).
    serving: Option<log::Serving>,
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e {
            rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound("no such row".into()),
            e => other(e),
        }
    }
}

/// How long a statement waits for another connection's lock before it fails. Writers
/// queue behind each other: a CLI import beside a running server waits for the server's
/// group commits, and the server's batches wait for an import of a large file, rather
/// than either failing after a few seconds.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// The version the last migration brings the schema to.
fn latest_migration() -> i64 {
    MIGRATIONS.last().map_or(0, |(v, _)| *v)
}

impl SqliteStore {
    /// The version of the schema as applied, read without a transaction (0 for a new file).
    fn schema_version(&self) -> Result<i64> {
        let has_table: bool = self.conn.query_row(
            "SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'",
            [],
            |r| r.get(0),
        )?;
        if !has_table {
            return Ok(0);
        }
        Ok(self.conn.query_row(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )?)
    }

    /// Opens the database file (created if missing); `:memory:` gives a private in-memory one.
    pub fn open(path: &str) -> Result<SqliteStore> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // A batch runs a few dozen statements, the multi-row ones in several sizes; the
        // default 16 would prepare some of them again every batch.
        conn.set_prepared_statement_cache_capacity(128);
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             -- As on PostgreSQL, only the small tables (settings, channel costs, tokens,
             -- ingested message ids) have a foreign key to tenants, and it holds; the
             -- tables of a tenant's rows have none (checked row by row it cost imports a
             -- tenth): their writers take the tenant from `tenant()`.
             PRAGMA foreign_keys = ON;
             PRAGMA cache_size = -65536;
             PRAGMA threads = 2;
             -- Deleted and overwritten content is zeroed where that costs no extra write:
             -- an erased customer's name and phone must not linger in the file.
             PRAGMA secure_delete = FAST;",
        )?;
        Ok(SqliteStore {
            conn,
            known: KnownCustomers::default(),
            serving: None,
        })
    }
}

fn now_micros() -> i64 {
    micros(Timestamp::now())
}

impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn migrate(&mut self) -> Result<usize> {
        // Most opens find the schema current: they say so from a read, which waits for no
        // writer, and take the write lock only when there is a migration to apply.
        if self.schema_version()? >= latest_migration() {
            return Ok(0);
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
        )?;
        let current: i64 = tx.query_row(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )?;
        let mut applied = 0;
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                params![version, now_micros()],
            )?;
            applied += 1;
        }
        tx.commit()?;
        Ok(applied)
    }

    fn ping(&mut self) -> Result<()> {
        self.conn.query_row("SELECT 1", [], |_| Ok(()))?;
        Ok(())
    }

    fn serve_writes(&mut self) -> Result<()> {
        self.serve_writes_now()
    }

    fn after_writes(&mut self) -> Result<()> {
        self.after_writes_now()
    }

    fn when_idle(&mut self) -> Result<()> {
        self.when_idle_now()
    }

    fn table_counts(&mut self, tenant: &Tenant) -> Result<TableCounts> {
        crate::shared::table_counts(&mut self.conn, tenant)
    }
}

impl OnDb for SqliteStore {
    fn db(&mut self) -> &mut dyn Db {
        &mut self.conn
    }
}

impl OrderStore for SqliteStore {
    fn scan_orders(&mut self, tenant: &Tenant, each: &mut dyn FnMut(NewOrder)) -> Result<()> {
        scan(&mut self.conn, SCAN_ORDERS, tenant, |r| order_from(r), each)
    }

    fn scan_order_facts(&mut self, tenant: &Tenant, each: &mut dyn FnMut(OrderFact)) -> Result<()> {
        scan(
            &mut self.conn,
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
        // One indexed lookup per customer: cheap in process, and no temporary table.
        let mut stmt = self.conn.prepare_cached(
            "SELECT customer_id, ordered_at, amount, status FROM orders
             WHERE tenant_id = ?1 AND customer_id = ?2",
        )?;
        for id in customers {
            let mut rows = stmt.query(params![tenant.id, id.as_str()])?;
            while let Some(r) = rows.next()? {
                each(order_fact_from(r)?);
            }
        }
        Ok(())
    }
}

/// The input size from which an import is written as a load (see [`SoleJournal`]): a
/// file of about 100,000 rows.
const LOAD_BYTES: u64 = 8 << 20;

impl ImportStore for SqliteStore {
    fn begin_import<'s>(&'s mut self, tenant: &Tenant) -> Result<Box<dyn ImportTx + 's>> {
        let tx = SqliteImport::begin(&self.conn, tenant, Some(&mut self.known), None)?;
        Ok(Box::new(tx))
    }

    fn begin_import_of<'s>(
        &'s mut self,
        tenant: &Tenant,
        input_bytes: u64,
    ) -> Result<Box<dyn ImportTx + 's>> {
        if input_bytes < LOAD_BYTES {
            return self.begin_import(tenant);
        }
        Ok(Box::new(self.begin_load(tenant)?))
    }
}

impl PrivacyStore for SqliteStore {
    fn begin_privacy<'s>(&'s mut self, tenant: &Tenant) -> Result<Box<dyn PrivacyTx + 's>> {
        let tx = SqliteImport::begin(&self.conn, tenant, Some(&mut self.known), None)?;
        Ok(Box::new(tx))
    }
}

impl SqliteStore {
    /// An import written as a load, where writing it dominates: once, straight into the
    /// file (see [`SoleJournal`]).
    fn begin_load(&mut self, tenant: &Tenant) -> Result<SqliteImport<'_>> {
        // A load sees most of its customers once: remembering them would cost it more
        // than it saves, and a long-lived connection's later batches are not loads.
        let journal = SoleJournal::take(&self.conn)?;
        SqliteImport::begin(&self.conn, tenant, None, journal)
    }
}

/// A large load's rollback journal, in place of the write-ahead log while no other
/// connection has the database open.
///
/// In WAL mode every page a load writes goes to the log and then, at the checkpoint, into
/// the database: a load into a new or small database writes everything twice (for a
/// million orders the copy was 0.4 s of 3.2). A rollback journal keeps only the original
/// content of pages the load changes, and pages added to the end of the file have none:
/// such a load is written once. It is still all or nothing, also across a crash (the next
/// opening rolls a left-over journal back), but the load holds the file exclusively: a
/// connection opened meanwhile waits (its busy timeout) instead of reading the state
/// before the load. Hence only when no one else has the file open at the start: SQLite
/// refuses to leave WAL mode otherwise, and the load stays in the log.
struct SoleJournal<'c> {
    conn: &'c Connection,
}

impl<'c> SoleJournal<'c> {
    /// The rollback journal if this connection is the database's only one, else `None`.
    fn take(conn: &'c Connection) -> Result<Option<SoleJournal<'c>>> {
        if conn.path().is_none_or(str::is_empty) {
            return Ok(None); // in memory: no log to avoid
        }
        // Ask once, without waiting: another connection's lock is its answer.
        conn.busy_timeout(std::time::Duration::ZERO)?;
        let mode = conn.query_row("PRAGMA journal_mode = DELETE", [], |r| {
            r.get::<_, String>(0)
        });
        conn.busy_timeout(BUSY_TIMEOUT)?;
        match mode {
            Ok(mode) if mode.eq_ignore_ascii_case("delete") => {
                // The journal is synced before the file is overwritten, the file at commit.
                conn.execute_batch("PRAGMA synchronous = FULL")?;
                Ok(Some(SoleJournal { conn }))
            }
            Ok(_) => Ok(None),
            Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

impl Drop for SoleJournal<'_> {
    fn drop(&mut self) {
        // Back to the log once the load has committed or rolled back. Should this fail (a
        // connection opened meanwhile holds the file), that connection's own opening, like
        // every opening, puts the database in WAL mode.
        let _ = self.conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;",
        );
    }
}

struct SqliteImport<'c> {
    tx: Transaction<'c>,
    /// Set by an erasure: empties the log once the transaction has ended (dropped after it).
    scrub: Option<log::ScrubAfter<'c>>,
    conn: &'c Connection,
    tenant: i64,
    orders: BulkLoad,
    events: BulkLoad,
    /// Customers who lost an order to another customer in this import.
    displaced: Vec<CustomerId>,
    /// Customers this import created from sightings.
    created: Vec<CustomerId>,
    /// What the connection knows of customers, as this transaction changed it (nothing,
    /// for a load).
    known: Option<Staged<'c>>,
    /// Whether it may write (and so moves the tenant's change counter at its commit).
    writes: bool,
    /// Dropped after the transaction ends (fields drop in order).
    _journal: Option<SoleJournal<'c>>,
}

/// The columns of a profile's own figures (not its referral figures).
const PROFILE_ROW: &[&str] = &[
    "tenant_id",
    "customer_id",
    "first_order_at",
    "last_order_at",
    "orders",
    "purchase_days",
    "first_purchase_day",
    "last_purchase_day",
    "net_spend",
    "coupon_orders",
    "last_interaction_at",
    "left_at",
    "event_counts",
];

/// One profile's own figures, inserted or, when stored already, replaced.
fn save_profile_sql() -> String {
    let set: Vec<String> = PROFILE_ROW[2..]
        .iter()
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    format!(
        "INSERT INTO profiles ({}) VALUES ({})
         ON CONFLICT (tenant_id, customer_id) DO UPDATE SET {}",
        PROFILE_ROW.join(", "),
        vec!["?"; PROFILE_ROW.len()].join(", "),
        set.join(", ")
    )
}

/// A profile as its stored values.
struct ProfileRow<'p> {
    profile: &'p Profile,
    first_day: Option<String>,
    last_day: Option<String>,
    counts: String,
}

impl<'p> ProfileRow<'p> {
    fn of(profile: &'p Profile) -> Result<ProfileRow<'p>> {
        let counts = if profile.event_counts.is_empty() {
            "{}".to_owned()
        } else {
            serde_json::to_string(&profile.event_counts).map_err(other)?
        };
        Ok(ProfileRow {
            profile,
            first_day: profile.first_purchase_day.map(|d| d.to_string()),
            last_day: profile.last_purchase_day.map(|d| d.to_string()),
            counts,
        })
    }

    /// Binds the values after the tenant, from parameter `i`.
    fn bind(&self, stmt: &mut rusqlite::Statement<'_>, i: usize) -> rusqlite::Result<()> {
        let p = self.profile;
        stmt.raw_bind_parameter(i, p.customer_id.as_str())?;
        stmt.raw_bind_parameter(i + 1, p.first_order_at.map(micros))?;
        stmt.raw_bind_parameter(i + 2, p.last_order_at.map(micros))?;
        stmt.raw_bind_parameter(i + 3, p.orders)?;
        stmt.raw_bind_parameter(i + 4, p.purchase_days)?;
        stmt.raw_bind_parameter(i + 5, self.first_day.as_deref())?;
        stmt.raw_bind_parameter(i + 6, self.last_day.as_deref())?;
        stmt.raw_bind_parameter(i + 7, p.net_spend.fen())?;
        stmt.raw_bind_parameter(i + 8, p.coupon_orders)?;
        stmt.raw_bind_parameter(i + 9, p.last_interaction_at.map(micros))?;
        stmt.raw_bind_parameter(i + 10, p.left_at.map(micros))?;
        stmt.raw_bind_parameter(i + 11, self.counts.as_str())
    }
}

impl<'c> SqliteImport<'c> {
    /// A write transaction for the tenant (which must exist): immediate, taking the write
    /// lock now rather than failing to upgrade a read lock later.
    fn begin(
        conn: &'c Connection,
        tenant: &Tenant,
        known: Option<&'c mut KnownCustomers>,
        journal: Option<SoleJournal<'c>>,
    ) -> Result<SqliteImport<'c>> {
        Self::start(conn, tenant, TransactionBehavior::Immediate, known, journal)
    }

    /// A transaction that only reads: deferred, so it takes no write lock, and in WAL
    /// mode its reads see one snapshot whatever commits meanwhile.
    fn begin_read(conn: &'c Connection, tenant: &Tenant) -> Result<SqliteImport<'c>> {
        Self::start(conn, tenant, TransactionBehavior::Deferred, None, None)
    }

    fn start(
        conn: &'c Connection,
        tenant: &Tenant,
        behavior: TransactionBehavior,
        known: Option<&'c mut KnownCustomers>,
        journal: Option<SoleJournal<'c>>,
    ) -> Result<SqliteImport<'c>> {
        // Unchecked: the store's `&mut` borrow, which this one lives in, rules out nesting.
        let tx = Transaction::new_unchecked(conn, behavior)?;
        tx.query_row("SELECT 1 FROM tenants WHERE id = ?1", [tenant.id], |_| {
            Ok(())
        })
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("tenant {}", tenant.name)))?;
        let known = match known {
            Some(committed) => Some(Staged::begin(committed, &tx, tenant.id)?),
            None => None,
        };
        Ok(SqliteImport {
            tx,
            scrub: None,
            conn,
            tenant: tenant.id,
            orders: BulkLoad::new("orders"),
            events: BulkLoad::new("events"),
            displaced: Vec::new(),
            created: Vec::new(),
            known,
            writes: !matches!(behavior, TransactionBehavior::Deferred),
            _journal: journal,
        })
    }
}

impl SqliteImport<'_> {
    /// The customer's row is rewritten other than by a sighting: the database answers
    /// for them from now on.
    fn forget(&mut self, id: &str) {
        if let Some(known) = &mut self.known {
            known.forget(id);
        }
    }

    /// Rebuilds the indexes a bulk load dropped, before anything reads by them.
    fn end_of_writes_now(&mut self) -> Result<()> {
        self.orders.rebuild(&self.tx)?;
        self.events.rebuild(&self.tx)
    }

    /// `AND <column> IN (…)` for a scope of customers (through a temporary table, so any
    /// number of them), nothing for all.
    fn scope_filter(&self, scope: Scope<'_>, column: &str) -> Result<String> {
        let Scope::Customers(ids) = scope else {
            return Ok(String::new());
        };
        self.tx.execute_batch(
            "CREATE TEMP TABLE IF NOT EXISTS siyu_scope (customer_id TEXT PRIMARY KEY) WITHOUT ROWID;
             DELETE FROM temp.siyu_scope;",
        )?;
        let mut insert = self
            .tx
            .prepare_cached("INSERT OR IGNORE INTO temp.siyu_scope (customer_id) VALUES (?1)")?;
        for id in ids {
            insert.execute([id.as_str()])?;
        }
        Ok(scope_clause(scope, column))
    }
}

fn scope_clause(scope: Scope<'_>, column: &str) -> String {
    match scope {
        Scope::All => String::new(),
        Scope::Customers(_) => format!("AND {column} IN (SELECT customer_id FROM temp.siyu_scope)"),
    }
}

/// Rows written before a load is big enough to consider deferring a table's indexes.
const BULK_ROWS: u64 = 100_000;

/// A table's secondary indexes, but unique ones, during a large load: dropped once the
/// load is a sizeable part of the table, and rebuilt by sorting before the transaction
/// commits, which is several times faster than keeping them up to date row by row. DDL is
/// transactional in SQLite, so a rolled-back import leaves the indexes as they were.
/// Dropping an index drops its planner statistics (see migration 8) too: they are put
/// back with it.
struct BulkLoad {
    table: &'static str,
    written: u64,
    next_check: u64,
    /// The dropped indexes: name, `CREATE INDEX` statement, planner statistics if any.
    dropped: Vec<(String, String, Option<String>)>,
}

impl BulkLoad {
    fn new(table: &'static str) -> BulkLoad {
        BulkLoad {
            table,
            written: 0,
            next_check: BULK_ROWS,
            dropped: Vec::new(),
        }
    }

    fn wrote(&mut self, tx: &Transaction<'_>, rows: usize) -> Result<()> {
        self.written += rows as u64;
        if !self.dropped.is_empty() || self.written < self.next_check {
            return Ok(());
        }
        self.next_check *= 2;
        let total: i64 =
            tx.query_row(&format!("SELECT count(*) FROM {}", self.table), [], |r| {
                r.get(0)
            })?;
        if (total as u64) > 4 * self.written {
            return Ok(());
        }
        let mut stmt = tx.prepare(
            // A unique index stays: it is what refuses a duplicate (events by id).
            "SELECT name, sql FROM sqlite_master
             WHERE type = 'index' AND tbl_name = ?1 AND sql IS NOT NULL
               AND sql NOT LIKE 'CREATE UNIQUE%'",
        )?;
        let indexes = stmt
            .query_map([self.table], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        for (name, sql) in indexes {
            let stat: Option<String> = tx
                .query_row(
                    "SELECT stat FROM sqlite_stat1 WHERE tbl = ?1 AND idx = ?2",
                    [self.table, name.as_str()],
                    |r| r.get(0),
                )
                .optional()?;
            tx.execute_batch(&format!("DROP INDEX \"{name}\""))?;
            self.dropped.push((name, sql, stat));
        }
        Ok(())
    }

    fn rebuild(&mut self, tx: &Transaction<'_>) -> Result<()> {
        if self.dropped.is_empty() {
            return Ok(());
        }
        // SQLite's sorter sizes its in-memory runs by the page cache; a small cache sorts
        // an index faster here (runs that fit the CPU caches, merged by worker threads).
        let cache: i64 = tx.query_row("PRAGMA cache_size", [], |r| r.get(0))?;
        tx.execute_batch("PRAGMA cache_size = 2000")?;
        for (name, sql, stat) in self.dropped.drain(..) {
            tx.execute_batch(&sql)?;
            if let Some(stat) = stat {
                tx.execute(
                    "INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (?1, ?2, ?3)",
                    [self.table, name.as_str(), stat.as_str()],
                )?;
            }
        }
        tx.execute_batch(&format!(
            "PRAGMA cache_size = {cache}; ANALYZE sqlite_schema;"
        ))?;
        Ok(())
    }
}

const INSERT_IMPORT_TAG: &str = "
INSERT INTO customer_tags (tenant_id, customer_id, tag, source, since)
VALUES (?1, ?2, ?3, 'import', ?4) ON CONFLICT DO NOTHING";

// Each write is an `INSERT … ON CONFLICT DO NOTHING` (a key clash is skipped; any other
// broken constraint still fails the import) and, only when the key exists, an `UPDATE` whose
// WHERE says what changed: `changes()` then tells inserted, updated and unchanged apart.
// (An UPSERT with RETURNING costs SQLite a statement journal and a result table per row.)

const INSERT_CUSTOMER: &str = "
INSERT INTO customers (tenant_id, customer_id, name, phone, gender, birthday, region,
                       channel, referrer_id, joined_at, joined_inferred)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, coalesce(?10, ?11), ?10 IS NULL)
ON CONFLICT DO NOTHING";

const UPDATE_CUSTOMER: &str = "
UPDATE customers SET
    name = coalesce(?3, name),
    phone = coalesce(?4, phone),
    gender = coalesce(?5, gender),
    birthday = coalesce(?6, birthday),
    region = coalesce(?7, region),
    channel = coalesce(?8, channel),
    channel_inferred = channel_inferred AND ?8 IS NULL,
    referrer_id = coalesce(?9, referrer_id),
    joined_at = coalesce(?10, joined_at),
    joined_inferred = joined_inferred AND ?10 IS NULL,
    version = version + 1
WHERE tenant_id = ?1 AND customer_id = ?2
  AND ((?3 IS NOT NULL AND ?3 IS NOT name)
    OR (?4 IS NOT NULL AND ?4 IS NOT phone)
    OR (?5 IS NOT NULL AND ?5 IS NOT gender)
    OR (?6 IS NOT NULL AND ?6 IS NOT birthday)
    OR (?7 IS NOT NULL AND ?7 IS NOT region)
    OR (?8 IS NOT NULL AND ?8 IS NOT channel)
    OR (?9 IS NOT NULL AND ?9 IS NOT referrer_id)
    OR (?10 IS NOT NULL AND (?10 IS NOT joined_at OR joined_inferred)))";

/// The customers a sighting creates: channel and join only inferred.
const SEEN_COLUMNS: &[&str] = &[
    "tenant_id",
    "customer_id",
    "channel",
    "channel_inferred",
    "joined_at",
    "joined_inferred",
];

/// `?1` the tenant, `?2…` the ids of `n` customers: those of them in the pool.
fn known_customers_sql(n: usize) -> String {
    format!(
        "SELECT customer_id, joined_at, joined_inferred, channel IS NULL FROM customers
         WHERE tenant_id = ?1 AND customer_id IN ({})",
        vec!["?"; n].join(",")
    )
}

// A sighting of a known customer whose join is only inferred moves it earlier; its channel
// replaces an inferred one when it is earlier, and fills a missing one always. A channel
// from the customers file stays.
const UPDATE_SEEN: &str = "
UPDATE customers SET
    channel = CASE
        WHEN ?3 IS NOT NULL
             AND (channel IS NULL OR (channel_inferred AND joined_inferred AND joined_at > ?4))
        THEN ?3 ELSE channel END,
    channel_inferred = channel_inferred OR (channel IS NULL AND ?3 IS NOT NULL),
    joined_at = CASE WHEN joined_inferred AND joined_at > ?4 THEN ?4 ELSE joined_at END,
    version = version + 1
WHERE tenant_id = ?1 AND customer_id = ?2
  AND ((joined_inferred AND joined_at > ?4) OR (channel IS NULL AND ?3 IS NOT NULL))";

const ORDER_COLUMNS: &[&str] = &[
    "tenant_id",
    "order_id",
    "customer_id",
    "ordered_at",
    "amount",
    "discount",
    "coupon_code",
    "channel",
    "status",
];

const EVENT_COLUMNS: &[&str] = &[
    "tenant_id",
    "event_id",
    "customer_id",
    "type",
    "occurred_at",
    "properties",
];

/// Rows per multi-row `INSERT`: one statement step writes many rows.
const GROUP: usize = 64;

/// `INSERT OR IGNORE` of `rows` in groups of `GROUP` rows per statement; `bind` binds one
/// row's values from the given 1-based parameter index. Returns the rows inserted per
/// group (the others were there already). The first two columns are the table's key.
///
/// `OR IGNORE` rather than `ON CONFLICT DO NOTHING`: a statement that writes many rows
/// and may abort half-way (a NOT NULL column aborts by default) makes SQLite copy every
/// page it touches into a statement journal first, which cost the `/v1/batch` ingest a
/// tenth of its time. With `OR IGNORE` nothing can abort it. But `OR IGNORE` also skips
/// a row that breaks a CHECK or NOT NULL (orders have CHECKs): so a group that did not
/// go in whole is checked, and a row skipped whose key is not there fails the write.
fn insert_groups<T>(
    tx: &Transaction<'_>,
    table: &str,
    columns: &[&str],
    rows: &[T],
    key: impl Fn(&T) -> (i64, &str),
    bind: impl Fn(&mut rusqlite::Statement<'_>, usize, &T) -> rusqlite::Result<()>,
) -> Result<Vec<usize>> {
    let mut inserted = Vec::with_capacity(rows.len().div_ceil(GROUP));
    let full = multi_insert_sql(table, columns, GROUP);
    for group in rows.chunks(GROUP) {
        let sql = group_sql(&full, group.len(), |n| multi_insert_sql(table, columns, n));
        let mut stmt = tx.prepare_cached(&sql)?;
        for (k, row) in group.iter().enumerate() {
            bind(&mut stmt, 1 + k * columns.len(), row)?;
        }
        let n = stmt.raw_execute()?;
        if n < group.len() {
            let keys: Vec<(i64, &str)> = group.iter().map(&key).collect();
            refuse_skipped(tx, table, [columns[0], columns[1]], &keys)?;
        }
        inserted.push(n);
    }
    Ok(inserted)
}

/// Fails unless every key of `keys` (values of the `key` columns) is in `table`: after an
/// `INSERT OR IGNORE` that did not write every row, the rows it skipped must be those
/// there already, not rows that broke a CHECK or NOT NULL.
#[cold]
fn refuse_skipped(
    conn: &Connection,
    table: &str,
    key: [&str; 2],
    keys: &[(i64, &str)],
) -> Result<()> {
    let sql = format!(
        "SELECT count(*) FROM (VALUES {}) AS v
         WHERE NOT EXISTS (SELECT 1 FROM {table} AS t
                           WHERE t.{} = v.column1 AND t.{} = v.column2)",
        vec!["(?,?)"; keys.len()].join(","),
        key[0],
        key[1]
    );
    let mut check = conn.prepare_cached(&sql)?;
    for (k, (first, second)) in keys.iter().enumerate() {
        check.raw_bind_parameter(1 + 2 * k, first)?;
        check.raw_bind_parameter(2 + 2 * k, *second)?;
    }
    let mut found = check.raw_query();
    let missing: i64 = match found.next()? {
        Some(row) => row.get(0)?,
        None => 0,
    };
    if missing > 0 {
        return Err(StoreError::Other(
            format!(
                "{missing} row(s) of {table} broke a constraint (a CHECK or NOT NULL) \
                 and were not written"
            )
            .into(),
        ));
    }
    Ok(())
}

/// The statement for a group of `n` rows: `full` (made once, for a whole group of
/// `GROUP`; the text is the statement cache's key) unless the group is the short last one.
fn group_sql(full: &str, n: usize, make: impl Fn(usize) -> String) -> Cow<'_, str> {
    if n == GROUP {
        Cow::Borrowed(full)
    } else {
        Cow::Owned(make(n))
    }
}

fn multi_insert_sql(table: &str, columns: &[&str], rows: usize) -> String {
    let one = format!("({})", vec!["?"; columns.len()].join(","));
    format!(
        "INSERT OR IGNORE INTO {table} ({}) VALUES {}",
        columns.join(","),
        vec![one; rows].join(",")
    )
}

const UPDATE_ORDER: &str = "
UPDATE orders SET customer_id = ?3, ordered_at = ?4, amount = ?5, discount = ?6,
                  coupon_code = ?7, channel = ?8, status = ?9, version = version + 1
WHERE tenant_id = ?1 AND order_id = ?2
  AND (customer_id IS NOT ?3 OR ordered_at IS NOT ?4 OR amount IS NOT ?5
       OR discount IS NOT ?6 OR coupon_code IS NOT ?7 OR channel IS NOT ?8 OR status IS NOT ?9)";

/// Inserts the row or, when its key exists, updates what changed. The update takes the
/// leading parameters of the insert.
fn write_row(
    insert: &mut rusqlite::CachedStatement<'_>,
    update: &mut rusqlite::CachedStatement<'_>,
    params: &[&dyn rusqlite::ToSql],
    counts: &mut WriteCounts,
) -> Result<()> {
    if insert.execute(params)? == 1 {
        counts.inserted += 1;
        return Ok(());
    }
    let n = update.parameter_count();
    if update.execute(&params[..n])? == 1 {
        counts.updated += 1;
    } else {
        counts.unchanged += 1;
    }
    Ok(())
}

impl IngestWrites for SqliteImport<'_> {
    fn upsert_customers(&mut self, batch: &[NewCustomer], now: Timestamp) -> Result<WriteCounts> {
        // A join time or channel from the customers file may replace an inferred one.
        for c in batch {
            self.forget(c.id.as_str());
        }
        let mut counts = WriteCounts::default();
        let mut insert = self.tx.prepare_cached(INSERT_CUSTOMER)?;
        let mut update = self.tx.prepare_cached(UPDATE_CUSTOMER)?;
        let mut tag = self.tx.prepare_cached(INSERT_IMPORT_TAG)?;
        for c in batch {
            let mut row = WriteCounts::default();
            write_row(
                &mut insert,
                &mut update,
                params![
                    self.tenant,
                    c.id.as_str(),
                    c.name,
                    c.phone,
                    c.gender.map(Gender::as_str),
                    c.birthday.map(|d| d.to_string()),
                    c.region,
                    c.channel.as_ref().map(Channel::as_str),
                    c.referrer_id.as_ref().map(CustomerId::as_str),
                    c.joined_at.map(micros),
                    micros(now),
                ],
                &mut row,
            )?;
            let mut tags_added = 0;
            for t in &c.tags {
                tags_added += tag.execute(params![self.tenant, c.id.as_str(), t, micros(now)])?;
            }
            if row.unchanged == 1 && tags_added > 0 {
                row = WriteCounts {
                    updated: 1,
                    ..WriteCounts::default()
                };
            }
            counts += row;
        }
        Ok(counts)
    }

    fn see_customers(&mut self, batch: &[SeenCustomer]) -> Result<u64> {
        // Most sightings are of customers known and joined long before, or (in a large
        // first import) of customers new to the pool. The former this connection often
        // knows already (see `known`); the rest are looked up a group per statement and
        // the new ones inserted a group per statement, where a read and a write per
        // customer cost the import a quarter of a second per 100,000.
        let tenant = self.tenant;
        let mut known = self.known.as_mut();
        let mut update = self.tx.prepare_cached(UPDATE_SEEN)?;
        // Whether the sighting changed the customer (as `k` now says).
        let mut seen = |c: &SeenCustomer, k: &mut Known| -> Result<bool> {
            let (at, channel) = (micros(c.at), c.channel.as_ref().map(Channel::as_str));
            if !k.moved_by(at, channel.is_some()) {
                return Ok(false);
            }
            update.execute(params![tenant, c.id.as_str(), channel, at])?;
            *k = k.seen(at, channel.is_some());
            Ok(true)
        };

        let mut unknown: Vec<&SeenCustomer> = Vec::new();
        for c in batch {
            let Some(known) = known.as_mut() else {
                unknown.push(c);
                continue;
            };
            match known.get(c.id.as_str()) {
                Some(mut k) => {
                    if seen(c, &mut k)? {
                        known.learn(c.id.as_str(), k);
                    }
                }
                None => unknown.push(c),
            }
        }

        // The rest as stored, if they are: a full group's statement every time (ids
        // missing from the last group bound as NULL, which matches nothing), not a
        // statement text per size.
        let mut found: FastHashMap<String, Known> = FastHashMap::default();
        let mut lookup = self.tx.prepare_cached(&known_customers_sql(GROUP))?;
        for group in unknown.chunks(GROUP) {
            lookup.raw_bind_parameter(1, tenant)?;
            for k in 0..GROUP {
                lookup.raw_bind_parameter(2 + k, group.get(k).map(|c| c.id.as_str()))?;
            }
            let mut rows = lookup.raw_query();
            while let Some(r) = rows.next()? {
                let known = Known {
                    joined_at: r.get(1)?,
                    joined_inferred: r.get(2)?,
                    no_channel: r.get(3)?,
                };
                found.insert(r.get(0)?, known);
            }
        }
        drop(lookup);

        let mut fresh: Vec<SeenCustomer> = Vec::new();
        let mut fresh_at: FastHashMap<&str, usize> = FastHashMap::default();
        for c in unknown {
            if let Some(k) = found.get_mut(c.id.as_str()) {
                seen(c, k)?;
                continue;
            }
            // New to the pool. Seen again in this batch: what `UPDATE_SEEN` would do to
            // the row the first sighting makes.
            match fresh_at.get(c.id.as_str()) {
                None => {
                    fresh_at.insert(c.id.as_str(), fresh.len());
                    fresh.push(c.clone());
                }
                Some(&i) => {
                    let first = &mut fresh[i];
                    if c.channel.is_some() && (first.channel.is_none() || first.at > c.at) {
                        first.channel = c.channel.clone();
                    }
                    first.at = first.at.min(c.at);
                }
            }
        }
        // Only the customers just found missing: the CHECKs of the table hold for the
        // values bound (no gender, an inferred join), so `OR IGNORE` skips nothing.
        let written = insert_groups(
            &self.tx,
            "customers",
            SEEN_COLUMNS,
            &fresh,
            |c| (tenant, c.id.as_str()),
            |stmt, i, c| {
                stmt.raw_bind_parameter(i, tenant)?;
                stmt.raw_bind_parameter(i + 1, c.id.as_str())?;
                stmt.raw_bind_parameter(i + 2, c.channel.as_ref().map(Channel::as_str))?;
                stmt.raw_bind_parameter(i + 3, 1)?;
                stmt.raw_bind_parameter(i + 4, micros(c.at))?;
                stmt.raw_bind_parameter(i + 5, 1)
            },
        )?;
        if let Some(known) = known {
            for (id, k) in &found {
                known.learn(id, *k);
            }
            for c in &fresh {
                known.learn(
                    c.id.as_str(),
                    Known::created(micros(c.at), c.channel.is_some()),
                );
            }
        }
        self.created.extend(fresh.into_iter().map(|c| c.id));
        Ok(written.iter().sum::<usize>() as u64)
    }

    fn upsert_orders(&mut self, batch: &[NewOrder]) -> Result<WriteCounts> {
        let tenant = self.tenant;
        let inserted = insert_groups(
            &self.tx,
            "orders",
            ORDER_COLUMNS,
            batch,
            |o| (tenant, o.id.as_str()),
            |stmt, i, o| {
                stmt.raw_bind_parameter(i, tenant)?;
                stmt.raw_bind_parameter(i + 1, o.id.as_str())?;
                stmt.raw_bind_parameter(i + 2, o.customer_id.as_str())?;
                stmt.raw_bind_parameter(i + 3, micros(o.ordered_at))?;
                stmt.raw_bind_parameter(i + 4, o.amount.fen())?;
                stmt.raw_bind_parameter(i + 5, o.discount.fen())?;
                stmt.raw_bind_parameter(i + 6, o.coupon_code.as_deref())?;
                stmt.raw_bind_parameter(i + 7, o.channel.as_ref().map(Channel::as_str))?;
                stmt.raw_bind_parameter(i + 8, o.status.as_str())
            },
        )?;
        let mut counts = WriteCounts::default();
        let mut update = self.tx.prepare_cached(UPDATE_ORDER)?;
        for (group, n) in batch.chunks(GROUP).zip(inserted) {
            counts.inserted += n as u64;
            if n == group.len() {
                continue;
            }
            // Some rows were there already: an UPDATE that changes nothing on the rows just
            // inserted tells the changed ones apart. An order moving to another customer
            // changes its former customer's profile too.
            let mut owner = self.tx.prepare_cached(
                "SELECT customer_id FROM orders WHERE tenant_id = ?1 AND order_id = ?2",
            )?;
            let mut updated = 0;
            for o in group {
                let before: String =
                    owner.query_row(params![tenant, o.id.as_str()], |r| r.get(0))?;
                if before != o.customer_id.as_str() {
                    self.displaced.push(parse_customer_id(&before)?);
                }
                updated += update.execute(params![
                    tenant,
                    o.id.as_str(),
                    o.customer_id.as_str(),
                    micros(o.ordered_at),
                    o.amount.fen(),
                    o.discount.fen(),
                    o.coupon_code,
                    o.channel.as_ref().map(Channel::as_str),
                    o.status.as_str(),
                ])?;
            }
            counts.updated += updated as u64;
            counts.unchanged += (group.len() - n - updated) as u64;
        }
        drop(update);
        self.orders.wrote(&self.tx, batch.len())?;
        Ok(counts)
    }

    fn insert_events(&mut self, batch: &[NewEvent]) -> Result<WriteCounts> {
        let tenant = self.tenant;
        let inserted = insert_groups(
            &self.tx,
            "events",
            EVENT_COLUMNS,
            batch,
            |e| (tenant, e.id.as_str()),
            |stmt, i, e| {
                stmt.raw_bind_parameter(i, tenant)?;
                stmt.raw_bind_parameter(i + 1, e.id.as_str())?;
                stmt.raw_bind_parameter(i + 2, e.customer_id.as_str())?;
                stmt.raw_bind_parameter(i + 3, e.kind.as_str())?;
                stmt.raw_bind_parameter(i + 4, micros(e.occurred_at))?;
                stmt.raw_bind_parameter(i + 5, e.properties.as_str())
            },
        )?;
        let inserted = inserted.iter().sum::<usize>() as u64;
        self.events.wrote(&self.tx, batch.len())?;
        Ok(WriteCounts {
            inserted,
            updated: 0,
            unchanged: batch.len() as u64 - inserted,
        })
    }

    fn claim_messages(&mut self, ids: &[&str], now: Timestamp) -> Result<Vec<bool>> {
        self.claim(ids, now)
    }

    fn claim_event_ids(&mut self, ids: &[&str], _now: Timestamp) -> Result<Vec<bool>> {
        self.claim_events(ids)
    }

    fn created_customers(&mut self) -> Result<Vec<CustomerId>> {
        Ok(std::mem::take(&mut self.created))
    }

    fn displaced_customers(&mut self) -> Result<Vec<CustomerId>> {
        Ok(std::mem::take(&mut self.displaced))
    }
}

impl ProfileWrites for SqliteImport<'_> {
    fn customer_facts(&mut self, scope: Scope<'_>) -> Result<Vec<CustomerFact>> {
        let filter = self.scope_filter(scope, "customer_id")?;
        let mut stmt = self.tx.prepare(&customer_facts_sql(&filter))?;
        let mut rows = stmt.query([self.tenant])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(customer_fact_from(r)?);
        }
        Ok(out)
    }

    fn profile_facts(&mut self, scope: Scope<'_>, sink: &mut dyn ProfileSink) -> Result<()> {
        // Reads by customer want the indexes a bulk load may have dropped.
        self.end_of_writes_now()?;
        for c in self.customer_facts(scope)? {
            sink.customer(c);
        }
        // customer_facts filled the scope table; the same filter serves the other reads.
        // Past SCAN_ALL_ABOVE customers the tables are scanned whole, keeping the rows in
        // the span of the customers' ids: a large rebuild goes a group of ids at a time,
        // and the rows of the other groups then stop in SQLite instead of each being
        // decoded and looked up (`+` keeps it a scan, not a lookup by index per row).
        let span = match scope {
            Scope::Customers(ids) if ids.len() > SCAN_ALL_ABOVE => ids
                .iter()
                .min()
                .zip(ids.iter().max())
                .map(|(lo, hi)| (lo.as_str(), hi.as_str())),
            _ => None,
        };
        let filter = match scope {
            Scope::Customers(ids) if ids.len() <= SCAN_ALL_ABOVE => {
                scope_clause(scope, "customer_id")
            }
            _ if span.is_some() => "AND +customer_id BETWEEN ?2 AND ?3".to_owned(),
            _ => String::new(),
        };
        let tenant = self.tenant;
        fn query<'s>(
            stmt: &'s mut rusqlite::Statement<'_>,
            tenant: &dyn rusqlite::ToSql,
            span: Option<(&str, &str)>,
        ) -> rusqlite::Result<rusqlite::Rows<'s>> {
            match span {
                Some((lo, hi)) => stmt.query(params![tenant, lo, hi]),
                None => stmt.query(params![tenant]),
            }
        }
        let mut stmt = self.tx.prepare(&order_lines_sql(&filter))?;
        let mut rows = query(&mut stmt, &tenant, span)?;
        while let Some(r) = rows.next()? {
            order_line_into(r, sink)?;
        }
        let mut stmt = self.tx.prepare(&event_lines_sql(&filter))?;
        let mut rows = query(&mut stmt, &tenant, span)?;
        while let Some(r) = rows.next()? {
            event_line_into(r, sink)?;
        }
        Ok(())
    }

    fn referees(&mut self, referrers: Scope<'_>) -> Result<Vec<(CustomerId, Money)>> {
        // Many referrers (every customer of a large import): every referee of the tenant
        // is read off the referrer index, which holds only customers who name one, and
        // kept if their referrer is asked for. Cheaper than filling a scope table.
        let wanted: Option<FastHashSet<&str>> = match referrers {
            Scope::Customers(ids) if ids.len() > SCAN_ALL_ABOVE => {
                Some(ids.iter().map(CustomerId::as_str).collect())
            }
            _ => None,
        };
        let filter = match wanted {
            Some(_) => String::new(),
            None => self.scope_filter(referrers, "c.referrer_id")?,
        };
        let mut stmt = self.tx.prepare(&referees_sql(&filter))?;
        let mut rows = stmt.query([self.tenant])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let referrer = r.get_ref(0)?.as_str().map_err(other)?;
            if wanted.as_ref().is_some_and(|w| !w.contains(referrer)) {
                continue;
            }
            out.push((parse_customer_id(referrer)?, Money::from_fen(r.get(1)?)));
        }
        Ok(out)
    }

    fn profiles_of(&mut self, ids: &[CustomerId]) -> Result<Vec<Profile>> {
        // One lookup per id, in id order: cheaper than filling a scope table and joining
        // for the few thousand customers of an ingest group.
        let mut ids: Vec<&CustomerId> = ids.iter().collect();
        ids.sort_unstable();
        ids.dedup();
        let mut stmt = self.tx.prepare_cached(&profile_of())?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let mut rows = stmt.query(params![self.tenant, id.as_str()])?;
            if let Some(r) = rows.next()? {
                out.push(profile_from(r)?);
            }
        }
        Ok(out)
    }

    fn save_profiles(&mut self, profiles: &[Profile]) -> Result<()> {
        let mut stmt = self.tx.prepare_cached(&save_profile_sql())?;
        for p in profiles {
            let row = ProfileRow::of(p)?;
            stmt.raw_bind_parameter(1, self.tenant)?;
            row.bind(&mut stmt, 2)?;
            stmt.raw_execute()?;
        }
        Ok(())
    }

    fn add_interactions(&mut self, news: &[Interactions]) -> Result<Vec<bool>> {
        // In place: one statement per customer and kind finds the row, adds and writes it,
        // where reading the profile out (joined to its customer) and saving it back cost
        // the batch ingest nearly a third of its time. The same arithmetic as
        // `Interactions::apply_to`: the latest times kept, the kind's count raised.
        let mut stmt = self.tx.prepare_cached(
            "UPDATE profiles SET
                 last_interaction_at = max(coalesce(last_interaction_at, ?3), ?3),
                 left_at = CASE WHEN ?4 IS NULL THEN left_at ELSE max(coalesce(left_at, ?4), ?4) END,
                 event_counts = json_set(event_counts, ?5, coalesce(json_extract(event_counts, ?5), 0) + ?6)
             WHERE tenant_id = ?1 AND customer_id = ?2",
        )?;
        let mut path = String::new();
        let mut found = Vec::with_capacity(news.len());
        for n in news {
            let mut stored = false;
            for (kind, count) in &n.counts {
                // Event types are `[a-z][a-z0-9_]*`: a JSON path member as they are.
                path.clear();
                path.push_str("$.");
                path.push_str(kind);
                let left = if kind == "left" {
                    n.left_at.map(micros)
                } else {
                    None
                };
                stored = stmt.execute(params![
                    self.tenant,
                    n.customer_id.as_str(),
                    micros(n.last_at),
                    left,
                    path,
                    count
                ])? > 0;
                if !stored {
                    break;
                }
            }
            found.push(stored);
        }
        Ok(found)
    }

    fn save_new_profiles(&mut self, profiles: &[Profile]) -> Result<()> {
        // No profile is stored for a customer created in this transaction: multi-row
        // inserts, 64 to a statement. Should a group not go in whole, it is saved again
        // by upserts (rewriting the rows just inserted with the same values).
        let tenant = self.tenant;
        for group in profiles.chunks(GROUP) {
            let rows = group
                .iter()
                .map(ProfileRow::of)
                .collect::<Result<Vec<_>>>()?;
            let inserted = insert_groups(
                &self.tx,
                "profiles",
                PROFILE_ROW,
                &rows,
                |r| (tenant, r.profile.customer_id.as_str()),
                |stmt, i, r| {
                    stmt.raw_bind_parameter(i, tenant)?;
                    r.bind(stmt, i + 1)
                },
            )?;
            if inserted.iter().sum::<usize>() < group.len() {
                self.save_profiles(group)?;
            }
        }
        Ok(())
    }

    fn save_referrals(&mut self, figures: &[(CustomerId, u32, Money)]) -> Result<()> {
        let mut stmt = self.tx.prepare_cached(
            "UPDATE profiles SET referrals = ?3, referral_revenue = ?4
             WHERE tenant_id = ?1 AND customer_id = ?2",
        )?;
        for (id, referrals, revenue) in figures {
            stmt.execute(params![self.tenant, id.as_str(), referrals, revenue.fen()])?;
        }
        Ok(())
    }
}

impl TxOnDb for SqliteImport<'_> {
    fn tx_db(&mut self) -> &mut dyn Db {
        &mut self.tx
    }

    fn tenant_id(&self) -> i64 {
        self.tenant
    }

    fn erasing(&mut self, id: &CustomerId, remains: &CustomerId) -> Result<()> {
        // The row goes on under `remains`; none is left under `id`.
        self.forget(id.as_str());
        self.forget(remains.as_str());
        self.scrub = Some(log::ScrubAfter { conn: self.conn });
        self.end_of_writes_now()
    }

    fn rewriting(&mut self, ids: &[&CustomerId]) -> Result<()> {
        for id in ids {
            self.forget(id.as_str());
        }
        self.end_of_writes_now()
    }
}

impl ImportTx for SqliteImport<'_> {}

impl PrivacyTx for SqliteImport<'_> {}

impl MergeTx for SqliteImport<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::INSERT_TENANT;
    use crate::{CustomerStore, TenantStore};
    use siyu_core::{EventId, EventType, OrderId, OrderStatus};

    fn index_names(store: &SqliteStore) -> Vec<String> {
        let mut stmt = store
            .conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name")
            .expect("prepare");
        stmt.query_map([], |r| r.get(0))
            .expect("query")
            .collect::<rusqlite::Result<Vec<String>>>()
            .expect("names")
    }

    #[test]
    fn a_connection_serving_writes_syncs_each_commit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("durable.db").to_string_lossy().into_owned();
        let mut store = SqliteStore::open(&path).expect("open");
        let level = |s: &SqliteStore| -> i64 {
            s.conn
                .query_row("PRAGMA synchronous", [], |r| r.get(0))
                .expect("synchronous")
        };
        assert_eq!(level(&store), 1, "NORMAL by default");
        store.serve_writes().expect("serve");
        assert_eq!(level(&store), 2, "FULL");
    }

    #[test]
    fn opening_a_current_database_waits_for_no_writer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("busy.db").to_string_lossy().into_owned();
        let mut writer = SqliteStore::open(&path).expect("open");
        assert!(writer.migrate().expect("migrate") > 0);
        let holding = writer
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .expect("the write lock");
        let started = std::time::Instant::now();
        let mut reader = SqliteStore::open(&path).expect("open beside a writer");
        assert_eq!(reader.migrate().expect("nothing to apply"), 0);
        reader.ping().expect("reads");
        assert!(
            started.elapsed() < BUSY_TIMEOUT / 2,
            "opening waited {:?} for the writer",
            started.elapsed()
        );
        holding.rollback().expect("rollback");
    }

    fn migrated() -> (SqliteStore, Tenant) {
        let mut store = SqliteStore::open(":memory:").expect("open");
        store.migrate().expect("migrate");
        let tenant = store.tenant("shop").expect("tenant");
        (store, tenant)
    }

    /// `INSERT OR IGNORE` skips a row that breaks a CHECK or NOT NULL as quietly as a
    /// duplicate; the multi-row writes tell the two apart, so only a duplicate is skipped.
    #[test]
    fn a_multi_row_insert_never_drops_a_row_that_is_not_a_duplicate() {
        let (mut store, tenant) = migrated();
        let tx = store.conn.transaction().expect("transaction");
        let event = |stmt: &mut rusqlite::Statement<'_>, i: usize, row: &(&str, Option<&str>)| {
            stmt.raw_bind_parameter(i, tenant.id)?;
            stmt.raw_bind_parameter(i + 1, row.0)?;
            stmt.raw_bind_parameter(i + 2, "c1")?;
            stmt.raw_bind_parameter(i + 3, row.1)?;
            stmt.raw_bind_parameter(i + 4, 1_i64)?;
            stmt.raw_bind_parameter(i + 5, "{}")
        };
        let events = |rows: &[(&str, Option<&str>)]| {
            insert_groups(
                &tx,
                "events",
                EVENT_COLUMNS,
                rows,
                |r| (tenant.id, r.0),
                event,
            )
        };
        assert_eq!(events(&[("e1", Some("view"))]).expect("new"), vec![1]);
        assert_eq!(
            events(&[("e1", Some("view"))]).expect("a duplicate"),
            vec![0]
        );
        // A NOT NULL broken: alone, and beside a duplicate.
        assert!(events(&[("e2", None)]).is_err(), "alone");
        assert!(
            events(&[("e1", Some("view")), ("e3", None)]).is_err(),
            "beside a duplicate"
        );

        // A CHECK of orders broken, beside a duplicate, in a group of GROUP and a short one.
        let mut batch = orders(0, GROUP + 3);
        let order = |stmt: &mut rusqlite::Statement<'_>, i: usize, o: &NewOrder| {
            stmt.raw_bind_parameter(i, tenant.id)?;
            stmt.raw_bind_parameter(i + 1, o.id.as_str())?;
            stmt.raw_bind_parameter(i + 2, o.customer_id.as_str())?;
            stmt.raw_bind_parameter(i + 3, micros(o.ordered_at))?;
            stmt.raw_bind_parameter(i + 4, o.amount.fen())?;
            stmt.raw_bind_parameter(i + 5, o.discount.fen())?;
            stmt.raw_bind_parameter(i + 6, o.coupon_code.as_deref())?;
            stmt.raw_bind_parameter(i + 7, o.channel.as_ref().map(Channel::as_str))?;
            stmt.raw_bind_parameter(i + 8, o.status.as_str())
        };
        let written = insert_groups(
            &tx,
            "orders",
            ORDER_COLUMNS,
            &batch,
            |o| (tenant.id, o.id.as_str()),
            order,
        )
        .expect("new");
        assert_eq!(written, vec![GROUP, 3]);
        for at in [5, GROUP + 1] {
            let mut again = batch.clone();
            again[at].id = OrderId::parse("9000000000000000001").expect("id");
            again[at].amount = Money::from_fen(-1);
            assert!(
                insert_groups(
                    &tx,
                    "orders",
                    ORDER_COLUMNS,
                    &again,
                    |o| (tenant.id, o.id.as_str()),
                    order
                )
                .is_err(),
                "a negative amount at {at}"
            );
        }
        batch.truncate(GROUP);
        let written = insert_groups(
            &tx,
            "orders",
            ORDER_COLUMNS,
            &batch,
            |o| (tenant.id, o.id.as_str()),
            order,
        )
        .expect("again");
        assert_eq!(written, vec![0], "duplicates only");
    }

    /// A batch's message ids go in by a multi-row `INSERT OR IGNORE … RETURNING`: an id
    /// not returned is a duplicate only when it is there. (A trigger stands in for a
    /// constraint that `OR IGNORE` would skip the row for.)
    #[test]
    fn a_message_id_skipped_for_any_reason_but_a_duplicate_fails_the_claim() {
        let (mut store, tenant) = migrated();
        store
            .conn
            .execute_batch(
                "CREATE TEMP TRIGGER skip_bad BEFORE INSERT ON main.ingest_messages
                 WHEN NEW.message_id = 'bad' BEGIN SELECT RAISE(IGNORE); END;",
            )
            .expect("trigger");
        let now = Timestamp::from_second(1_700_000_000).expect("time");
        let mut tx = store.begin_import(&tenant).expect("import");
        assert_eq!(tx.claim_messages(&["m1"], now).expect("new"), vec![true]);
        assert_eq!(
            tx.claim_messages(&["m1", "m2"], now).expect("a duplicate"),
            vec![false, true]
        );
        assert!(tx.claim_messages(&["m1", "bad"], now).is_err());
    }

    /// A track item's message id is written once, as its event's id: an event appends
    /// its row and its id goes to one narrow index, not to ingest_messages too.
    #[test]
    fn a_track_items_message_id_is_kept_by_its_event_alone() {
        let (mut store, tenant) = migrated();
        let now = Timestamp::from_second(1_700_000_000).expect("time");
        let mut tx = store.begin_import(&tenant).expect("import");
        assert_eq!(tx.claim_event_ids(&["e1"], now).expect("new"), vec![true]);
        let event = NewEvent {
            id: EventId::parse("e1").expect("id"),
            customer_id: CustomerId::parse("c1").expect("id"),
            kind: EventType::parse("view").expect("kind"),
            occurred_at: now,
            properties: "{}".into(),
        };
        tx.insert_events(&[event]).expect("event");
        tx.commit().expect("commit");
        let count = |sql: &str| -> i64 { store.conn.query_row(sql, [], |r| r.get(0)).expect(sql) };
        assert_eq!(count("SELECT count(*) FROM ingest_messages"), 0);
        assert_eq!(count("SELECT count(*) FROM events WHERE rowid = 1"), 1);
        let plan: String = store
            .conn
            .query_row(
                "EXPLAIN QUERY PLAN SELECT customer_id, type, occurred_at FROM events
                 WHERE tenant_id = 1",
                [],
                |r| r.get(3),
            )
            .expect("plan");
        assert_eq!(
            plan, "SCAN events",
            "a tenant's events are read in one pass"
        );
    }

    /// The single-row `ON CONFLICT DO NOTHING` writes skip a row whose key is there, and
    /// only such a row: one that breaks a CHECK or NOT NULL fails (unlike `OR IGNORE`).
    #[test]
    fn an_insert_that_does_nothing_on_conflict_skips_duplicates_only() {
        use rusqlite::types::Value::{Integer, Null, Text};
        let (store, tenant) = migrated();
        let t = Integer(tenant.id);
        let text = |s: &str| Text(s.to_owned());
        let customer = |id: &str, gender: &str| {
            vec![
                t.clone(),
                text(id),
                Null,
                Null,
                text(gender),
                Null,
                Null,
                Null,
                Null,
                Integer(1),
                Integer(1),
            ]
        };
        let cases = [
            (
                "tenants",
                INSERT_TENANT,
                vec![text("tea"), Integer(1)],
                vec![Null, Integer(1)],
            ),
            (
                "customers",
                INSERT_CUSTOMER,
                customer("c1", "female"),
                customer("c2", "robot"),
            ),
            (
                "import tags",
                INSERT_IMPORT_TAG,
                vec![t.clone(), text("c1"), text("vip"), Integer(1)],
                vec![t.clone(), text("c1"), Null, Integer(1)],
            ),
            (
                "tags",
                crate::sql::INSERT_TAG,
                vec![
                    t.clone(),
                    text("c1"),
                    text("new"),
                    text("manual:a"),
                    Integer(1),
                ],
                vec![t.clone(), text("c1"), text("old"), Null, Integer(1)],
            ),
            (
                "suppressions",
                crate::sql::INSERT_SUPPRESSION,
                vec![t.clone(), text("k1"), Integer(1)],
                vec![t.clone(), text("k2"), Null],
            ),
        ];
        for (what, sql, good, bad) in cases {
            let run = |values: &[rusqlite::types::Value]| {
                store
                    .conn
                    .execute(sql, rusqlite::params_from_iter(values.iter()))
            };
            assert_eq!(run(&good).expect(what), 1, "{what}: new");
            assert_eq!(run(&good).expect(what), 0, "{what}: a duplicate");
            assert!(run(&bad).is_err(), "{what}: a broken row");
        }
    }

    fn orders(from: usize, n: usize) -> Vec<NewOrder> {
        (from..from + n)
            .map(|i| NewOrder {
                id: OrderId::parse(&format!("{:019}", 3_700_000_000_000_000_000u64 + i as u64))
                    .expect("id"),
                customer_id: CustomerId::parse(&format!("c{}", i % 1000)).expect("id"),
                ordered_at: Timestamp::from_second(1_700_000_000 + i as i64).expect("time"),
                amount: Money::from_fen(100 + i as i64),
                discount: Money::ZERO,
                coupon_code: None,
                channel: None,
                status: OrderStatus::Paid,
            })
            .collect()
    }

    fn load(
        store: &mut SqliteStore,
        tenant: &Tenant,
        rows: &[NewOrder],
        commit: bool,
    ) -> WriteCounts {
        let mut tx = store.begin_import(tenant).expect("begin");
        let mut counts = WriteCounts::default();
        for batch in rows.chunks(8192) {
            counts += tx.upsert_orders(batch).expect("write");
        }
        if commit {
            tx.commit().expect("commit");
        }
        counts
    }

    /// A large load of events drops their index by customer but keeps the unique one by
    /// id: it is what makes an event id seen before a duplicate, in the load too.
    #[test]
    fn a_large_load_of_events_still_refuses_an_event_id_seen_before() {
        let (mut store, tenant) = migrated();
        let at = Timestamp::from_second(1_700_000_000).expect("time");
        let events: Vec<NewEvent> = (0..150_000)
            .map(|k| NewEvent {
                id: EventId::parse(&format!("e{k}")).expect("id"),
                customer_id: CustomerId::parse(&format!("c{}", k % 1_000)).expect("id"),
                kind: EventType::parse("view").expect("kind"),
                occurred_at: at,
                properties: "{}".into(),
            })
            .collect();
        let mut tx = store.begin_import(&tenant).expect("begin");
        let mut inserted = 0;
        for _ in 0..2 {
            for batch in events.chunks(8192) {
                inserted += tx.insert_events(batch).expect("write").inserted;
            }
        }
        tx.commit().expect("commit");
        assert_eq!(inserted, 150_000, "the second time, every one a duplicate");
        assert_eq!(store.table_counts(&tenant).expect("counts").events, 150_000);
        let names = index_names(&store);
        assert!(names.contains(&"events_by_id".to_owned()), "{names:?}");
        assert!(
            names.contains(&"events_by_customer".to_owned()),
            "{names:?}"
        );
    }

    #[test]
    fn a_large_load_rebuilds_the_indexes_it_dropped_and_a_rollback_keeps_them() {
        let mut store = SqliteStore::open(":memory:").expect("open");
        store.migrate().expect("migrate");
        let tenant = store.tenant("t").expect("tenant");
        let before = index_names(&store);
        assert!(before.contains(&"orders_by_customer".to_owned()));
        let stat = |store: &SqliteStore| -> Option<String> {
            store
                .conn
                .query_row(
                    "SELECT stat FROM sqlite_stat1 WHERE idx = 'orders_by_customer'",
                    [],
                    |r| r.get(0),
                )
                .optional()
                .expect("stat")
        };
        let stats = stat(&store);
        assert!(stats.is_some());

        let rows = orders(0, 250_000);
        let rolled_back = load(&mut store, &tenant, &rows, false);
        assert_eq!(rolled_back.inserted, 250_000);
        assert_eq!(index_names(&store), before);
        assert_eq!(store.table_counts(&tenant).expect("counts").orders, 0);

        let counts = load(&mut store, &tenant, &rows, true);
        assert_eq!(counts.inserted, 250_000);
        assert_eq!(index_names(&store), before);
        // With their planner statistics.
        assert_eq!(stat(&store), stats);
        let indexed: i64 = store
            .conn
            .query_row(
                "SELECT count(*) FROM orders INDEXED BY orders_by_customer WHERE tenant_id = ?1 AND customer_id = 'c7'",
                [tenant.id],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(indexed, 250);

        // Again with a tenth changed: the groups with existing rows fall back to updates.
        let mut again = rows;
        for o in again.iter_mut().step_by(10) {
            o.status = OrderStatus::Refunded;
        }
        let counts = load(&mut store, &tenant, &again, true);
        assert_eq!(
            (counts.inserted, counts.updated, counts.unchanged),
            (0, 25_000, 225_000)
        );
    }

    #[test]
    fn a_customers_rows_are_found_by_index_and_written_without_temporary_tables() {
        let mut store = SqliteStore::open(":memory:").expect("open");
        store.migrate().expect("migrate");
        let plan = |sql: &str| -> String {
            let mut stmt = store
                .conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .expect("plan");
            let n = stmt.parameter_count();
            let args: Vec<&dyn rusqlite::ToSql> = [&1 as &dyn rusqlite::ToSql, &"c1", &5]
                .into_iter()
                .take(n)
                .collect();
            stmt.query_map(args.as_slice(), |r| r.get::<_, String>(3))
                .expect("query")
                .collect::<rusqlite::Result<Vec<_>>>()
                .expect("rows")
                .join("; ")
        };
        for (sql, index) in [
            (
                "SELECT event_id, type, properties FROM events WHERE tenant_id = ?1
                 AND customer_id = ?2 ORDER BY occurred_at DESC, event_id DESC LIMIT ?3",
                "events_by_customer",
            ),
            (
                "SELECT order_id, amount, status FROM orders WHERE tenant_id = ?1
                 AND customer_id = ?2 ORDER BY ordered_at DESC, order_id DESC LIMIT ?3",
                "orders_by_customer",
            ),
            (
                "SELECT customer_id, type, occurred_at FROM events WHERE tenant_id = ?1
                 AND customer_id IN (SELECT ?2)",
                "events_by_customer",
            ),
            (
                "DELETE FROM events WHERE tenant_id = ?1 AND customer_id = ?2",
                "events_by_customer",
            ),
            (
                "UPDATE orders SET customer_id = 'x' WHERE tenant_id = ?1 AND customer_id = ?2",
                "orders_by_customer",
            ),
            (
                "UPDATE customers SET referrer_id = 'x' WHERE tenant_id = ?1 AND referrer_id = ?2",
                "customers_by_referrer",
            ),
            (
                &known_customers_sql(2),
                "PRIMARY KEY (tenant_id=? AND customer_id=?)",
            ),
        ] {
            let plan = plan(sql);
            assert!(plan.contains(index), "{sql}: {plan}");
        }
        // Nor is a temporary b-tree built to check a row written.
        for sql in [
            multi_insert_sql("customers", SEEN_COLUMNS, 2),
            INSERT_CUSTOMER.to_owned(),
        ] {
            let mut explain = store
                .conn
                .prepare(&format!("EXPLAIN {sql}"))
                .expect("explain");
            let args = std::iter::repeat_n(1, explain.parameter_count());
            let ops: Vec<String> = explain
                .query_map(rusqlite::params_from_iter(args), |r| r.get(1))
                .expect("ops")
                .collect::<rusqlite::Result<_>>()
                .expect("ops");
            assert!(
                !ops.iter().any(|op| op == "OpenEphemeral"),
                "{sql}: {ops:?}"
            );
        }
    }

    /// The size of the write-ahead log of the database at `path`.
    fn log_size(path: &std::path::Path) -> u64 {
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        std::fs::metadata(wal).map_or(0, |m| m.len())
    }

    #[test]
    fn a_writer_that_checkpoints_between_transactions_reuses_its_log() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("log.db");
        let mut store = SqliteStore::open(&path.to_string_lossy()).expect("open");
        store.migrate().expect("migrate");
        store.defer_checkpoints().expect("defer");
        let tenant = store.tenant("t").expect("tenant");
        // Another connection copying the log back now and then, as `siyu serve` has.
        let mut other = SqliteStore::open(&path.to_string_lossy()).expect("open");
        let round = |store: &mut SqliteStore, k: usize| {
            load(store, &tenant, &orders(k * 2_000, 2_000), true);
        };
        round(&mut store, 0);
        assert!(
            other.checkpoint().expect("checkpoint"),
            "with no commit meanwhile, one pass copies the whole log"
        );
        round(&mut store, 1);
        let grown = log_size(&path);
        // A transaction after the other connection's checkpoint appends: its copy ended
        // before the last commit, so the log cannot start again.
        round(&mut store, 2);
        assert!(
            log_size(&path) > grown,
            "the log grows while never wholly copied"
        );

        // The writer's own checkpoint copies the rest; the next transactions reuse the log.
        assert!(store.checkpoint().expect("checkpoint"), "all copied");
        let copied = log_size(&path);
        for k in 3..6 {
            round(&mut store, k);
            store.checkpoint().expect("checkpoint");
            assert!(log_size(&path) <= copied, "round {k}: the log was reused");
        }
    }

    /// A migrated store in a file of its own, with a tenant.
    fn on_file(name: &str) -> (tempfile::TempDir, std::path::PathBuf, SqliteStore, Tenant) {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join(name);
        let mut store = SqliteStore::open(&path.to_string_lossy()).expect("open");
        store.migrate().expect("migrate");
        let tenant = store.tenant("t").expect("tenant");
        (dir, path, store, tenant)
    }

    #[test]
    fn a_known_tenant_is_read_without_waiting_for_a_writer() {
        let (_dir, path, mut writer, tenant) = on_file("tenant.db");
        let mut reader = SqliteStore::open(&path.to_string_lossy()).expect("open");
        reader
            .conn
            .busy_timeout(std::time::Duration::ZERO)
            .expect("no waiting");
        let holding = writer
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .expect("the write lock");
        let read = reader.tenant("t").expect("read beside a writer");
        assert_eq!(read.id, tenant.id);
        holding.rollback().expect("rollback");
    }

    #[test]
    fn customers_a_connection_knows_are_looked_up_again_once_another_connection_commits() {
        let (_dir, path, mut store, tenant) = on_file("known.db");
        let c1 = CustomerId::parse("c1").expect("id");
        let see = |store: &mut SqliteStore, second: i64| -> u64 {
            let mut tx = store.begin_import(&tenant).expect("begin");
            let sighting = SeenCustomer {
                id: c1.clone(),
                at: Timestamp::from_second(1_700_000_000 + second).expect("time"),
                channel: None,
            };
            let created = tx.see_customers(&[sighting]).expect("see");
            tx.commit().expect("commit");
            created
        };
        assert_eq!(see(&mut store, 10), 1);
        assert_eq!(see(&mut store, 20), 0);
        assert_eq!(store.known.len(), 1);

        // Copying the log back is no change of content: what is known stays.
        let mut other = SqliteStore::open(&path.to_string_lossy()).expect("open");
        other.checkpoint().expect("checkpoint");
        assert_eq!(see(&mut store, 30), 0);
        assert_eq!(store.known.len(), 1);

        // The other connection erases c1: this one no longer takes c1 for known.
        let mut tx = other.begin_import(&tenant).expect("begin");
        let remains = CustomerId::parse("erased:01").expect("id");
        let at = Timestamp::from_second(1_700_000_040).expect("time");
        tx.erase_customer(&c1, &remains, "key", at).expect("erase");
        tx.commit().expect("commit");
        assert_eq!(see(&mut store, 50), 1, "created anew");
        assert_eq!(
            store.customer(&tenant, &c1).expect("c1").joined_at,
            Timestamp::from_second(1_700_000_050).expect("time")
        );
    }

    /// The journal mode the file's header records: 2 for WAL, 1 for a rollback journal.
    fn header_mode(path: &std::path::Path) -> (u8, u8) {
        let header = std::fs::read(path).expect("read");
        (header[18], header[19])
    }

    fn journal_mode(store: &SqliteStore) -> String {
        store
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .expect("mode")
    }

    #[test]
    fn a_load_alone_on_its_file_goes_through_a_rollback_journal_and_back_to_the_log() {
        let (dir, path, mut store, tenant) = on_file("load.db");
        let journal = dir.path().join("load.db-journal");
        let log = dir.path().join("load.db-wal");
        let rows = orders(0, 20_000);

        for commit in [false, true] {
            let mut tx = store.begin_import_of(&tenant, LOAD_BYTES).expect("begin");
            tx.upsert_orders(&rows).expect("write");
            assert!(journal.exists(), "the load keeps a rollback journal");
            assert!(!log.exists(), "and no write-ahead log");
            if commit {
                tx.commit().expect("commit");
            } else {
                drop(tx);
            }
            assert_eq!(
                journal_mode(&store),
                "wal",
                "back in WAL mode after the load"
            );
            assert_eq!(header_mode(&path), (2, 2));
            assert!(!journal.exists());
            let expected = if commit { 20_000 } else { 0 };
            assert_eq!(
                store.table_counts(&tenant).expect("counts").orders,
                expected
            );
        }
        // An ordinary write afterwards goes to the log again.
        load(&mut store, &tenant, &orders(20_000, 10), true);
        assert!(log.exists());
    }

    #[test]
    fn a_load_beside_another_connection_stays_in_the_log_and_the_other_reads_meanwhile() {
        let (dir, path, mut store, tenant) = on_file("shared.db");
        load(&mut store, &tenant, &orders(0, 100), true);
        let mut other = SqliteStore::open(&path.to_string_lossy()).expect("open");
        other.ping().expect("ping");

        let started = std::time::Instant::now();
        let mut tx = store.begin_import_of(&tenant, LOAD_BYTES).expect("begin");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "the question is asked without waiting out the busy timeout"
        );
        tx.upsert_orders(&orders(100, 5_000)).expect("write");
        assert!(!dir.path().join("shared.db-journal").exists());
        assert_eq!(
            other.table_counts(&tenant).expect("counts").orders,
            100,
            "the other connection reads the state before the load, without waiting"
        );
        tx.commit().expect("commit");
        assert_eq!(other.table_counts(&tenant).expect("counts").orders, 5_100);
        assert_eq!(journal_mode(&store), "wal");
    }

    #[test]
    fn a_load_cut_off_after_overwriting_part_of_the_file_is_rolled_back_on_the_next_opening() {
        let (dir, path, mut store, tenant) = on_file("crash.db");
        load(&mut store, &tenant, &orders(0, 3_000), true);
        // A small cache, so the load spills changed pages into the file before it ends.
        store
            .conn
            .execute_batch("PRAGMA cache_size = 50")
            .expect("cache");
        let before = std::fs::metadata(&path).expect("size").len();

        let crashed = dir.path().join("crashed.db");
        let mut tx = store.begin_import_of(&tenant, LOAD_BYTES).expect("begin");
        let mut changed = orders(0, 3_000);
        for o in &mut changed {
            o.status = OrderStatus::Refunded;
        }
        tx.upsert_orders(&changed).expect("update");
        tx.upsert_orders(&orders(3_000, 30_000)).expect("write");
        assert!(
            std::fs::metadata(&path).expect("size").len() > before,
            "the load has written into the file itself"
        );
        // The files as a crash at this moment would leave them.
        std::fs::copy(&path, &crashed).expect("copy");
        std::fs::copy(
            dir.path().join("crash.db-journal"),
            dir.path().join("crashed.db-journal"),
        )
        .expect("copy journal");
        drop(tx);

        let mut reopened = SqliteStore::open(&crashed.to_string_lossy()).expect("open");
        let check: String = reopened
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .expect("check");
        assert_eq!(check, "ok");
        assert_eq!(
            reopened.table_counts(&tenant).expect("counts").orders,
            3_000
        );
        let refunded: i64 = reopened
            .conn
            .query_row(
                "SELECT count(*) FROM orders WHERE status = 'refunded'",
                [],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(refunded, 0, "the orders the load changed are as they were");
        assert_eq!(journal_mode(&reopened), "wal");
        assert!(!dir.path().join("crashed.db-journal").exists());
    }

    fn file_holds(path: &std::path::Path, needle: &[u8]) -> bool {
        let bytes = std::fs::read(path).unwrap_or_default();
        bytes.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn an_erasure_empties_the_log_of_the_erased_rows_once_it_has_committed() {
        let (dir, _path, mut store, tenant) = on_file("erase.db");
        let phone = "+8613912345678";
        let c1 = CustomerId::parse("c1").expect("id");
        let mut tx = store.begin_import(&tenant).expect("begin");
        let customer = NewCustomer {
            id: c1.clone(),
            name: None,
            phone: Some(phone.into()),
            gender: None,
            birthday: None,
            region: None,
            channel: None,
            referrer_id: None,
            joined_at: None,
            tags: Vec::new(),
        };
        let now = Timestamp::from_second(1_700_000_000).expect("time");
        tx.upsert_customers(&[customer], now).expect("write");
        tx.commit().expect("commit");
        let wal = dir.path().join("erase.db-wal");
        assert!(
            file_holds(&wal, phone.as_bytes()),
            "the phone is in the log"
        );

        let mut tx = store.begin_privacy(&tenant).expect("begin");
        let remains = CustomerId::parse("erased:01").expect("id");
        tx.erase_customer(&c1, &remains, "key", now).expect("erase");
        tx.commit().expect("commit");
        assert_eq!(
            log_size(&dir.path().join("erase.db")),
            0,
            "the log is empty"
        );
        assert!(!file_holds(&wal, phone.as_bytes()));
    }

    #[test]
    fn a_serving_writer_empties_its_log_when_idle_and_stops_its_checkpoints_when_dropped() {
        let (dir, path, mut store, tenant) = on_file("serve.db");
        store.serve_writes().expect("serve");
        for k in 0..3 {
            load(&mut store, &tenant, &orders(k * 2_000, 2_000), true);
            store.after_writes().expect("after writes");
        }
        assert!(log_size(&path) > 0);
        // The checkpoint thread may be in a pass, which keeps the log from being emptied:
        // the next idle turn tries again.
        for _ in 0..500 {
            store.when_idle().expect("idle");
            if log_size(&path) == 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(log_size(&path), 0, "emptied when idle");

        // Dropped, the store closes the checkpoint thread's connection too: a load on the
        // file then finds itself alone and goes through a rollback journal.
        drop(store);
        let mut store = SqliteStore::open(&path.to_string_lossy()).expect("open");
        let mut tx = store.begin_import_of(&tenant, LOAD_BYTES).expect("begin");
        tx.upsert_orders(&orders(6_000, 10)).expect("write");
        assert!(
            dir.path().join("serve.db-journal").exists(),
            "alone on the file"
        );
        tx.commit().expect("commit");
    }
}

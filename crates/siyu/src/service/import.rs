//! Importing a merchant's file: read and validate on one thread, write on another, in one
//! transaction, so an import is all or nothing (or, asked to skip invalid rows, writes
//! every rejected row out with its reason). Memory stays flat: rows flow in chunks.

use std::collections::HashSet;
use std::fmt;
use std::fs::File;
use std::io::{BufWriter, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use siyu_core::fasthash::{FastHashMap, FastHashSet};
use siyu_core::import::{
    Columns, Kind, Mapping, Preset, Problem, Record, RecordSource, SourceError, parse_customer,
    parse_event, parse_order,
};
use siyu_core::profile::{Profile, ProfileBuilder, ProfileSink};
use siyu_core::{
    Channel, CustomerId, NewCustomer, NewEvent, NewOrder, SeenCustomer, TenantZone, Timestamp,
};
use siyu_store::{Identity, ImportTx, Scope, Store, Tenant, WriteCounts};

use super::evaluate::{Recompute, evaluate_all, evaluate_touched};
use super::merge::{Aliases, resolve};
use super::privacy::Suppressions;
use super::profiles::{Affected, Refreshed, refresh, refresh_in_groups};
use super::segments::{RuleSettings, has_rules, rule_settings};

/// Rows handed from the reader to the writer at a time.
const CHUNK: usize = 8192;

/// An import that touches more than one customer in this many recomputes the day's
/// thresholds and evaluates everyone.
const LARGE_IMPORT_SHARE: usize = 10;
/// Problems listed when a file is refused (by an import, or by a figure read straight
/// from a file).
pub(crate) const MAX_LISTED: usize = 20;
/// Customers whose profiles an import builds from its own rows (about 430 bytes each,
/// with the builder's index and purchase days); past this it reads them back from the
/// store like everyone else's. 400,000 held 170 MB, the largest part of the peak of a
/// file of a million customers, which then rebuilt every profile from the store anyway.
const STREAM_LIMIT: usize = 150_000;
/// Customers whose stale profiles [`StaleProfiles::refresh`] rebuilds at a time: about
/// 90 MB of profiles being built (250,000 took the demo to 499 MiB, 340,000 to 513).
const STALE_GROUP: usize = 200_000;
/// Customers remembered as seen during one import (about 75 bytes each, as many again
/// when they are handed over); past this the memory is flushed and cleared, so it stays
/// bounded however large the file.
const SEEN_LIMIT: usize = 250_000;

#[derive(Debug, Clone, Copy, Default)]
pub struct ImportOptions {
    /// Import the valid rows and write the rest to `FILE.rejects.csv`.
    pub skip_invalid: bool,
    /// Columns outside the canonical set are skipped instead of refused.
    pub ignore_unknown: bool,
    /// Show a progress bar (only drawn on a terminal).
    pub progress: bool,
    /// Leave segments and tags as they are: the caller evaluates everyone once after the
    /// last of several imports (the demo's three files), instead of each import doing so.
    pub defer_segments: bool,
    /// Leave profiles as they are too (and so segments and tags): the report hands back
    /// whose profiles the import made stale, for the caller to rebuild once after the
    /// last of several imports (the demo's three files rebuilt most profiles three times).
    pub defer_profiles: bool,
}

/// Whose profiles an import with [`ImportOptions::defer_profiles`] left stale: what its
/// own refresh would have rebuilt (see [`Affected::Customers`]).
#[derive(Debug, Clone, Default)]
pub struct StaleProfiles {
    pub ids: FastHashSet<CustomerId>,
    pub old_referrers: HashSet<CustomerId>,
}

impl StaleProfiles {
    /// Adds another import's stale profiles to these.
    pub fn extend(&mut self, other: StaleProfiles) {
        self.ids.extend(other.ids);
        self.old_referrers.extend(other.old_referrers);
    }

    /// Rebuilds them inside `tx`, as each import's own refresh would have, in larger
    /// groups than an import's: nothing else is held meanwhile, and each group is a scan
    /// of every order and event (a million demo customers: 5 scans instead of 7).
    pub fn refresh(
        &self,
        tx: &mut dyn siyu_store::ProfileWrites,
        zone: &TenantZone,
    ) -> anyhow::Result<usize> {
        let affected = Affected::Customers {
            ids: &self.ids,
            old_referrers: &self.old_referrers,
        };
        Ok(
            refresh_in_groups(tx, zone, affected, Vec::new(), STALE_GROUP)
                .context("updating profiles")?
                .profiles,
        )
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    pub kind: &'static str,
    pub file: PathBuf,
    pub encoding: &'static str,
    pub rows: u64,
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub rejected: u64,
    /// Customers created because an order or event named one the pool lacked.
    pub customers_created: u64,
    /// Valid rows about erased customers, left out.
    pub suppressed: u64,
    pub rejects_file: Option<PathBuf>,
    /// The platform export the file was read as, and whether it was recognised from
    /// the header (rather than named with `--preset`).
    pub preset: Option<&'static str>,
    pub preset_recognised: bool,
    /// Header names read as the canonical column they stand for: (name, column).
    pub columns_read_as: Vec<(String, String)>,
    pub seconds: f64,
    /// Where `seconds` went.
    pub phases: Phases,
    /// Customers who entered and exited segments and tags, when the tenant has rules.
    pub segment_changes: Option<(u64, u64)>,
    /// With [`ImportOptions::defer_profiles`]: the profiles left for the caller.
    #[serde(skip)]
    pub stale_profiles: Option<StaleProfiles>,
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::wording::{count, thousands as n};
        write!(
            f,
            "imported {} from {} ({}): {}: {} inserted, {} updated, {} unchanged, {} rejected",
            self.kind,
            self.file.display(),
            self.encoding,
            count(self.rows, "row"),
            n(self.inserted),
            n(self.updated),
            n(self.unchanged),
            n(self.rejected),
        )?;
        if let Some(path) = &self.rejects_file {
            write!(f, " (written with their reasons to {})", path.display())?;
        }
        if let Some(preset) = self.preset {
            let how = if self.preset_recognised {
                " (recognised by its header)"
            } else {
                ""
            };
            write!(f, "; read as a {preset} export{how}")?;
        }
        // A preset's columns are listed in docs/import.md; a file of the merchant's own
        // says how its names were read.
        if self.preset.is_none() && !self.columns_read_as.is_empty() {
            let pairs: Vec<String> = self
                .columns_read_as
                .iter()
                .map(|(name, column)| format!("{name} as {column}"))
                .collect();
            write!(f, "; columns read: {}", pairs.join(", "))?;
        }
        if self.suppressed > 0 {
            write!(
                f,
                "; {} about erased customers left out",
                count(self.suppressed, "row")
            )?;
        }
        if self.customers_created > 0 {
            write!(
                f,
                "; {} new to the pool {} created from {}",
                count(self.customers_created, "customer"),
                if self.customers_created == 1 {
                    "was"
                } else {
                    "were"
                },
                self.kind
            )?;
        }
        if let Some((entered, exited)) = self.segment_changes {
            write!(
                f,
                "; segments and tags: {} entered, {} exited",
                n(entered),
                n(exited)
            )?;
        }
        Ok(())
    }
}

/// Where an import's time goes, in seconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Phases {
    /// Reading, checking and writing the rows (the two run side by side).
    pub rows: f64,
    /// Bringing the touched customers' profiles up to date. (Work the store deferred
    /// while the rows were written, such as a load's index rebuild, falls into this phase
    /// or the next ones, as the store needs it done.)
    pub profiles: f64,
    /// Evaluating segments and tags (when the tenant has rules).
    pub segments: f64,
    pub commit: f64,
}

/// A file that a figure computed straight from it (`siyu rfm --orders`, `siyu clv
/// --orders`) refuses for bad rows, listed as the importer lists them.
#[derive(Debug)]
pub struct InvalidFile {
    pub file: PathBuf,
    /// `FILE:LINE: field: reason`, the first `MAX_LISTED`.
    pub listed: Vec<String>,
    pub rows_with_problems: u64,
    /// What was not done, e.g. "no RFM was computed".
    pub not_done: &'static str,
}

impl fmt::Display for InvalidFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.rows_with_problems;
        write!(
            f,
            "{} has {n} invalid row{}; {} (an import would refuse the file too)",
            self.file.display(),
            if n == 1 { "" } else { "s" },
            self.not_done,
        )?;
        for line in &self.listed {
            write!(f, "\n  {line}")?;
        }
        Ok(())
    }
}

impl std::error::Error for InvalidFile {}

/// An import refused for bad rows: nothing was written.
#[derive(Debug)]
pub struct InvalidRows {
    pub file: PathBuf,
    /// `FILE:LINE: field: reason`, the first `MAX_LISTED`.
    pub listed: Vec<String>,
    pub rows_with_problems: u64,
}

impl fmt::Display for InvalidRows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} has {} invalid row{}; nothing was imported (pass --skip-invalid to import the valid rows and write the others to {})",
            self.file.display(),
            self.rows_with_problems,
            if self.rows_with_problems == 1 {
                ""
            } else {
                "s"
            },
            rejects_path(&self.file).display()
        )?;
        for line in &self.listed {
            write!(f, "\n  {line}")?;
        }
        Ok(())
    }
}

impl std::error::Error for InvalidRows {}

pub fn rejects_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".rejects.csv");
    PathBuf::from(name)
}

/// A parsed row and the key that must not repeat within one batch.
trait Row: Send + 'static {
    fn parse(columns: &Columns, record: &Record, zone: &TenantZone) -> Result<Self, Vec<Problem>>
    where
        Self: Sized;
    fn key(&self) -> &str;
    /// The customer whose profile the row changes.
    fn customer(&self) -> &CustomerId;
    fn customer_mut(&mut self) -> &mut CustomerId;
    /// The kind of row an unmerge takes back (`order`, `event`), keyed by [`Row::key`].
    const NOTED: Option<&'static str>;
    /// The customer this row is a sighting of, and when.
    fn sighting(&self) -> Option<(&CustomerId, Timestamp, Option<&Channel>)>;
    fn write(
        tx: &mut dyn ImportTx,
        batch: &[Self],
        now: Timestamp,
    ) -> siyu_store::Result<WriteCounts>
    where
        Self: Sized;
    /// Hands the row to the profiles of customers new to the pool (see [`StreamedProfiles`]).
    fn feed(&self, _profiles: &mut ProfileBuilder) {}
    /// The referrer the row names, if it can name one.
    fn referrer_mut(&mut self) -> Option<&mut Option<CustomerId>> {
        None
    }
    /// Adds `item`, the next row of the same key in an export of items (see
    /// [`Preset::items`]), to this one.
    fn absorb(&mut self, item: Self) -> Result<(), Problem>
    where
        Self: Sized,
    {
        drop(item);
        Err(Problem::new("row", "repeats the row before"))
    }
}

impl Row for NewCustomer {
    fn parse(c: &Columns, r: &Record, z: &TenantZone) -> Result<Self, Vec<Problem>> {
        parse_customer(c, r, z)
    }
    fn key(&self) -> &str {
        self.id.as_str()
    }
    fn customer(&self) -> &CustomerId {
        &self.id
    }
    fn customer_mut(&mut self) -> &mut CustomerId {
        &mut self.id
    }
    const NOTED: Option<&'static str> = None;
    fn sighting(&self) -> Option<(&CustomerId, Timestamp, Option<&Channel>)> {
        None
    }
    fn referrer_mut(&mut self) -> Option<&mut Option<CustomerId>> {
        Some(&mut self.referrer_id)
    }
    fn write(
        tx: &mut dyn ImportTx,
        batch: &[Self],
        now: Timestamp,
    ) -> siyu_store::Result<WriteCounts> {
        tx.upsert_customers(batch, now)
    }
}

impl Row for NewOrder {
    fn parse(c: &Columns, r: &Record, z: &TenantZone) -> Result<Self, Vec<Problem>> {
        parse_order(c, r, z)
    }
    fn key(&self) -> &str {
        self.id.as_str()
    }
    fn customer(&self) -> &CustomerId {
        &self.customer_id
    }
    fn customer_mut(&mut self) -> &mut CustomerId {
        &mut self.customer_id
    }
    const NOTED: Option<&'static str> = Some("order");
    fn sighting(&self) -> Option<(&CustomerId, Timestamp, Option<&Channel>)> {
        Some((&self.customer_id, self.ordered_at, self.channel.as_ref()))
    }
    fn write(
        tx: &mut dyn ImportTx,
        batch: &[Self],
        _: Timestamp,
    ) -> siyu_store::Result<WriteCounts> {
        tx.upsert_orders(batch)
    }
    fn feed(&self, profiles: &mut ProfileBuilder) {
        profiles.seen_order(self);
    }
    /// An order's items are summed: what was paid for the items kept, or, when every
    /// item was refunded, what was paid for them all (a refunded order counts nowhere).
    fn absorb(&mut self, item: Self) -> Result<(), Problem> {
        if item.customer_id != self.customer_id {
            return Err(Problem::new(
                "customer_id",
                format!("differs from the other items of order {}", self.id),
            ));
        }
        match (self.status, item.status) {
            (siyu_core::OrderStatus::Refunded, siyu_core::OrderStatus::Paid) => {
                self.status = siyu_core::OrderStatus::Paid;
                self.amount = item.amount;
                self.discount = item.discount;
            }
            (siyu_core::OrderStatus::Paid, siyu_core::OrderStatus::Refunded) => {}
            _ => {
                self.amount += item.amount;
                self.discount += item.discount;
            }
        }
        if self.amount > siyu_core::money::MAX_AMOUNT {
            return Err(Problem::new(
                "amount",
                "the order's items sum past the limit",
            ));
        }
        if self.coupon_code.is_none() {
            self.coupon_code = item.coupon_code;
        }
        Ok(())
    }
}

impl Row for NewEvent {
    fn parse(c: &Columns, r: &Record, z: &TenantZone) -> Result<Self, Vec<Problem>> {
        parse_event(c, r, z)
    }
    fn key(&self) -> &str {
        self.id.as_str()
    }
    fn customer(&self) -> &CustomerId {
        &self.customer_id
    }
    fn customer_mut(&mut self) -> &mut CustomerId {
        &mut self.customer_id
    }
    const NOTED: Option<&'static str> = Some("event");
    fn sighting(&self) -> Option<(&CustomerId, Timestamp, Option<&Channel>)> {
        Some((&self.customer_id, self.occurred_at, None))
    }
    fn write(
        tx: &mut dyn ImportTx,
        batch: &[Self],
        _: Timestamp,
    ) -> siyu_store::Result<WriteCounts> {
        tx.insert_events(batch)
    }
    fn feed(&self, profiles: &mut ProfileBuilder) {
        profiles.event(
            self.customer_id.as_str(),
            self.kind.as_str(),
            self.occurred_at,
        );
    }
}

/// What the reader hands the writer.
enum Message<T> {
    Rows(Vec<T>),
    /// The customers the rows so far are sightings of, each at their earliest (see
    /// [`Sightings`]).
    Seen(Vec<SeenCustomer>),
    Rejected {
        fields: Vec<String>,
        line: u64,
        problems: Vec<Problem>,
    },
    Progress {
        rows: u64,
        bytes: u64,
    },
}

/// Imports one file of `kind` into the tenant, in one transaction.
pub fn import_file(
    store: &mut dyn Store,
    tenant: &Tenant,
    kind: Kind,
    path: &Path,
    options: ImportOptions,
) -> anyhow::Result<ImportReport> {
    import_export(store, tenant, kind, path, options, &ReadAs::default())
}

/// How to read a file's columns beyond the canonical names and their Chinese synonyms.
#[derive(Debug, Clone, Default)]
pub struct ReadAs {
    /// The merchant's own names for siyu's columns (`--map`), read before anything else.
    pub mapping: Mapping,
    /// The platform whose export the file is (`--preset`); `None`: recognised from the
    /// header when it carries a preset's signature.
    pub preset: Option<&'static Preset>,
    /// The sheet of a workbook to read (`--sheet`); `None`: the first.
    pub sheet: Option<String>,
}

/// Imports one file, read as `read_as` says: a platform's export, or a file of the
/// merchant's own with a mapping.
pub fn import_export(
    store: &mut dyn Store,
    tenant: &Tenant,
    kind: Kind,
    path: &Path,
    options: ImportOptions,
    read_as: &ReadAs,
) -> anyhow::Result<ImportReport> {
    match kind {
        Kind::Customers => run::<NewCustomer>(store, tenant, kind, path, options, read_as),
        Kind::Orders => run::<NewOrder>(store, tenant, kind, path, options, read_as),
        Kind::Events => run::<NewEvent>(store, tenant, kind, path, options, read_as),
    }
}

fn open_source(
    kind: Kind,
    path: &Path,
    ignore_unknown: bool,
    sheet: Option<&str>,
) -> anyhow::Result<(RecordSource, u64)> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let workbook = matches!(extension.as_str(), "xlsx" | "xlsm" | "xls");
    if sheet.is_some() && !workbook {
        bail!(
            "{}: --sheet is for workbooks (.xlsx, .xls), and this is not one",
            path.display()
        );
    }
    let source = if workbook {
        RecordSource::sheet(std::io::BufReader::new(file), sheet)
    } else if kind == Kind::Events && matches!(extension.as_str(), "jsonl" | "ndjson") {
        RecordSource::json_lines(file, kind, ignore_unknown)
    } else {
        RecordSource::csv(file)
    };
    let source = source.map_err(|e| source_error(path, e))?;
    Ok((source, size))
}

/// `FILE:LINE: message` where the problem has a line, `FILE: message` otherwise.
pub(crate) fn source_error(path: &Path, e: SourceError) -> anyhow::Error {
    match e {
        SourceError::Malformed { line, message } => {
            anyhow!("{}:{line}: {message}", path.display())
        }
        SourceError::Encoding(e) => anyhow!("{}:{}: {e}", path.display(), e.line),
        e => anyhow!("{}: {e}", path.display()),
    }
}

fn run<T: Row>(
    store: &mut dyn Store,
    tenant: &Tenant,
    kind: Kind,
    path: &Path,
    options: ImportOptions,
    read_as: &ReadAs,
) -> anyhow::Result<ImportReport> {
    let started = Instant::now();
    let (mut source, size) =
        open_source(kind, path, options.ignore_unknown, read_as.sheet.as_deref())?;
    // A workbook's problems are placed as FILE:SHEET:ROW.
    let file_name = match source.sheet_name() {
        Some(sheet) => format!("{}:{sheet}", path.display()),
        None => path.display().to_string(),
    };
    let header_line = source.header_line();
    let header_error = |e| anyhow!("{file_name}:{header_line}: header: {e}");
    let recognised =
        siyu_core::import::preset::detect(kind, source.header()).map_err(header_error)?;
    let preset = match read_as.preset {
        Some(p) if p.kind != kind => anyhow::bail!(
            "{}: the {} preset reads {}, not {kind}",
            path.display(),
            p.name,
            p.kind
        ),
        Some(p) => Some(p),
        None => recognised,
    };
    let columns = Columns::from_export(
        kind,
        source.header(),
        &read_as.mapping,
        preset,
        options.ignore_unknown,
    )
    .map_err(header_error)?;
    let items = preset.is_some_and(|p| p.items);
    let renamed: Vec<(String, String)> = columns
        .renamed()
        .iter()
        .map(|(name, column)| (name.clone(), (*column).to_owned()))
        .collect();
    let encoding = if source.sheet_name().is_some() {
        "workbook"
    } else {
        source.encoding().name()
    };
    let zone = tenant.zone.clone();
    let reject_header: Vec<String> = if source.is_json_lines() {
        vec!["record".to_owned()]
    } else {
        source.header().to_vec()
    };

    let progress = progress_bar(options.progress, size);
    let (sender, receiver) = mpsc::sync_channel::<Message<T>>(4);
    let (spent_rows, spent) = mpsc::channel::<Vec<T>>();

    std::thread::scope(|scope| -> anyhow::Result<ImportReport> {
        let streamed = (kind != Kind::Customers && !options.defer_profiles)
            .then(|| ProfileBuilder::open(&zone));
        let reader = scope.spawn(move || {
            let mut streamed = streamed;
            let read = read_rows::<T>(
                &mut source,
                &columns,
                &zone,
                items,
                &sender,
                &spent,
                &mut streamed,
            );
            read.map(|rows| (rows, streamed))
        });

        let mut writer =
            Writer::<T>::new(store, tenant, kind, path, options, reject_header, started)?;
        if preset.is_some() {
            writer.keys = Some(FastHashSet::default());
        }
        for message in receiver {
            match message {
                Message::Rows(batch) => {
                    let batch = writer.rows(batch)?;
                    // Back to the reader to drop: its allocator made them, and freeing
                    // them here cost the writer a tenth of its time.
                    let _ = spent_rows.send(batch);
                }
                Message::Seen(seen) => writer.see(&seen)?,
                Message::Rejected {
                    fields,
                    line,
                    problems,
                } => writer.rejected(&file_name, fields, line, problems)?,
                Message::Progress { rows, bytes } => {
                    progress.set_position(bytes);
                    let secs = started.elapsed().as_secs_f64().max(1e-3);
                    progress.set_message(format!(
                        "{} rows, {} rows/s",
                        crate::wording::thousands(rows),
                        crate::wording::thousands((rows as f64 / secs) as u64)
                    ));
                }
            }
        }
        let (rows, streamed) = reader
            .join()
            .map_err(|_| anyhow!("the reader of {} panicked", path.display()))?
            .map_err(|e| source_error(path, e))?;
        // A header alone is a day without rows (a daily export), not a mistake: 0 rows.
        progress.finish_and_clear();
        let keys = writer.keys.take();
        let mut report = writer.finish(encoding, rows, streamed)?;
        report.columns_read_as = renamed;
        report.preset = preset.map(|p| p.name);
        report.preset_recognised = read_as.preset.is_none() && preset.is_some();
        if let (Some(preset), Some(keys)) = (preset, keys) {
            record_buyer_keys(store, tenant, preset.name, path, keys)?;
        }
        Ok(report)
    })
}

/// Records the buyer keys a platform's export named as identities of that platform (and,
/// for a key that is a phone number, as a phone): after the import's commit, so an
/// interrupted run leaves them to the next, which adds what is missing.
fn record_buyer_keys(
    store: &mut dyn Store,
    tenant: &Tenant,
    platform: &str,
    path: &Path,
    keys: FastHashSet<CustomerId>,
) -> anyhow::Result<()> {
    let source = format!("{platform} export {}", path.display());
    let at = Timestamp::now();
    let identity = |namespace: &str, value: &str| Identity {
        namespace: namespace.to_owned(),
        value: value.to_owned(),
        source: source.clone(),
        at,
    };
    let mut ids: Vec<(CustomerId, Identity)> = Vec::with_capacity(keys.len());
    for key in keys {
        let text = key.as_str();
        let phone =
            text.len() == 11 && text.starts_with('1') && text.bytes().all(|b| b.is_ascii_digit());
        if phone {
            ids.push((key.clone(), identity("phone", text)));
        }
        ids.push((key.clone(), identity(platform, text)));
    }
    ids.sort_by(|a, b| (a.0.as_str(), &a.1.namespace).cmp(&(b.0.as_str(), &b.1.namespace)));
    super::merge::record_identities(store, tenant, ids)
        .context("recording the buyers' keys as identities")?;
    Ok(())
}

fn progress_bar(wanted: bool, size: u64) -> ProgressBar {
    if !wanted || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(size);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {percent:>3}%  {msg}  ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// The customers an import has seen, each at the earliest time seen and with the channel
/// of that sighting. The writer gets them when there are [`SEEN_LIMIT`] of them (memory
/// stays bounded however large the file) and at the end, not batch by batch: a customer
/// new to the pool is then written once, joined at their earliest order, where writing
/// them at first sight took an update more for each whose orders are not in time order.
#[derive(Default)]
pub(crate) struct Sightings {
    seen: FastHashMap<CustomerId, (Timestamp, Option<Channel>)>,
}

impl Sightings {
    fn add<T: Row>(&mut self, rows: &[T]) {
        for (id, at, channel) in rows.iter().filter_map(Row::sighting) {
            self.see(id, at, channel);
        }
    }

    /// A sighting: kept if it is the customer's first or earlier than any before.
    pub(crate) fn see(&mut self, id: &CustomerId, at: Timestamp, channel: Option<&Channel>) {
        match self.seen.get_mut(id) {
            Some((earliest, first_channel)) => {
                if at < *earliest {
                    *earliest = at;
                    *first_channel = channel.cloned();
                }
            }
            None => {
                self.seen.insert(id.clone(), (at, channel.cloned()));
            }
        }
    }

    /// Everyone seen since the last call, in id order.
    pub(crate) fn take(&mut self) -> Vec<SeenCustomer> {
        let mut out: Vec<SeenCustomer> = self
            .seen
            .drain()
            .map(|(id, (at, channel))| SeenCustomer { id, at, channel })
            .collect();
        out.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        out
    }
}

/// The reader thread: records to typed rows, in batches that never repeat a key, each
/// valid row also handed to `streamed` (dropped once it holds too many customers).
/// Returns the number of rows read, or a problem that stops the reading.
fn read_rows<T: Row>(
    source: &mut RecordSource,
    columns: &Columns,
    zone: &TenantZone,
    items: bool,
    out: &mpsc::SyncSender<Message<T>>,
    spent: &mpsc::Receiver<Vec<T>>,
    streamed: &mut Option<ProfileBuilder>,
) -> Result<u64, SourceError> {
    let mut record = Record::default();
    let mut batching = Batching::new();
    let send_rows = |batch: Vec<T>, sightings: &mut Sightings, streaming: bool| {
        while let Ok(rows) = spent.try_recv() {
            drop(rows);
        }
        if !streaming {
            sightings.add(&batch);
        }
        if sightings.seen.len() > SEEN_LIMIT && out.send(Message::Seen(sightings.take())).is_err() {
            return false;
        }
        out.send(Message::Rows(batch)).is_ok()
    };
    let reject = |source: &RecordSource, record: &Record, problems: Vec<Problem>| {
        let rejected = Message::Rejected {
            fields: source.raw_fields(record),
            line: record.line,
            problems,
        };
        out.send(rejected).is_ok()
    };
    // An export of items: the order being summed, and the orders summed before it (by
    // hash: their rows must come together).
    let mut pending: Option<T> = None;
    let mut summed: FastHashSet<u64> = FastHashSet::default();
    let mut rows = 0u64;
    loop {
        let next = source.next_record(&mut record)?;
        let Some(early_problem) = next else { break };
        rows += 1;
        let parsed = match early_problem {
            Some(p) => Err(vec![p]),
            None => T::parse(columns, &record, zone),
        };
        let ready = match parsed {
            Ok(row) if items => match pending.as_mut() {
                Some(order) if order.key() == row.key() => match order.absorb(row) {
                    Ok(()) => None,
                    Err(problem) => {
                        if !reject(source, &record, vec![problem]) {
                            break;
                        }
                        None
                    }
                },
                _ => {
                    let key = batching.hash(row.key());
                    if summed.insert(key) {
                        pending.replace(row)
                    } else {
                        let problem = Problem::new(
                            "order_id",
                            format!(
                                "order {} has rows apart from its other items (an export of \
                                 items must keep an order's rows together)",
                                row.key()
                            ),
                        );
                        if !reject(source, &record, vec![problem]) {
                            break;
                        }
                        None
                    }
                }
            },
            Ok(row) => Some(row),
            Err(problems) => {
                if !reject(source, &record, problems) {
                    break;
                }
                None
            }
        };
        if let Some(row) = ready
            && !batching.add(row, streamed, &send_rows)
        {
            break;
        }
        if batching.batch.len() >= CHUNK {
            let progress = Message::Progress {
                rows,
                bytes: source.bytes_read(),
            };
            if !batching.send(streamed.is_some(), &send_rows) || out.send(progress).is_err() {
                break;
            }
        }
    }
    if let Some(row) = pending.take() {
        batching.add(row, streamed, &send_rows);
    }
    if !batching.batch.is_empty() {
        batching.send(streamed.is_some(), &send_rows);
    }
    let seen = match streamed {
        Some(profiles) => profiles.sightings(),
        None => batching.sightings.take(),
    };
    if !seen.is_empty() {
        let _ = out.send(Message::Seen(seen));
    }
    Ok(rows)
}

/// The reader's batch of valid rows on its way to the writer: no key twice in one batch.
struct Batching<T> {
    batch: Vec<T>,
    /// Hashes of the batch's keys: a repeated hash closes the batch. Two keys that merely
    /// share a hash close it early, which is harmless (a batch only must not repeat a key).
    keys: FastHashSet<u64>,
    hasher: siyu_core::fasthash::FastBuildHasher,
    /// While the profiles of new customers are streamed, their builder keeps the sightings
    /// too (one lookup a row instead of two); past its limit they move here.
    sightings: Sightings,
}

impl<T: Row> Batching<T> {
    fn new() -> Self {
        let mut keys = FastHashSet::default();
        keys.reserve(CHUNK);
        Batching {
            batch: Vec::with_capacity(CHUNK),
            keys,
            hasher: siyu_core::fasthash::FastBuildHasher::default(),
            sightings: Sightings::default(),
        }
    }

    fn hash(&self, key: &str) -> u64 {
        std::hash::BuildHasher::hash_one(&self.hasher, key)
    }

    /// Adds a valid row; false when the writer has gone.
    fn add(
        &mut self,
        row: T,
        streamed: &mut Option<ProfileBuilder>,
        send: &impl Fn(Vec<T>, &mut Sightings, bool) -> bool,
    ) -> bool {
        let key = self.hash(row.key());
        if !self.keys.insert(key) {
            if !self.send(streamed.is_some(), send) {
                return false;
            }
            self.keys.insert(key);
        }
        if let Some(profiles) = streamed {
            row.feed(profiles);
            if profiles.len() > STREAM_LIMIT {
                for seen in profiles.sightings() {
                    self.sightings.see(&seen.id, seen.at, seen.channel.as_ref());
                }
                *streamed = None;
            }
        }
        self.batch.push(row);
        true
    }

    /// Hands the batch to the writer; false when it has gone.
    fn send(
        &mut self,
        streaming: bool,
        send: &impl Fn(Vec<T>, &mut Sightings, bool) -> bool,
    ) -> bool {
        self.keys.clear();
        let full = std::mem::replace(&mut self.batch, Vec::with_capacity(CHUNK));
        send(full, &mut self.sightings, streaming)
    }
}

/// The writing side: one transaction, the rejects file, the counts.
struct Writer<'s, T> {
    tx: Option<Box<dyn ImportTx + 's>>,
    path: PathBuf,
    options: ImportOptions,
    reject_header: Vec<String>,
    rejects: Option<csv::Writer<BufWriter<File>>>,
    listed: Vec<String>,
    rejected: u64,
    counts: WriteCounts,
    customers_created: u64,
    /// Erased customers, whose rows are left out.
    suppressions: Suppressions,
    /// Merged customers, whose rows land on their survivors.
    aliases: Aliases,
    suppressed: u64,
    /// Customers whose profiles this import changes.
    affected: FastHashSet<CustomerId>,
    /// The customers a platform's export names, by the key its preset chose (their buyer
    /// key there): recorded as identities once the import is in.
    keys: Option<FastHashSet<CustomerId>>,
    /// Referrers named before this import by customers it updates.
    old_referrers: HashSet<CustomerId>,
    /// What segments and stages depend on, for the evaluation after the profiles.
    rule_settings: RuleSettings,
    zone: TenantZone,
    kind: Kind,
    now: Timestamp,
    started: Instant,
    _rows: std::marker::PhantomData<T>,
}

impl<'s, T: Row> Writer<'s, T> {
    fn new(
        store: &'s mut dyn Store,
        tenant: &Tenant,
        kind: Kind,
        path: &Path,
        options: ImportOptions,
        reject_header: Vec<String>,
        started: Instant,
    ) -> anyhow::Result<Self> {
        let rule_settings = rule_settings(store, tenant)?;
        // The store chooses how to write an import of this size (see
        // `ImportStore::begin_import_of`).
        let size = std::fs::metadata(path).map_or(0, |m| m.len());
        let mut tx = store
            .begin_import_of(tenant, size)
            .context("starting the import transaction")?;
        let suppressions = Suppressions::load(tx.as_mut(), tenant)?;
        let aliases = Aliases::load(tx.as_mut())?;
        Ok(Writer {
            tx: Some(tx),
            suppressions,
            aliases,
            suppressed: 0,
            path: path.to_owned(),
            options,
            reject_header,
            rejects: None,
            listed: Vec::new(),
            rejected: 0,
            counts: WriteCounts::default(),
            customers_created: 0,
            affected: FastHashSet::default(),
            keys: None,
            old_referrers: HashSet::new(),
            rule_settings,
            zone: tenant.zone.clone(),
            kind,
            now: Timestamp::now(),
            started,
            _rows: std::marker::PhantomData,
        })
    }

    /// The transaction, unless nothing more will be written: once a row is refused in
    /// all-or-nothing mode, the reading goes on only to list the problems.
    fn writing(&mut self) -> Option<&mut Box<dyn ImportTx + 's>> {
        let writing = self.options.skip_invalid || self.rejected == 0;
        self.tx.as_mut().filter(|_| writing)
    }

    fn see(&mut self, seen: &[SeenCustomer]) -> anyhow::Result<()> {
        let kept: Vec<SeenCustomer>;
        let seen = if self.suppressions.is_empty() {
            seen
        } else {
            kept = seen
                .iter()
                .filter(|s| !self.suppressions.contains(&s.id))
                .cloned()
                .collect();
            &kept
        };
        let resolved: Vec<SeenCustomer>;
        let seen = match self.tx.as_mut().filter(|_| !self.aliases.is_empty()) {
            Some(tx) => {
                let chains = self
                    .aliases
                    .chains(tx.as_mut(), seen.iter().map(|s| &s.id))?;
                let mut unused = Vec::new();
                resolved = seen
                    .iter()
                    .cloned()
                    .map(|mut s| {
                        resolve(&chains, &mut s.id, None, &mut unused);
                        s
                    })
                    .collect();
                &resolved
            }
            None => seen,
        };
        if let Some(tx) = self.writing().filter(|_| !seen.is_empty()) {
            self.customers_created += tx
                .see_customers(seen)
                .context("creating customers first seen in this file")?;
        }
        // Each customer of an orders or events file is among these: they are the
        // customers its rows touch, where looking up every row cost the writer a tenth of
        // its time.
        self.affected.extend(seen.iter().map(|s| s.id.clone()));
        Ok(())
    }

    /// Writes a batch of rows; gives the batch back, to be dropped by the reader.
    fn rows(&mut self, mut batch: Vec<T>) -> anyhow::Result<Vec<T>> {
        if !self.suppressions.is_empty() {
            let before = batch.len();
            batch.retain(|r| !self.suppressions.contains(r.customer()));
            self.suppressed += (before - batch.len()) as u64;
            for row in &mut batch {
                self.suppressions.forget_referrer(row.referrer_mut());
            }
            if batch.is_empty() {
                return Ok(batch);
            }
        }
        // The keys as the file named them: a merged id's are recorded (for its survivor)
        // under the key the platform knows.
        if let Some(keys) = &mut self.keys {
            keys.extend(batch.iter().map(|r| r.customer().clone()));
        }
        let mut notes = Vec::new();
        if let Some(tx) = self.tx.as_mut().filter(|_| !self.aliases.is_empty()) {
            let mut named: Vec<CustomerId> = batch.iter().map(|r| r.customer().clone()).collect();
            for row in &mut batch {
                named.extend(row.referrer_mut().and_then(|r| r.clone()));
            }
            let chains = self.aliases.chains(tx.as_mut(), &named)?;
            if !chains.is_empty() {
                for row in &mut batch {
                    let key = row.key().to_owned();
                    let noted = T::NOTED.map(|kind| (kind, key.as_str()));
                    resolve(&chains, row.customer_mut(), noted, &mut notes);
                    if let Some(Some(referrer)) = row.referrer_mut() {
                        resolve(
                            &chains,
                            referrer,
                            Some(("referee", key.as_str())),
                            &mut notes,
                        );
                    }
                }
            }
        }
        let now = self.now;
        let customers_file = self.kind == Kind::Customers;
        let Some(tx) = self.writing() else {
            return Ok(batch);
        };
        let mut old_referrers = Vec::new();
        if customers_file {
            // A referrer replaced by this file loses a referral: remember who it was.
            let ids: Vec<CustomerId> = batch.iter().map(|r| r.customer().clone()).collect();
            let before = tx
                .customer_facts(Scope::Customers(&ids))
                .context("reading the customers this file updates")?;
            old_referrers.extend(before.into_iter().filter_map(|c| c.referrer_id));
        }
        if !notes.is_empty() {
            tx.note_merged_rows(&notes)
                .context("noting rows of merged customers")?;
        }
        let written = T::write(tx.as_mut(), &batch, now)
            .with_context(|| format!("writing {}", self.path.display()))?;
        self.counts += written;
        self.old_referrers.extend(old_referrers);
        if customers_file {
            for row in &batch {
                if !self.affected.contains(row.customer()) {
                    self.affected.insert(row.customer().clone());
                }
            }
        }
        Ok(batch)
    }

    fn rejected(
        &mut self,
        file: &str,
        fields: Vec<String>,
        line: u64,
        problems: Vec<Problem>,
    ) -> anyhow::Result<()> {
        self.rejected += 1;
        for p in &problems {
            if self.listed.len() < MAX_LISTED {
                self.listed.push(format!("{file}:{line}: {p}"));
            }
        }
        if !self.options.skip_invalid {
            // Nothing will be committed: drop the transaction now.
            self.tx = None;
            return Ok(());
        }
        if self.rejects.is_none() {
            let path = rejects_path(&self.path);
            let file =
                File::create(&path).with_context(|| format!("creating {}", path.display()))?;
            let mut w = csv::Writer::from_writer(BufWriter::new(file));
            let mut header = self.reject_header.clone();
            header.push("reason".to_owned());
            w.write_record(&header)?;
            self.rejects = Some(w);
        }
        if let Some(w) = self.rejects.as_mut() {
            let reason = problems
                .iter()
                .map(Problem::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            let mut record = fields;
            record.push(format!("line {line}: {reason}"));
            w.write_record(&record)?;
        }
        Ok(())
    }

    fn finish(
        mut self,
        encoding: &'static str,
        rows: u64,
        streamed: Option<ProfileBuilder>,
    ) -> anyhow::Result<ImportReport> {
        if !self.options.skip_invalid && self.rejected > 0 {
            return Err(InvalidRows {
                file: self.path.clone(),
                listed: std::mem::take(&mut self.listed),
                rows_with_problems: self.rejected,
            }
            .into());
        }
        let rejects_file = match self.rejects.take() {
            Some(mut w) => {
                w.flush().context("writing the rejects file")?;
                Some(rejects_path(&self.path))
            }
            None => {
                let stale = rejects_path(&self.path);
                if stale.exists() {
                    std::fs::remove_file(&stale)
                        .with_context(|| format!("removing the stale {}", stale.display()))?;
                }
                None
            }
        };
        let mut phases = Phases {
            rows: self.started.elapsed().as_secs_f64(),
            ..Phases::default()
        };
        let mut segment_changes = None;
        let mut stale_profiles = None;
        if let Some(mut tx) = self.tx.take() {
            let mut lap = Instant::now();
            let mut split = || {
                let seconds = lap.elapsed().as_secs_f64();
                lap = Instant::now();
                seconds
            };
            self.affected
                .extend(tx.displaced_customers().context("reading moved orders")?);
            let mut created = tx
                .created_customers()
                .context("reading created customers")?;
            // Every row a fresh insert: the rows are all the facts of the customers this
            // import created, whose profiles the reader built already.
            let all_fresh = self.counts.updated == 0 && self.counts.unchanged == 0;
            let prebuilt = match streamed {
                Some(profiles) if all_fresh && !created.is_empty() => {
                    let created: FastHashSet<CustomerId> =
                        std::mem::take(&mut created).into_iter().collect();
                    let prebuilt: Vec<Profile> = profiles
                        .finish()
                        .into_iter()
                        .filter(|p| created.contains(&p.customer_id))
                        .collect();
                    for p in &prebuilt {
                        self.affected.remove(&p.customer_id);
                    }
                    prebuilt
                }
                _ => Vec::new(),
            };
            // Held no longer than needed: a customer each, a million in a big import.
            drop(created);
            let refreshed = if self.options.defer_profiles {
                stale_profiles = Some(StaleProfiles {
                    ids: std::mem::take(&mut self.affected),
                    old_referrers: std::mem::take(&mut self.old_referrers),
                });
                Refreshed::default()
            } else {
                let affected = Affected::Customers {
                    ids: &self.affected,
                    old_referrers: &self.old_referrers,
                };
                refresh(tx.as_mut(), &self.zone, affected, prebuilt).context("updating profiles")?
            };
            phases.profiles = split();
            let file = self.path.file_name().map_or_else(
                || self.path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            let cause = format!("import {} {file}", self.kind.name());
            let touched = refreshed.touched;
            if !self.options.defer_segments && !self.options.defer_profiles {
                // A large import moves the thresholds: they are computed again, and
                // everyone judged against them.
                let large = !touched.is_empty() && {
                    // Is the pool smaller than ten times the customers touched? Asked of
                    // at most that many ids, so that a small import into a large pool
                    // reads few (a count of a million profiles would not be).
                    let enough = touched.len().saturating_mul(LARGE_IMPORT_SHARE);
                    tx.pool_ids_after(None, enough)
                        .context("sizing the pool")?
                        .len()
                        < enough
                };
                let (zone, settings) = (&self.zone, &self.rule_settings);
                let moved = if large {
                    evaluate_all(tx.as_mut(), zone, settings, Recompute::Always, &cause)
                } else {
                    evaluate_touched(tx.as_mut(), zone, settings, &touched, &cause)
                }
                .context("bringing segments and tags up to date")?;
                if has_rules(tx.as_mut())? {
                    segment_changes = Some((moved.entered, moved.exited));
                }
            }
            phases.segments = split();
            tx.commit().context("committing the import")?;
            phases.commit = split();
        }
        Ok(ImportReport {
            kind: self.kind.name(),
            file: self.path,
            encoding,
            rows,
            inserted: self.counts.inserted,
            updated: self.counts.updated,
            unchanged: self.counts.unchanged,
            rejected: self.rejected,
            customers_created: self.customers_created,
            suppressed: self.suppressed,
            rejects_file,
            preset: None,
            preset_recognised: false,
            columns_read_as: Vec::new(),
            seconds: self.started.elapsed().as_secs_f64(),
            phases,
            segment_changes,
            stale_profiles,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use siyu_core::{Money, OrderId, OrderStatus};

    fn order(id: &str, customer: &str, second: i64) -> NewOrder {
        NewOrder {
            id: OrderId::parse(id).expect("id"),
            customer_id: CustomerId::parse(customer).expect("id"),
            ordered_at: Timestamp::from_second(second).expect("time"),
            amount: Money::from_fen(100),
            discount: Money::ZERO,
            coupon_code: None,
            channel: Channel::parse(if second % 2 == 0 { "store" } else { "douyin" }).ok(),
            status: OrderStatus::Paid,
        }
    }

    fn seen(list: &[SeenCustomer]) -> Vec<(String, i64, Option<String>)> {
        list.iter()
            .map(|s| {
                let channel = s.channel.as_ref().map(|c| c.as_str().to_owned());
                (s.id.to_string(), s.at.as_second(), channel)
            })
            .collect()
    }

    #[test]
    fn each_customer_is_sent_once_at_its_earliest_time_with_that_channel() {
        let mut sightings = Sightings::default();
        sightings.add(&[
            order("o1", "b", 50),
            order("o2", "a", 40),
            order("o3", "b", 30),
        ]);
        sightings.add(&[
            order("o4", "a", 45),
            order("o5", "b", 21),
            order("o6", "c", 60),
        ]);
        assert_eq!(
            seen(&sightings.take()),
            [
                ("a".to_owned(), 40, Some("store".to_owned())),
                ("b".to_owned(), 21, Some("douyin".to_owned())),
                ("c".to_owned(), 60, Some("store".to_owned()))
            ]
        );
        assert!(sightings.take().is_empty());
        sightings.add(&[order("o7", "a", 10)]);
        assert_eq!(
            seen(&sightings.take()),
            [("a".to_owned(), 10, Some("store".to_owned()))]
        );
    }
}

//! RFM straight from an orders CSV, without a database (`siyu rfm --orders FILE`).
//!
//! This is the path measured against DuckDB and Polars, so it is built for speed:
//! the file is read in large blocks on every core, each line is split and checked by hand,
//! and the paid orders are tallied per customer in hash tables that hold ids inline. It
//! gives exactly what importing the file and then running `siyu rfm` gives:
//! - Every row is validated. A row the hand-written checks are not sure of goes through
//!   the importer's own `parse_order`. A file with an invalid row, or with anything the
//!   block reader does not handle (quoted fields, a carriage return that is not part of a
//!   CRLF, an encoding other than UTF-8), is read again by the importer's own reader, which
//!   refuses or reads it exactly as an import would.
//! - An order id that appears twice counts once, as its last row, because a re-import
//!   updates the order. Order ids are hashed as they go by; if any hash repeats, the file
//!   is read a second time with the rows of those hashes set aside, and they are resolved
//!   by comparing the ids themselves.
//!
//! The tallies from either path go through `siyu_core::segment::rfm::score`, the one
//! place the figures are computed.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::{Context, anyhow};

use siyu_core::import::{Columns, Kind, Record, RecordSource, decode::TextEncoding, parse_order};
use siyu_core::segment::rfm::{DayRange, Rfm, RfmWindow, Tally, score};
use siyu_core::time::{DayNumber, ZoneDays, day_number, days_in_month};
use siyu_core::{CustomerId, NewOrder, OrderStatus, TenantZone, Timestamp};

use crate::service::import::{InvalidFile, MAX_LISTED, source_error};

/// The bytes a reader thread takes at a time: small enough that a block is still in the
/// core's own cache when it is scanned after being read.
const BLOCK: u64 = 512 << 10;

#[derive(Debug, Clone, Copy)]
pub struct FileOptions {
    /// Columns outside the canonical set are skipped instead of refused (as `siyu import`).
    pub ignore_unknown: bool,
    /// Reader threads; 0 for one per core.
    pub threads: usize,
    /// Use the block reader where it applies (off: the importer's reader only, for tests).
    pub fast: bool,
    /// Bytes a reader thread takes at a time (small in tests, to cross many block edges).
    pub block: u64,
}

impl Default for FileOptions {
    fn default() -> FileOptions {
        FileOptions {
            ignore_unknown: false,
            threads: 0,
            fast: true,
            block: BLOCK,
        }
    }
}

/// RFM straight from an orders CSV, with naive times read in `zone`: exactly what
/// importing the file into an empty tenant of that zone and running `siyu rfm` gives.
pub fn from_orders_file(
    path: &Path,
    zone: &TenantZone,
    window: RfmWindow,
    options: FileOptions,
) -> anyhow::Result<Rfm> {
    let file = OrdersFile::open(path, zone, window, options.ignore_unknown)?;
    if options.fast && file.data_start.is_some() {
        let threads = match options.threads {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        if let Some(rfm) = file.fast(threads, options.block.max(1))? {
            return Ok(rfm);
        }
    }
    file.general()
}

/// Where each canonical orders column sits in the file (as `Columns` finds it).
#[derive(Debug, Clone, Copy)]
struct Layout {
    width: usize,
    at: [Option<usize>; 8],
}

impl Layout {
    /// The importer's columns as the fast reader reads them; `None` when a column is read
    /// from one of several synonyms per row (the general reader then reads every row).
    fn of(columns: &Columns) -> Option<Layout> {
        let single = columns.single_positions()?;
        let mut at = [None; 8];
        for (place, position) in at.iter_mut().zip(single) {
            *place = position;
        }
        Some(Layout {
            width: columns.width(),
            at,
        })
    }
}

/// An orders file whose header has been checked.
struct OrdersFile<'p> {
    path: &'p Path,
    columns: Columns,
    layout: Layout,
    zone: TenantZone,
    days: ZoneDays,
    window: RfmWindow,
    range: DayRange,
    /// The byte where the rows begin, when the block reader can read the file (UTF-8).
    data_start: Option<u64>,
    size: u64,
}

fn open_file(path: &Path) -> anyhow::Result<File> {
    File::open(path).with_context(|| format!("opening {}", path.display()))
}

impl<'p> OrdersFile<'p> {
    fn open(
        path: &'p Path,
        zone: &TenantZone,
        window: RfmWindow,
        ignore_unknown: bool,
    ) -> anyhow::Result<OrdersFile<'p>> {
        let file = open_file(path)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let source = RecordSource::csv(file).map_err(|e| source_error(path, e))?;
        let header = source.header().to_vec();
        let columns = Columns::from_header(Kind::Orders, &header, ignore_unknown)
            .map_err(|e| anyhow!("{}:1: header: {e}", path.display()))?;
        let layout = Layout::of(&columns);
        let data_start = match (source.encoding(), layout) {
            (TextEncoding::Utf8, Some(_)) => rows_start(path)?,
            _ => None,
        };
        Ok(OrdersFile {
            path,
            columns,
            layout: layout.unwrap_or(Layout {
                width: header.len(),
                at: [None; 8],
            }),
            zone: zone.clone(),
            days: ZoneDays::new(zone),
            window,
            range: window.days(),
            data_start,
            size,
        })
    }

    /// The importer's reader, row by row: exact for every file, and the one that lists problems.
    fn general(&self) -> anyhow::Result<Rfm> {
        let first = self.general_pass(None)?;
        let repeated = repeated_hashes(std::slice::from_ref(&first), 1);
        if repeated.is_empty() {
            return Ok(self.finish(vec![first], 1));
        }
        let second = self.general_pass(Some(&repeated))?;
        Ok(self.finish(vec![second], 1))
    }

    fn general_pass<'r>(&self, repeated: Option<&'r HashSet<u64>>) -> anyhow::Result<Agg<'r>> {
        let mut source =
            RecordSource::csv(open_file(self.path)?).map_err(|e| source_error(self.path, e))?;
        let mut agg = Agg::new(self.range, repeated, 0);
        let mut record = Record::default();
        let (mut rows, mut invalid) = (0u64, 0u64);
        let mut listed = Vec::new();
        let file_name = self.path.display().to_string();
        while let Some(early) = source
            .next_record(&mut record)
            .map_err(|e| source_error(self.path, e))?
        {
            rows += 1;
            let parsed = match early {
                Some(problem) => Err(vec![problem]),
                None => parse_order(&self.columns, &record, &self.zone),
            };
            match parsed {
                Ok(order) => self.add_parsed(&mut agg, rows, &order),
                Err(problems) => {
                    invalid += 1;
                    for p in problems {
                        if listed.len() < MAX_LISTED {
                            listed.push(format!("{file_name}:{}: {p}", record.line));
                        }
                    }
                }
            }
        }
        if rows == 0 {
            anyhow::bail!("{}: no rows after the header", self.path.display());
        }
        if invalid > 0 {
            return Err(InvalidFile {
                file: self.path.to_owned(),
                listed,
                rows_with_problems: invalid,
                not_done: "no RFM was computed",
            }
            .into());
        }
        Ok(agg)
    }

    /// An order as `parse_order` gives it, at the day the store would give it (which keeps
    /// microseconds).
    fn add_parsed(&self, agg: &mut Agg, seq: u64, order: &NewOrder) {
        let at = Timestamp::from_microsecond(order.ordered_at.as_microsecond())
            .unwrap_or(order.ordered_at);
        agg.order(
            seq,
            order.id.as_str().as_bytes(),
            order.customer_id.as_str().as_bytes(),
            self.days.day_of(at),
            order.amount.fen(),
            order.status == OrderStatus::Paid,
        );
    }

    /// The block reader on `threads` threads; `None` when the file needs the importer's reader.
    fn fast(&self, threads: usize, block: u64) -> anyhow::Result<Option<Rfm>> {
        let Some(start) = self.data_start else {
            return Ok(None);
        };
        let mut bounds: Vec<u64> = (0..)
            .map(|i| start + i * block)
            .take_while(|&b| b < self.size)
            .collect();
        bounds.push(self.size.max(start));
        let first = match self.fast_pass(&bounds, threads, None)? {
            Some(aggs) if self.blocks_meet(&aggs) => aggs,
            _ => return Ok(None),
        };
        if first.iter().map(|a| a.rows).sum::<u64>() == 0 {
            return Ok(None);
        }
        let repeated = repeated_hashes(&first, threads);
        if repeated.is_empty() {
            return Ok(Some(self.finish(first, threads)));
        }
        drop(first);
        Ok(self
            .fast_pass(&bounds, threads, Some(&repeated))?
            .filter(|aggs| self.blocks_meet(aggs))
            .map(|aggs| self.finish(aggs, threads)))
    }

    /// Whether the blocks' records follow each other from the first row to the end of the
    /// file. A block starts reading after the first line end in it; inside a quoted field
    /// that is not a record's start, and then the block before it ends elsewhere.
    fn blocks_meet(&self, aggs: &[Agg]) -> bool {
        let mut blocks: Vec<(usize, u64, u64)> =
            aggs.iter().flat_map(|a| a.blocks.iter().copied()).collect();
        blocks.sort_unstable();
        if blocks.first().is_some_and(|b| b.0 != 0) {
            return false;
        }
        let mut at = None;
        for (_, first, next) in blocks {
            if at.is_some_and(|end| end != first) {
                return false;
            }
            at = Some(next);
        }
        at.is_none_or(|end| end == self.size)
    }

    fn fast_pass<'r>(
        &self,
        bounds: &[u64],
        threads: usize,
        repeated: Option<&'r HashSet<u64>>,
    ) -> anyhow::Result<Option<Vec<Agg<'r>>>> {
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let blocks = bounds.len().saturating_sub(1);
        let results: Vec<Result<Agg, Stop>> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads.clamp(1, blocks.max(1)))
                .map(|_| {
                    scope.spawn(|| {
                        let file = File::open(self.path).map_err(Stop::Io)?;
                        // Most rows are longer than 48 bytes.
                        let expected = self.size / 48 / threads as u64;
                        let agg = Agg::new(self.range, repeated, expected);
                        let mut reader = BlockReader::new(self, file, agg);
                        loop {
                            if stop.load(Ordering::Relaxed) {
                                return Err(Stop::Elsewhere);
                            }
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            if i >= blocks {
                                return Ok(reader.agg);
                            }
                            if let Err(e) = reader.block(i, bounds[i], bounds[i + 1]) {
                                stop.store(true, Ordering::Relaxed);
                                return Err(e);
                            }
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                // A worker that panicked panics here too: a lost block would shrink every tally.
                .map(|w| {
                    w.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        });
        let mut aggs = Vec::with_capacity(results.len());
        for result in results {
            match result {
                Ok(agg) => aggs.push(agg),
                Err(Stop::Io(e)) => {
                    return Err(e).with_context(|| format!("reading {}", self.path.display()));
                }
                Err(Stop::Unusual | Stop::Quoted | Stop::Elsewhere) => return Ok(None),
            }
        }
        Ok(Some(aggs))
    }

    /// Merges the tallies of every reader, resolves the set-aside repeated order ids and scores.
    fn finish(&self, aggs: Vec<Agg>, threads: usize) -> Rfm {
        let mut winners: HashMap<Box<[u8]>, Aside> = HashMap::new();
        let mut maps = Vec::with_capacity(aggs.len());
        for agg in aggs {
            for aside in agg.aside {
                match winners.get(&aside.order_id) {
                    Some(w) if w.seq > aside.seq => {}
                    _ => {
                        winners.insert(aside.order_id.clone(), aside);
                    }
                }
            }
            maps.push(agg.customers);
        }
        let mut merged = CustomerMap::merge(maps, threads);
        for w in winners.into_values() {
            if w.paid && self.range.contains(w.day) {
                merged.add(&w.customer, w.day, w.fen);
            }
        }
        score(self.window, merged.into_sorted(threads))
    }
}

/// Where the first row begins: after a BOM and the header record (as the csv reader reads
/// it). `None` if the header is longer than the first mebibyte.
fn rows_start(path: &Path) -> anyhow::Result<Option<u64>> {
    use std::io::Read;
    let mut head = Vec::new();
    open_file(path)?
        .take(1 << 20)
        .read_to_end(&mut head)
        .with_context(|| format!("reading {}", path.display()))?;
    let body = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&head);
    let bom = head.len() - body.len();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(body);
    let mut header = csv::ByteRecord::new();
    match reader.read_byte_record(&mut header) {
        Ok(true) => {
            let end = reader.position().byte();
            let complete = (end as usize) < body.len() || head.len() < (1 << 20);
            Ok(complete.then_some(bom as u64 + end))
        }
        _ => Ok(None),
    }
}

/// Why a block reader stopped.
enum Stop {
    /// Something only the importer's reader reads right (or a bad row, which it lists).
    Unusual,
    /// A quote, or a carriage return that ends a record alone: the rest of the block is
    /// read by the csv parser itself.
    Quoted,
    /// Another reader stopped.
    Elsewhere,
    Io(io::Error),
}

/// A row set aside because its order id's hash repeats: resolved after the reading.
struct Aside {
    order_id: Box<[u8]>,
    seq: u64,
    customer: Box<[u8]>,
    day: DayNumber,
    fen: i64,
    paid: bool,
}

/// One reader's tallies, and what it saw of order ids.
struct Agg<'r> {
    range: DayRange,
    customers: CustomerMap,
    /// First reading: the hash of every order id, by its top bits.
    hashes: Vec<Vec<u64>>,
    /// Second reading: the hashes that repeat, whose rows are set aside.
    repeated: Option<&'r HashSet<u64>>,
    aside: Vec<Aside>,
    rows: u64,
    /// For each block read: its number, where its first record begins and where the
    /// record after its last one begins (see `BlockReader::record_start`).
    blocks: Vec<(usize, u64, u64)>,
}

const HASH_BUCKETS: usize = 256;

impl<'r> Agg<'r> {
    /// `expected_rows` sizes the lists of order-id hashes (a guess; 0 for none).
    fn new(range: DayRange, repeated: Option<&'r HashSet<u64>>, expected_rows: u64) -> Agg<'r> {
        let per_bucket = (expected_rows as usize / HASH_BUCKETS) * 9 / 8;
        Agg {
            range,
            customers: CustomerMap::new(),
            hashes: if repeated.is_none() {
                (0..HASH_BUCKETS)
                    .map(|_| Vec::with_capacity(per_bucket))
                    .collect()
            } else {
                Vec::new()
            },
            repeated,
            aside: Vec::new(),
            rows: 0,
            blocks: Vec::new(),
        }
    }

    /// A valid row, tallied at once. `seq` orders the rows as they stand in the file.
    fn order(
        &mut self,
        seq: u64,
        order_id: &[u8],
        customer: &[u8],
        day: DayNumber,
        fen: i64,
        paid: bool,
    ) {
        if self.admit(seq, order_id, customer, day, fen, paid) {
            self.customers.add(customer, day, fen);
        }
    }

    /// A valid row: whether it is to be tallied (the caller does it), after noting its
    /// order id (or setting it aside).
    #[inline(always)]
    fn admit(
        &mut self,
        seq: u64,
        order_id: &[u8],
        customer: &[u8],
        day: DayNumber,
        fen: i64,
        paid: bool,
    ) -> bool {
        self.rows += 1;
        let h = hash_bytes(order_id);
        match self.repeated {
            None => self.hashes[(h >> 56) as usize].push(h),
            Some(repeated) if repeated.contains(&h) => {
                self.aside.push(Aside {
                    order_id: order_id.into(),
                    seq,
                    customer: customer.into(),
                    day,
                    fen,
                    paid,
                });
                return false;
            }
            Some(_) => {}
        }
        paid && self.range.contains(day)
    }
}

/// The order-id hashes seen more than once by all readers together.
fn repeated_hashes(aggs: &[Agg], threads: usize) -> HashSet<u64> {
    let buckets: Vec<usize> = (0..HASH_BUCKETS).collect();
    let per = HASH_BUCKETS.div_ceil(threads.max(1));
    let found: Vec<Vec<u64>> = std::thread::scope(|scope| {
        let workers: Vec<_> = buckets
            .chunks(per)
            .map(|mine| {
                scope.spawn(move || {
                    let mut out = Vec::new();
                    // A bucket's hashes share their top bits: a set of them, open
                    // addressing on the low bits, stays in the core's own cache.
                    let mut set: Vec<u64> = Vec::new();
                    for &b in mine {
                        let n: usize = aggs
                            .iter()
                            .map(|a| a.hashes.get(b).map_or(0, Vec::len))
                            .sum();
                        let size = (2 * n).next_power_of_two().max(16);
                        set.clear();
                        set.resize(size, 0);
                        let mask = size - 1;
                        let mut zero_seen = false;
                        for agg in aggs {
                            for &h in agg.hashes.get(b).map_or(&[][..], Vec::as_slice) {
                                if h == 0 {
                                    if zero_seen {
                                        out.push(0);
                                    }
                                    zero_seen = true;
                                    continue;
                                }
                                let mut i = h as usize & mask;
                                loop {
                                    if set[i] == 0 {
                                        set[i] = h;
                                        break;
                                    }
                                    if set[i] == h {
                                        out.push(h);
                                        break;
                                    }
                                    i = (i + 1) & mask;
                                }
                            }
                        }
                    }
                    out
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    found.into_iter().flatten().collect()
}

// ---------------------------------------------------------------------------------------
// The block reader

/// What each byte is to the line scanner.
const PLAIN: u8 = 0;
const COMMA: u8 = 1;
const NEWLINE: u8 = 2;
const CR: u8 = 3;
const QUOTE: u8 = 4;
/// A control character or a byte of a multi-byte character: the row goes to `parse_order`.
const OTHER: u8 = 5;

const CLASS: [u8; 256] = {
    let mut t = [OTHER; 256];
    let mut b = 0x20;
    while b < 0x7f {
        t[b] = PLAIN;
        b += 1;
    }
    t[b',' as usize] = COMMA;
    t[b'\n' as usize] = NEWLINE;
    t[b'\r' as usize] = CR;
    t[b'"' as usize] = QUOTE;
    t
};

const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
const HIGH: u64 = 0x8080_8080_8080_8080;
const ONES: u64 = 0x0101_0101_0101_0101;

/// The high bit of each byte of `word` that equals `c` (exact: no carries between bytes).
#[inline(always)]
fn bytes_equal(word: u64, c: u8) -> u64 {
    let y = word ^ (ONES * u64::from(c));
    !(((y & LOW7) + LOW7) | y) & HIGH
}

/// The high bit of each byte of `word` that is not `PLAIN`: below a space, DEL, not ASCII,
/// a comma or a quote.
#[inline(always)]
fn not_plain(word: u64) -> u64 {
    let below_space = !(((word & LOW7) + ONES * 0x60) | word) & HIGH;
    below_space
        | (word & HIGH)
        | bytes_equal(word, b',')
        | bytes_equal(word, b'"')
        | bytes_equal(word, 0x7f)
}

/// One line as the scanner found it.
struct Line {
    /// Bytes of the row, without its terminator.
    len: usize,
    /// Bytes up to and including the terminator (the end of the data for a last line
    /// without one).
    next: usize,
    other: bool,
}

struct BlockReader<'f, 'r> {
    file: &'f OrdersFile<'f>,
    handle: File,
    agg: Agg<'r>,
    buf: Vec<u8>,
    /// The file position of `buf[0]`.
    from: u64,
    /// How much of `buf` holds the block's bytes.
    filled: usize,
    commas: Vec<u32>,
    record: Record,
    /// For records read by the csv parser: its output, and a plain line made of it.
    fields: Vec<u8>,
    ends: Vec<usize>,
    line: Vec<u8>,
    /// The customer ids of pending rows read by the csv parser.
    keys: Vec<u8>,
    /// Rows waiting to be tallied, so the cache misses of their lookups overlap.
    pending: Vec<Pending>,
}

/// A row to tally: its customer id at `buf[at..at + len]` (or `keys[..]` when `copied`).
#[derive(Clone, Copy)]
struct Pending {
    at: usize,
    len: usize,
    copied: bool,
    hash: u64,
    day: DayNumber,
    fen: i64,
}

/// Rows tallied together.
const BATCH: usize = 64;

impl<'f, 'r> BlockReader<'f, 'r> {
    fn new(file: &'f OrdersFile<'f>, handle: File, agg: Agg<'r>) -> Self {
        BlockReader {
            file,
            handle,
            agg,
            buf: Vec::new(),
            from: 0,
            filled: 0,
            commas: Vec::with_capacity(64),
            record: Record::default(),
            fields: Vec::new(),
            ends: Vec::new(),
            line: Vec::new(),
            keys: Vec::new(),
            pending: Vec::with_capacity(BATCH),
        }
    }

    /// Tallies the pending rows: first a load of each one's slot, all independent so the
    /// processor waits for them together, then the lookups, now in cache.
    fn flush(&mut self) {
        let customers = &mut self.agg.customers;
        for p in &self.pending {
            customers.touch(p.hash);
        }
        for p in self.pending.drain(..) {
            let from = if p.copied { &self.keys } else { &self.buf };
            customers.add_hashed(&from[p.at..p.at + p.len], p.hash, p.day, p.fen);
        }
        self.keys.clear();
    }

    /// Reads the rows that begin in `[start, end)`, each to its end.
    fn block(&mut self, index: usize, start: u64, end: u64) -> Result<(), Stop> {
        let data_start = self.file.data_start.unwrap_or(0);
        // From one byte early, to see whether a row begins right at `start`.
        self.from = if start > data_start { start - 1 } else { start };
        self.filled = 0;
        read_range(
            &self.handle,
            &mut self.buf,
            &mut self.filled,
            self.from,
            end,
        )?;
        let mut at = if start > data_start {
            match self.buf[..self.filled].iter().position(|&b| b == b'\n') {
                Some(nl) => nl + 1,
                None => return Ok(()),
            }
        } else {
            0
        };
        let first = self.record_start(at)?;
        let limit = (end - self.from) as usize;
        let mut seq = (index as u64) << 32;
        let mut quoted = None;
        'rows: while at < limit {
            let line = loop {
                match self.scan(at) {
                    Ok(Some(line)) => break line,
                    Ok(None) => {
                        self.extend()?;
                    }
                    Err(Stop::Quoted) => {
                        quoted = Some(at);
                        break 'rows;
                    }
                    Err(e) => return Err(e),
                }
            };
            let row = at..at + line.len;
            at += line.next;
            if self.commas.is_empty() && self.buf[row.clone()].trim_ascii().is_empty() {
                // A blank line: the csv reader skips it.
                continue;
            }
            seq += 1;
            self.row(seq, row, line.other)?;
        }
        self.flush();
        if let Some(from) = quoted {
            at = self.quoted(from, limit, &mut seq)?;
        }
        let next = self.record_start(at)?;
        self.agg.blocks.push((index, first, next));
        Ok(())
    }

    /// Reads more of the file into the buffer; false at its end.
    fn extend(&mut self) -> Result<bool, Stop> {
        let have = self.from + self.filled as u64;
        if have >= self.file.size {
            return Ok(false);
        }
        let more = (have + (1 << 16)).min(self.file.size);
        let before = self.filled;
        read_range(&self.handle, &mut self.buf, &mut self.filled, have, more)?;
        if self.filled == before {
            // The file is shorter than it was: the importer's reader reads what is there.
            return Err(Stop::Unusual);
        }
        Ok(true)
    }

    /// Where the record at or after `at` begins, past blank lines' line ends (or the end
    /// of the file): the same place whichever reader got there, so where one block's
    /// records end and the next one's begin can be compared.
    fn record_start(&mut self, mut at: usize) -> Result<u64, Stop> {
        loop {
            while at < self.filled && matches!(self.buf[at], b'\n' | b'\r') {
                at += 1;
            }
            if at < self.filled || !self.extend()? {
                return Ok(self.from + at as u64);
            }
        }
    }

    /// Reads the records that begin in `[at, limit)` with the csv parser the importer's
    /// reader uses (quotes, quoted line ends, lone carriage returns); returns where the
    /// last one ends.
    fn quoted(&mut self, mut at: usize, limit: usize, seq: &mut u64) -> Result<usize, Stop> {
        use csv_core::ReadRecordResult as Read;
        let mut parser = csv_core::Reader::new();
        let mut fields = std::mem::take(&mut self.fields);
        let mut ends = std::mem::take(&mut self.ends);
        fields.resize(fields.len().max(1024), 0);
        ends.resize(ends.len().max(64), 0);
        loop {
            // Blank lines: the parser skips them too; here it is seen where the next
            // record begins.
            loop {
                while at < self.filled && matches!(self.buf[at], b'\n' | b'\r') {
                    at += 1;
                }
                if at < self.filled || !self.extend()? {
                    break;
                }
            }
            if at >= limit || at >= self.filled {
                break;
            }
            if self.buf[at..self.filled].starts_with(b"\xEF\xBB\xBF") {
                // The parser would take a byte-order mark here for the file's own.
                return Err(Stop::Unusual);
            }
            let (mut used, mut nout, mut nend) = (0, 0, 0);
            let complete = loop {
                if at + used == self.filled && self.extend()? {
                    continue;
                }
                let input = &self.buf[at + used..self.filled];
                let (result, nin, o, e) =
                    parser.read_record(input, &mut fields[nout..], &mut ends[nend..]);
                used += nin;
                nout += o;
                nend += e;
                match result {
                    Read::InputEmpty => {}
                    Read::OutputFull => fields.resize(fields.len() * 2, 0),
                    Read::OutputEndsFull => ends.resize(ends.len() * 2, 0),
                    Read::Record => break true,
                    Read::End => break false,
                }
            };
            at += used;
            if !complete {
                break;
            }
            self.quoted_record(&fields[..nout], &ends[..nend], seq)?;
        }
        self.flush();
        self.fields = fields;
        self.ends = ends;
        Ok(at)
    }

    /// One record as the csv parser gives it: checked by hand when its fields are plain,
    /// by `parse_order` otherwise.
    fn quoted_record(&mut self, fields: &[u8], ends: &[usize], seq: &mut u64) -> Result<(), Stop> {
        if ends.len() == 1 && fields[..ends[0]].trim_ascii().is_empty() {
            return Ok(());
        }
        *seq += 1;
        // The fields laid out as a plain line, when none holds a comma or anything
        // else the line scanner would stop at.
        let mut start = 0;
        let mut plain = true;
        self.line.clear();
        self.commas.clear();
        for (i, &end) in ends.iter().enumerate() {
            let field = &fields[start..end];
            plain &= field.iter().all(|&b| CLASS[b as usize] == PLAIN);
            if i > 0 {
                self.commas.push(self.line.len() as u32);
                self.line.push(b',');
            }
            self.line.extend_from_slice(field);
            start = end;
        }
        if plain && let Some(fast) = plain_row(self.file, &self.line, &self.commas) {
            let line = &self.line;
            let customer = &line[fast.customer];
            if self.agg.admit(
                *seq,
                &line[fast.order_id],
                customer,
                fast.day,
                fast.fen,
                fast.paid,
            ) {
                self.pending.push(Pending {
                    at: self.keys.len(),
                    len: customer.len(),
                    copied: true,
                    hash: hash_bytes(customer),
                    day: fast.day,
                    fen: fast.fen,
                });
                self.keys.extend_from_slice(customer);
                if self.pending.len() == BATCH {
                    self.flush();
                }
            }
            return Ok(());
        }
        self.record.fields.clear();
        let mut start = 0;
        for &end in ends {
            self.record.fields.push_field(&fields[start..end]);
            start = end;
        }
        match parse_order(&self.file.columns, &self.record, &self.file.zone) {
            Ok(order) => {
                self.file.add_parsed(&mut self.agg, *seq, &order);
                Ok(())
            }
            Err(_) => Err(Stop::Unusual),
        }
    }

    /// Finds the line starting at `at` and the commas in it; `None` if the buffer ends
    /// before the line does and the file goes on.
    #[inline]
    fn scan(&mut self, at: usize) -> Result<Option<Line>, Stop> {
        self.commas.clear();
        let bytes = &self.buf[at..self.filled];
        let mut other = false;
        let mut cr = None;
        let mut end = None;
        // Eight bytes at a time: a mask of the bytes that are not plain printable ASCII,
        // then only those looked at one by one (mostly the commas).
        let mut i = 0;
        let mut special = |i: usize, commas: &mut Vec<u32>| -> Result<bool, Stop> {
            if bytes[i] == b',' {
                commas.push(i as u32);
                return Ok(false);
            }
            match CLASS[bytes[i] as usize] {
                PLAIN => {}
                COMMA => commas.push(i as u32),
                NEWLINE => return Ok(true),
                CR => {
                    if cr.is_some() {
                        return Err(Stop::Quoted);
                    }
                    cr = Some(i);
                }
                QUOTE => return Err(Stop::Quoted),
                _ => other = true,
            }
            Ok(false)
        };
        'words: while i + 8 <= bytes.len() {
            let word = u64::from_le_bytes(bytes[i..i + 8].try_into().unwrap_or([0; 8]));
            let mut mask = not_plain(word);
            while mask != 0 {
                let k = (mask.trailing_zeros() / 8) as usize;
                if special(i + k, &mut self.commas)? {
                    end = Some(i + k);
                    break 'words;
                }
                mask &= mask - 1;
            }
            i += 8;
        }
        if end.is_none() {
            while i < bytes.len() {
                if special(i, &mut self.commas)? {
                    end = Some(i);
                    break;
                }
                i += 1;
            }
        }
        let (len, next) = match end {
            Some(nl) => (nl, nl + 1),
            None if self.from + self.filled as u64 >= self.file.size => (bytes.len(), bytes.len()),
            None => return Ok(None),
        };
        // A carriage return may only end the line (CRLF, or a last line ending in CR).
        let len = match cr {
            None => len,
            Some(i) if i + 1 == len => i,
            Some(_) => return Err(Stop::Quoted),
        };
        Ok(Some(Line { len, next, other }))
    }

    /// One row: checked by hand when it is plain, by `parse_order` otherwise.
    #[inline]
    fn row(&mut self, seq: u64, row: std::ops::Range<usize>, other: bool) -> Result<(), Stop> {
        let at = row.start;
        let line = &self.buf[row];
        if !other && let Some(fast) = plain_row(self.file, line, &self.commas) {
            let customer = &line[fast.customer.clone()];
            if self.agg.admit(
                seq,
                &line[fast.order_id],
                customer,
                fast.day,
                fast.fen,
                fast.paid,
            ) {
                self.pending.push(Pending {
                    at: at + fast.customer.start,
                    len: customer.len(),
                    copied: false,
                    hash: hash_bytes(customer),
                    day: fast.day,
                    fen: fast.fen,
                });
                if self.pending.len() == BATCH {
                    self.flush();
                }
            }
            return Ok(());
        }
        // Not plain: the importer's own checks decide. Without quotes, the csv reader's
        // fields are exactly the text between the commas.
        self.record.fields.clear();
        let mut start = 0;
        for &comma in &self.commas {
            self.record.fields.push_field(&line[start..comma as usize]);
            start = comma as usize + 1;
        }
        self.record.fields.push_field(&line[start..]);
        match parse_order(&self.file.columns, &self.record, &self.file.zone) {
            Ok(order) => {
                self.file.add_parsed(&mut self.agg, seq, &order);
                Ok(())
            }
            // The importer's reader will list the problems with their lines.
            Err(_) => Err(Stop::Unusual),
        }
    }
}

/// Reads the bytes `[from, to)` of the file into `buf` after its first `*filled` bytes.
/// The buffer keeps its length between blocks, so it is not zeroed again each time.
fn read_range(
    file: &File,
    buf: &mut Vec<u8>,
    filled: &mut usize,
    from: u64,
    to: u64,
) -> Result<(), Stop> {
    let want = to.saturating_sub(from) as usize;
    if buf.len() < *filled + want {
        buf.resize(*filled + want, 0);
    }
    let mut done = 0;
    while done < want {
        let into = &mut buf[*filled + done..*filled + want];
        match read_at(file, into, from + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Stop::Io(e)),
        }
    }
    *filled += done;
    Ok(())
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(windows)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

/// A row the hand-written checks accept, with exactly the values `parse_order` gives
/// (the ids as places in the line).
struct PlainRow {
    order_id: std::ops::Range<usize>,
    customer: std::ops::Range<usize>,
    day: DayNumber,
    fen: i64,
    paid: bool,
}

/// The checks of `parse_order` for rows of printable ASCII without quotes, in the common
/// forms; `None` when not sure (the row then goes to `parse_order` itself).
#[inline(always)]
fn plain_row(file: &OrdersFile, line: &[u8], commas: &[u32]) -> Option<PlainRow> {
    let layout = &file.layout;
    if commas.len() + 1 != layout.width {
        return None;
    }
    // Where each canonical column's text lies in the line (0..0 when absent: the
    // required ones are always there, and an absent optional one reads as empty).
    let mut places = [(0usize, 0usize); 8];
    for (slot, at) in layout.at.iter().enumerate() {
        if let Some(i) = *at {
            let start = if i == 0 {
                0
            } else {
                commas[i - 1] as usize + 1
            };
            let end = if i < commas.len() {
                commas[i] as usize
            } else {
                line.len()
            };
            places[slot] = (start, end);
        }
    }
    let [
        order_id,
        customer,
        ordered_at,
        amount,
        discount,
        coupon,
        channel,
        status,
    ] = places.map(|(start, end)| start..end);
    if !plain_id(&line[order_id.clone()]) || !plain_id(&line[customer.clone()]) {
        return None;
    }
    let day = plain_day(&file.days, &line[ordered_at])?;
    let fen = plain_fen(&line[amount])?;
    let discount = &line[discount];
    if !discount.is_empty() {
        plain_fen(discount)?;
    }
    // A coupon code of printable ASCII is valid up to 64 characters.
    if coupon.len() > 64 {
        return None;
    }
    let channel = &line[channel];
    // Letters, digits, `_` and `-`: checked without a branch per byte.
    if channel.len() > 64
        || !channel
            .iter()
            .fold(true, |ok, &b| ok & CHANNEL_BYTE[b as usize])
    {
        return None;
    }
    let paid = match &line[status] {
        b"" | b"paid" => true,
        b"refunded" => false,
        _ => return None,
    };
    Some(PlainRow {
        order_id,
        customer,
        day,
        fen,
        paid,
    })
}

/// The bytes of a channel name that `Channel::parse` accepts as they are (or as `_`).
const CHANNEL_BYTE: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || c == b'_' || c == b'-';
        b += 1;
    }
    t
};

/// An id that `clean_field` leaves alone and `CustomerId`/`OrderId::parse` accept as it is.
#[inline(always)]
fn plain_id(f: &[u8]) -> bool {
    match (f.first(), f.last()) {
        (Some(&first), Some(&last)) => {
            f.len() <= siyu_core::ids::MAX_ID_LEN
                && !matches!(first, b' ' | b'\'' | b'-' | b'#' | b'$' | 0xE2)
                && last != b' '
        }
        _ => false,
    }
}

#[inline(always)]
fn digits2(f: &[u8], i: usize) -> Option<u32> {
    let (a, b) = (f[i].wrapping_sub(b'0'), f[i + 1].wrapping_sub(b'0'));
    (a < 10 && b < 10).then(|| u32::from(a) * 10 + u32::from(b))
}

/// The local day of `YYYY-MM-DD`, `YYYY-MM-DD HH:MM[:SS]` (or with `T`), optionally with
/// `Z` or `±HH:MM` after the seconds: the forms `TenantZone::parse_timestamp` reads, on
/// days the zone's offset is steady.
#[inline(always)]
fn plain_day(days: &ZoneDays, f: &[u8]) -> Option<DayNumber> {
    let n = f.len();
    if !matches!(n, 10 | 16 | 19 | 20 | 25) || f[4] != b'-' || f[7] != b'-' {
        return None;
    }
    let year = digits2(f, 0)? * 100 + digits2(f, 2)?;
    let (month, day) = (digits2(f, 5)?, digits2(f, 8)?);
    let year = year as i32;
    // Years at the edges of the accepted range (1970–2100) go to the full parser, which
    // knows the range to the second.
    if !(1971..=2099).contains(&year) {
        return None;
    }
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let date = day_number(year, month, day);
    if n == 10 {
        return days.local_day_is_steady(date).then_some(date);
    }
    if !matches!(f[10], b' ' | b'T' | b't') || f[13] != b':' {
        return None;
    }
    let (hour, minute) = (digits2(f, 11)?, digits2(f, 14)?);
    if hour > 23 || minute > 59 {
        return None;
    }
    if n == 16 {
        return days.local_day_is_steady(date).then_some(date);
    }
    if f[16] != b':' {
        return None;
    }
    let second = digits2(f, 17)?;
    if second > 59 {
        return None;
    }
    if n == 19 {
        return days.local_day_is_steady(date).then_some(date);
    }
    let local = i64::from(date) * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    let offset = match n {
        20 if matches!(f[19], b'Z' | b'z') => 0,
        25 if matches!(f[19], b'+' | b'-') && f[22] == b':' => {
            let (oh, om) = (digits2(f, 20)?, digits2(f, 23)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let secs = i64::from(oh * 3600 + om * 60);
            if f[19] == b'-' { -secs } else { secs }
        }
        _ => return None,
    };
    days.day_of_second(local - offset)
}

/// Fen of a plain amount (`128`, `128.5`, `128.50`, `.5`, `3.`): what `Money::parse_yuan`
/// gives for it. `None` for anything else, which then goes to `parse_yuan`.
#[inline(always)]
fn plain_fen(f: &[u8]) -> Option<i64> {
    let mut yuan: i64 = 0;
    let mut i = 0;
    while i < f.len() && f[i].is_ascii_digit() {
        yuan = yuan * 10 + i64::from(f[i] - b'0');
        i += 1;
        if i > 15 {
            return None;
        }
    }
    if i == f.len() {
        return (i > 0 && yuan * 100 <= siyu_core::money::MAX_AMOUNT.fen()).then_some(yuan * 100);
    }
    if f[i] != b'.' {
        return None;
    }
    let frac = &f[i + 1..];
    if frac.len() > 2 || !frac.iter().all(u8::is_ascii_digit) || (i == 0 && frac.is_empty()) {
        return None;
    }
    let tens = frac.first().map_or(0, |d| i64::from(d - b'0'));
    let ones = frac.get(1).map_or(0, |d| i64::from(d - b'0'));
    let fen = yuan * 100 + tens * 10 + ones;
    // Above the limit, `parse_yuan` says why.
    (fen <= siyu_core::money::MAX_AMOUNT.fen()).then_some(fen)
}

// ---------------------------------------------------------------------------------------
// Tallies by customer id

/// A 64-bit hash of a short byte string (folded multiplication, as foldhash and wyhash do).
#[inline(always)]
fn hash_bytes(b: &[u8]) -> u64 {
    const P0: u64 = 0xa076_1d64_78bd_642f;
    const P1: u64 = 0xe703_7ed1_a0b4_28db;
    #[inline(always)]
    fn fold(a: u64, b: u64) -> u64 {
        let r = u128::from(a) * u128::from(b);
        (r as u64) ^ ((r >> 64) as u64)
    }
    #[inline(always)]
    fn word(b: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or([0; 8]))
    }
    #[inline(always)]
    fn half(b: &[u8], at: usize) -> u64 {
        u64::from(u32::from_le_bytes(
            b[at..at + 4].try_into().unwrap_or([0; 4]),
        ))
    }
    let n = b.len();
    // The length spread over every bit, so ids of different lengths never cancel out.
    let mut h = (n as u64).wrapping_mul(P1) ^ P0;
    // Whole words, then the last eight bytes (overlapping): no byte-by-byte tail.
    let last = if n >= 8 {
        let mut at = 0;
        while at + 8 < n {
            h = fold(h ^ word(b, at), P1);
            at += 8;
        }
        word(b, n - 8)
    } else if n >= 4 {
        (half(b, 0) << 32) | half(b, n - 4)
    } else if n > 0 {
        (u64::from(b[0]) << 16) | (u64::from(b[n / 2]) << 8) | u64::from(b[n - 1])
    } else {
        0
    };
    fold(fold(h ^ last, P1), P0)
}

/// Ids up to this long are held in the slot itself, so a lookup touches one cache line.
const INLINE: usize = 32;
/// Tables per map, by the top bits of the hash: merged and sorted in parallel.
const PARTS: usize = 16;

#[derive(Clone, Copy)]
#[repr(align(64))]
struct Slot {
    /// The hash with its lowest bit set; 0 for an empty slot.
    tag: u64,
    /// The id itself, or (when longer than `INLINE`) its offset in `Table::long` and then
    /// its first bytes.
    key: [u8; INLINE],
    len: u32,
    tally: Tally,
}

const EMPTY: Slot = Slot {
    tag: 0,
    key: [0; INLINE],
    len: 0,
    tally: Tally {
        last_day: DayNumber::MIN,
        orders: 0,
        fen: 0,
    },
};

/// Open addressing with linear probing, at most half full.
struct Table {
    slots: Vec<Slot>,
    len: usize,
    long: Vec<u8>,
}

impl Table {
    fn with_capacity(capacity: usize) -> Table {
        Table {
            slots: vec![EMPTY; capacity.next_power_of_two()],
            len: 0,
            long: Vec::new(),
        }
    }

    #[inline]
    fn key<'a>(&'a self, slot: &'a Slot) -> &'a [u8] {
        let len = slot.len as usize;
        if len <= INLINE {
            &slot.key[..len]
        } else {
            let at = u64::from_le_bytes(slot.key[..8].try_into().unwrap_or([0; 8])) as usize;
            &self.long[at..at + len]
        }
    }

    #[inline]
    fn touch(&self, hash: u64) {
        let mask = self.slots.len() - 1;
        std::hint::black_box(self.slots[(hash >> 1) as usize & mask].tag);
    }

    /// The tally of `key`, made if new.
    #[inline]
    fn entry(&mut self, key: &[u8], hash: u64) -> &mut Tally {
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let tag = hash | 1;
        let mask = self.slots.len() - 1;
        let mut i = (hash >> 1) as usize & mask;
        // Inline ids compare as whole padded arrays (no call to memcmp).
        let mut padded = [0u8; INLINE];
        let inline = key.len() <= INLINE;
        if inline {
            padded[..key.len()].copy_from_slice(key);
        }
        loop {
            let slot = &self.slots[i];
            if slot.tag == 0 {
                break;
            }
            if slot.tag == tag
                && slot.len as usize == key.len()
                && if inline {
                    slot.key == padded
                } else {
                    self.key(slot) == key
                }
            {
                return &mut self.slots[i].tally;
            }
            i = (i + 1) & mask;
        }
        let mut slot = EMPTY;
        slot.tag = tag;
        slot.len = key.len() as u32;
        if key.len() <= INLINE {
            slot.key[..key.len()].copy_from_slice(key);
        } else {
            slot.key[..8].copy_from_slice(&(self.long.len() as u64).to_le_bytes());
            slot.key[8..].copy_from_slice(&key[..INLINE - 8]);
            self.long.extend_from_slice(key);
        }
        self.len += 1;
        self.slots[i] = slot;
        &mut self.slots[i].tally
    }

    fn grow(&mut self) {
        let bigger = vec![EMPTY; (self.slots.len() * 2).max(16)];
        let old = std::mem::replace(&mut self.slots, bigger);
        let mask = self.slots.len() - 1;
        for slot in old.into_iter().filter(|s| s.tag != 0) {
            let mut i = (slot.tag >> 1) as usize & mask;
            while self.slots[i].tag != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = slot;
        }
    }

    fn merge(&mut self, other: &Table) {
        for slot in other.slots.iter().filter(|s| s.tag != 0) {
            self.entry(other.key(slot), slot.tag).merge(slot.tally);
        }
    }
}

/// Tallies by customer id bytes.
struct CustomerMap {
    parts: Vec<Table>,
}

impl CustomerMap {
    fn new() -> CustomerMap {
        CustomerMap {
            parts: (0..PARTS).map(|_| Table::with_capacity(1024)).collect(),
        }
    }

    fn add(&mut self, key: &[u8], day: DayNumber, fen: i64) {
        self.add_hashed(key, hash_bytes(key), day, fen);
    }

    #[inline]
    fn add_hashed(&mut self, key: &[u8], hash: u64, day: DayNumber, fen: i64) {
        self.parts[(hash >> 60) as usize % PARTS]
            .entry(key, hash)
            .add(day, fen);
    }

    /// Loads the slot where `hash` would be, so a later lookup finds it in cache.
    #[inline]
    fn touch(&self, hash: u64) {
        self.parts[(hash >> 60) as usize % PARTS].touch(hash);
    }

    /// One map of all of `maps`, merged part by part on `threads` threads.
    fn merge(maps: Vec<CustomerMap>, threads: usize) -> CustomerMap {
        let mut by_part: Vec<Vec<Table>> = (0..PARTS).map(|_| Vec::new()).collect();
        for map in maps {
            for (p, table) in map.parts.into_iter().enumerate() {
                by_part[p].push(table);
            }
        }
        let parts = parallel_map(by_part, threads, |mut tables| {
            // Into the largest, so the fewest slots move.
            tables.sort_by_key(|t| std::cmp::Reverse(t.len));
            let mut rest = tables.into_iter();
            let mut into = rest.next().unwrap_or_else(|| Table::with_capacity(16));
            for table in rest {
                into.merge(&table);
            }
            into
        });
        CustomerMap { parts }
    }

    /// Every customer with their tally, by id (byte order). Each table is read in slot
    /// order (in parallel); the customers are sorted by the first 16 bytes of their ids
    /// (whole ids compared only where those are equal), and the `CustomerId`s are made in
    /// that order, so what reads them next reads memory in order. Ids of up to 16 bytes
    /// come straight from the sort keys.
    fn into_sorted(self, threads: usize) -> Vec<(CustomerId, Tally)> {
        /// A customer: the tally, and where longer ids lie in `long`.
        #[derive(Clone, Copy)]
        struct Record {
            tally: Tally,
            at: u32,
            len: u32,
        }
        struct Part {
            long: Vec<u8>,
            records: Vec<Record>,
            prefixes: Vec<u128>,
        }
        let parts: Vec<Part> = parallel_map(self.parts, threads, |table| {
            let mut part = Part {
                long: Vec::new(),
                records: Vec::with_capacity(table.len),
                prefixes: Vec::with_capacity(table.len),
            };
            for slot in table.slots.iter().filter(|s| s.tag != 0) {
                let id = table.key(slot);
                let mut prefix = [0u8; 16];
                let n = id.len().min(16);
                prefix[..n].copy_from_slice(&id[..n]);
                part.prefixes.push(u128::from_be_bytes(prefix));
                part.records.push(Record {
                    tally: slot.tally,
                    at: part.long.len() as u32,
                    len: id.len() as u32,
                });
                if id.len() > 16 {
                    part.long.extend_from_slice(id);
                }
            }
            part
        });
        let total: usize = parts.iter().map(|p| p.records.len()).sum();
        let mut long: Vec<u8> = Vec::with_capacity(parts.iter().map(|p| p.long.len()).sum());
        let mut records: Vec<Record> = Vec::with_capacity(total);
        let mut order: Vec<(u128, u32)> = Vec::with_capacity(total);
        for part in parts {
            let base = long.len() as u32;
            records.extend(part.records.iter().map(|r| Record {
                at: base + r.at,
                ..*r
            }));
            let first = order.len() as u32;
            order.extend(
                part.prefixes
                    .into_iter()
                    .enumerate()
                    .map(|(i, p)| (p, first + i as u32)),
            );
            long.extend_from_slice(&part.long);
        }
        // Ids whose first 16 bytes are equal: one of at most 16 bytes is the shorter; two
        // longer ones compare in full.
        let by_id = |a: &(u128, u32), b: &(u128, u32)| {
            a.0.cmp(&b.0).then_with(|| {
                let (x, y) = (records[a.1 as usize], records[b.1 as usize]);
                if x.len <= 16 || y.len <= 16 {
                    return x.len.cmp(&y.len);
                }
                let (xa, ya) = (x.at as usize, y.at as usize);
                long[xa..xa + x.len as usize].cmp(&long[ya..ya + y.len as usize])
            })
        };
        let half = order.len() / 2;
        let (left, right) = order.split_at_mut(half);
        if threads > 1 {
            std::thread::scope(|scope| {
                scope.spawn(|| left.sort_unstable_by(by_id));
                right.sort_unstable_by(by_id);
            });
        } else {
            left.sort_unstable_by(by_id);
            right.sort_unstable_by(by_id);
        }
        let mut merged: Vec<(u128, u32)> = Vec::with_capacity(order.len());
        let (mut i, mut j) = (0, half);
        while i < half && j < order.len() {
            if by_id(&order[i], &order[j]).is_le() {
                merged.push(order[i]);
                i += 1;
            } else {
                merged.push(order[j]);
                j += 1;
            }
        }
        merged.extend_from_slice(&order[i..half]);
        merged.extend_from_slice(&order[j..]);
        drop(order);
        // The records in id order first: a gather whose loads do not wait on each other.
        let gathered: Vec<(u128, Record)> = merged
            .iter()
            .map(|&(prefix, i)| (prefix, records[i as usize]))
            .collect();
        drop(merged);
        let per = gathered.len().div_ceil(threads.max(1)).max(1);
        let chunks: Vec<&[(u128, Record)]> = gathered.chunks(per).collect();
        let made = parallel_map(chunks, threads, |chunk| {
            let mut out = Vec::with_capacity(chunk.len());
            for (prefix, r) in chunk {
                let len = r.len as usize;
                let bytes = prefix.to_be_bytes();
                let id = if len <= 16 {
                    &bytes[..len]
                } else {
                    &long[r.at as usize..r.at as usize + len]
                };
                if let Some(id) = std::str::from_utf8(id)
                    .ok()
                    .and_then(|id| CustomerId::parse(id).ok())
                {
                    out.push((id, r.tally));
                }
            }
            out
        });
        let mut all = Vec::with_capacity(total);
        for chunk in made {
            all.extend(chunk);
        }
        all
    }
}

/// `f` over `items` on up to `threads` threads, keeping their order.
fn parallel_map<T: Send, U: Send>(
    items: Vec<T>,
    threads: usize,
    f: impl Fn(T) -> U + Sync,
) -> Vec<U> {
    let threads = threads.clamp(1, items.len().max(1));
    let mut queues: Vec<Vec<(usize, T)>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, item) in items.into_iter().enumerate() {
        queues[i % threads].push((i, item));
    }
    let f = &f;
    let mut done: Vec<(usize, U)> = std::thread::scope(|scope| {
        let workers: Vec<_> = queues
            .into_iter()
            .map(|queue| {
                scope.spawn(move || {
                    queue
                        .into_iter()
                        .map(|(i, item)| (i, f(item)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| {
                w.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, u)| u).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use siyu_core::import::Kind;

    #[test]
    #[should_panic(expected = "item 77 failed")]
    fn a_worker_that_panics_panics_the_caller_instead_of_losing_its_items() {
        let items: Vec<u32> = (0..100).collect();
        let out = parallel_map(items, 2, |i| {
            assert!(i != 77, "item {i} failed");
            i
        });
        // Reached only if the panic was swallowed, with a shorter list.
        assert_eq!(out.len(), 100);
    }

    /// Values of each column: mostly valid, the rest every kind of trouble the importer
    /// knows (and quotes, tabs, non-ASCII, CJK spaces, out-of-range times).
    fn pick(valid: &'static [&'static str], odd: &'static [&'static str]) -> BoxedStrategy<String> {
        prop_oneof![
            150 => proptest::sample::select(valid).prop_map(str::to_owned),
            1 => proptest::sample::select(odd).prop_map(str::to_owned),
        ]
        .boxed()
    }

    fn order_ids() -> BoxedStrategy<String> {
        pick(
            &[
                "3700000000000000000",
                "o1",
                "o2",
                "o3",
                "o4",
                "o5",
                "o6",
                "o7",
                "o8",
            ],
            &[
                " o1",
                "o2 ",
                "'o3",
                "",
                "=\"o4\"",
                "o\t5",
                "订单6",
                "o\u{3000}",
                "o\u{85}",
                "o 1",
            ],
        )
    }

    fn customers() -> BoxedStrategy<String> {
        pick(
            &[
                "c1",
                "c2",
                "c3",
                "c10",
                "o6_bmjrPTlm6_2sgVt7hMZOPfL2M",
                "c2-x",
            ],
            &[" c1", "c1 ", "'c2", "", "顾客1", "c\u{7}", "C1", "=\"c3\""],
        )
    }

    fn times() -> BoxedStrategy<String> {
        pick(
            &[
                "2024-05-01 09:30:00",
                "2024-05-01",
                "2024-06-30 23:30",
                "2024-06-30T23:59:59",
                "2024-05-01T09:30:00+08:00",
                "2024-06-30T16:30:00Z",
                "2024-06-29T20:30:00-05:00",
                "2024-07-01 00:00:00",
                "2023-01-15 12:00:00",
                "1989-07-01 12:00:00",
                "2024/5/1 9:05",
                "2024-05-01 9:30",
            ],
            &[
                "2024-02-30 10:00:00",
                "2024-05-01 24:00:00",
                "",
                "someday",
                "1899-12-31 23:00:00",
                "2024-04-30 16:00:00.5",
                "2024-05-01T09:30:00+24:00",
                "2024-5-1",
                "2024-05-01  09:30:00",
            ],
        )
    }

    fn amounts() -> BoxedStrategy<String> {
        pick(
            &[
                "128",
                "128.5",
                "128.50",
                ".5",
                "3.",
                "0",
                "99999.99",
                "100000000000000",
            ],
            &[
                ".",
                "1,280.00",
                "¥5",
                "-3",
                "12.345",
                "",
                "9999999999999999",
                " 7.05",
                "+5",
                "5元",
            ],
        )
    }

    fn discounts() -> BoxedStrategy<String> {
        pick(&["", "10.00", "0"], &["x", "-1", "1.234"])
    }

    fn coupons() -> BoxedStrategy<String> {
        pick(
            &["", "NEW10"],
            &[
                "券",
                "\u{1}",
                "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            ],
        )
    }

    fn channels() -> BoxedStrategy<String> {
        pick(
            &["", "douyin", "mini_program", "Douyin", "mini-program"],
            &[
                "a b",
                "抖音",
                "a;b",
                "-",
                "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            ],
        )
    }

    fn statuses() -> BoxedStrategy<String> {
        pick(
            &["", "paid", "refunded"],
            &["Paid", "已退款", "lost", " paid", "REFUNDED"],
        )
    }

    /// A whole file: a header (all columns in order, the required ones, a shuffle, or one
    /// with an unknown column), rows, blank lines, CRLF or LF, maybe a BOM.
    fn files() -> impl Strategy<Value = (String, bool)> {
        let row = (
            order_ids(),
            customers(),
            times(),
            amounts(),
            discounts(),
            coupons(),
            channels(),
            statuses(),
        );
        (
            0..4usize,
            proptest::collection::vec((row, 0..12u8, 0..16u8), 1..40),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(header, rows, crlf, bom, trailing)| {
                let nl = if crlf { "\r\n" } else { "\n" };
                let (columns, ignore): (&[usize], bool) = match header {
                    0 => (&[0, 1, 2, 3, 4, 5, 6, 7], false),
                    1 => (&[0, 1, 2, 3], false),
                    2 => (&[1, 7, 3, 0, 2], false),
                    _ => (&[0, 1, 8, 2, 3, 7], true),
                };
                let names = [
                    "order_id",
                    "customer_id",
                    "ordered_at",
                    "amount",
                    "discount",
                    "coupon_code",
                    "channel",
                    "status",
                    "memo",
                ];
                let mut text = String::new();
                if bom {
                    text.push('\u{feff}');
                }
                let header: Vec<&str> = columns.iter().map(|&c| names[c]).collect();
                text.push_str(&header.join(","));
                for ((o, c, t, a, d, k, ch, s), extra, quoting) in rows {
                    text.push_str(nl);
                    if extra == 0 {
                        // A blank line, or one of spaces.
                        text.push_str("  ");
                        text.push_str(nl);
                    }
                    // Most rows plain; some with every field quoted (as spreadsheets
                    // write), some with a quoted memo holding a comma, a quote and a line
                    // end, one ending in a lone carriage return.
                    let memo = match quoting {
                        0 => "\"a, \"\"b\"\"\nc\"".to_owned(),
                        1 => "\"\r\n\"".to_owned(),
                        _ => "note".to_owned(),
                    };
                    let values = [o, c, t, a, d, k, ch, s, memo];
                    let fields: Vec<String> = columns
                        .iter()
                        .map(|&i| {
                            if quoting == 2 && i != 8 {
                                format!("\"{}\"", values[i].replace('"', "\"\""))
                            } else {
                                values[i].clone()
                            }
                        })
                        .collect();
                    text.push_str(&fields.join(","));
                    if quoting == 3 {
                        text.push('\r');
                    }
                }
                if trailing {
                    text.push_str(nl);
                }
                (text, ignore)
            })
    }

    fn compute(path: &Path, window: Option<u32>, options: FileOptions) -> Result<Rfm, String> {
        let as_of = TenantZone::parse_day("2024-06-30").expect("day");
        from_orders_file(
            path,
            &TenantZone::default(),
            RfmWindow::new(as_of, window),
            options,
        )
        .map_err(|e| format!("{e:#}"))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// The block reader on two threads with tiny blocks gives exactly what the
        /// importer's reader gives: the same figures, or the same refusal.
        #[test]
        fn the_block_reader_agrees_with_the_importers_reader(
            (text, ignore_unknown) in files(),
            window in proptest::option::of(1u32..400),
            block in 1u64..200,
        ) {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("orders.csv");
            std::fs::write(&path, &text).expect("write");
            let general = compute(&path, window, FileOptions {
                ignore_unknown,
                fast: false,
                ..FileOptions::default()
            });
            let fast = compute(&path, window, FileOptions {
                ignore_unknown,
                threads: 2,
                block,
                ..FileOptions::default()
            });
            prop_assert_eq!(&fast, &general, "{}", text);
            // And it did the work itself, unless a quoted field holds a line end (which
            // may fall at the edge of a block, where the blocks then do not meet).
            let quoted_line_end = text.contains("\nc\"") || text.contains("\"\r\n\"");
            if general.is_ok() && !quoted_line_end {
                let zone = TenantZone::default();
                let as_of = TenantZone::parse_day("2024-06-30").expect("day");
                let file = OrdersFile::open(&path, &zone, RfmWindow::new(as_of, window), ignore_unknown)
                    .expect("opens");
                prop_assert!(file.fast(2, block).expect("reads").is_some(), "{}", text);
            }
        }

        #[test]
        fn plain_amounts_read_as_parse_yuan_reads_them(int in "[0-9]{0,17}", frac in proptest::option::of("[0-9]{0,3}")) {
            let text = match &frac {
                Some(f) => format!("{int}.{f}"),
                None => int.clone(),
            };
            if let Some(fen) = plain_fen(text.as_bytes()) {
                prop_assert_eq!(siyu_core::Money::parse_yuan(&text).map(|m| m.fen()), Ok(fen));
            }
        }

        #[test]
        fn plain_times_fall_on_the_day_the_zone_gives(
            y in 1890i32..2210, mo in 0u32..14, d in 0u32..33, h in 0u32..26, mi in 0u32..61, s in 0u32..61,
            form in 0..5usize, zone in proptest::sample::select(vec!["Asia/Shanghai", "America/New_York", "UTC", "Pacific/Apia"]),
        ) {
            let zone = TenantZone::named(zone).expect("zone");
            let days = ZoneDays::new(&zone);
            let text = match form {
                0 => format!("{y:04}-{mo:02}-{d:02}"),
                1 => format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}"),
                2 => format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}"),
                3 => format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z"),
                _ => format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}-{:02}:{:02}", h % 24, mi % 60),
            };
            if let Some(day) = plain_day(&days, text.as_bytes()) {
                let ts = zone.parse_timestamp(&text).expect("accepted by the zone too");
                prop_assert_eq!(day, days.day_of(ts), "{}", text);
            }
        }
    }

    #[test]
    fn an_order_id_repeated_in_the_file_counts_once_as_its_last_row() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("orders.csv");
        std::fs::write(
            &path,
            "order_id,customer_id,ordered_at,amount,status\n\
             o1,c1,2024-06-01,100,paid\n\
             o2,c2,2024-06-02,50,paid\n\
             o1,c1,2024-06-01,100,refunded\n\
             o3,c2,2024-06-03,10,paid\n\
             o2,c3,2024-06-10,70,paid\n",
        )
        .expect("write");
        for fast in [false, true] {
            let rfm = compute(
                &path,
                None,
                FileOptions {
                    fast,
                    threads: 2,
                    block: 16,
                    ..FileOptions::default()
                },
            )
            .expect("computes");
            let got: Vec<(String, u32, i64)> = rfm
                .customers
                .iter()
                .map(|c| (c.customer_id.to_string(), c.frequency, c.monetary.fen()))
                .collect();
            assert_eq!(
                got,
                [("c2".to_owned(), 1, 1_000), ("c3".to_owned(), 1, 7_000)],
                "fast: {fast}"
            );
        }
    }

    #[test]
    fn the_columns_are_found_as_the_importer_finds_them() {
        let header: Vec<String> = [
            "\u{feff}Customer_ID",
            "memo",
            "ORDER_ID",
            "amount",
            "ordered_at",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let columns = Columns::from_header(Kind::Orders, &header, true).expect("valid header");
        let layout = Layout::of(&columns).expect("one place each");
        assert_eq!(layout.width, 5);
        assert_eq!(&layout.at[..4], &[Some(2), Some(0), Some(4), Some(3)]);
        assert_eq!(&layout.at[4..], &[None, None, None, None]);
    }

    #[test]
    fn the_word_masks_find_exactly_the_bytes_that_are_not_plain() {
        for b in 0..=255u8 {
            for at in 0..8 {
                let mut word = [b'a'; 8];
                word[at] = b;
                let mask = not_plain(u64::from_le_bytes(word));
                let expected = CLASS[b as usize] != PLAIN;
                assert_eq!(mask != 0, expected, "byte {b:#x} at {at}");
                if expected {
                    assert_eq!(mask, 0x80 << (8 * at), "byte {b:#x} at {at}");
                }
            }
        }
    }

    #[test]
    fn ids_hash_apart() {
        let mut seen = HashSet::new();
        for i in 0..100_000u32 {
            for id in [
                format!("c{i:08}"),
                format!("{i}"),
                format!("o6_bmjrPTlm6_2sgVt7hM{i}"),
            ] {
                assert!(seen.insert(hash_bytes(id.as_bytes())), "{id}");
            }
        }
        assert_ne!(hash_bytes(b""), hash_bytes(b"\0"));
    }
}

//! The files of `siyu clv … --orders FILE` and `--summary FILE`: an orders CSV read into
//! purchase days as an import would store them, and the calibration summary CSV written and
//! read back (split in two and read on two threads when it has no quotes).

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, anyhow};

use siyu_core::clv::{CustomerSummary, History, PurchaseDays};
use siyu_core::import::{Columns, Kind, Record, RecordSource, parse_order};
use siyu_core::{CustomerId, OrderFact, OrderId, TenantZone, Timestamp};

use crate::service::import::{InvalidFile, MAX_LISTED, source_error};

/// Paid purchase days straight from an orders CSV, read by the importer's own reader with
/// naive times in `zone`: what importing the file into an empty tenant of that zone would
/// store. A file with any invalid row is refused with its problems listed; an order id
/// that appears twice counts as its last row (a re-import updates the order).
pub fn purchase_days_from_file(
    path: &Path,
    zone: &TenantZone,
    ignore_unknown: bool,
) -> anyhow::Result<PurchaseDays> {
    let open = || File::open(path).with_context(|| format!("opening {}", path.display()));
    let mut source = RecordSource::csv(open()?).map_err(|e| source_error(path, e))?;
    let columns = Columns::from_header(Kind::Orders, source.header(), ignore_unknown)
        .map_err(|e| anyhow!("{}:1: header: {e}", path.display()))?;
    let mut orders: HashMap<OrderId, OrderFact> = HashMap::new();
    let mut record = Record::default();
    let (mut rows, mut invalid) = (0u64, 0u64);
    let mut listed = Vec::new();
    while let Some(early) = source
        .next_record(&mut record)
        .map_err(|e| source_error(path, e))?
    {
        rows += 1;
        let parsed = match early {
            Some(problem) => Err(vec![problem]),
            None => parse_order(&columns, &record, zone),
        };
        match parsed {
            Ok(order) => {
                // The store keeps microseconds.
                let at = Timestamp::from_microsecond(order.ordered_at.as_microsecond())
                    .unwrap_or(order.ordered_at);
                orders.insert(
                    order.id,
                    OrderFact {
                        customer_id: order.customer_id,
                        ordered_at: at,
                        amount: order.amount,
                        status: order.status,
                    },
                );
            }
            Err(problems) => {
                invalid += 1;
                for p in problems {
                    if listed.len() < MAX_LISTED {
                        listed.push(format!("{}:{}: {p}", path.display(), record.line));
                    }
                }
            }
        }
    }
    if rows == 0 {
        anyhow::bail!("{}: no rows after the header", path.display());
    }
    if invalid > 0 {
        return Err(InvalidFile {
            file: path.to_owned(),
            listed,
            rows_with_problems: invalid,
            not_done: "nothing was fitted",
        }
        .into());
    }
    let mut days = PurchaseDays::new(zone);
    for order in orders.into_values() {
        days.add(order);
    }
    Ok(days)
}

/// The columns of the summary CSV, in order.
pub const SUMMARY_COLUMNS: [&str; 5] =
    ["customer_id", "frequency", "recency", "T", "monetary_value"];

/// `customer_id,frequency,recency,T,monetary_value`, by customer id; times in weeks and
/// spend in yuan, every number written so that it reads back to the same double.
pub fn write_summary_csv(out: impl Write, customers: &[CustomerSummary]) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(SUMMARY_COLUMNS)?;
    for c in customers {
        let h = &c.history;
        w.write_record([
            c.customer_id.as_str(),
            &h.frequency.to_string(),
            &h.recency.to_string(),
            &h.age.to_string(),
            &h.monetary_value.to_string(),
        ])?;
    }
    w.flush()?;
    Ok(())
}

/// Reads a summary CSV (as `write_summary_csv` writes it, or `lifetimes`' summary with the
/// same columns; extra columns are ignored). Every row is checked; a file with a bad row
/// is refused with its problems listed as `FILE:LINE: reason`. The models need no ids, so
/// the ids are checked and left behind. A file without quotes (as siyu writes it) is split
/// in two at a line end and read on two threads; one with quotes goes through the csv
/// reader.
pub fn read_summary_csv(path: &Path) -> anyhow::Result<Vec<History>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|e| anyhow!("{}: not UTF-8 text ({e})", path.display()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let rows: Vec<(u64, Vec<String>)> = if text.contains('"') {
        quoted_rows(path, text)?
    } else {
        Vec::new()
    };
    let mut lines = text.split('\n');
    let header: Vec<String> = if rows.is_empty() {
        lines
            .next()
            .unwrap_or("")
            .trim_end_matches('\r')
            .split(',')
            .map(str::to_owned)
            .collect()
    } else {
        rows[0].1.clone()
    };
    let at = |name: &str| {
        header
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| anyhow!("{}:1: header: no column '{name}'", path.display()))
    };
    let columns = [
        at("customer_id")?,
        at("frequency")?,
        at("recency")?,
        at("T")?,
        at("monetary_value")?,
    ];
    let parsed: Vec<Result<History, String>> = if rows.is_empty() {
        // The rows after the header, in two halves split at a line end.
        let body = &text[text.find('\n').map_or(text.len(), |n| n + 1)..];
        let middle = body[body.len() / 2..]
            .find('\n')
            .map_or(body.len(), |n| body.len() / 2 + n + 1);
        let (first, second) = body.split_at(middle);
        let second_line = 2 + first.bytes().filter(|&b| b == b'\n').count() as u64;
        // Which of the five fields each column of the file is (NONE for the others).
        let mut slot_of = vec![NONE; header.len()];
        for (slot, &column) in columns.iter().enumerate() {
            slot_of[column] = slot as u8;
        }
        let parse_half = |half: &str, first_line: u64| summary_rows(half, first_line, &slot_of);
        std::thread::scope(|scope| {
            let later = scope.spawn(|| parse_half(second, second_line));
            let mut out = parse_half(first, 2);
            out.extend(
                later
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            );
            out
        })
    } else {
        rows[1..]
            .iter()
            .filter(|(_, fields)| fields.iter().any(|f| !f.trim().is_empty()))
            .map(|(n, fields)| {
                let mut picked = [""; 5];
                for (slot, &at) in picked.iter_mut().zip(&columns) {
                    *slot = fields.get(at).map_or("", String::as_str);
                }
                summary_row(&picked).map_err(|reason| format!("{n}: {reason}"))
            })
            .collect()
    };
    let mut customers = Vec::with_capacity(parsed.len());
    let mut listed = Vec::new();
    let mut invalid = 0u64;
    for row in parsed {
        match row {
            Ok(c) => customers.push(c),
            Err(problem) => {
                invalid += 1;
                if listed.len() < MAX_LISTED {
                    listed.push(format!("{}:{problem}", path.display()));
                }
            }
        }
    }
    if invalid > 0 {
        return Err(InvalidFile {
            file: path.to_owned(),
            listed,
            rows_with_problems: invalid,
            not_done: "nothing was fitted",
        }
        .into());
    }
    Ok(customers)
}

/// A column of a summary file that is none of the five.
const NONE: u8 = u8::MAX;

/// The rows of a run of lines of a summary file without quotes, starting at line
/// `first_line`, in one pass over the bytes: a comma ends a field, a line end a field and
/// a row. `slot_of[column]` says which of the five fields a column is.
fn summary_rows(text: &str, first_line: u64, slot_of: &[u8]) -> Vec<Result<History, String>> {
    fn place<'t>(fields: &mut [&'t str; 5], slot_of: &[u8], column: usize, field: &'t str) {
        if let Some(&slot) = slot_of.get(column)
            && slot != NONE
        {
            fields[usize::from(slot)] = field.strip_suffix('\r').unwrap_or(field);
        }
    }
    let mut out = Vec::with_capacity(text.len() / 32);
    let mut fields = [""; 5];
    let (mut column, mut start, mut line) = (0, 0, first_line);
    let mut row = |fields: &[&str; 5], column: usize, last: &str, line: u64| {
        // A blank line is no row (as the csv reader has it).
        if column > 0 || !last.trim_ascii().is_empty() {
            out.push(summary_row(fields).map_err(|reason| format!("{line}: {reason}")));
        }
    };
    for (i, b) in text.bytes().enumerate() {
        if b != b',' && b != b'\n' {
            continue;
        }
        let field = &text[start..i];
        place(&mut fields, slot_of, column, field);
        start = i + 1;
        if b == b',' {
            column += 1;
            continue;
        }
        row(&fields, column, field, line);
        fields = [""; 5];
        column = 0;
        line += 1;
    }
    if start < text.len() {
        let field = &text[start..];
        place(&mut fields, slot_of, column, field);
        row(&fields, column, field, line);
    }
    out
}

/// Every record of a CSV text with quoted fields, with the line it starts on.
fn quoted_rows(path: &Path, text: &str) -> anyhow::Result<Vec<(u64, Vec<String>)>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    let mut record = csv::StringRecord::new();
    while reader
        .read_record(&mut record)
        .map_err(|e| anyhow!("{}: {e}", path.display()))?
    {
        let line = record.position().map_or(0, |p| p.line());
        rows.push((line, record.iter().map(str::to_owned).collect()));
    }
    Ok(rows)
}

/// One row of a summary from its five fields (customer_id, frequency, recency, T,
/// monetary_value).
fn summary_row(fields: &[&str; 5]) -> Result<History, String> {
    let field = |i: usize| fields[i].trim_ascii();
    let number = |i: usize, name: &str| {
        field(i)
            .parse::<f64>()
            .map_err(|_| format!("{name}: '{}' is not a number", field(i)))
    };
    check_id(fields[0]).map_err(|e| format!("customer_id: {e}"))?;
    let frequency = match field(1).parse::<u32>() {
        Ok(x) => x,
        Err(_) => {
            let x = number(1, "frequency")?;
            if !(x >= 0.0 && x.fract() == 0.0 && x <= f64::from(u32::MAX)) {
                return Err(format!(
                    "frequency: '{}' is not a whole number of days",
                    field(1)
                ));
            }
            x as u32
        }
    };
    let h = History {
        frequency,
        recency: number(2, "recency")?,
        age: number(3, "T")?,
        monetary_value: number(4, "monetary_value")?,
    };
    h.check().map_err(|e| e.to_string())?;
    Ok(h)
}

/// The checks of `CustomerId::parse` without keeping the id (plain ASCII ids, the common
/// case, are checked byte by byte; anything else by the parser itself).
fn check_id(text: &str) -> Result<(), siyu_core::ids::IdError> {
    let plain = text.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
    let trimmed = text.trim_ascii();
    if plain && !trimmed.is_empty() && trimmed.len() <= siyu_core::ids::MAX_ID_LEN {
        return Ok(());
    }
    CustomerId::parse(text).map(drop)
}

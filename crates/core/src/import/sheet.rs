//! Rows out of a spreadsheet (xlsx, and the older xls): the merchants' exports that come as
//! workbooks (PDD's order details, Taobao's newer template). An xlsx sheet is streamed cell
//! by cell on a thread of its own and handed over a row at a time through a short queue,
//! so memory stays flat whatever the sheet's length (the workbook's table of shared texts
//! is the part held whole); an xls sheet is read whole, as the format requires.

use std::io::{Read, Seek};
use std::sync::mpsc;

use calamine::{CellErrorType, Data, DataRef, ExcelDateTime, Reader, Xls, Xlsx};

/// Rows waiting between the sheet's reader and the importer.
const QUEUE: usize = 512;
/// The widest row read (Excel's own limit is 16,384 columns).
pub const MAX_COLUMNS: u32 = 1_024;

/// What the sheet's reader hands over.
pub(crate) enum SheetRow {
    /// A row (1-based, as the spreadsheet numbers it) and its cells as text.
    Row(u32, Result<Vec<String>, String>),
    /// Reading stopped: the workbook cannot be read.
    Failed(String),
}

/// Opens the workbook in `reader`, picks the sheet (`sheet`, or the first), and starts its
/// reader. Returns the sheet's name, its first row (the header) and the queue of the rest.
pub(crate) fn open<R: Read + Seek + Send + 'static>(
    reader: R,
    sheet: Option<&str>,
) -> Result<(String, u32, Vec<String>, mpsc::Receiver<SheetRow>), String> {
    let (sender, rows) = mpsc::sync_channel::<SheetRow>(QUEUE);
    let (named, chosen) = mpsc::sync_channel::<Result<String, String>>(1);
    let wanted = sheet.map(str::to_owned);
    std::thread::Builder::new()
        .name("sheet reader".into())
        .spawn(move || read(reader, wanted, &named, &sender))
        .map_err(|e| format!("starting the sheet's reader: {e}"))?;
    let name = chosen
        .recv()
        .map_err(|_| "the sheet's reader stopped".to_owned())??;
    match rows.recv() {
        Ok(SheetRow::Row(row, Ok(cells))) => Ok((name, row, cells, rows)),
        Ok(SheetRow::Row(row, Err(problem))) => Err(format!("{name}:{row}: header: {problem}")),
        Ok(SheetRow::Failed(e)) => Err(e),
        Err(_) => Err(format!("sheet {name} is empty")),
    }
}

fn read<R: Read + Seek>(
    mut reader: R,
    wanted: Option<String>,
    named: &mpsc::SyncSender<Result<String, String>>,
    out: &mpsc::SyncSender<SheetRow>,
) {
    let mut magic = [0u8; 4];
    let format = reader
        .read_exact(&mut magic)
        .and_then(|()| reader.rewind())
        .map(|()| magic);
    let failed = match format {
        Ok([b'P', b'K', 3, 4]) => match Xlsx::new(reader) {
            Ok(mut xlsx) => match choose(&xlsx.sheet_names(), wanted.as_deref(), named) {
                Some(name) => stream_xlsx(&mut xlsx, &name, out).map(|e| (name, e)),
                None => return,
            },
            Err(e) => {
                let _ = named.send(Err(format!("not a workbook siyu can read ({e})")));
                return;
            }
        },
        Ok([0xD0, 0xCF, 0x11, 0xE0]) => match Xls::new(reader) {
            Ok(mut xls) => match choose(&xls.sheet_names(), wanted.as_deref(), named) {
                Some(name) => match xls.worksheet_range(&name) {
                    Ok(range) => {
                        let (top, _) = range.start().unwrap_or((0, 0));
                        for (i, row) in range.rows().enumerate() {
                            let cells: Vec<DataRef<'_>> = row.iter().map(owned_ref).collect();
                            if !send_row(out, top + i as u32 + 1, &cells) {
                                return;
                            }
                        }
                        None
                    }
                    Err(e) => Some((name, e.to_string())),
                },
                None => return,
            },
            Err(e) => {
                let _ = named.send(Err(format!("not a workbook siyu can read ({e})")));
                return;
            }
        },
        _ => {
            let _ = named.send(Err("not a workbook siyu can read (xlsx or xls)".to_owned()));
            return;
        }
    };
    if let Some((name, e)) = failed {
        let _ = out.send(SheetRow::Failed(format!("reading sheet {name}: {e}")));
    }
}

/// The sheet to read: `wanted`, or the first; told to the opener either way.
fn choose(
    names: &[String],
    wanted: Option<&str>,
    named: &mpsc::SyncSender<Result<String, String>>,
) -> Option<String> {
    let chosen = match wanted {
        Some(w) if names.iter().any(|n| n == w) => Ok(w.to_owned()),
        Some(w) => Err(format!(
            "no sheet named '{w}' (the workbook has: {})",
            names.join(", ")
        )),
        None => names
            .first()
            .cloned()
            .ok_or_else(|| "the workbook has no sheet".to_owned()),
    };
    let name = chosen.as_ref().ok().cloned();
    named.send(chosen).ok()?;
    name
}

/// Streams an xlsx sheet's cells, a row at a time; the error that stopped it, if any.
fn stream_xlsx<R: Read + Seek>(
    xlsx: &mut Xlsx<R>,
    name: &str,
    out: &mpsc::SyncSender<SheetRow>,
) -> Option<String> {
    let mut cells = match xlsx.worksheet_cells_reader(name) {
        Ok(c) => c,
        Err(e) => return Some(e.to_string()),
    };
    let mut row: Vec<DataRef<'_>> = Vec::new();
    let mut at: Option<u32> = None;
    loop {
        let cell = match cells.next_cell() {
            Ok(Some(cell)) => cell,
            Ok(None) => break,
            Err(e) => return Some(e.to_string()),
        };
        let (r, c) = cell.get_position();
        if at != Some(r) {
            if let Some(done) = at
                && !send_row(out, done + 1, &row)
            {
                return None;
            }
            row.clear();
            at = Some(r);
        }
        if c >= MAX_COLUMNS {
            if cell.get_value() != &DataRef::Empty {
                let _ = out.send(SheetRow::Row(
                    r + 1,
                    Err(format!("has a cell past column {MAX_COLUMNS}")),
                ));
                return None;
            }
            continue;
        }
        let c = c as usize;
        if row.len() <= c {
            row.resize(c + 1, DataRef::Empty);
        }
        row[c] = cell.get_value().clone();
    }
    if let Some(done) = at {
        send_row(out, done + 1, &row);
    }
    None
}

fn owned_ref(d: &Data) -> DataRef<'_> {
    match d {
        Data::Int(i) => DataRef::Int(*i),
        Data::Float(f) => DataRef::Float(*f),
        Data::String(s) => DataRef::SharedString(s),
        Data::Bool(b) => DataRef::Bool(*b),
        Data::DateTime(t) => DataRef::DateTime(*t),
        Data::DateTimeIso(s) => DataRef::SharedString(s),
        Data::DurationIso(s) => DataRef::SharedString(s),
        Data::Error(e) => DataRef::Error(e.clone()),
        Data::Empty => DataRef::Empty,
    }
}

/// Sends a row unless it is blank; false when the importer has gone.
fn send_row(out: &mpsc::SyncSender<SheetRow>, row: u32, cells: &[DataRef<'_>]) -> bool {
    if cells.iter().all(|c| match c {
        DataRef::Empty => true,
        DataRef::String(s) => s.trim().is_empty(),
        DataRef::SharedString(s) => s.trim().is_empty(),
        _ => false,
    }) {
        return true;
    }
    let text: Result<Vec<String>, String> = cells
        .iter()
        .enumerate()
        .map(|(i, c)| cell_text(c).map_err(|e| format!("column {}: {e}", column_name(i))))
        .collect();
    out.send(SheetRow::Row(row, text)).is_ok()
}

/// A cell as the text a CSV export would have held.
fn cell_text(cell: &DataRef<'_>) -> Result<String, String> {
    Ok(match cell {
        DataRef::Empty => String::new(),
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.clone(),
        DataRef::SharedString(s) => (*s).to_owned(),
        DataRef::Int(i) => i.to_string(),
        DataRef::Float(f) => number_text(*f)?,
        DataRef::Bool(b) => b.to_string(),
        DataRef::DateTime(t) => datetime_text(t),
        DataRef::Error(e) => return Err(format!("holds the error {}", error_name(e))),
    })
}

/// A number cell as text: whole numbers without a fraction, others as short as they
/// round-trip. A whole number past 2^53 has lost digits (a 19-digit order number typed as a
/// number): it is refused rather than kept wrong.
fn number_text(f: f64) -> Result<String, String> {
    if !f.is_finite() {
        return Err("holds a number that is not finite".to_owned());
    }
    if f.fract() == 0.0 {
        if f.abs() >= 9_007_199_254_740_992.0 {
            return Err(format!(
                "holds the number {f:e}, too long to be exact: long ids must be text cells"
            ));
        }
        return Ok(format!("{}", f as i64));
    }
    Ok(format!("{f}"))
}

fn datetime_text(t: &ExcelDateTime) -> String {
    let (y, mo, d, h, mi, s, ms) = t.to_ymd_hms_milli();
    if t.is_duration() {
        return format!("{}", t.as_f64());
    }
    if ms == 0 {
        format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
    } else {
        format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{ms:03}")
    }
}

fn error_name(e: &CellErrorType) -> String {
    format!("{e}")
}

/// `A`, `B`, … `Z`, `AA`, …: a column as the spreadsheet names it.
pub fn column_name(index: usize) -> String {
    let mut n = index + 1;
    let mut name = Vec::new();
    while n > 0 {
        let rem = (n - 1) % 26;
        name.push(b'A' + rem as u8);
        n = (n - 1) / 26;
    }
    name.reverse();
    String::from_utf8(name).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_text_as_a_csv_would_hold_them() {
        assert_eq!(number_text(128.0).as_deref(), Ok("128"));
        assert_eq!(number_text(99.9).as_deref(), Ok("99.9"));
        assert_eq!(number_text(18_618_486_065.0).as_deref(), Ok("18618486065"));
        assert!(number_text(6_917_926_768_823_643_751.0).is_err());
        assert_eq!(column_name(0), "A");
        assert_eq!(column_name(25), "Z");
        assert_eq!(column_name(26), "AA");
    }
}

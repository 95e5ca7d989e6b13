//! Records out of a file: CSV (comma-separated, header row, quoted fields may hold
//! newlines) or JSON Lines. Streams; nothing holds more than one record.

use std::io::{self, BufRead, BufReader, Read};

use super::decode::{self, EncodingError, TextEncoding};
use super::sheet::{self, SheetRow};
use super::{Kind, Problem};

/// One row, with the line of the file it starts on (the header is line 1).
#[derive(Debug, Clone, Default)]
pub struct Record {
    pub line: u64,
    pub fields: csv::ByteRecord,
}

/// A problem that stops the reading of a file altogether.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("the file is empty")]
    Empty,
    #[error(transparent)]
    Encoding(#[from] EncodingError),
    #[error("line {line}: {message}")]
    Malformed { line: u64, message: String },
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("{0}")]
    Workbook(String),
}

pub struct RecordSource {
    inner: Inner,
    header: Vec<String>,
    encoding: TextEncoding,
}

/// Where the line breaks of the text read so far are, for the records not yet placed.
/// The csv crate's own record lines are off after `\r\n` and blank lines, so the line of
/// a record is counted here from the byte where it ends.
#[derive(Default)]
struct LineBreaks {
    /// Offsets of `\n` not yet passed by a record's end.
    pending: std::collections::VecDeque<u64>,
    /// Line breaks before the first pending one.
    passed: u64,
    /// Bytes of text read so far.
    read: u64,
}

impl LineBreaks {
    /// The line (1-based) holding the byte at `offset`; offsets asked only ever grow.
    fn line_of(&mut self, offset: u64) -> u64 {
        while self.pending.front().is_some_and(|&b| b < offset) {
            self.pending.pop_front();
            self.passed += 1;
        }
        self.passed + 1
    }
}

type SharedBreaks = std::sync::Arc<std::sync::Mutex<LineBreaks>>;

/// Passes text through, noting where its line breaks are.
struct CountingReader<R> {
    inner: R,
    breaks: SharedBreaks,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut breaks = self
            .breaks
            .lock()
            .map_err(|_| io::Error::other("line counter poisoned"))?;
        let start = breaks.read;
        for i in memchr::memchr_iter(b'\n', &buf[..n]) {
            breaks.pending.push_back(start + i as u64);
        }
        breaks.read += n as u64;
        Ok(n)
    }
}

enum Inner {
    Csv(csv::Reader<Box<dyn Read + Send>>, SharedBreaks),
    JsonLines {
        reader: BufReader<Box<dyn Read + Send>>,
        kind: Kind,
        ignore_unknown: bool,
        line: u64,
        bytes: u64,
        buf: String,
    },
    /// A spreadsheet's sheet, read on a thread of its own (see [`sheet`]).
    Sheet {
        name: String,
        rows: std::sync::mpsc::Receiver<SheetRow>,
        width: usize,
        first: u64,
        last: u64,
    },
}

impl RecordSource {
    /// A sheet of a workbook (xlsx or xls): `sheet`, or the first; its first row that is
    /// not blank is the header. Records carry their row number as their line.
    pub fn sheet<R: Read + io::Seek + Send + 'static>(
        reader: R,
        sheet: Option<&str>,
    ) -> Result<RecordSource, SourceError> {
        let (name, row, header, rows) =
            sheet::open(reader, sheet).map_err(SourceError::Workbook)?;
        Ok(RecordSource {
            inner: Inner::Sheet {
                name,
                rows,
                width: header.len(),
                first: u64::from(row),
                last: u64::from(row),
            },
            header,
            encoding: TextEncoding::Utf8,
        })
    }

    /// The line (a workbook's row) the header is on.
    pub fn header_line(&self) -> u64 {
        match &self.inner {
            Inner::Sheet { first, .. } => *first,
            _ => 1,
        }
    }

    /// The sheet a workbook's records come from.
    pub fn sheet_name(&self) -> Option<&str> {
        match &self.inner {
            Inner::Sheet { name, .. } => Some(name),
            _ => None,
        }
    }

    /// A CSV file: reads and returns the header row; the records follow.
    pub fn csv<R: Read + Send + 'static>(reader: R) -> Result<RecordSource, SourceError> {
        let decode::Utf8Text {
            encoding,
            reader: text,
        } = decode::utf8_reader(reader)??;
        let breaks = SharedBreaks::default();
        let counting: Box<dyn Read + Send> = Box::new(CountingReader {
            inner: text,
            breaks: breaks.clone(),
        });
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(256 * 1024)
            .from_reader(counting);
        let mut first = csv::ByteRecord::new();
        let got = csv
            .read_byte_record(&mut first)
            .map_err(|e| malformed(1, e))?;
        if !got || (first.len() == 1 && first[0].iter().all(u8::is_ascii_whitespace)) {
            return Err(SourceError::Empty);
        }
        let header = first
            .iter()
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .collect();
        Ok(RecordSource {
            inner: Inner::Csv(csv, breaks),
            header,
            encoding,
        })
    }

    /// A JSON Lines file: one object per line with the canonical columns of `kind` as keys.
    /// Other keys are a problem of their row unless `ignore_unknown`.
    pub fn json_lines<R: Read + Send + 'static>(
        reader: R,
        kind: Kind,
        ignore_unknown: bool,
    ) -> Result<RecordSource, SourceError> {
        let decode::Utf8Text {
            encoding,
            reader: text,
        } = decode::utf8_reader(reader)??;
        let mut reader = BufReader::with_capacity(256 * 1024, text);
        if reader.fill_buf()?.is_empty() {
            return Err(SourceError::Empty);
        }
        Ok(RecordSource {
            inner: Inner::JsonLines {
                reader,
                kind,
                ignore_unknown,
                line: 0,
                bytes: 0,
                buf: String::new(),
            },
            header: kind.columns().iter().map(|c| (*c).to_owned()).collect(),
            encoding,
        })
    }

    pub fn header(&self) -> &[String] {
        &self.header
    }

    pub fn encoding(&self) -> TextEncoding {
        self.encoding
    }

    /// Bytes of (decoded) text read so far, for progress.
    pub fn bytes_read(&self) -> u64 {
        match &self.inner {
            Inner::Csv(r, _) => r.position().byte(),
            Inner::JsonLines { bytes, .. } => *bytes,
            Inner::Sheet { .. } => 0,
        }
    }

    /// Reads the next record into `record`; `Ok(None)` at the end. A JSON line that
    /// cannot be read as a record yields `Ok(Some(problem))` with the record's line set.
    pub fn next_record(
        &mut self,
        record: &mut Record,
    ) -> Result<Option<Option<Problem>>, SourceError> {
        match &mut self.inner {
            Inner::Csv(reader, breaks) => loop {
                let more = reader.read_byte_record(&mut record.fields).map_err(|e| {
                    let line = e.position().map_or(0, csv::Position::line);
                    malformed(line, e)
                })?;
                if !more {
                    return Ok(None);
                }
                // The record ends on the line of its last byte (its terminator, or the last
                // byte of the file) and starts as many lines earlier as its quoted fields
                // hold line breaks.
                let end = reader.position().byte().saturating_sub(1);
                let inside: u64 = record
                    .fields
                    .iter()
                    .map(|f| f.iter().filter(|&&b| b == b'\n').count() as u64)
                    .sum();
                let last_line = breaks
                    .lock()
                    .map_err(|_| io::Error::other("line counter poisoned"))?
                    .line_of(end);
                record.line = last_line.saturating_sub(inside);
                let blank = record.fields.len() == 1 && record.fields[0].trim_ascii().is_empty();
                if !blank {
                    return Ok(Some(None));
                }
            },
            Inner::JsonLines {
                reader,
                kind,
                ignore_unknown,
                line,
                bytes,
                buf,
            } => loop {
                buf.clear();
                let n = reader.read_line(buf).map_err(|e| SourceError::Malformed {
                    line: *line + 1,
                    message: e.to_string(),
                })?;
                if n == 0 {
                    return Ok(None);
                }
                *line += 1;
                *bytes += n as u64;
                let text = buf.trim();
                if text.is_empty() {
                    continue;
                }
                record.line = *line;
                return Ok(Some(json_record(
                    text,
                    *kind,
                    *ignore_unknown,
                    &mut record.fields,
                )));
            },
            Inner::Sheet {
                rows, width, last, ..
            } => match rows.recv() {
                Err(_) => Ok(None),
                Ok(SheetRow::Failed(message)) => Err(SourceError::Malformed {
                    line: *last,
                    message,
                }),
                Ok(SheetRow::Row(row, cells)) => {
                    *last = u64::from(row);
                    record.line = u64::from(row);
                    record.fields.clear();
                    match cells {
                        Ok(mut cells) => {
                            // Trailing empty cells are not stored in a sheet.
                            if cells.len() < *width {
                                cells.resize(*width, String::new());
                            }
                            while cells.len() > *width && cells.last().is_some_and(String::is_empty)
                            {
                                cells.pop();
                            }
                            for cell in &cells {
                                record.fields.push_field(cell.as_bytes());
                            }
                            Ok(Some(None))
                        }
                        Err(problem) => Ok(Some(Some(Problem::new("row", problem)))),
                    }
                }
            },
        }
    }

    /// The record as it stood in the file, for a rejects file.
    pub fn raw_fields(&self, record: &Record) -> Vec<String> {
        match &self.inner {
            Inner::Csv(..) => record
                .fields
                .iter()
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .collect(),
            Inner::JsonLines { buf, .. } => vec![buf.trim().to_owned()],
            Inner::Sheet { .. } => record
                .fields
                .iter()
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .collect(),
        }
    }

    pub fn is_json_lines(&self) -> bool {
        matches!(self.inner, Inner::JsonLines { .. })
    }
}

fn malformed(line: u64, e: impl std::fmt::Display) -> SourceError {
    SourceError::Malformed {
        line,
        message: e.to_string(),
    }
}

/// Lays a JSON object's values out in the canonical column order of `kind`.
fn json_record(
    text: &str,
    kind: Kind,
    ignore_unknown: bool,
    fields: &mut csv::ByteRecord,
) -> Option<Problem> {
    fields.clear();
    let columns = kind.columns();
    let object = match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text) {
        Ok(o) => o,
        Err(e) => {
            for _ in columns {
                fields.push_field(b"");
            }
            return Some(Problem::new("row", format!("is not a JSON object ({e})")));
        }
    };
    let mut problem = None;
    if let Some(unknown) = object
        .keys()
        .find(|k| !ignore_unknown && !columns.contains(&k.as_str()))
    {
        problem = Some(Problem::new(
            unknown.clone(),
            format!("unknown field (known: {})", columns.join(", ")),
        ));
    }
    for column in columns {
        match object.get(*column) {
            None | Some(serde_json::Value::Null) => fields.push_field(b""),
            Some(serde_json::Value::String(s)) => fields.push_field(s.as_bytes()),
            Some(other) => fields.push_field(other.to_string().as_bytes()),
        }
    }
    problem
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<(u64, String)> {
        let mut source = RecordSource::csv(io::Cursor::new(text.as_bytes().to_vec())).expect("csv");
        let mut record = Record::default();
        let mut out = Vec::new();
        while source.next_record(&mut record).expect("record").is_some() {
            out.push((
                record.line,
                String::from_utf8_lossy(&record.fields[0]).into_owned(),
            ));
        }
        out
    }

    #[test]
    fn records_carry_the_line_they_start_on_whatever_the_line_ends() {
        let expected = [(2, "a"), (3, "x\ny"), (5, "c"), (7, "d")];
        let expected: Vec<(u64, String)> = expected
            .iter()
            .map(|(l, s)| (*l, (*s).to_owned()))
            .collect();
        assert_eq!(lines("h,k\na,1\n\"x\ny\",2\nc,3\n\nd,4"), expected);
        let crlf: Vec<(u64, String)> = expected
            .iter()
            .map(|(l, s)| (*l, s.replace('\n', "\r\n")))
            .collect();
        assert_eq!(
            lines("h,k\r\na,1\r\n\"x\r\ny\",2\r\nc,3\r\n\r\nd,4\r\n"),
            crlf
        );
    }
}

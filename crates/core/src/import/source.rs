//! Records out of a file: CSV (comma-separated, header row, quoted fields may hold
//! newlines) or JSON Lines. Streams; nothing holds more than one record.

use std::io::{self, BufRead, BufReader, Read};

use super::decode::{self, EncodingError, TextEncoding};
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
}

pub struct RecordSource {
    inner: Inner,
    header: Vec<String>,
    encoding: TextEncoding,
}

enum Inner {
    Csv(csv::Reader<Box<dyn Read + Send>>),
    JsonLines {
        reader: BufReader<Box<dyn Read + Send>>,
        kind: Kind,
        ignore_unknown: bool,
        line: u64,
        bytes: u64,
        buf: String,
    },
}

impl RecordSource {
    /// A CSV file: reads and returns the header row; the records follow.
    pub fn csv<R: Read + Send + 'static>(reader: R) -> Result<RecordSource, SourceError> {
        let decode::Utf8Text {
            encoding,
            reader: text,
        } = decode::utf8_reader(reader)??;
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(256 * 1024)
            .from_reader(text);
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
            inner: Inner::Csv(csv),
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
            Inner::Csv(r) => r.position().byte(),
            Inner::JsonLines { bytes, .. } => *bytes,
        }
    }

    /// Reads the next record into `record`; `Ok(None)` at the end. A JSON line that
    /// cannot be read as a record yields `Ok(Some(problem))` with the record's line set.
    pub fn next_record(
        &mut self,
        record: &mut Record,
    ) -> Result<Option<Option<Problem>>, SourceError> {
        match &mut self.inner {
            Inner::Csv(reader) => loop {
                let more = reader.read_byte_record(&mut record.fields).map_err(|e| {
                    let line = e.position().map_or(0, csv::Position::line);
                    malformed(line, e)
                })?;
                if !more {
                    return Ok(None);
                }
                record.line = record.fields.position().map_or(0, csv::Position::line);
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
        }
    }

    /// The record as it stood in the file, for a rejects file.
    pub fn raw_fields(&self, record: &Record) -> Vec<String> {
        match &self.inner {
            Inner::Csv(_) => record
                .fields
                .iter()
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .collect(),
            Inner::JsonLines { buf, .. } => vec![buf.trim().to_owned()],
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

//! How reports leave the program: an aligned table for people, CSV or JSON for programs.

use std::fmt::Write as _;

use clap::ValueEnum;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    #[default]
    Table,
    Csv,
    Json,
}

/// Prints a list: JSON, CSV with the fields' names as header, or a table of `headers`
/// with `row` giving each line's cells.
pub fn print_lines<T: serde::Serialize>(
    format: Format,
    lines: &[T],
    headers: &[&str],
    row: impl Fn(&T) -> Vec<String>,
) -> anyhow::Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(lines)?),
        Format::Csv => {
            let mut w = csv::Writer::from_writer(std::io::stdout());
            for l in lines {
                w.serialize(l)?;
            }
            w.flush()?;
        }
        Format::Table => {
            let mut t = Table::new(headers.iter().copied());
            for l in lines {
                t.row(row(l));
            }
            print!("{}", t.render());
        }
    }
    Ok(())
}

/// A plain text table, padded by display width (户 and ，take two cells, a combining
/// mark none); numbers (cells that start with a digit, `-` or `¥`) align right.
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
    /// Every cell flush left (a card of a customer: a phone number is not a figure).
    left: bool,
}

impl Table {
    /// A table under `headers`, in the chosen language (see [`super::lang`]).
    pub fn new<S: Into<String>>(headers: impl IntoIterator<Item = S>) -> Table {
        Table {
            headers: headers
                .into_iter()
                .map(|h| super::lang::tr(&h.into()))
                .collect(),
            rows: Vec::new(),
            left: false,
        }
    }

    /// The table with every cell flush left.
    pub fn flush_left(mut self) -> Table {
        self.left = true;
        self
    }

    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    pub fn render(&self) -> String {
        let width = |s: &str| unicode_width::UnicodeWidthStr::width(s);
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if i < widths.len() {
                    widths[i] = widths[i].max(width(cell));
                }
            }
        }
        let numeric = |s: &str| {
            s.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '¥') || s == "n/a"
        };
        let mut out = String::new();
        let mut line = |cells: &[String], header: bool| {
            let mut text = String::new();
            for (i, cell) in cells.iter().enumerate() {
                let pad = widths
                    .get(i)
                    .copied()
                    .unwrap_or(0)
                    .saturating_sub(width(cell));
                if i > 0 {
                    text.push_str("  ");
                }
                if !header && !self.left && numeric(cell) && i > 0 {
                    text.push_str(&" ".repeat(pad));
                    text.push_str(cell);
                } else {
                    text.push_str(cell);
                    text.push_str(&" ".repeat(pad));
                }
            }
            let _ = writeln!(out, "{}", text.trim_end());
        };
        line(&self.headers, true);
        for row in &self.rows {
            line(row, false);
        }
        out
    }
}

pub use crate::wording::{article, count, plural, thousands};

/// Yuan with thousands separators: `¥1,234.50`.
pub fn yuan(m: siyu_core::Money) -> String {
    let fen = m.fen();
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    format!("{sign}¥{}.{:02}", thousands(abs / 100), abs % 100)
}

/// An instant as people read it: the tenant's local time to the second,
/// `2026-12-07 20:07:45` (CSV and JSON keep RFC 3339 UTC for programs).
pub fn local_time(zone: &siyu_core::TenantZone, at: siyu_core::Timestamp) -> String {
    let tz = jiff::tz::TimeZone::get(zone.name()).unwrap_or(jiff::tz::TimeZone::UTC);
    tz.to_datetime(at).strftime("%Y-%m-%d %H:%M:%S").to_string()
}

/// An RFC 3339 time as stored in a line for programs, shown as [`local_time`]; text that
/// is not one stays as it is.
pub fn local_time_of(zone: &siyu_core::TenantZone, rfc3339: &str) -> String {
    rfc3339
        .parse()
        .map_or_else(|_| rfc3339.to_owned(), |at| local_time(zone, at))
}

/// A share as a percentage with one decimal, or `n/a`.
pub fn percent(share: Option<f64>) -> String {
    share.map_or_else(|| "n/a".to_owned(), |s| format!("{:.1}%", s * 100.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(
            yuan(siyu_core::Money::from_fen(123_456_789)),
            "¥1,234,567.89"
        );
    }

    #[test]
    fn times_for_people_are_local_to_the_second() {
        let zone = siyu_core::TenantZone::named("Asia/Shanghai").expect("zone");
        let at: siyu_core::Timestamp = "2026-12-07T12:07:45.157552Z".parse().expect("time");
        assert_eq!(local_time(&zone, at), "2026-12-07 20:07:45");
        assert_eq!(
            local_time_of(&zone, "2026-12-07T12:07:45.157552Z"),
            "2026-12-07 20:07:45"
        );
    }

    #[test]
    fn table_columns_are_as_wide_as_their_text_shows() {
        // 户外 takes four cells; ﾊﾝｶｸ (half-width kana) four; é as e and a combining
        // accent one.
        let mut t = Table::new(["tag", "customers"]);
        t.row(["户外", "1"]);
        t.row(["ﾊﾝｶｸ", "22"]);
        t.row(["cafe\u{301}", "333"]);
        assert_eq!(
            t.render(),
            "tag   customers\n户外          1\nﾊﾝｶｸ         22\ncafe\u{301}        333\n"
        );
    }

    #[test]
    fn tables_align_numbers_right() {
        let mut t = Table::new(["channel", "customers"]);
        t.row(["douyin", "7,000"]);
        t.row(["store", "30"]);
        assert_eq!(
            t.render(),
            "channel  customers\ndouyin       7,000\nstore           30\n"
        );
    }
}

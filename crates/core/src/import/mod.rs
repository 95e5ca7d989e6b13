//! Reading merchants' files in the canonical formats of DESIGN.md ("Data in"): the header
//! is checked once, every row is validated into a domain type or a list of problems that
//! name the line and the field.

pub mod decode;
pub mod mapping;
pub mod preset;
pub mod sheet;
pub mod source;

use std::fmt;

use crate::channel::Channel;
use crate::customer::{Gender, NewCustomer, masked_phone, parse_phone};
use crate::event::{EventType, NewEvent};
use crate::ids::{CustomerId, EventId, OrderId};
use crate::money::Money;
use crate::order::{NewOrder, OrderStatus};
use crate::time::TenantZone;

pub use mapping::Mapping;
pub use preset::Preset;
pub use source::{Record, RecordSource, SourceError};

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Customers,
    Orders,
    Events,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Customers => "customers",
            Kind::Orders => "orders",
            Kind::Events => "events",
        }
    }

    /// The canonical columns, required ones first.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            Kind::Customers => &[
                "customer_id",
                "name",
                "phone",
                "gender",
                "birthday",
                "region",
                "channel",
                "referrer_id",
                "joined_at",
                "tags",
            ],
            Kind::Orders => &[
                "order_id",
                "customer_id",
                "ordered_at",
                "amount",
                "discount",
                "coupon_code",
                "channel",
                "status",
            ],
            Kind::Events => &[
                "event_id",
                "customer_id",
                "type",
                "occurred_at",
                "properties",
            ],
        }
    }

    pub fn required(self) -> &'static [&'static str] {
        let n = match self {
            Kind::Customers => 1,
            Kind::Orders => 4,
            Kind::Events => 4,
        };
        &self.columns()[..n]
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A problem with the header: the whole file is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("missing required column '{0}'")]
    MissingColumn(&'static str),
    #[error(
        "unknown column '{column}' (known: {known}; pass --ignore-unknown to skip it, or --map '{column}=COLUMN' to read it as one)"
    )]
    UnknownColumn { column: String, known: String },
    #[error("column '{0}' appears twice")]
    DuplicateColumn(String),
    #[error(
        "the header has one column '{header}'; the file looks {delimiter}-separated, but CSV files must be comma-separated"
    )]
    WrongDelimiter {
        header: String,
        delimiter: &'static str,
    },
    #[error("column {0} of the header is empty")]
    EmptyColumn(usize),
    #[error("--map names '{column}', which is not a column of {kind} (known: {known})")]
    MapTarget {
        column: String,
        kind: Kind,
        known: String,
    },
    #[error("--map names '{0}', which the header lacks")]
    MappedAbsent(String),
    #[error("{0}")]
    ItemList(&'static str),
}

/// One problem with one field of one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: String,
    pub reason: String,
}

impl Problem {
    pub fn new(field: impl Into<String>, reason: impl fmt::Display) -> Problem {
        Problem {
            field: field.into(),
            reason: reason.to_string(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// Strips the guards spreadsheets put around text (`="123"`, a leading `'` or tab) and
/// surrounding spaces, so ids stay exactly as the merchant's system wrote them.
pub fn clean_field(raw: &str) -> &str {
    let s = raw.trim();
    if let Some(inner) = s.strip_prefix("=\"").and_then(|r| r.strip_suffix('"')) {
        return inner.trim();
    }
    if let Some(rest) = s.strip_prefix('\'') {
        return rest.trim();
    }
    s
}

/// Values that shop exports write for "nothing here": Douyin's `-`, and the placeholders
/// that stand for encrypted personal data (`##密文`, `$$密文`), which are never a name, a
/// phone or a key.
pub fn is_placeholder(field: &str) -> bool {
    matches!(field, "-" | "--" | "—")
        || field.ends_with("密文") && (field.starts_with("##") || field.starts_with("$$"))
        || is_masked(field)
}

/// A value with part of it hidden (`186******05`, `张**`, a province `****`): never a
/// key, a phone or a name.
pub fn is_masked(field: &str) -> bool {
    field.contains("**")
}

/// Where each canonical column sits in a file's header.
#[derive(Debug, Clone)]
pub struct Columns {
    kind: Kind,
    /// For each canonical column (in `Kind::columns` order), its positions in the file,
    /// best first: more than one only when several synonyms of it are present, and then a
    /// row's first non-empty one is read.
    positions: Vec<Vec<usize>>,
    /// Header names read as a canonical column they do not spell: (name, column).
    renamed: Vec<(String, &'static str)>,
    /// What a column reads when the file gives nothing (a platform's channel).
    defaults: Vec<Option<&'static str>>,
    width: usize,
}

impl Columns {
    pub fn from_header(
        kind: Kind,
        header: &[String],
        ignore_unknown: bool,
    ) -> Result<Columns, HeaderError> {
        Columns::from_header_mapped(kind, header, &Mapping::default(), ignore_unknown)
    }

    /// The header read with the merchant's `mapping` first, then the canonical names, then
    /// their synonyms (see [`mapping::synonyms`]).
    pub fn from_header_mapped(
        kind: Kind,
        header: &[String],
        mapping: &Mapping,
        ignore_unknown: bool,
    ) -> Result<Columns, HeaderError> {
        Columns::from_export(kind, header, mapping, None, ignore_unknown)
    }

    /// The header of a platform's export read as `preset` says (after the merchant's
    /// `mapping`): columns the preset does not read are skipped, and orders without a
    /// channel take the platform's.
    pub fn from_export(
        kind: Kind,
        header: &[String],
        mapping: &Mapping,
        preset: Option<&Preset>,
        ignore_unknown: bool,
    ) -> Result<Columns, HeaderError> {
        let canonical = kind.columns();
        let ignore_unknown = ignore_unknown || preset.is_some();
        if header.len() == 1 {
            let only = header[0].as_str();
            for (c, name) in [(';', "semicolon"), ('\t', "tab"), ('|', "pipe")] {
                if only.contains(c) {
                    return Err(HeaderError::WrongDelimiter {
                        header: only.to_owned(),
                        delimiter: name,
                    });
                }
            }
        }
        let known = || canonical.join(", ");
        for (name, column) in mapping.pairs() {
            if !canonical.contains(&column) {
                return Err(HeaderError::MapTarget {
                    column: column.to_owned(),
                    kind,
                    known: known(),
                });
            }
            if !header.iter().any(|h| mapping::header_key(h) == name) {
                return Err(HeaderError::MappedAbsent(name.to_owned()));
            }
        }
        // Each column's claims: (class, rank, position, name as written). The classes, best
        // first: the merchant's mapping, the preset, the canonical name, a synonym; only
        // the best class present is read, in rank order.
        let mut claims: Vec<Vec<(u8, usize, usize, String)>> = vec![Vec::new(); canonical.len()];
        for (i, raw) in header.iter().enumerate() {
            let name = mapping::header_key(raw);
            let written = clean_field(raw.trim_start_matches('\u{feff}'));
            if name.is_empty() {
                if ignore_unknown {
                    continue;
                }
                return Err(HeaderError::EmptyColumn(i + 1));
            }
            let slot_of = |column: &str| canonical.iter().position(|c| *c == column);
            // A preset may read one column of the export as several of siyu's (Youzan's
            // customer phone is the key and the phone).
            let preset_claims: Vec<(usize, u8, usize)> = preset
                .into_iter()
                .flat_map(|p| p.columns.iter())
                .filter_map(|(column, names)| {
                    let rank = names.iter().position(|n| *n == name)?;
                    Some((slot_of(column)?, 1, rank))
                })
                .collect();
            let found: Vec<(usize, u8, usize)> = if let Some((column, rank)) = mapping.target(&name)
            {
                slot_of(column)
                    .map(|slot| (slot, 0, rank))
                    .into_iter()
                    .collect()
            } else if !preset_claims.is_empty() {
                preset_claims
            } else if let Some(slot) = slot_of(&name) {
                vec![(slot, 2, 0)]
            } else {
                canonical
                    .iter()
                    .enumerate()
                    .find_map(|(slot, column)| {
                        mapping::synonyms(kind, column)
                            .iter()
                            .position(|s| *s == name)
                            .map(|rank| (slot, 3, rank))
                    })
                    .into_iter()
                    .collect()
            };
            if found.is_empty() && !ignore_unknown {
                return Err(HeaderError::UnknownColumn {
                    column: name,
                    known: known(),
                });
            }
            for (slot, class, rank) in found {
                if claims[slot].iter().any(|c| (c.0, c.1) == (class, rank)) {
                    return Err(HeaderError::DuplicateColumn(name));
                }
                claims[slot].push((class, rank, i, written.to_owned()));
            }
        }
        let mut positions = Vec::with_capacity(canonical.len());
        let mut renamed = Vec::new();
        for (slot, mut claims) in claims.into_iter().enumerate() {
            claims.sort_unstable();
            if let Some(best) = claims.first().map(|c| c.0) {
                claims.retain(|c| c.0 == best);
            }
            for (_, _, _, name) in &claims {
                if name.to_lowercase() != canonical[slot] {
                    renamed.push((name.clone(), canonical[slot]));
                }
            }
            positions.push(claims.into_iter().map(|c| c.2).collect::<Vec<_>>());
        }
        for (slot, required) in kind.required().iter().enumerate() {
            if positions[slot].is_empty() {
                return Err(HeaderError::MissingColumn(required));
            }
        }
        let mut defaults = vec![None; canonical.len()];
        if let (Some(preset), Some(slot)) = (preset, canonical.iter().position(|c| *c == "channel"))
            && kind == Kind::Orders
        {
            defaults[slot] = Some(preset.channel);
        }
        Ok(Columns {
            kind,
            positions,
            renamed,
            defaults,
            width: header.len(),
        })
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Header names read as a canonical column they do not spell, as (name, column).
    pub fn renamed(&self) -> &[(String, &'static str)] {
        &self.renamed
    }

    /// Each canonical column's one position, when no column is read from several (the
    /// fast readers' layout); `None` when some row may read a column's second choice.
    pub fn single_positions(&self) -> Option<Vec<Option<usize>>> {
        if self.defaults.iter().any(Option::is_some) {
            return None;
        }
        self.positions
            .iter()
            .map(|p| match p.as_slice() {
                [] => Some(None),
                [one] => Some(Some(*one)),
                _ => None,
            })
            .collect()
    }

    pub fn width(&self) -> usize {
        self.width
    }

    /// The cleaned text of canonical column `slot` (its first non-empty choice), `""` when
    /// absent or a placeholder.
    fn get<'r>(&self, record: &'r Record, slot: usize) -> Result<&'r str, Problem> {
        for &i in &self.positions[slot] {
            let Some(bytes) = record.fields.get(i) else {
                continue;
            };
            let text = std::str::from_utf8(bytes)
                .map(clean_field)
                .map_err(|_| Problem::new(self.kind.columns()[slot], "invalid UTF-8"))?;
            if !text.is_empty() && !is_placeholder(text) {
                return Ok(text);
            }
        }
        Ok(self.defaults[slot].unwrap_or(""))
    }

    /// The first masked value (`186******05`) among canonical column `slot`'s choices,
    /// which [`Columns::get`] reads as empty.
    fn masked<'r>(&self, record: &'r Record, slot: usize) -> Option<&'r str> {
        self.positions[slot].iter().find_map(|&i| {
            let text = std::str::from_utf8(record.fields.get(i)?)
                .ok()
                .map(clean_field)?;
            is_masked(text).then_some(text)
        })
    }

    fn check_width(&self, record: &Record) -> Result<(), Problem> {
        let n = record.fields.len();
        if n == self.width {
            Ok(())
        } else {
            Err(Problem::new(
                "row",
                format!("has {n} fields, the header has {}", self.width),
            ))
        }
    }
}

/// Collects every problem of a row rather than stopping at the first.
struct RowCheck<'a> {
    columns: &'a Columns,
    record: &'a Record,
    problems: Vec<Problem>,
}

impl<'a> RowCheck<'a> {
    fn new(columns: &'a Columns, record: &'a Record) -> Self {
        let mut problems = Vec::new();
        if let Err(p) = columns.check_width(record) {
            problems.push(p);
        }
        RowCheck {
            columns,
            record,
            problems,
        }
    }

    fn text(&mut self, slot: usize) -> &'a str {
        match self.columns.get(self.record, slot) {
            Ok(s) => s,
            Err(p) => {
                self.problems.push(p);
                ""
            }
        }
    }

    /// A required field parsed by `parse`; a problem if it is empty or does not parse.
    fn required<T, E: fmt::Display>(
        &mut self,
        slot: usize,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        let text = self.text(slot);
        let name = self.columns.kind.columns()[slot];
        if text.is_empty() {
            self.problems.push(Problem::new(name, "is empty"));
            return None;
        }
        match parse(text) {
            Ok(v) => Some(v),
            Err(e) => {
                self.problems.push(Problem::new(name, e));
                None
            }
        }
    }

    /// An optional field: `None` when empty, a problem if present but invalid.
    fn optional<T, E: fmt::Display>(
        &mut self,
        slot: usize,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        let text = self.text(slot);
        if text.is_empty() {
            return None;
        }
        match parse(text) {
            Ok(v) => Some(v),
            Err(e) => {
                self.problems
                    .push(Problem::new(self.columns.kind.columns()[slot], e));
                None
            }
        }
    }

    fn finish<T>(self, value: Option<T>) -> Result<T, Vec<Problem>> {
        match value {
            Some(v) if self.problems.is_empty() => Ok(v),
            _ => Err(self.problems),
        }
    }
}

/// Why a field of free text is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum TextError {
    #[error("is longer than {0} characters")]
    TooLong(usize),
    #[error("contains a control character")]
    Control,
}

fn plain_text(max: usize) -> impl Fn(&str) -> Result<String, TextError> {
    move |s| {
        if s.chars().count() > max {
            Err(TextError::TooLong(max))
        } else if s.chars().any(|c| c.is_control() && c != '\n') {
            Err(TextError::Control)
        } else {
            Ok(s.to_owned())
        }
    }
}

/// Validates a customers row.
pub fn parse_customer(
    columns: &Columns,
    record: &Record,
    zone: &TenantZone,
) -> Result<NewCustomer, Vec<Problem>> {
    let mut row = RowCheck::new(columns, record);
    let id = row.required(0, CustomerId::parse_input);
    let name = row.optional(1, plain_text(100));
    // A masked phone is kept as masked (to show), never as a key or a phone to match.
    let phone = row
        .optional(2, parse_phone)
        .or_else(|| columns.masked(record, 2).and_then(masked_phone));
    // Exports write 未知/保密 where the customer gave none.
    let gender = row
        .optional(3, |s| match s {
            "未知" | "保密" | "unknown" => Ok(None),
            _ => Gender::parse(s).map(Some),
        })
        .flatten();
    let birthday = row.optional(4, TenantZone::parse_day);
    let region = row.optional(5, plain_text(100));
    let channel = row.optional(6, Channel::parse);
    let referrer_id = row.optional(7, CustomerId::parse_input);
    let joined_at = row.optional(8, |s| zone.parse_timestamp(s));
    let tags = row
        .optional(9, |s| -> Result<Vec<String>, String> {
            let mut tags = Vec::new();
            for tag in s
                .split([';', '；', ',', '，'])
                .map(str::trim)
                .filter(|t| !t.is_empty())
            {
                if tag.chars().count() > 64 {
                    return Err(format!("tag '{tag}' is longer than 64 characters"));
                }
                if !tags.iter().any(|t| t == tag) {
                    tags.push(tag.to_owned());
                }
            }
            Ok(tags)
        })
        .unwrap_or_default();
    if let (Some(id), Some(referrer)) = (&id, &referrer_id)
        && id == referrer
    {
        row.problems.push(Problem::new(
            "referrer_id",
            "a customer cannot refer themselves",
        ));
    }
    let customer = id.map(|id| NewCustomer {
        id,
        name,
        phone,
        gender,
        birthday,
        region,
        channel,
        referrer_id,
        joined_at,
        tags,
    });
    row.finish(customer)
}

/// Validates an orders row.
pub fn parse_order(
    columns: &Columns,
    record: &Record,
    zone: &TenantZone,
) -> Result<NewOrder, Vec<Problem>> {
    let mut row = RowCheck::new(columns, record);
    let id = row.required(0, OrderId::parse);
    let customer_id = row.required(1, CustomerId::parse_input);
    let ordered_at = row.required(2, |s| zone.parse_timestamp(s));
    let amount = row.required(3, Money::parse_yuan);
    let discount = row.optional(4, Money::parse_yuan).unwrap_or(Money::ZERO);
    let coupon_code = row.optional(5, plain_text(64));
    let channel = row.optional(6, Channel::parse);
    let status = row
        .optional(7, OrderStatus::parse)
        .unwrap_or(OrderStatus::Paid);
    let order = match (id, customer_id, ordered_at, amount) {
        (Some(id), Some(customer_id), Some(ordered_at), Some(amount)) => Some(NewOrder {
            id,
            customer_id,
            ordered_at,
            amount,
            discount,
            coupon_code,
            channel,
            status,
        }),
        _ => None,
    };
    row.finish(order)
}

/// Validates an events row. `properties` must be a JSON object; it is kept compact.
pub fn parse_event(
    columns: &Columns,
    record: &Record,
    zone: &TenantZone,
) -> Result<NewEvent, Vec<Problem>> {
    let mut row = RowCheck::new(columns, record);
    let id = row.required(0, EventId::parse);
    let customer_id = row.required(1, CustomerId::parse_input);
    let kind = row.required(2, EventType::parse);
    let occurred_at = row.required(3, |s| zone.parse_timestamp(s));
    let properties = row
        .optional(4, |s| {
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(s)
                .map(|m| serde_json::Value::Object(m).to_string())
                .map_err(|e| format!("is not a JSON object ({e})"))
        })
        .unwrap_or_else(|| "{}".to_owned());
    let event = match (id, customer_id, kind, occurred_at) {
        (Some(id), Some(customer_id), Some(kind), Some(occurred_at)) => Some(NewEvent {
            id,
            customer_id,
            kind,
            occurred_at,
            properties,
        }),
        _ => None,
    };
    row.finish(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(cols: &[&str]) -> Vec<String> {
        cols.iter().map(|s| (*s).to_owned()).collect()
    }

    fn record(line: u64, fields: &[&str]) -> Record {
        Record {
            line,
            fields: csv::ByteRecord::from(fields.to_vec()),
        }
    }

    #[test]
    fn spreadsheet_guards_are_stripped() {
        assert_eq!(
            clean_field("=\"3791234567890123456\""),
            "3791234567890123456"
        );
        assert_eq!(clean_field("'0012"), "0012");
        assert_eq!(clean_field("\t123"), "123");
        assert_eq!(clean_field("  c1 "), "c1");
    }

    #[test]
    fn the_header_must_name_the_required_columns_once_and_nothing_unknown() {
        let h = header(&["order_id", "customer_id", "ordered_at"]);
        assert_eq!(
            Columns::from_header(Kind::Orders, &h, false).map(|_| ()),
            Err(HeaderError::MissingColumn("amount"))
        );
        let h = header(&["order_id", "customer_id", "ordered_at", "amount", "amount"]);
        assert_eq!(
            Columns::from_header(Kind::Orders, &h, false).map(|_| ()),
            Err(HeaderError::DuplicateColumn("amount".into()))
        );
        let h = header(&["order_id", "customer_id", "ordered_at", "amount", "memo"]);
        assert!(matches!(
            Columns::from_header(Kind::Orders, &h, false),
            Err(HeaderError::UnknownColumn { .. })
        ));
        assert!(Columns::from_header(Kind::Orders, &h, true).is_ok());
        let h = header(&["order_id;customer_id;ordered_at;amount"]);
        assert!(matches!(
            Columns::from_header(Kind::Orders, &h, false),
            Err(HeaderError::WrongDelimiter {
                delimiter: "semicolon",
                ..
            })
        ));
    }

    #[test]
    fn an_order_row_reports_every_bad_field() {
        let h = header(&["order_id", "customer_id", "ordered_at", "amount", "status"]);
        let cols = Columns::from_header(Kind::Orders, &h, false).expect("header");
        let zone = TenantZone::default();
        let problems = parse_order(
            &cols,
            &record(7, &["o1", "", "someday", "-5", "lost"]),
            &zone,
        )
        .expect_err("bad");
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["customer_id", "ordered_at", "amount", "status"]);
        let ok = parse_order(
            &cols,
            &record(
                8,
                &[
                    "=\"3791234567890123456\"",
                    "c1",
                    "2024/5/1 9:05",
                    "1,280.00",
                    "",
                ],
            ),
            &zone,
        )
        .expect("good");
        assert_eq!(ok.id.as_str(), "3791234567890123456");
        assert_eq!(ok.amount, Money::from_fen(128_000));
        assert_eq!(ok.status, OrderStatus::Paid);
    }

    #[test]
    fn chinese_headers_are_read_as_their_canonical_columns() {
        let h = header(&[
            "订单号",
            "客户ID",
            "下单时间",
            "金额",
            "订单状态",
            "买家留言",
        ]);
        assert!(matches!(
            Columns::from_header(Kind::Orders, &h, false),
            Err(HeaderError::UnknownColumn { ref column, .. }) if column == "买家留言"
        ));
        let cols = Columns::from_header(Kind::Orders, &h, true).expect("header");
        assert_eq!(cols.renamed()[0], ("订单号".to_owned(), "order_id"));
        assert_eq!(cols.renamed()[1], ("客户ID".to_owned(), "customer_id"));
        let zone = TenantZone::default();
        let order = parse_order(
            &cols,
            &record(
                2,
                &["o1", "c1", "2026年5月1日 9:30", "¥1,280.00", "退款", "快点"],
            ),
            &zone,
        )
        .expect("good");
        assert_eq!(order.amount, Money::from_fen(128_000));
        assert_eq!(order.status, OrderStatus::Refunded);
        assert_eq!(
            order.ordered_at,
            zone.parse_timestamp("2026-05-01 09:30").expect("time")
        );
    }

    #[test]
    fn of_several_synonyms_the_best_non_empty_one_is_read() {
        // Taobao: an order closed before payment has no payment time.
        let h = header(&[
            "订单编号",
            "买家会员名",
            "订单创建时间",
            "订单付款时间",
            "总金额",
        ]);
        let cols = Columns::from_header(Kind::Orders, &h, false).expect("header");
        assert!(cols.single_positions().is_none());
        let zone = TenantZone::default();
        let row = |paid: &str| {
            parse_order(
                &cols,
                &record(2, &["o1", "tb_buyer", "2016/5/23 22:02", paid, "10"]),
                &zone,
            )
            .expect("good")
            .ordered_at
        };
        assert_eq!(
            row("2016/5/24 8:00"),
            zone.parse_timestamp("2016-05-24 08:00").expect("t")
        );
        assert_eq!(
            row(""),
            zone.parse_timestamp("2016-05-23 22:02").expect("t")
        );
        // The canonical name wins over a synonym beside it, which is then not read.
        let h = header(&["order_id", "customer_id", "ordered_at", "amount", "金额"]);
        let cols = Columns::from_header(Kind::Orders, &h, false).expect("header");
        assert!(cols.single_positions().is_some());
        // The same synonym twice is ambiguous.
        let h = header(&["订单号", "客户ID", "下单时间", "金额", "金额"]);
        assert_eq!(
            Columns::from_header(Kind::Orders, &h, false).map(|_| ()),
            Err(HeaderError::DuplicateColumn("金额".into()))
        );
    }

    #[test]
    fn a_merchants_mapping_names_columns_no_synonym_knows() {
        let h = header(&["单据", "会员", "日子", "收款"]);
        assert_eq!(
            Columns::from_header(Kind::Orders, &h, false).map(|_| ()).map_err(|e| e.to_string()),
            Err("unknown column '单据' (known: order_id, customer_id, ordered_at, amount, discount, coupon_code, channel, status; pass --ignore-unknown to skip it, or --map '单据=COLUMN' to read it as one)".to_owned())
        );
        let map = Mapping::parse("单据=order_id,会员=customer_id,日子=ordered_at,收款=amount")
            .expect("map");
        let cols = Columns::from_header_mapped(Kind::Orders, &h, &map, false).expect("header");
        assert_eq!(cols.renamed().len(), 4);
        let bad = Mapping::parse("单据=order_no").expect("map");
        assert!(matches!(
            Columns::from_header_mapped(Kind::Orders, &h, &bad, true),
            Err(HeaderError::MapTarget { .. })
        ));
        let absent = Mapping::parse("单号=order_id").expect("map");
        assert_eq!(
            Columns::from_header_mapped(Kind::Orders, &h, &absent, true).map(|_| ()),
            Err(HeaderError::MappedAbsent("单号".into()))
        );
    }

    #[test]
    fn placeholders_are_empty_and_never_a_name_or_phone() {
        let h = header(&["客户ID", "姓名", "手机号", "地区"]);
        let cols = Columns::from_header(Kind::Customers, &h, false).expect("header");
        let c = parse_customer(
            &cols,
            &record(2, &["\t6917926768823643751", "##密文", "$$密文", "-"]),
            &TenantZone::default(),
        )
        .expect("good");
        assert_eq!(c.id.as_str(), "6917926768823643751");
        assert_eq!((c.name, c.phone, c.region), (None, None, None));
        // A masked phone is kept as masked, and a masked name is no name; neither is a key.
        let c = parse_customer(
            &cols,
            &record(3, &["阿香", "张**", "186******05", "****"]),
            &TenantZone::default(),
        )
        .expect("good");
        assert_eq!(c.phone.as_deref(), Some("186******05"));
        assert_eq!((c.name, c.region), (None, None));
        let keyless = parse_customer(
            &cols,
            &record(4, &["186******05", "", "", ""]),
            &TenantZone::default(),
        );
        assert!(keyless.is_err(), "a masked phone is never a key");
        let problems = parse_order(
            &Columns::from_header(
                Kind::Orders,
                &header(&["订单号", "客户ID", "下单时间", "金额", "订单状态"]),
                false,
            )
            .expect("header"),
            &record(3, &["o1", "-", "2026-5-1", "9", "待付款"]),
            &TenantZone::default(),
        )
        .expect_err("bad");
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["customer_id", "status"]);
        assert!(problems[1].reason.contains("not paid yet"));
    }

    #[test]
    fn a_row_with_too_many_fields_is_a_problem() {
        let h = header(&["customer_id", "name"]);
        let cols = Columns::from_header(Kind::Customers, &h, false).expect("header");
        let problems = parse_customer(&cols, &record(3, &["c1", "x", "y"]), &TenantZone::default())
            .expect_err("bad");
        assert_eq!(
            problems[0].to_string(),
            "row: has 3 fields, the header has 2"
        );
    }

    #[test]
    fn event_properties_must_be_a_json_object() {
        let h = header(&[
            "event_id",
            "customer_id",
            "type",
            "occurred_at",
            "properties",
        ]);
        let cols = Columns::from_header(Kind::Events, &h, false).expect("header");
        let zone = TenantZone::default();
        let bad = parse_event(
            &cols,
            &record(2, &["e1", "c1", "post_like", "2024-05-01", "[1]"]),
            &zone,
        )
        .expect_err("bad");
        assert_eq!(bad[0].field, "properties");
        let good = parse_event(
            &cols,
            &record(3, &["e1", "c1", "post_like", "2024-05-01", "{\"post\": 7}"]),
            &zone,
        )
        .expect("good");
        assert_eq!(good.properties, "{\"post\":7}");
    }
}

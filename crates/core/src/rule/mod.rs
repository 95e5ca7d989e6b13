//! The segment rule language: a rule over profile fields, tags and event counts
//! (`rfm = "important_value" and days_since_order > 20 and has_tag("outdoor")`), parsed
//! into a [`Rule`] that is plain data, printed back canonically, and evaluated as a scan
//! over the columns of a [`SegmentTable`].
//!
//! # Grammar
//!
//! ```text
//! rule       = or
//! or         = and { "or" and }
//! and        = unary { "and" unary }
//! unary      = "not" unary | primary
//! primary    = "(" or ")" | "has_tag" "(" STRING ")" | subject test
//! subject    = FIELD | "count" "(" STRING ")"
//! test       = op value | [ "not" ] "in" "(" value { "," value } ")"
//!            | (nothing, after a true/false field: `has_left` means `has_left = true`)
//! op         = "=" | "!=" | "<" | "<=" | ">" | ">="          ("==" and "<>" are read too)
//! value      = [ "-" ] NUMBER | STRING | "true" | "false"
//!            | "date" "(" STRING ")" | "today" [ ( "+" | "-" ) NUMBER "d" ]
//! ```
//!
//! `not` binds tighter than `and`, and `and` tighter than `or`. Keywords (`and`, `or`,
//! `not`, `in`, `true`, `false`, `today`, `date`) are read in any case; field and function
//! names are snake_case. Strings are in double quotes, with `\"` and `\\` as the only
//! escapes. Numbers are decimal (`500`, `99.5`, `0.25`); a money field (`net_spend`,
//! `spend_365d`, `aov`, `referral_revenue`) compares in yuan, so `spend_365d >= 500` means
//! ¥500, and a money value with more than two decimals is refused rather than rounded.
//! Counts and days are whole numbers; `coupon_share` and `mean_interval_days` compare
//! exactly as fractions, never through floating point. `today` is the as-of day of the
//! table and `today - 30d` the day 30 days before it. The fields are listed by
//! [`Field::ALL`], each with its [`Kind`] and a line of description.
//!
//! # Missing values
//!
//! A field can be absent for a customer: `days_since_order`, `first_order_day` and
//! `last_order_day` of a prospect, `aov` and `coupon_share` without paid orders,
//! `mean_interval_days` under two purchase days, `days_since_interaction` without any
//! interaction, and `stage`, `channel`, `region`, `gender` when nothing is known. As in
//! SQL, **every comparison with a missing value is false**, `!=` and `not in` included;
//! `not` then negates that false like any other. So a prospect is in neither
//! `days_since_order > 20` nor `days_since_order <= 20`, and is in
//! `not (days_since_order > 20)`. `rfm` is never missing: a customer RFM did not score has
//! the class `"none"`. `count("…")` of a type never seen is 0, and `has_tag` is false.
//!
//! # Evaluation
//!
//! [`Rule::compile`] resolves a rule against a table (the as-of day for `today`, string
//! constants to the table's codes) and [`CompiledRule::evaluate`] computes every
//! comparison over a whole column into a [`Bitset`], then combines the bitsets with
//! and / or / not: column at a time, never row by row.

mod bench;
mod field;
mod parse;
mod plan;
mod table;

#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use jiff::civil::Date;

pub use bench::{
    BENCH_AS_OF, BENCH_RULES, RuleTiming, SegmentBench, bench_segments, synthetic_table,
};
pub use field::{Field, Kind};
pub use plan::CompiledRule;
pub use table::{Bitset, CustomerExtras, SegmentTable, SegmentTableBuilder};

/// A segment rule, as data. [`Rule::parse`] reads the text form and `Display` prints it
/// back canonically; printing and parsing again gives the same rule.
///
/// The parser produces canonical rules: `And` and `Or` hold two or more operands and
/// never an operand of their own kind (`a and (b and c)` is one `And` of three).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    Or(Vec<Rule>),
    And(Vec<Rule>),
    Not(Box<Rule>),
    /// `subject op value`.
    Compare {
        subject: Subject,
        op: Op,
        value: Value,
    },
    /// `subject in (values)`, or `subject not in (values)` when `negated`.
    In {
        subject: Subject,
        values: Vec<Value>,
        negated: bool,
    },
    /// `has_tag("name")`.
    HasTag(String),
}

/// What a comparison reads for each customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Field(Field),
    /// `count("event_type")`: how many events of that type the customer has.
    Count(String),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A constant in a rule, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Number(Number),
    Text(String),
    Bool(bool),
    /// `date("YYYY-MM-DD")`.
    Date(Date),
    /// `today`, or `today + Nd` / `today - Nd`: days relative to the as-of day.
    Today(i32),
}

/// An exact decimal number: `mantissa / 10^scale`, with no trailing zero in the decimals,
/// so equal numbers are equal values (`500.0` is `500`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Number {
    mantissa: i64,
    scale: u8,
}

/// The most decimals a number in a rule may have.
pub const MAX_DECIMALS: u8 = 9;

impl Number {
    /// `mantissa / 10^scale`, normalised; `None` when `scale` is above [`MAX_DECIMALS`].
    pub fn new(mut mantissa: i64, mut scale: u8) -> Option<Number> {
        if scale > MAX_DECIMALS {
            return None;
        }
        while scale > 0 && mantissa % 10 == 0 {
            mantissa /= 10;
            scale -= 1;
        }
        Some(Number { mantissa, scale })
    }

    pub const fn integer(n: i64) -> Number {
        Number {
            mantissa: n,
            scale: 0,
        }
    }

    pub fn mantissa(self) -> i64 {
        self.mantissa
    }

    /// Decimals after the point (0 for a whole number).
    pub fn scale(self) -> u8 {
        self.scale
    }

    /// The whole number this is, if it is one.
    pub fn as_integer(self) -> Option<i64> {
        (self.scale == 0).then_some(self.mantissa)
    }

    /// The amount in fen, if this is a yuan amount with at most two decimals.
    pub fn as_fen(self) -> Option<i64> {
        let factor = 10i64.checked_pow(2u32.checked_sub(u32::from(self.scale))?)?;
        self.mantissa.checked_mul(factor)
    }

    pub(crate) fn checked_neg(self) -> Option<Number> {
        Some(Number {
            mantissa: self.mantissa.checked_neg()?,
            scale: self.scale,
        })
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.mantissa < 0 { "-" } else { "" };
        let abs = self.mantissa.unsigned_abs();
        if self.scale == 0 {
            return write!(f, "{sign}{abs}");
        }
        let pow = 10u64.pow(u32::from(self.scale));
        write!(
            f,
            "{sign}{}.{:0width$}",
            abs / pow,
            abs % pow,
            width = usize::from(self.scale)
        )
    }
}

impl Op {
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }

    /// Whether `a op b` holds.
    pub fn holds<T: Ord>(self, a: T, b: T) -> bool {
        match self {
            Op::Eq => a == b,
            Op::Ne => a != b,
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
        }
    }
}

/// A rule that cannot be read: where (1-based column, in characters), the offending text,
/// and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("column {column}: expected {expected}, found {found}")]
    Unexpected {
        column: usize,
        expected: String,
        /// The offending text in quotes, or `end of rule`.
        found: String,
    },
    #[error("column {column}: unknown field '{name}'{}", did_you_mean(*.suggestion))]
    UnknownField {
        column: usize,
        name: String,
        suggestion: Option<&'static str>,
    },
    #[error("column {column}: unknown function '{name}'{}", did_you_mean(*.suggestion))]
    UnknownFunction {
        column: usize,
        name: String,
        suggestion: Option<&'static str>,
    },
    #[error("column {column}: {message}")]
    WrongType {
        column: usize,
        /// The operator or value that does not fit.
        text: String,
        message: String,
    },
    #[error("column {column}: {field} has no value \"{value}\"{}", value_hint(*.suggestion, .values))]
    UnknownValue {
        column: usize,
        field: String,
        value: String,
        suggestion: Option<&'static str>,
        values: &'static [&'static str],
    },
    #[error("column {column}: the string {text} is not closed with '\"'")]
    UnterminatedString { column: usize, text: String },
    #[error("column {column}: {text} is not a date (expected date(\"YYYY-MM-DD\"))")]
    BadDate { column: usize, text: String },
    #[error("column {column}: '{text}' {reason}")]
    BadNumber {
        column: usize,
        text: String,
        reason: String,
    },
    #[error(
        "column {column}: the rule is {length} characters long; at most {MAX_RULE_CHARS} are accepted"
    )]
    TooLong { column: usize, length: usize },
    #[error(
        "column {column}: the rule nests parentheses and `not` more than {MAX_RULE_DEPTH} deep"
    )]
    TooDeep { column: usize },
}

/// The longest rule accepted, in characters: far beyond any rule a person writes, and
/// small enough that parsing, printing and planning one stay instant.
pub const MAX_RULE_CHARS: usize = 4_000;

/// How deep parentheses and `not` may nest. Parsing, printing, planning and evaluating
/// walk a rule recursively, so a limit keeps a made-up rule from exhausting the stack.
pub const MAX_RULE_DEPTH: usize = 32;

fn did_you_mean(suggestion: Option<&str>) -> String {
    suggestion.map_or_else(String::new, |s| format!("; did you mean '{s}'?"))
}

fn value_hint(suggestion: Option<&str>, values: &[&str]) -> String {
    match suggestion {
        Some(s) => format!("; did you mean \"{s}\"?"),
        None => format!(" (its values: {})", values.join(", ")),
    }
}

impl RuleError {
    /// The 1-based column (in characters) where the mistake is.
    pub fn column(&self) -> usize {
        match self {
            RuleError::Unexpected { column, .. }
            | RuleError::UnknownField { column, .. }
            | RuleError::UnknownFunction { column, .. }
            | RuleError::WrongType { column, .. }
            | RuleError::UnknownValue { column, .. }
            | RuleError::UnterminatedString { column, .. }
            | RuleError::BadDate { column, .. }
            | RuleError::BadNumber { column, .. }
            | RuleError::TooLong { column, .. }
            | RuleError::TooDeep { column } => *column,
        }
    }
}

impl Rule {
    /// Reads a rule, checking every field, function, operator and value.
    pub fn parse(text: &str) -> Result<Rule, RuleError> {
        parse::parse(text)
    }

    /// Resolves the rule against a table, ready to evaluate. A rule built by hand rather
    /// than parsed is checked here as `parse` would check its printed form, and an error
    /// names a column of that printed form.
    pub fn compile<'t>(&self, table: &'t SegmentTable) -> Result<CompiledRule<'t>, RuleError> {
        plan::compile(self, table).map_err(|problem| {
            let text = self.to_string();
            match Rule::parse(&text) {
                Err(e) => e,
                Ok(_) => problem.at(1),
            }
        })
    }

    /// The tags the rule asks `has_tag` of, each once, in the order they appear.
    pub fn tags(&self) -> Vec<&str> {
        fn walk<'r>(rule: &'r Rule, out: &mut Vec<&'r str>) {
            match rule {
                Rule::Or(rules) | Rule::And(rules) => rules.iter().for_each(|r| walk(r, out)),
                Rule::Not(r) => walk(r, out),
                Rule::HasTag(tag) if !out.contains(&tag.as_str()) => out.push(tag),
                Rule::HasTag(_) | Rule::Compare { .. } | Rule::In { .. } => {}
            }
        }
        let mut out = Vec::new();
        walk(self, &mut out);
        out
    }

    /// The fields the rule compares, each once.
    pub fn fields(&self) -> Vec<Field> {
        fn walk(rule: &Rule, out: &mut Vec<Field>) {
            match rule {
                Rule::Or(rules) | Rule::And(rules) => rules.iter().for_each(|r| walk(r, out)),
                Rule::Not(r) => walk(r, out),
                Rule::Compare {
                    subject: Subject::Field(f),
                    ..
                }
                | Rule::In {
                    subject: Subject::Field(f),
                    ..
                } if !out.contains(f) => out.push(*f),
                _ => {}
            }
        }
        let mut out = Vec::new();
        walk(self, &mut out);
        out
    }

    /// The rule's members in `table`: compiles and evaluates.
    pub fn members(&self, table: &SegmentTable) -> Result<Bitset, RuleError> {
        Ok(self.compile(table)?.evaluate())
    }
}

impl FromStr for Rule {
    type Err = RuleError;

    fn from_str(s: &str) -> Result<Rule, RuleError> {
        Rule::parse(s)
    }
}

/// Writes `s` as a rule string: in double quotes, `"` and `\` escaped.
fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        if c == '"' || c == '\\' {
            f.write_str("\\")?;
        }
        write!(f, "{c}")?;
    }
    f.write_str("\"")
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Number(n) => write!(f, "{n}"),
            Value::Text(s) => write_quoted(f, s),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Date(d) => write!(f, "date(\"{d}\")"),
            Value::Today(0) => f.write_str("today"),
            Value::Today(n) if *n < 0 => write!(f, "today - {}d", n.unsigned_abs()),
            Value::Today(n) => write!(f, "today + {n}d"),
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Field(field) => f.write_str(field.name()),
            Subject::Count(kind) => {
                f.write_str("count(")?;
                write_quoted(f, kind)?;
                f.write_str(")")
            }
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Parentheses only where precedence needs them: an `or` inside an `and` or a
        // `not`, an `and` inside a `not`.
        let operand = |f: &mut fmt::Formatter<'_>, r: &Rule, parens: bool| {
            if parens {
                write!(f, "({r})")
            } else {
                write!(f, "{r}")
            }
        };
        match self {
            Rule::Or(rules) | Rule::And(rules) => {
                let is_or = matches!(self, Rule::Or(_));
                if rules.is_empty() {
                    return f.write_str("()");
                }
                for (i, r) in rules.iter().enumerate() {
                    if i > 0 {
                        f.write_str(if is_or { " or " } else { " and " })?;
                    }
                    let parens = match r {
                        Rule::Or(_) => true,
                        Rule::And(_) => !is_or,
                        _ => false,
                    };
                    operand(f, r, parens)?;
                }
                Ok(())
            }
            Rule::Not(r) => {
                f.write_str("not ")?;
                operand(f, r, matches!(**r, Rule::Or(_) | Rule::And(_)))
            }
            Rule::Compare { subject, op, value } => write!(f, "{subject} {op} {value}"),
            Rule::In {
                subject,
                values,
                negated,
            } => {
                write!(f, "{subject} {}in (", if *negated { "not " } else { "" })?;
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str(")")
            }
            Rule::HasTag(tag) => {
                f.write_str("has_tag(")?;
                write_quoted(f, tag)?;
                f.write_str(")")
            }
        }
    }
}

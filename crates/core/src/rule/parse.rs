//! Reading rules: a lexer, a recursive-descent parser, and the type checks (which
//! operators and constants fit which fields) that compiling shares.

use jiff::civil::Date;

use super::field::{Field, Kind};
use super::{
    MAX_DECIMALS, MAX_RULE_CHARS, MAX_RULE_DEPTH, Number, Op, Rule, RuleError, Subject, Value,
};
use crate::event::EventType;
use crate::time::TenantZone;

const FUNCTIONS: &[&str] = &["has_tag", "count"];
const KEYWORDS: &[&str] = &["and", "or", "not", "in", "true", "false", "today", "date"];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    /// Digits with an optional fraction, and any letters right after (`30d`).
    Number {
        digits: String,
        suffix: String,
    },
    Str(String),
    LParen,
    RParen,
    Comma,
    Op(Op),
    Minus,
    Plus,
    End,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    /// Byte range in the rule.
    start: usize,
    end: usize,
}

/// 1-based column, in characters, of a byte offset.
fn column(src: &str, byte: usize) -> usize {
    src[..byte].chars().count() + 1
}

fn lex(src: &str) -> Result<Vec<Token>, RuleError> {
    let mut tokens = Vec::new();
    let mut chars = src.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let tok = if c.is_ascii_alphabetic() || c == '_' {
            let mut s = String::new();
            while let Some(&(_, c)) = chars.peek() {
                if !(c.is_ascii_alphanumeric() || c == '_') {
                    break;
                }
                s.push(c);
                chars.next();
            }
            Tok::Ident(s)
        } else if c.is_ascii_digit() {
            let mut digits = String::new();
            let mut suffix = String::new();
            while let Some(&(_, c)) = chars.peek() {
                // A point is part of the number only with a digit after it.
                let point = suffix.is_empty()
                    && c == '.'
                    && !digits.contains('.')
                    && src[start + digits.len() + 1..].starts_with(|d: char| d.is_ascii_digit());
                if suffix.is_empty() && (c.is_ascii_digit() || point) {
                    digits.push(c);
                } else if c.is_ascii_alphanumeric() || c == '_' {
                    suffix.push(c);
                } else {
                    break;
                }
                chars.next();
            }
            Tok::Number { digits, suffix }
        } else if c == '"' {
            chars.next();
            let mut s = String::new();
            loop {
                match chars.next() {
                    None => {
                        return Err(RuleError::UnterminatedString {
                            column: column(src, start),
                            text: src[start..].to_owned(),
                        });
                    }
                    Some((_, '"')) => break,
                    Some((at, '\\')) => match chars.next() {
                        Some((_, e @ ('"' | '\\'))) => s.push(e),
                        other => {
                            let found = other.map_or_else(
                                || "end of rule".to_owned(),
                                |(_, e)| format!("'\\{e}'"),
                            );
                            return Err(RuleError::Unexpected {
                                column: column(src, at),
                                expected: "\\\" or \\\\ (the only escapes in a string)".into(),
                                found,
                            });
                        }
                    },
                    Some((_, c)) => s.push(c),
                }
            }
            Tok::Str(s)
        } else {
            chars.next();
            let next = chars.peek().map(|&(_, c)| c);
            let mut two = |tok: Tok| {
                chars.next();
                tok
            };
            match (c, next) {
                ('(', _) => Tok::LParen,
                (')', _) => Tok::RParen,
                (',', _) => Tok::Comma,
                ('-', _) => Tok::Minus,
                ('+', _) => Tok::Plus,
                ('=', Some('=')) => two(Tok::Op(Op::Eq)),
                ('=', _) => Tok::Op(Op::Eq),
                ('!', Some('=')) => two(Tok::Op(Op::Ne)),
                ('<', Some('=')) => two(Tok::Op(Op::Le)),
                ('<', Some('>')) => two(Tok::Op(Op::Ne)),
                ('<', _) => Tok::Op(Op::Lt),
                ('>', Some('=')) => two(Tok::Op(Op::Ge)),
                ('>', _) => Tok::Op(Op::Gt),
                _ => {
                    let expected = if c == '\'' || c == '“' || c == '”' {
                        "a string in straight double quotes (\")"
                    } else {
                        "a field, a value, an operator or a parenthesis"
                    };
                    return Err(RuleError::Unexpected {
                        column: column(src, start),
                        expected: expected.into(),
                        found: format!("'{c}'"),
                    });
                }
            }
        };
        let end = chars.peek().map_or(src.len(), |&(i, _)| i);
        tokens.push(Token { tok, start, end });
    }
    tokens.push(Token {
        tok: Tok::End,
        start: src.len(),
        end: src.len(),
    });
    Ok(tokens)
}

pub(crate) fn parse(src: &str) -> Result<Rule, RuleError> {
    // Counted before lexing, so a huge rule costs one pass over its characters.
    let length = src.chars().count();
    if length > MAX_RULE_CHARS {
        return Err(RuleError::TooLong {
            column: MAX_RULE_CHARS + 1,
            length,
        });
    }
    let mut p = Parser {
        src,
        tokens: lex(src)?,
        pos: 0,
        depth: 0,
    };
    let rule = p.or()?;
    if p.peek() != &Tok::End {
        return Err(p.expected("'and', 'or' or the end of the rule"));
    }
    Ok(rule)
}

struct Parser<'a> {
    src: &'a str,
    tokens: Vec<Token>,
    pos: usize,
    /// Open parentheses and `not`s around the current token.
    depth: usize,
}

impl Parser<'_> {
    fn token(&self) -> &Token {
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn peek(&self) -> &Tok {
        &self.token().tok
    }

    fn peek_at(&self, ahead: usize) -> &Tok {
        let last = self.tokens.len() - 1;
        &self.tokens[(self.pos + ahead).min(last)].tok
    }

    fn advance(&mut self) -> Token {
        let t = self.token().clone();
        if self.pos < self.tokens.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn column(&self) -> usize {
        column(self.src, self.token().start)
    }

    fn text(&self, t: &Token) -> &str {
        &self.src[t.start..t.end]
    }

    fn is_keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s) if s.eq_ignore_ascii_case(kw))
    }

    fn keyword_at(&self, ahead: usize, kw: &str) -> bool {
        matches!(self.peek_at(ahead), Tok::Ident(s) if s.eq_ignore_ascii_case(kw))
    }

    /// "expected X after 'previous token', found 'this token'".
    fn expected(&self, what: &str) -> RuleError {
        let t = self.token();
        let found = match t.tok {
            Tok::End => "end of rule".to_owned(),
            _ => format!("'{}'", self.text(t)),
        };
        let expected = match self.pos.checked_sub(1).map(|i| &self.tokens[i]) {
            Some(prev) => format!("{what} after '{}'", self.text(prev)),
            None => what.to_owned(),
        };
        RuleError::Unexpected {
            column: column(self.src, t.start),
            expected,
            found,
        }
    }

    fn or(&mut self) -> Result<Rule, RuleError> {
        let mut rules = Vec::new();
        loop {
            match self.and()? {
                Rule::Or(inner) => rules.extend(inner),
                r => rules.push(r),
            }
            if !self.is_keyword("or") {
                break;
            }
            self.advance();
        }
        Ok(if rules.len() == 1 {
            rules.remove(0)
        } else {
            Rule::Or(rules)
        })
    }

    fn and(&mut self) -> Result<Rule, RuleError> {
        let mut rules = Vec::new();
        loop {
            match self.unary()? {
                Rule::And(inner) => rules.extend(inner),
                r => rules.push(r),
            }
            if !self.is_keyword("and") {
                break;
            }
            self.advance();
        }
        Ok(if rules.len() == 1 {
            rules.remove(0)
        } else {
            Rule::And(rules)
        })
    }

    fn unary(&mut self) -> Result<Rule, RuleError> {
        if self.is_keyword("not") {
            self.deeper()?;
            self.advance();
            let rule = Rule::Not(Box::new(self.unary()?));
            self.depth -= 1;
            return Ok(rule);
        }
        self.primary()
    }

    /// One level deeper, refused past [`MAX_RULE_DEPTH`] (at the token that opens it).
    fn deeper(&mut self) -> Result<(), RuleError> {
        if self.depth >= MAX_RULE_DEPTH {
            return Err(RuleError::TooDeep {
                column: self.column(),
            });
        }
        self.depth += 1;
        Ok(())
    }

    fn primary(&mut self) -> Result<Rule, RuleError> {
        let name = match self.peek().clone() {
            Tok::LParen => {
                self.deeper()?;
                self.advance();
                let rule = self.or()?;
                if self.peek() != &Tok::RParen {
                    return Err(self.expected("'and', 'or' or ')'"));
                }
                self.advance();
                self.depth -= 1;
                return Ok(rule);
            }
            Tok::Ident(name) if !KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(&name)) => name,
            _ => return Err(self.expected("a condition")),
        };
        let at = self.column();
        self.advance();
        let subject = if self.peek() == &Tok::LParen {
            match name.as_str() {
                "has_tag" => {
                    let (tag, tag_at) = self.string_argument()?;
                    if tag.trim().is_empty() {
                        return Err(RuleError::WrongType {
                            column: tag_at,
                            text: format!("\"{tag}\""),
                            message: "a tag name cannot be empty".into(),
                        });
                    }
                    return Ok(Rule::HasTag(tag));
                }
                "count" => {
                    let (kind, kind_at) = self.string_argument()?;
                    let subject = Subject::Count(kind);
                    subject_kind(&subject).map_err(|p| p.at(kind_at))?;
                    subject
                }
                _ => {
                    return Err(RuleError::UnknownFunction {
                        column: at,
                        suggestion: nearest(&name, FUNCTIONS.iter().copied()),
                        name,
                    });
                }
            }
        } else {
            match Field::parse(&name) {
                Some(field) => Subject::Field(field),
                None if FUNCTIONS.contains(&name.as_str()) => {
                    return Err(self.expected("'('"));
                }
                None => {
                    return Err(RuleError::UnknownField {
                        column: at,
                        suggestion: nearest(&name, Field::all_names()),
                        name,
                    });
                }
            }
        };
        self.test(subject)
    }

    /// `( "text" )` after a function name: the text and its column.
    fn string_argument(&mut self) -> Result<(String, usize), RuleError> {
        self.advance(); // (
        let at = self.column();
        let Tok::Str(s) = self.peek().clone() else {
            return Err(self.expected("a string in double quotes"));
        };
        self.advance();
        if self.peek() != &Tok::RParen {
            return Err(self.expected("')'"));
        }
        self.advance();
        Ok((s, at))
    }

    /// What follows a subject: a comparison, `in (…)`, `not in (…)`, or nothing after a
    /// true/false field.
    fn test(&mut self, subject: Subject) -> Result<Rule, RuleError> {
        let kind = subject_kind(&subject).map_err(|p| p.at(self.column()))?;
        let name = subject.to_string();
        if let Tok::Op(op) = *self.peek() {
            let op_at = self.column();
            self.advance();
            check_op(&name, kind, op).map_err(|p| p.at(op_at))?;
            let (value, at) = self.value()?;
            lower(&name, kind, &value).map_err(|p| p.at(at))?;
            return Ok(Rule::Compare { subject, op, value });
        }
        let negated = self.is_keyword("not") && self.keyword_at(1, "in");
        if negated {
            self.advance();
        }
        if self.is_keyword("in") {
            self.advance();
            if self.peek() != &Tok::LParen {
                return Err(self.expected("'('"));
            }
            self.advance();
            let mut values = Vec::new();
            loop {
                let (value, at) = self.value()?;
                lower(&name, kind, &value).map_err(|p| p.at(at))?;
                values.push(value);
                match self.peek() {
                    Tok::Comma => {
                        self.advance();
                    }
                    Tok::RParen => {
                        self.advance();
                        break;
                    }
                    _ => return Err(self.expected("',' or ')'")),
                }
            }
            return Ok(Rule::In {
                subject,
                values,
                negated,
            });
        }
        if kind == Kind::Bool {
            return Ok(Rule::Compare {
                subject,
                op: Op::Eq,
                value: Value::Bool(true),
            });
        }
        Err(self.expected("a comparison (=, !=, <, <=, >, >=, in, not in)"))
    }

    /// A constant and its column.
    fn value(&mut self) -> Result<(Value, usize), RuleError> {
        let at = self.column();
        let t = self.token().clone();
        match t.tok {
            Tok::Minus => {
                self.advance();
                let Tok::Number { .. } = self.peek() else {
                    return Err(self.expected("a number"));
                };
                let n = self.number()?;
                let n = n.checked_neg().ok_or_else(|| RuleError::BadNumber {
                    column: at,
                    text: format!("-{n}"),
                    reason: "is too large".into(),
                })?;
                Ok((Value::Number(n), at))
            }
            Tok::Number { .. } => Ok((Value::Number(self.number()?), at)),
            Tok::Str(s) => {
                self.advance();
                Ok((Value::Text(s), at))
            }
            Tok::Ident(ref w)
                if w.eq_ignore_ascii_case("true") || w.eq_ignore_ascii_case("false") =>
            {
                self.advance();
                Ok((Value::Bool(w.eq_ignore_ascii_case("true")), at))
            }
            Tok::Ident(ref w) if w.eq_ignore_ascii_case("today") => {
                self.advance();
                let sign = match self.peek() {
                    Tok::Plus => 1,
                    Tok::Minus => -1,
                    _ => return Ok((Value::Today(0), at)),
                };
                self.advance();
                let days = match self.peek() {
                    Tok::Number { digits, suffix } if suffix.eq_ignore_ascii_case("d") => digits
                        .parse::<i64>()
                        .ok()
                        .and_then(|d| i32::try_from(sign * d).ok()),
                    _ => None,
                };
                let Some(days) = days else {
                    return Err(self.expected("a number of days such as 30d"));
                };
                self.advance();
                Ok((Value::Today(days), at))
            }
            Tok::Ident(ref w) if w.eq_ignore_ascii_case("date") => {
                self.advance();
                if self.peek() != &Tok::LParen {
                    return Err(self.expected("'('"));
                }
                let (text, text_at) = self.string_argument()?;
                let date = TenantZone::parse_day(&text).map_err(|_| RuleError::BadDate {
                    column: text_at,
                    text: format!("\"{text}\""),
                })?;
                Ok((Value::Date(date), at))
            }
            _ => Err(self.expected("a value")),
        }
    }

    fn number(&mut self) -> Result<Number, RuleError> {
        let at = self.column();
        let t = self.advance();
        let text = self.text(&t).to_owned();
        let Tok::Number { digits, suffix } = t.tok else {
            return Err(self.expected("a number"));
        };
        let bad = |reason: &str| RuleError::BadNumber {
            column: at,
            text: text.clone(),
            reason: reason.into(),
        };
        if suffix.eq_ignore_ascii_case("d") {
            return Err(bad(
                "is a number of days, which only follows 'today +' or 'today -'",
            ));
        }
        if !suffix.is_empty() {
            return Err(bad("is not a number"));
        }
        let (int, frac) = digits.split_once('.').unwrap_or((&digits, ""));
        let frac = frac.trim_end_matches('0');
        let scale = u8::try_from(frac.len())
            .ok()
            .filter(|&s| s <= MAX_DECIMALS)
            .ok_or_else(|| bad(&format!("has more than {MAX_DECIMALS} decimals")))?;
        let mantissa: i64 = format!("{int}{frac}")
            .parse()
            .map_err(|_| bad("is too large"))?;
        Number::new(mantissa, scale).ok_or_else(|| bad("is not a number"))
    }
}

/// A type mistake found before its position is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Problem {
    /// An operator or constant that does not fit: its text and why.
    WrongType {
        text: String,
        message: String,
    },
    UnknownValue {
        field: String,
        value: String,
        values: &'static [&'static str],
    },
    BadNumber {
        text: String,
        reason: String,
    },
    /// A rule built by hand with nothing where something must be.
    Empty {
        what: &'static str,
    },
}

impl Problem {
    pub(crate) fn at(self, column: usize) -> RuleError {
        match self {
            Problem::WrongType { text, message } => RuleError::WrongType {
                column,
                text,
                message,
            },
            Problem::UnknownValue {
                field,
                value,
                values,
            } => RuleError::UnknownValue {
                column,
                field,
                suggestion: nearest(&value, values.iter().copied()),
                value,
                values,
            },
            Problem::BadNumber { text, reason } => RuleError::BadNumber {
                column,
                text,
                reason,
            },
            Problem::Empty { what } => RuleError::Unexpected {
                column,
                expected: what.into(),
                found: "nothing".into(),
            },
        }
    }
}

/// A constant resolved to the kind of what it is compared with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Operand {
    /// A whole number.
    Int(i64),
    Fen(i64),
    Decimal(Number),
    /// 1 + the index in the field's list of values.
    Code(u8),
    Text(String),
    Bool(bool),
    Day(Day),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Day {
    Fixed(Date),
    /// Days after the as-of day.
    Today(i32),
}

/// The kind of a subject; a `count` of something that is no event type is refused.
pub(crate) fn subject_kind(subject: &Subject) -> Result<Kind, Problem> {
    match subject {
        Subject::Field(f) => Ok(f.kind()),
        Subject::Count(kind) => match EventType::parse(kind) {
            Ok(t) if t.as_str() == kind => Ok(Kind::Count),
            _ => Err(Problem::WrongType {
                text: format!("\"{kind}\""),
                message: format!(
                    "\"{kind}\" is not an event type (lowercase letters, digits and '_', e.g. \"post_like\")"
                ),
            }),
        },
    }
}

/// Whether `op` applies to a subject of `kind`.
pub(crate) fn check_op(name: &str, kind: Kind, op: Op) -> Result<(), Problem> {
    if matches!(op, Op::Eq | Op::Ne) || kind.is_ordered() {
        return Ok(());
    }
    Err(Problem::WrongType {
        text: op.symbol().into(),
        message: format!("'{op}' does not apply to {name}, which takes =, !=, in and not in"),
    })
}

/// The constant `value` as an operand for a subject of `kind`, or why it does not fit.
pub(crate) fn lower(name: &str, kind: Kind, value: &Value) -> Result<Operand, Problem> {
    let wrong = |expected: String| Problem::WrongType {
        text: value.to_string(),
        message: format!("{name} {expected}; found {value}"),
    };
    match (kind, value) {
        (Kind::Count, Value::Number(n)) => n
            .as_integer()
            .map(Operand::Int)
            .ok_or_else(|| wrong("is a whole number".into())),
        (Kind::Count, _) => Err(wrong("is a whole number".into())),
        (Kind::Money, Value::Number(n)) => {
            n.as_fen()
                .map(Operand::Fen)
                .ok_or_else(|| Problem::BadNumber {
                    text: n.to_string(),
                    reason: if n.scale() > 2 {
                        format!("has more than two decimals: {name} is money, in yuan to the fen")
                    } else {
                        "is too large".into()
                    },
                })
        }
        (Kind::Money, _) => Err(wrong("is money in yuan, such as 500 or 99.50".into())),
        (Kind::Decimal, Value::Number(n)) => Ok(Operand::Decimal(*n)),
        (Kind::Decimal, _) => Err(wrong("is a number such as 0.5".into())),
        (Kind::Choice(values), Value::Text(s)) => values
            .iter()
            .position(|v| v == s)
            .map(|i| Operand::Code(i as u8 + 1))
            .ok_or_else(|| Problem::UnknownValue {
                field: name.to_owned(),
                value: s.clone(),
                values,
            }),
        (Kind::Choice(values), _) => Err(wrong(format!(
            "takes a value in double quotes, such as \"{}\"",
            values.get(1).or(values.first()).unwrap_or(&"")
        ))),
        (Kind::Text, Value::Text(s)) => Ok(Operand::Text(s.clone())),
        (Kind::Text, _) => Err(wrong("takes text in double quotes".into())),
        (Kind::Bool, Value::Bool(b)) => Ok(Operand::Bool(*b)),
        (Kind::Bool, _) => Err(wrong("is true or false".into())),
        (Kind::Date, Value::Date(d)) => Ok(Operand::Day(Day::Fixed(*d))),
        (Kind::Date, Value::Today(n)) => Ok(Operand::Day(Day::Today(*n))),
        (Kind::Date, _) => Err(wrong(
            "is a day: compare it with date(\"YYYY-MM-DD\") or today - 30d".into(),
        )),
    }
}

/// The candidate nearest to `name` (case aside, a swap of two letters counting as one
/// edit), if it is near enough to be what was meant.
pub(crate) fn nearest(
    name: &str,
    candidates: impl Iterator<Item = &'static str>,
) -> Option<&'static str> {
    let lower = name.to_lowercase();
    let (best, d) = candidates
        .map(|c| (c, edit_distance(&lower, c)))
        .min_by_key(|&(_, d)| d)?;
    let limit = 2.max(lower.chars().count() / 3);
    (d <= limit).then_some(best)
}

/// Optimal string alignment distance: insertions, deletions, substitutions and swaps of
/// adjacent characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

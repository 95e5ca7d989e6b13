//! Compiling a rule against a table into scans of whole columns, and running them.
//!
//! Every numeric comparison becomes a range `lo ..= hi` or a `!= v` over the column's own
//! integers (days since a day become a range of days, yuan become fen), clamped so that
//! the missing-value sentinel lies outside it. Choices and texts become a lookup table
//! over their codes. The plan is a tree of such scans combined with and / or / not.

use std::ops::Not;

use super::field::{Kind, Source};
use super::parse::{Day, Operand, Problem, check_op, lower, subject_kind};
use super::table::{Bitset, DayCol, EventCounts, IntCol, NO_I32, NO_I64, SegmentTable, TagRows};
use super::{Number, Op, Rule, Subject};
use crate::channel::Channel;

/// A rule resolved against a [`SegmentTable`], ready to evaluate (as often as wanted).
#[derive(Debug)]
pub struct CompiledRule<'t> {
    table: &'t SegmentTable,
    plan: Plan<'t>,
}

impl CompiledRule<'_> {
    /// The rows of the table the rule holds for.
    pub fn evaluate(&self) -> Bitset {
        self.plan.run(self.table.len())
    }
}

#[derive(Debug)]
enum Plan<'t> {
    And(Vec<Plan<'t>>),
    Or(Vec<Plan<'t>>),
    Not(Box<Plan<'t>>),
    Const(bool),
    I32 {
        values: &'t [i32],
        test: Test<i32>,
    },
    I64 {
        values: &'t [i64],
        test: Test<i64>,
    },
    Ratio {
        cols: Ratio<'t>,
        op: Op,
        value: Number,
    },
    Codes8 {
        codes: &'t [u8],
        take: Vec<bool>,
    },
    Codes32 {
        codes: &'t [u32],
        take: Vec<bool>,
    },
    Flag {
        bits: &'t Bitset,
        want: bool,
    },
    Tag(&'t TagRows),
    Count {
        counts: &'t EventCounts,
        test: Test<i64>,
    },
}

/// A test of one integer: within `lo ..= hi`, or different from a value and not missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Test<T> {
    Range(T, T),
    Ne(T),
}

#[derive(Debug, Clone, Copy)]
enum Ratio<'t> {
    /// coupon orders / orders.
    Share {
        coupons: &'t [i32],
        orders: &'t [i32],
    },
    /// (last − first day) / (purchase days − 1).
    Interval {
        first: &'t [i32],
        last: &'t [i32],
        days: &'t [i32],
    },
}

impl Test<i64> {
    /// `x op n` for whole numbers, as a test over all of `i64`.
    fn of(op: Op, n: i64) -> Test<i64> {
        match op {
            Op::Eq => Test::Range(n, n),
            Op::Ne => Test::Ne(n),
            Op::Lt => Test::Range(i64::MIN, n.saturating_sub(1)),
            Op::Le => Test::Range(i64::MIN, n),
            Op::Gt => Test::Range(n.saturating_add(1), i64::MAX),
            Op::Ge => Test::Range(n, i64::MAX),
        }
    }

    /// The test of a day `d` for `anchor − d` passing this test.
    fn days_before(self, anchor: i64) -> Test<i64> {
        match self {
            Test::Range(lo, hi) => {
                Test::Range(anchor.saturating_sub(hi), anchor.saturating_sub(lo))
            }
            Test::Ne(v) => Test::Ne(anchor.saturating_sub(v)),
        }
    }

    fn matches(self, x: i64) -> bool {
        match self {
            Test::Range(lo, hi) => lo <= x && x <= hi,
            Test::Ne(v) => x != v,
        }
    }

    /// The test over a column of `T` whose `missing` sentinel is its least value: the
    /// range clamped above the sentinel, or a constant when nothing or everything passes.
    fn narrow<T: TryFrom<i64> + Copy>(self, missing: i64, max: i64) -> Result<Test<T>, bool> {
        let cast = |v: i64| T::try_from(v).map_err(|_| false);
        match self {
            Test::Range(lo, hi) => {
                let (lo, hi) = (lo.max(missing + 1), hi.min(max));
                if lo > hi {
                    Err(false)
                } else {
                    Ok(Test::Range(cast(lo)?, cast(hi)?))
                }
            }
            Test::Ne(v) if v <= missing || v > max => {
                Ok(Test::Range(cast(missing + 1)?, cast(max)?))
            }
            Test::Ne(v) => Ok(Test::Ne(cast(v)?)),
        }
    }
}

pub(crate) fn compile<'t>(
    rule: &Rule,
    table: &'t SegmentTable,
) -> Result<CompiledRule<'t>, Problem> {
    Ok(CompiledRule {
        table,
        plan: plan(rule, table)?,
    })
}

fn plan<'t>(rule: &Rule, t: &'t SegmentTable) -> Result<Plan<'t>, Problem> {
    Ok(match rule {
        Rule::Or(rules) | Rule::And(rules) => {
            if rules.is_empty() {
                return Err(Problem::Empty {
                    what: "a condition",
                });
            }
            let plans = rules
                .iter()
                .map(|r| plan(r, t))
                .collect::<Result<Vec<_>, _>>()?;
            if matches!(rule, Rule::Or(_)) {
                Plan::Or(plans)
            } else {
                Plan::And(plans)
            }
        }
        Rule::Not(r) => Plan::Not(Box::new(plan(r, t)?)),
        Rule::HasTag(tag) => t
            .tag_names
            .code(tag)
            .and_then(|code| t.tags.get(code as usize - 1))
            .map_or(Plan::Const(false), Plan::Tag),
        Rule::Compare { subject, op, value } => {
            let (name, kind) = (subject.to_string(), subject_kind(subject)?);
            check_op(&name, kind, *op)?;
            let operand = lower(&name, kind, value)?;
            match choice_codes(subject, t) {
                Some(codes) => codes.plan(&[operand], *op == Op::Ne),
                None => compare(subject, *op, operand, t)?,
            }
        }
        Rule::In {
            subject,
            values,
            negated,
        } => {
            if values.is_empty() {
                return Err(Problem::Empty { what: "a value" });
            }
            let (name, kind) = (subject.to_string(), subject_kind(subject)?);
            let operands = values
                .iter()
                .map(|v| lower(&name, kind, v))
                .collect::<Result<Vec<_>, _>>()?;
            if let Some(codes) = choice_codes(subject, t) {
                return Ok(codes.plan(&operands, *negated));
            }
            // Under missing values, `not in` is every `!=`, not the negation of `in`.
            let op = if *negated { Op::Ne } else { Op::Eq };
            let mut plans = operands
                .into_iter()
                .map(|o| compare(subject, op, o, t))
                .collect::<Result<Vec<_>, _>>()?;
            match (plans.len(), negated) {
                (1, _) => plans.remove(0),
                (_, true) => Plan::And(plans),
                (_, false) => Plan::Or(plans),
            }
        }
    })
}

/// A column of codes and how constants map to them.
enum Codes<'t> {
    Choice(&'t [u8], usize),
    Text(&'t [u32], &'t super::table::Interner, bool),
}

impl<'t> Codes<'t> {
    /// The scan for "is one of `operands`", or "is none of them and not missing".
    fn plan(&self, operands: &[Operand], negated: bool) -> Plan<'t> {
        let (n, codes): (usize, Vec<usize>) = match self {
            Codes::Choice(_, n) => (
                *n + 1,
                operands
                    .iter()
                    .filter_map(|o| match o {
                        Operand::Code(c) => Some(usize::from(*c)),
                        _ => None,
                    })
                    .collect(),
            ),
            Codes::Text(_, names, channel) => (
                names.code_count(),
                operands
                    .iter()
                    .filter_map(|o| match o {
                        Operand::Text(s) if *channel => {
                            let c = Channel::parse(s).ok();
                            names.code(c.as_ref().map_or(s.as_str(), Channel::as_str))
                        }
                        Operand::Text(s) => names.code(s),
                        _ => None,
                    })
                    .map(|c| c as usize)
                    .collect(),
            ),
        };
        let mut take = vec![negated; n];
        take[0] = false;
        for c in codes {
            if let Some(t) = take.get_mut(c) {
                *t = !negated;
            }
        }
        match self {
            Codes::Choice(codes, _) => {
                take.resize(256, false);
                Plan::Codes8 { codes, take }
            }
            Codes::Text(codes, ..) => Plan::Codes32 { codes, take },
        }
    }
}

fn choice_codes<'t>(subject: &Subject, t: &'t SegmentTable) -> Option<Codes<'t>> {
    let Subject::Field(field) = subject else {
        return None;
    };
    match (field.def().source, field.kind()) {
        (Source::Code(c), Kind::Choice(values)) => {
            Some(Codes::Choice(&t.codes[c as usize], values.len()))
        }
        (Source::Text(c), _) => {
            let col = &t.texts[c as usize];
            Some(Codes::Text(
                &col.codes,
                &col.names,
                c == super::table::TextCol::Channel,
            ))
        }
        _ => None,
    }
}

/// `subject op operand` for a subject that is not a choice or a text.
fn compare<'t>(
    subject: &Subject,
    op: Op,
    operand: Operand,
    t: &'t SegmentTable,
) -> Result<Plan<'t>, Problem> {
    let mismatch = || Problem::WrongType {
        text: subject.to_string(),
        message: format!("{subject} cannot be compared with that value"),
    };
    let source = match subject {
        Subject::Count(kind) => {
            let Operand::Int(n) = operand else {
                return Err(mismatch());
            };
            let test = Test::of(op, n);
            return Ok(t
                .event_types
                .code(kind)
                .and_then(|code| t.events.get(code as usize - 1))
                .map_or(Plan::Const(test.matches(0)), |counts| Plan::Count {
                    counts,
                    test,
                }));
        }
        Subject::Field(field) => field.def().source,
    };
    let as_of = i64::from(t.as_of_day);
    let day = |d: Day| match d {
        Day::Fixed(date) => i64::from(crate::time::date_number(date)),
        Day::Today(n) => as_of + i64::from(n),
    };
    let days = |values: &'t [i32], test: Test<i64>| match test
        .narrow(i64::from(NO_I32), i64::from(i32::MAX))
    {
        Ok(test) => Plan::I32 { values, test },
        Err(all) => Plan::Const(all),
    };
    Ok(match (source, operand) {
        (Source::Int(c), Operand::Int(n)) => days(&t.ints[c as usize], Test::of(op, n)),
        (Source::Day(c), Operand::Day(d)) => days(&t.days[c as usize], Test::of(op, day(d))),
        (Source::DaysSince(c), Operand::Int(n)) => {
            days(&t.days[c as usize], Test::of(op, n).days_before(as_of))
        }
        (Source::Money(c), Operand::Fen(fen)) => match Test::of(op, fen).narrow(NO_I64, i64::MAX) {
            Ok(test) => Plan::I64 {
                values: &t.money[c as usize],
                test,
            },
            Err(all) => Plan::Const(all),
        },
        (Source::CouponShare, Operand::Decimal(value)) => Plan::Ratio {
            cols: Ratio::Share {
                coupons: &t.ints[IntCol::CouponOrders as usize],
                orders: &t.ints[IntCol::Orders as usize],
            },
            op,
            value,
        },
        (Source::MeanInterval, Operand::Decimal(value)) => Plan::Ratio {
            cols: Ratio::Interval {
                first: &t.days[DayCol::FirstOrder as usize],
                last: &t.days[DayCol::LastOrder as usize],
                days: &t.ints[IntCol::PurchaseDays as usize],
            },
            op,
            value,
        },
        (Source::Flag(c), Operand::Bool(b)) => Plan::Flag {
            bits: &t.flags[c as usize],
            want: b == (op == Op::Eq),
        },
        _ => return Err(mismatch()),
    })
}

impl Plan<'_> {
    fn run(&self, len: usize) -> Bitset {
        match self {
            Plan::And(plans) => {
                let mut acc = plans[0].run(len);
                for p in &plans[1..] {
                    if acc.none() {
                        break;
                    }
                    acc.and_with(&p.run(len));
                }
                acc
            }
            Plan::Or(plans) => {
                let mut acc = plans[0].run(len);
                for p in &plans[1..] {
                    acc.or_with(&p.run(len));
                }
                acc
            }
            Plan::Not(p) => {
                let mut b = p.run(len);
                b.negate();
                b
            }
            Plan::Const(true) => Bitset::full(len),
            Plan::Const(false) => Bitset::empty(len),
            Plan::I32 { values, test } => match *test {
                Test::Range(lo, hi) => Bitset::scan(values, |v| (v >= lo) & (v <= hi)),
                Test::Ne(x) => Bitset::scan(values, |v| (v != x) & (v != NO_I32)),
            },
            Plan::I64 { values, test } => match *test {
                Test::Range(lo, hi) => Bitset::scan(values, |v| (v >= lo) & (v <= hi)),
                Test::Ne(x) => Bitset::scan(values, |v| (v != x) & (v != NO_I64)),
            },
            Plan::Ratio { cols, op, value } => {
                // num / den op m / 10^s  ⇔  num · 10^s op m · den, for den > 0.
                let pow = 10i128.pow(u32::from(value.scale()));
                let m = i128::from(value.mantissa());
                let holds = |num: i32, den: i32| {
                    den > 0 && op.holds(i128::from(num) * pow, m * i128::from(den))
                };
                match *cols {
                    Ratio::Share { coupons, orders } => {
                        Bitset::from_fn(len, |i| holds(coupons[i], orders[i]))
                    }
                    Ratio::Interval { first, last, days } => Bitset::from_fn(len, |i| {
                        first[i] != NO_I32
                            && last[i] != NO_I32
                            && holds(last[i] - first[i], days[i] - 1)
                    }),
                }
            }
            Plan::Codes8 { codes, take } => match single(take) {
                Some(c) => Bitset::scan(codes, |v| usize::from(v) == c),
                None => Bitset::scan(codes, |v| take[usize::from(v)]),
            },
            Plan::Codes32 { codes, take } => match single(take) {
                Some(c) => Bitset::scan(codes, |v| v as usize == c),
                None => Bitset::scan(codes, |v| take.get(v as usize).copied().unwrap_or(false)),
            },
            Plan::Flag { bits, want } => {
                let mut b = (*bits).clone();
                if want.not() {
                    b.negate();
                }
                b
            }
            Plan::Tag(TagRows::Dense(bits)) => bits.clone(),
            Plan::Tag(TagRows::Sparse(rows)) => {
                let mut b = Bitset::empty(len);
                for &r in rows {
                    b.set(r as usize, true);
                }
                b
            }
            Plan::Count { counts, test } => {
                let mut b = if test.matches(0) {
                    Bitset::full(len)
                } else {
                    Bitset::empty(len)
                };
                for (&r, &n) in counts.rows.iter().zip(&counts.counts) {
                    b.set(r as usize, test.matches(i64::from(n)));
                }
                b
            }
        }
    }
}

/// The one code a lookup table takes, if it takes exactly one.
fn single(take: &[bool]) -> Option<usize> {
    let mut taken = take.iter().enumerate().filter(|(_, t)| **t).map(|(c, _)| c);
    let first = taken.next()?;
    taken.next().is_none().then_some(first)
}

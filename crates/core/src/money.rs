//! Money as integer fen (1 yuan = 100 fen); parsed from the yuan text merchants' exports hold.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An amount of money in fen. Never a float.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Money(i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("empty amount")]
    Empty,
    #[error("'{0}' is not an amount")]
    NotAnAmount(String),
    #[error("'{0}' has more than two decimals")]
    TooManyDecimals(String),
    #[error("'{0}' is negative")]
    Negative(String),
    #[error("'{0}' is above the largest amount accepted, ¥100,000,000.00")]
    TooLarge(String),
}

/// The largest amount accepted as input (one order, discount or month's spend):
/// ¥100,000,000.00. Sums of a billion such amounts still fit in an `i64` of fen.
pub const MAX_AMOUNT: Money = Money(10_000_000_000);

impl Money {
    pub const ZERO: Money = Money(0);

    pub const fn from_fen(fen: i64) -> Money {
        Money(fen)
    }

    pub const fn yuan(yuan: i64) -> Money {
        Money(yuan * 100)
    }

    pub const fn fen(self) -> i64 {
        self.0
    }

    /// Parses a non-negative amount in yuan: `128.5`, `128.50`, `0元`, `¥1,280.00`.
    /// At most two decimals; thousands separators only in groups of three, so the
    /// European decimal comma (`12,5`) is rejected rather than misread.
    pub fn parse_yuan(text: &str) -> Result<Money, MoneyError> {
        let s = text.trim();
        if s.is_empty() {
            return Err(MoneyError::Empty);
        }
        let bad = || MoneyError::NotAnAmount(text.trim().to_owned());
        let s = s
            .strip_prefix('¥')
            .or_else(|| s.strip_prefix('￥'))
            .unwrap_or(s)
            .trim_start();
        let s = s
            .strip_suffix('元')
            .or_else(|| s.strip_suffix("RMB"))
            .or_else(|| s.strip_suffix("CNY"))
            .unwrap_or(s)
            .trim_end();
        let (negative, s) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        let (int_part, frac_part) = match s.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (s, None),
        };
        if int_part.is_empty() && frac_part.is_none_or(str::is_empty) {
            return Err(bad());
        }
        let mut yuan: i64 = 0;
        let groups: Vec<&str> = int_part.split(',').collect();
        for (i, group) in groups.iter().enumerate() {
            let ok_len = match (groups.len(), i) {
                (1, _) => true,
                (_, 0) => (1..=3).contains(&group.len()),
                _ => group.len() == 3,
            };
            if !ok_len || !group.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            for b in group.bytes() {
                yuan = yuan
                    .checked_mul(10)
                    .and_then(|v| v.checked_add(i64::from(b - b'0')))
                    .ok_or_else(|| MoneyError::TooLarge(text.trim().to_owned()))?;
            }
        }
        let fen_part = match frac_part {
            None => 0,
            Some(f) => {
                if !f.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                if f.len() > 2 {
                    return Err(MoneyError::TooManyDecimals(text.trim().to_owned()));
                }
                let digits = f.as_bytes();
                let tens = digits.first().map_or(0, |d| i64::from(d - b'0'));
                let ones = digits.get(1).map_or(0, |d| i64::from(d - b'0'));
                tens * 10 + ones
            }
        };
        let fen = yuan
            .checked_mul(100)
            .and_then(|v| v.checked_add(fen_part))
            .ok_or_else(|| MoneyError::TooLarge(text.trim().to_owned()))?;
        if negative && fen != 0 {
            return Err(MoneyError::Negative(text.trim().to_owned()));
        }
        if fen > MAX_AMOUNT.0 {
            return Err(MoneyError::TooLarge(text.trim().to_owned()));
        }
        Ok(Money(fen))
    }
}

impl fmt::Display for Money {
    /// Yuan with two decimals, the way the CSV formats and reports print money.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

impl std::ops::Add for Money {
    type Output = Money;
    fn add(self, rhs: Money) -> Money {
        Money(self.0 + rhs.0)
    }
}

impl std::ops::AddAssign for Money {
    fn add_assign(&mut self, rhs: Money) {
        self.0 += rhs.0;
    }
}

impl std::ops::Sub for Money {
    type Output = Money;
    fn sub(self, rhs: Money) -> Money {
        Money(self.0 - rhs.0)
    }
}

impl std::iter::Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        Money(iter.map(|m| m.0).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fen(s: &str) -> i64 {
        Money::parse_yuan(s).expect(s).fen()
    }

    #[test]
    fn yuan_text_in_the_forms_exports_use_is_read_as_fen() {
        assert_eq!(fen("128.5"), 12_850);
        assert_eq!(fen("128.50"), 12_850);
        assert_eq!(fen("128"), 12_800);
        assert_eq!(fen("0元"), 0);
        assert_eq!(fen("1,280.00"), 128_000);
        assert_eq!(fen("1,234,567.89"), 123_456_789);
        assert_eq!(fen("¥99.9"), 9_990);
        assert_eq!(fen("￥ 99.90"), 9_990);
        assert_eq!(fen(" 7.05 "), 705);
        assert_eq!(fen(".5"), 50);
        assert_eq!(fen("3."), 300);
    }

    #[test]
    fn malformed_amounts_are_rejected_with_a_reason() {
        assert_eq!(
            Money::parse_yuan("12.345"),
            Err(MoneyError::TooManyDecimals("12.345".into()))
        );
        assert_eq!(
            Money::parse_yuan("abc"),
            Err(MoneyError::NotAnAmount("abc".into()))
        );
        assert_eq!(Money::parse_yuan(""), Err(MoneyError::Empty));
        assert_eq!(Money::parse_yuan("   "), Err(MoneyError::Empty));
        assert_eq!(
            Money::parse_yuan("12,5"),
            Err(MoneyError::NotAnAmount("12,5".into()))
        );
        assert_eq!(
            Money::parse_yuan("-3.00"),
            Err(MoneyError::Negative("-3.00".into()))
        );
        assert!(Money::parse_yuan("1,2345.00").is_err());
        assert!(Money::parse_yuan("1e5").is_err());
        assert!(Money::parse_yuan(".").is_err());
        assert!(Money::parse_yuan("99999999999999999999").is_err());
    }

    #[test]
    fn an_amount_above_a_hundred_million_yuan_is_refused() {
        assert_eq!(fen("100000000"), MAX_AMOUNT.fen());
        assert_eq!(fen("¥100,000,000.00"), MAX_AMOUNT.fen());
        for text in ["100000000.01", "92233720368547758.07", "1,000,000,000"] {
            assert_eq!(
                Money::parse_yuan(text),
                Err(MoneyError::TooLarge(text.to_owned())),
                "{text}"
            );
        }
        assert_eq!(
            Money::parse_yuan("92233720368547758.07")
                .expect_err("too large")
                .to_string(),
            "'92233720368547758.07' is above the largest amount accepted, ¥100,000,000.00"
        );
    }

    #[test]
    fn money_prints_as_yuan_with_two_decimals() {
        assert_eq!(Money::from_fen(12_850).to_string(), "128.50");
        assert_eq!(Money::from_fen(5).to_string(), "0.05");
        assert_eq!(Money::from_fen(-150).to_string(), "-1.50");
    }

    proptest! {
        #[test]
        fn printed_money_parses_back_to_itself(f in 0i64..=MAX_AMOUNT.0) {
            let m = Money::from_fen(f);
            prop_assert_eq!(Money::parse_yuan(&m.to_string()), Ok(m));
        }
    }
}

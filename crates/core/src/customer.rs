//! A customer: a person in the merchant's pool.

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::channel::Channel;
use crate::ids::CustomerId;
use crate::time::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gender {
    Female,
    Male,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a gender (female/male/other, 女/男, F/M)")]
pub struct GenderError(pub String);

impl Gender {
    pub fn parse(text: &str) -> Result<Gender, GenderError> {
        match text.trim().to_lowercase().as_str() {
            "f" | "female" | "woman" | "女" | "女性" => Ok(Gender::Female),
            "m" | "male" | "man" | "男" | "男性" => Ok(Gender::Male),
            "other" | "其他" => Ok(Gender::Other),
            _ => Err(GenderError(text.trim().to_owned())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Gender::Female => "female",
            Gender::Male => "male",
            Gender::Other => "other",
        }
    }
}

/// A customer as imported. Absent attributes leave what the pool already knows unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCustomer {
    pub id: CustomerId,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub gender: Option<Gender>,
    pub birthday: Option<Date>,
    pub region: Option<String>,
    pub channel: Option<Channel>,
    pub referrer_id: Option<CustomerId>,
    pub joined_at: Option<Timestamp>,
    /// Manual tags, added (never removed) by an import.
    pub tags: Vec<String>,
}

/// A customer as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Customer {
    pub id: CustomerId,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub gender: Option<Gender>,
    pub birthday: Option<Date>,
    pub region: Option<String>,
    pub channel: Option<Channel>,
    pub referrer_id: Option<CustomerId>,
    pub joined_at: Timestamp,
}

/// A customer as the figures and profiles need them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerFact {
    pub id: CustomerId,
    pub channel: Option<Channel>,
    pub joined_at: Timestamp,
    pub referrer_id: Option<CustomerId>,
}

/// A first sighting of a customer through an order or an event: creates them if the
/// pool lacks them, joined at that moment (or moves an inferred join earlier).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenCustomer {
    pub id: CustomerId,
    pub at: Timestamp,
    pub channel: Option<Channel>,
}

/// Text that is not a phone number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a phone number")]
pub struct PhoneError(pub String);

/// A phone number as every input reads it (imports and the API alike): normalised, or
/// why not.
pub fn parse_phone(text: &str) -> Result<String, PhoneError> {
    normalise_phone(text).ok_or_else(|| PhoneError(text.trim().to_owned()))
}

/// A phone number with digits hidden (`186******05`, as Youzan's customer list writes
/// them), separators dropped: kept to show, never a key, an identity or a phone to match.
pub fn masked_phone(text: &str) -> Option<String> {
    let kept: String = text
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')'))
        .collect();
    let digits = kept.bytes().filter(u8::is_ascii_digit).count();
    let ok = kept.contains("**")
        && digits >= 2
        && (7..=20).contains(&kept.len())
        && kept
            .bytes()
            .enumerate()
            .all(|(i, b)| b.is_ascii_digit() || b == b'*' || (i == 0 && b == b'+'));
    ok.then_some(kept)
}

/// A phone as siyu shows it to those who may not see it whole: `138****5678` (three and
/// four digits kept); a short one keeps its first and last two; one masked already stays
/// as it is.
pub fn hide_phone(phone: &str) -> String {
    if phone.contains('*') {
        return phone.to_owned();
    }
    let chars: Vec<char> = phone.chars().collect();
    let (head, tail) = if chars.len() >= 11 { (3, 4) } else { (2, 2) };
    if chars.len() <= head + tail {
        return "*".repeat(chars.len());
    }
    let mut out: String = chars[..head].iter().collect();
    out.push_str(&"*".repeat(chars.len() - head - tail));
    out.extend(&chars[chars.len() - tail..]);
    out
}

/// Phone numbers as digits with an optional leading `+`; separators dropped.
pub fn normalise_phone(text: &str) -> Option<String> {
    let s = text.trim();
    let (plus, rest) = match s.strip_prefix('+') {
        Some(rest) => ("+", rest),
        None => ("", s),
    };
    let digits: String = rest
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')'))
        .collect();
    let ok = (5..=20).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
    ok.then(|| format!("{plus}{digits}"))
}

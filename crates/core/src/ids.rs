//! Identifier newtypes: kept exactly as the merchant's systems wrote them (19-digit order
//! ids must survive), only trimmed and checked for sanity.

use std::fmt;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

/// The longest id accepted; real ids (unionids, 19-digit order numbers, hashes) are far shorter.
pub const MAX_ID_LEN: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("empty id")]
    Empty,
    #[error("id is longer than {MAX_ID_LEN} characters")]
    TooLong,
    #[error("id contains a control character")]
    ControlCharacter,
    #[error(
        "ids starting with '{}' are reserved for the remains of erased customers",
        crate::privacy::ERASED_PREFIX
    )]
    Reserved,
}

fn check_id(text: &str) -> Result<&str, IdError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if s.len() > MAX_ID_LEN {
        return Err(IdError::TooLong);
    }
    if s.chars().any(char::is_control) {
        return Err(IdError::ControlCharacter);
    }
    Ok(s)
}

// Held inline up to 24 bytes (19-digit order numbers, member numbers, most unionids fit):
// an import or a batch makes and drops millions of ids, and a heap string each cost the
// reader of an import a third of its time in the allocator.
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(CompactString);

        impl $name {
            pub fn parse(text: &str) -> Result<Self, IdError> {
                check_id(text).map(|s| Self(CompactString::new(s)))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        /// Maps keyed by id can be looked up by `&str`, without allocating.
        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// The merchant's own key for a person: unionid, member number, hashed phone.
    CustomerId
);
impl CustomerId {
    /// An id that input may name, to create or change a customer: as [`CustomerId::parse`],
    /// and outside the namespace of erased customers' remains, which no write may touch
    /// (nor re-link to a name or a phone).
    pub fn parse_input(text: &str) -> Result<CustomerId, IdError> {
        let id = CustomerId::parse(text)?;
        if id.is_erased_remains() {
            return Err(IdError::Reserved);
        }
        Ok(id)
    }

    /// Whether this is the id an erasure gave a customer's remains.
    pub fn is_erased_remains(&self) -> bool {
        self.0.starts_with(crate::privacy::ERASED_PREFIX)
    }
}

id_type!(
    /// The merchant's order number, as text.
    OrderId
);
id_type!(
    /// The idempotency key of an interaction.
    EventId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nineteen_digit_ids_survive_exactly() {
        let id = OrderId::parse("3791234567890123456").expect("valid");
        assert_eq!(id.as_str(), "3791234567890123456");
        let long = format!("o{}", "9".repeat(100));
        assert_eq!(OrderId::parse(&long).expect("valid").as_str(), long);
    }

    #[test]
    fn input_may_not_name_the_remains_of_an_erased_customer() {
        assert_eq!(
            CustomerId::parse_input("erased:da0b"),
            Err(IdError::Reserved)
        );
        assert_eq!(CustomerId::parse_input("  erased:"), Err(IdError::Reserved));
        assert!(
            CustomerId::parse("erased:da0b")
                .expect("stored")
                .is_erased_remains()
        );
        assert!(CustomerId::parse_input("Erased:1").is_ok());
        assert!(CustomerId::parse_input("c-erased:1").is_ok());
    }

    #[test]
    fn empty_and_control_ids_are_rejected() {
        assert_eq!(CustomerId::parse("  "), Err(IdError::Empty));
        assert_eq!(CustomerId::parse("a\u{7}b"), Err(IdError::ControlCharacter));
        assert_eq!(CustomerId::parse(&"x".repeat(200)), Err(IdError::TooLong));
    }
}

//! Personal data on request (PIPL): what is done to a customer's data and recorded in the
//! audit log, and the form of the id an erased customer's orders keep.

use std::fmt;

use serde::Serialize;

use crate::ids::CustomerId;

/// An action on a customer's personal data, as the audit log records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    /// Everything held on the customer was handed out.
    Export,
    /// The customer's personal data and events were erased; the orders kept de-linked.
    Erase,
    /// The customer asked for no marketing.
    OptOut,
    /// The customer withdrew an opt-out.
    OptIn,
    /// The customer's phone was shown unmasked (an admin's reveal in the console).
    ViewPhone,
}

impl AuditAction {
    pub const ALL: [AuditAction; 5] = [
        AuditAction::Export,
        AuditAction::Erase,
        AuditAction::OptOut,
        AuditAction::OptIn,
        AuditAction::ViewPhone,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Export => "export",
            AuditAction::Erase => "erase",
            AuditAction::OptOut => "opt_out",
            AuditAction::OptIn => "opt_in",
            AuditAction::ViewPhone => "view_phone",
        }
    }

    pub fn parse(s: &str) -> Option<AuditAction> {
        AuditAction::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The prefix of the id that an erased customer's orders are kept under.
pub const ERASED_PREFIX: &str = "erased:";

/// The id an erased customer's orders are kept under: `erased:` and the given random hex,
/// which nothing links back to the customer.
pub fn erased_id(random_hex: &str) -> CustomerId {
    CustomerId::parse(&format!("{ERASED_PREFIX}{random_hex}"))
        .expect("`erased:` and hex digits make a valid customer id")
}

/// Whether an id is that of an erased customer's remains.
pub fn is_erased(id: &CustomerId) -> bool {
    id.as_str().starts_with(ERASED_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_read_back_and_erased_ids_are_recognised() {
        for a in AuditAction::ALL {
            assert_eq!(AuditAction::parse(a.as_str()), Some(a));
        }
        assert_eq!(AuditAction::parse("delete"), None);
        let id = erased_id("0123abcd");
        assert_eq!(id.as_str(), "erased:0123abcd");
        assert!(is_erased(&id));
        assert!(!is_erased(&CustomerId::parse("c1").expect("id")));
    }
}

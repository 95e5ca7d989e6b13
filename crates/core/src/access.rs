//! Who may do what through the API: a token's role.

use std::fmt;

use serde::Serialize;

/// A token's role. `ingest` may only post batches; `viewer` reads; `operator` reads and
/// manages tags and segments; `admin` does everything, tokens included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Operator,
    Viewer,
    Ingest,
}

/// What a request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Post batches of customers, orders and events.
    Ingest,
    /// Read customers, segments, reports.
    Read,
    /// Change tags and segments.
    Manage,
    /// Manage tokens; export and erase personal data.
    Administer,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Operator, Role::Viewer, Role::Ingest];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
            Role::Ingest => "ingest",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s.trim())
    }

    pub fn allows(self, action: Action) -> bool {
        match self {
            Role::Admin => true,
            Role::Operator => matches!(action, Action::Read | Action::Manage),
            Role::Viewer => action == Action::Read,
            Role::Ingest => action == Action::Ingest,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_does_what_it_is_for_and_nothing_else() {
        assert!(Role::Ingest.allows(Action::Ingest));
        assert!(!Role::Ingest.allows(Action::Read));
        assert!(Role::Viewer.allows(Action::Read));
        assert!(!Role::Viewer.allows(Action::Manage));
        assert!(!Role::Viewer.allows(Action::Ingest));
        assert!(Role::Operator.allows(Action::Manage));
        assert!(!Role::Operator.allows(Action::Administer));
        assert!(Role::Admin.allows(Action::Administer));
        assert_eq!(Role::parse("viewer"), Some(Role::Viewer));
        assert_eq!(Role::parse("root"), None);
    }
}

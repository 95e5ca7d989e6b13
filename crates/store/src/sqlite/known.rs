//! Customers a connection knows to be in the pool, and what a sighting of them would change.
//!
//! Every batch of events names its customers, and `see_customers` must know, for each,
//! whether the pool has them and whether the sighting moves their inferred join earlier
//! or fills their channel. On a long-lived connection (the server's writer) the answer is
//! nearly always "known, nothing to change", and asking the database for it each time was
//! an eighth of the writer's work. What the connection has learnt is kept here instead:
//! - as a transaction goes, in its [`Staged`] changes, which only a commit makes part of
//!   what the connection knows (a rollback forgets them);
//! - the whole is forgotten when another connection has committed since it was learnt
//!   (`PRAGMA data_version`, read once the transaction holds the write lock, tells), so it
//!   never describes a database that has moved on without it;
//! - a customer whose row this connection rewrites otherwise (their attributes imported,
//!   their person erased) is looked up in the database again.

use rusqlite::Connection;

use siyu_core::fasthash::{FxHashMap, FxHashSet};

use crate::Result;

/// Customers known at most, over all tenants (about 70 bytes each): beyond, the rest are
/// looked up every time.
const MAX_KNOWN: usize = 250_000;

/// What a sighting can change of a customer in the pool: the columns `UPDATE_SEEN` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Known {
    /// Microseconds, UTC.
    pub joined_at: i64,
    /// The join is only inferred from sightings (it moves earlier with an earlier one).
    pub joined_inferred: bool,
    pub no_channel: bool,
}

impl Known {
    /// A customer just created by a sighting.
    pub fn created(at: i64, channel: bool) -> Known {
        Known {
            joined_at: at,
            joined_inferred: true,
            no_channel: !channel,
        }
    }

    /// Whether a sighting at `at` (naming a channel or not) changes the customer: the
    /// `WHERE` of `UPDATE_SEEN`.
    pub fn moved_by(self, at: i64, channel: bool) -> bool {
        (self.joined_inferred && self.joined_at > at) || (self.no_channel && channel)
    }

    /// The customer after that sighting: the `SET` of `UPDATE_SEEN`, as far as these go.
    pub fn seen(self, at: i64, channel: bool) -> Known {
        Known {
            joined_at: if self.joined_inferred {
                self.joined_at.min(at)
            } else {
                self.joined_at
            },
            joined_inferred: self.joined_inferred,
            no_channel: self.no_channel && !channel,
        }
    }
}

/// What one connection knows, per tenant, as of its last commit.
#[derive(Debug, Default)]
pub(super) struct KnownCustomers {
    /// `PRAGMA data_version` when last checked.
    data_version: i64,
    tenants: FxHashMap<i64, FxHashMap<Box<str>, Known>>,
    len: usize,
}

impl KnownCustomers {
    /// Forgets everything if another connection has committed since the last check. To be
    /// called once the transaction holds the write lock: no commit can come between.
    pub fn check(&mut self, conn: &Connection) -> Result<()> {
        let version: i64 = conn.query_row("PRAGMA data_version", [], |r| r.get(0))?;
        if version != self.data_version {
            self.tenants.clear();
            self.len = 0;
            self.data_version = version;
        }
        Ok(())
    }

    /// Makes a committed transaction's changes part of what is known.
    pub fn remember(&mut self, tenant: i64, staged: Staged) {
        let known = self.tenants.entry(tenant).or_default();
        for id in &staged.forgotten {
            self.len -= usize::from(known.remove(id).is_some());
        }
        for (id, k) in staged.known {
            if let Some(old) = known.get_mut(&id) {
                *old = k;
            } else if self.len < MAX_KNOWN {
                known.insert(id, k);
                self.len += 1;
            }
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }
}

/// A transaction's view: what the connection knew at its start, changed by what it
/// learnt or forgot since.
pub(super) struct Staged {
    /// Learnt in this transaction (read, created or moved by a sighting).
    known: FxHashMap<Box<str>, Known>,
    /// Rewritten otherwise in this transaction: the database answers for them.
    forgotten: FxHashSet<Box<str>>,
}

impl Staged {
    pub fn new() -> Staged {
        Staged {
            known: FxHashMap::default(),
            forgotten: FxHashSet::default(),
        }
    }

    /// The customer as this transaction knows them, if it does.
    pub fn get(&self, committed: &KnownCustomers, tenant: i64, id: &str) -> Option<Known> {
        if let Some(k) = self.known.get(id) {
            return Some(*k);
        }
        if self.forgotten.contains(id) {
            return None;
        }
        committed.tenants.get(&tenant)?.get(id).copied()
    }

    pub fn learn(&mut self, id: &str, known: Known) {
        match self.known.get_mut(id) {
            Some(k) => *k = known,
            None => {
                self.known.insert(id.into(), known);
            }
        }
    }

    /// The customer's row is rewritten other than by a sighting.
    pub fn forget(&mut self, id: &str) {
        self.known.remove(id);
        if !self.forgotten.contains(id) {
            self.forgotten.insert(id.into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sighting_moves_only_an_inferred_join_and_fills_only_a_missing_channel() {
        let inferred = Known::created(100, false);
        assert!(inferred.moved_by(50, false));
        assert!(!inferred.moved_by(150, false));
        assert!(inferred.moved_by(150, true));
        assert_eq!(inferred.seen(50, false), Known::created(50, false));
        assert_eq!(inferred.seen(150, true), Known::created(100, true));

        let stated = Known {
            joined_at: 100,
            joined_inferred: false,
            no_channel: false,
        };
        assert!(!stated.moved_by(50, true));
        assert_eq!(stated.seen(50, true), stated);
    }

    #[test]
    fn a_transaction_sees_its_own_changes_and_forgets_rewritten_customers() {
        let mut committed = KnownCustomers::default();
        let mut first = Staged::new();
        first.learn("a", Known::created(100, false));
        first.learn("b", Known::created(200, true));
        committed.remember(1, first);
        assert_eq!(committed.len(), 2);

        let mut tx = Staged::new();
        assert_eq!(tx.get(&committed, 1, "a"), Some(Known::created(100, false)));
        assert_eq!(tx.get(&committed, 2, "a"), None, "another tenant's");
        tx.learn("a", Known::created(50, false));
        assert_eq!(tx.get(&committed, 1, "a"), Some(Known::created(50, false)));
        tx.forget("b");
        assert_eq!(tx.get(&committed, 1, "b"), None);
        tx.learn("b", Known::created(300, false));
        assert_eq!(tx.get(&committed, 1, "b"), Some(Known::created(300, false)));
        tx.forget("a");
        assert_eq!(tx.get(&committed, 1, "a"), None);

        committed.remember(1, tx);
        let after = Staged::new();
        assert_eq!(after.get(&committed, 1, "a"), None);
        assert_eq!(
            after.get(&committed, 1, "b"),
            Some(Known::created(300, false))
        );
        assert_eq!(committed.len(), 1);
    }
}

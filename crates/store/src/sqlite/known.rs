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

use siyu_core::fasthash::{FastHashMap, FastHashSet};

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
    tenants: FastHashMap<i64, FastHashMap<Box<str>, Known>>,
    len: usize,
}

impl KnownCustomers {
    /// Forgets everything if another connection has committed since the last check. To be
    /// called once the transaction holds the write lock: no commit can come between.
    fn check(&mut self, conn: &Connection) -> Result<()> {
        let version: i64 = conn.query_row("PRAGMA data_version", [], |r| r.get(0))?;
        if version != self.data_version {
            self.tenants.clear();
            self.len = 0;
            self.data_version = version;
        }
        Ok(())
    }

    /// Makes a committed transaction's changes part of what is known.
    fn remember(
        &mut self,
        tenant: i64,
        learnt: FastHashMap<Box<str>, Known>,
        forgotten: FastHashSet<Box<str>>,
    ) {
        let known = self.tenants.entry(tenant).or_default();
        for id in &forgotten {
            self.len -= usize::from(known.remove(id).is_some());
        }
        for (id, k) in learnt {
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
/// learnt or forgot since; the connection's own once the transaction commits.
pub(super) struct Staged<'c> {
    committed: &'c mut KnownCustomers,
    tenant: i64,
    /// Learnt in this transaction (read, created or moved by a sighting).
    known: FastHashMap<Box<str>, Known>,
    /// Rewritten otherwise in this transaction: the database answers for them.
    forgotten: FastHashSet<Box<str>>,
}

impl<'c> Staged<'c> {
    /// The view of a transaction of `tenant` that holds the write lock on `conn`.
    pub fn begin(
        committed: &'c mut KnownCustomers,
        conn: &Connection,
        tenant: i64,
    ) -> Result<Staged<'c>> {
        committed.check(conn)?;
        Ok(Staged {
            committed,
            tenant,
            known: FastHashMap::default(),
            forgotten: FastHashSet::default(),
        })
    }

    /// The customer as this transaction knows them, if it does.
    pub fn get(&self, id: &str) -> Option<Known> {
        if let Some(k) = self.known.get(id) {
            return Some(*k);
        }
        if self.forgotten.contains(id) {
            return None;
        }
        self.committed.tenants.get(&self.tenant)?.get(id).copied()
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

    /// After the transaction committed: what it learnt and forgot becomes the
    /// connection's.
    pub fn committed(self) {
        let Staged {
            committed,
            tenant,
            known,
            forgotten,
        } = self;
        committed.remember(tenant, known, forgotten);
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
        let conn = Connection::open_in_memory().expect("db");
        let mut committed = KnownCustomers::default();
        let mut first = Staged::begin(&mut committed, &conn, 1).expect("begin");
        first.learn("a", Known::created(100, false));
        first.learn("b", Known::created(200, true));
        first.committed();
        assert_eq!(committed.len(), 2);

        let other = Staged::begin(&mut committed, &conn, 2).expect("begin");
        assert_eq!(other.get("a"), None, "another tenant's");
        drop(other);
        let mut tx = Staged::begin(&mut committed, &conn, 1).expect("begin");
        assert_eq!(tx.get("a"), Some(Known::created(100, false)));
        tx.learn("a", Known::created(50, false));
        assert_eq!(tx.get("a"), Some(Known::created(50, false)));
        tx.forget("b");
        assert_eq!(tx.get("b"), None);
        tx.learn("b", Known::created(300, false));
        assert_eq!(tx.get("b"), Some(Known::created(300, false)));
        tx.forget("a");
        assert_eq!(tx.get("a"), None);

        tx.committed();
        let after = Staged::begin(&mut committed, &conn, 1).expect("begin");
        assert_eq!(after.get("a"), None);
        assert_eq!(after.get("b"), Some(Known::created(300, false)));
        drop(after);
        assert_eq!(committed.len(), 1);
    }
}

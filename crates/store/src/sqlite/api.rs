//! Batch message ids on SQLite.

use siyu_core::Timestamp;

use std::collections::HashSet;

use super::{GROUP, SqliteImport, multi_insert_sql, refuse_skipped};

/// The columns of `ingest_messages` a claim writes, its key first.
const COLUMNS: &[&str] = &["tenant_id", "message_id", "received_at"];
use crate::{Result, micros};

/// `?1` the tenant, `?2…` `n` ids: those of them that are stored events' ids and, with
/// `claimed`, those claimed as message ids.
fn taken_sql(n: usize, claimed: bool) -> String {
    let values: Vec<String> = (0..n).map(|k| format!("(?{})", k + 2)).collect();
    let mut sql = format!(
        "SELECT v.column1 FROM (VALUES {}) AS v
         WHERE EXISTS (SELECT 1 FROM events AS e
                       WHERE e.event_id = v.column1 AND e.tenant_id = ?1)",
        values.join(",")
    );
    if claimed {
        sql.push_str(
            " OR EXISTS (SELECT 1 FROM ingest_messages AS m
                         WHERE m.tenant_id = ?1 AND m.message_id = v.column1)",
        );
    }
    sql
}

impl SqliteImport<'_> {
    /// Those of `ids` (at most a group) taken already: see [`taken_sql`].
    fn taken(&self, ids: &[&str], claimed: bool) -> Result<HashSet<String>> {
        let mut stmt = self.tx.prepare_cached(&taken_sql(ids.len(), claimed))?;
        stmt.raw_bind_parameter(1, self.tenant)?;
        for (k, id) in ids.iter().enumerate() {
            stmt.raw_bind_parameter(k + 2, *id)?;
        }
        let mut rows = stmt.raw_query();
        let mut taken = HashSet::new();
        while let Some(r) = rows.next()? {
            taken.insert(r.get(0)?);
        }
        Ok(taken)
    }

    pub(super) fn claim(&mut self, ids: &[&str], now: Timestamp) -> Result<Vec<bool>> {
        let now = micros(now);
        let mut fresh: HashSet<String> = HashSet::with_capacity(ids.len());
        let tenant = self.tenant;
        let bind = |stmt: &mut rusqlite::Statement<'_>, k: usize, id: &str| {
            stmt.raw_bind_parameter(1 + 3 * k, tenant)?;
            stmt.raw_bind_parameter(2 + 3 * k, id)?;
            stmt.raw_bind_parameter(3 + 3 * k, now)
        };
        for group in ids.chunks(GROUP) {
            // The ids of stored events are taken (a track item's message id is its event's).
            let events = self.taken(group, false)?;
            let group: Vec<&str> = group
                .iter()
                .copied()
                .filter(|id| !events.contains(*id))
                .collect();
            if group.is_empty() {
                continue;
            }
            let sql = format!(
                "{} RETURNING message_id",
                multi_insert_sql("ingest_messages", COLUMNS, group.len())
            );
            let mut stmt = self.tx.prepare_cached(&sql)?;
            for (k, id) in group.iter().enumerate() {
                bind(&mut stmt, k, id)?;
            }
            let mut rows = stmt.raw_query();
            let mut returned = 0;
            while let Some(r) = rows.next()? {
                fresh.insert(r.get(0)?);
                returned += 1;
            }
            drop(rows);
            // `OR IGNORE` skips a row that breaks a constraint, too: only one whose id is
            // there already may be taken for a duplicate (see `insert_groups`).
            if returned < group.len() {
                let keys: Vec<(i64, &str)> = group.iter().map(|id| (tenant, *id)).collect();
                refuse_skipped(&self.tx, "ingest_messages", [COLUMNS[0], COLUMNS[1]], &keys)?;
            }
        }
        // An id twice in one call: the first is new, the second a duplicate.
        Ok(ids.iter().map(|id| fresh.remove(*id)).collect())
    }

    /// Track items' ids: looked up, never written (their events' rows are their claims).
    pub(super) fn claim_events(&mut self, ids: &[&str]) -> Result<Vec<bool>> {
        let mut taken: HashSet<String> = HashSet::new();
        for group in ids.chunks(GROUP) {
            taken.extend(self.taken(group, true)?);
        }
        // An id twice in one call: the first is new, the second a duplicate.
        let mut seen: HashSet<&str> = HashSet::with_capacity(ids.len());
        Ok(ids
            .iter()
            .map(|id| !taken.contains(*id) && seen.insert(*id))
            .collect())
    }
}

//! Batch message ids on SQLite.

use siyu_core::Timestamp;

use std::collections::HashSet;

use super::{GROUP, SqliteImport, multi_insert_sql, refuse_skipped};

/// The columns of `ingest_messages` a claim writes, its key first.
const COLUMNS: &[&str] = &["tenant_id", "message_id", "received_at"];
use crate::{Result, micros};

impl SqliteImport<'_> {
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
}

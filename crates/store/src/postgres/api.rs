//! Batch message ids on PostgreSQL.

use siyu_core::Timestamp;

use super::PgImport;
use crate::{Result, micros};

impl PgImport<'_> {
    /// In id order, as every merge takes its rows: two servers' transactions that claim
    /// the same ids then wait for each other in one order, never in a circle. The id of a
    /// stored event is taken (a track item's message id is its event's, and SQLite keeps
    /// it only there).
    pub(super) fn claim(&mut self, ids: &[&str], now: Timestamp) -> Result<Vec<bool>> {
        let rows = self.tx.query(
            "INSERT INTO ingest_messages (tenant_id, message_id, received_at)
             SELECT $1, id, $3 FROM unnest($2::text[]) AS u (id)
             WHERE NOT EXISTS (SELECT 1 FROM events AS e
                               WHERE e.tenant_id = $1 AND e.event_id = u.id)
             ORDER BY id COLLATE \"C\"
             ON CONFLICT DO NOTHING RETURNING message_id",
            &[&self.tenant, &ids, &micros(now)],
        )?;
        let mut fresh: std::collections::HashSet<String> = rows
            .iter()
            .map(|r| r.try_get::<_, String>(0))
            .collect::<std::result::Result<_, _>>()?;
        // An id twice in one call: the first is new, the second a duplicate.
        Ok(ids.iter().map(|id| fresh.remove(*id)).collect())
    }
}

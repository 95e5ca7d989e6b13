//! The reports' reads on SQLite.

use rusqlite::ToSql;
use siyu_core::Timestamp;
use siyu_core::profile::ProfileSink;

use super::SqliteStore;
use crate::sql::{event_line_into, stream_events_of_kinds};
use crate::{ReportStore, Result, Tenant};

impl ReportStore for SqliteStore {
    fn stream_events_of(
        &mut self,
        tenant: &Tenant,
        kinds: &[&str],
        sink: &mut dyn ProfileSink,
    ) -> Result<()> {
        if kinds.is_empty() {
            return Ok(());
        }
        let mut stmt = self
            .conn
            .prepare_cached(&stream_events_of_kinds(kinds.len()))?;
        let mut params: Vec<&dyn ToSql> = vec![&tenant.id];
        params.extend(kinds.iter().map(|k| k as &dyn ToSql));
        let mut rows = stmt.query(params.as_slice())?;
        while let Some(r) = rows.next()? {
            event_line_into(r, sink)?;
        }
        Ok(())
    }

    fn stream_events_of_customers(
        &mut self,
        tenant: &Tenant,
        kind: &str,
        customers: &[&str],
        sink: &mut dyn ProfileSink,
    ) -> Result<()> {
        crate::shared::stream_events_of_customers(&mut self.conn, tenant, kind, customers, sink)
    }

    fn scan_left_at(
        &mut self,
        tenant: &Tenant,
        each: &mut dyn FnMut(&str, Timestamp),
    ) -> Result<u64> {
        crate::shared::scan_left_at(&mut self.conn, tenant, each)
    }

    fn scan_share_counts(
        &mut self,
        tenant: &Tenant,
        end: Timestamp,
        each: &mut dyn FnMut(&str, Timestamp, &str),
    ) -> Result<u64> {
        crate::shared::scan_share_counts(&mut self.conn, tenant, end, each)
    }
}

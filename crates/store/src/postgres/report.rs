//! The reports' reads on PostgreSQL.

use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;
use siyu_core::Timestamp;
use siyu_core::profile::ProfileSink;

use super::PgStore;
use crate::sql::{STREAM_EVENTS_OF_KINDS, event_line_into, pg};
use crate::{ReportStore, Result, Tenant};

impl ReportStore for PgStore {
    fn stream_events_of(
        &mut self,
        tenant: &Tenant,
        kinds: &[&str],
        sink: &mut dyn ProfileSink,
    ) -> Result<()> {
        if kinds.is_empty() {
            return Ok(());
        }
        let kinds: Vec<&str> = kinds.to_vec();
        let params: [&(dyn ToSql + Sync); 2] = [&tenant.id, &kinds];
        let mut rows = self.client.query_raw(&pg(STREAM_EVENTS_OF_KINDS), params)?;
        while let Some(r) = rows.next()? {
            event_line_into(&r, sink)?;
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
        crate::shared::stream_events_of_customers(&mut self.client, tenant, kind, customers, sink)
    }

    fn scan_left_at(
        &mut self,
        tenant: &Tenant,
        each: &mut dyn FnMut(&str, Timestamp),
    ) -> Result<u64> {
        crate::shared::scan_left_at(&mut self.client, tenant, each)
    }

    fn scan_share_counts(
        &mut self,
        tenant: &Tenant,
        end: Timestamp,
        each: &mut dyn FnMut(&str, Timestamp, &str),
    ) -> Result<u64> {
        crate::shared::scan_share_counts(&mut self.client, tenant, end, each)
    }
}

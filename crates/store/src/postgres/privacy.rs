//! The audit log read on PostgreSQL (the privacy writes are the same on both backends:
//! see `shared`).

use super::PgStore;
use crate::sql::{AUDIT_COLUMNS, audit_entry_from, pg};
use crate::{AuditEntry, AuditStore, Result, Tenant};

impl AuditStore for PgStore {
    fn audit_log(
        &mut self,
        tenant: &Tenant,
        subject: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.client.query(
            &pg(&format!(
                "SELECT {AUDIT_COLUMNS} FROM audit_log
                 WHERE tenant_id = ?1 AND (?2::text IS NULL OR subject = ?2)
                 ORDER BY at DESC, seq DESC LIMIT ?3"
            )),
            &[&tenant.id, &subject, &limit],
        )?;
        rows.iter().map(audit_entry_from).collect()
    }
}

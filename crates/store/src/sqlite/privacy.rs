//! The audit log read on SQLite (the privacy writes are the same on both backends: see
//! `shared`).

use rusqlite::params;

use super::SqliteStore;
use crate::sql::{AUDIT_COLUMNS, audit_entry_from};
use crate::{AuditEntry, AuditStore, Result, Tenant};

impl AuditStore for SqliteStore {
    fn audit_log(
        &mut self,
        tenant: &Tenant,
        subject: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log
             WHERE tenant_id = ?1 AND (?2 IS NULL OR subject = ?2)
             ORDER BY at DESC, rowid DESC LIMIT ?3"
        ))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut rows = stmt.query(params![tenant.id, subject, limit])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(audit_entry_from(r)?);
        }
        Ok(out)
    }
}

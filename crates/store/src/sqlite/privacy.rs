//! Personal data on request, on SQLite: suppression keys, erasure, the marketing opt-out
//! and the audit log.

use rusqlite::params;

use siyu_core::{CustomerId, Timestamp};

use super::{SqliteImport, SqliteStore};
use crate::sql::{
    AUDIT_COLUMNS, ERASE_CUSTOMER, ERASE_ORDERS, ERASE_PROFILE, ERASE_REFERRER, ERASED_TABLES,
    INSERT_AUDIT, INSERT_SUPPRESSION, SET_OPT_OUT, SUPPRESSION_KEYS, audit_entry_from, erase_from,
};
use crate::{AuditEntry, AuditStore, Erased, Result, StoreError, Tenant, micros};

impl SqliteImport<'_> {
    pub(super) fn suppression_keys_now(&mut self) -> Result<Vec<String>> {
        let mut stmt = self.tx.prepare_cached(SUPPRESSION_KEYS)?;
        let keys = stmt
            .query_map([self.tenant], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(keys)
    }

    pub(super) fn erase_customer_now(
        &mut self,
        id: &CustomerId,
        remains: &CustomerId,
        key: &str,
        at: Timestamp,
    ) -> Result<Erased> {
        self.end_of_writes_now()?;
        let (tenant, id, remains, at) = (self.tenant, id.as_str(), remains.as_str(), micros(at));
        let tx = &self.tx;
        let kept = tx.execute(ERASE_CUSTOMER, params![tenant, id, remains, at])?;
        if kept == 0 {
            return Err(StoreError::NotFound(format!("customer {id}")));
        }
        let orders = tx.execute(ERASE_ORDERS, params![tenant, id, remains])?;
        tx.execute(ERASE_PROFILE, params![tenant, id, remains])?;
        let referees = tx.execute(ERASE_REFERRER, params![tenant, id, remains])?;
        let mut deleted = [0; ERASED_TABLES.len()];
        for (n, table) in deleted.iter_mut().zip(ERASED_TABLES) {
            *n = tx.execute(&erase_from(table), params![tenant, id])?;
        }
        let [events, tags, _, _] = deleted;
        tx.execute(INSERT_SUPPRESSION, params![tenant, key, at])?;
        Ok(Erased {
            orders: orders as u64,
            events: events as u64,
            tags: tags as u64,
            referees: referees as u64,
        })
    }

    pub(super) fn set_opt_out_now(
        &mut self,
        id: &CustomerId,
        at: Option<Timestamp>,
    ) -> Result<bool> {
        let changed = self.tx.execute(
            SET_OPT_OUT,
            params![self.tenant, id.as_str(), at.map(micros)],
        )?;
        Ok(changed > 0)
    }

    pub(super) fn record_audit_now(&mut self, e: &AuditEntry) -> Result<()> {
        self.tx.prepare_cached(INSERT_AUDIT)?.execute(params![
            self.tenant,
            micros(e.at),
            e.actor,
            e.action.as_str(),
            e.subject,
            e.detail
        ])?;
        Ok(())
    }
}

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

//! Personal data on request, on SQLite: suppression keys, erasure, the marketing opt-out
//! and the audit log.

use rusqlite::params;

use siyu_core::privacy::AuditAction;
use siyu_core::{CustomerId, Timestamp};

use super::{SqliteImport, SqliteStore};
use crate::{
    AuditEntry, AuditStore, Erased, Result, StoreError, Tenant, corrupt, from_micros, micros,
};

impl SqliteImport<'_> {
    pub(super) fn suppression_keys_now(&mut self) -> Result<Vec<String>> {
        let mut stmt = self
            .tx
            .prepare_cached("SELECT key FROM suppressions WHERE tenant_id = ?1")?;
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
        let kept = tx.execute(
            "UPDATE customers SET customer_id = ?3, name = NULL, phone = NULL, gender = NULL,
                    birthday = NULL, region = NULL, opted_out_at = ?4,
                    version = version + 1
             WHERE tenant_id = ?1 AND customer_id = ?2",
            params![tenant, id, remains, at],
        )?;
        if kept == 0 {
            return Err(StoreError::NotFound(format!("customer {id}")));
        }
        let orders = tx.execute(
            "UPDATE orders SET customer_id = ?3, version = version + 1
             WHERE tenant_id = ?1 AND customer_id = ?2",
            params![tenant, id, remains],
        )?;
        tx.execute(
            "UPDATE profiles SET customer_id = ?3 WHERE tenant_id = ?1 AND customer_id = ?2",
            params![tenant, id, remains],
        )?;
        let referees = tx.execute(
            "UPDATE customers SET referrer_id = ?3 WHERE tenant_id = ?1 AND referrer_id = ?2",
            params![tenant, id, remains],
        )?;
        let events = tx.execute(
            "DELETE FROM events WHERE tenant_id = ?1 AND customer_id = ?2",
            params![tenant, id],
        )?;
        let tags = tx.execute(
            "DELETE FROM customer_tags WHERE tenant_id = ?1 AND customer_id = ?2",
            params![tenant, id],
        )?;
        for table in ["rule_members", "rule_history"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE tenant_id = ?1 AND customer_id = ?2"),
                params![tenant, id],
            )?;
        }
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
            "UPDATE customers SET opted_out_at = ?3 WHERE tenant_id = ?1 AND customer_id = ?2",
            params![self.tenant, id.as_str(), at.map(micros)],
        )?;
        Ok(changed > 0)
    }

    pub(super) fn record_audit_now(&mut self, e: &AuditEntry) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO audit_log (tenant_id, at, actor, action, subject, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
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
        let mut stmt = self.conn.prepare_cached(
            "SELECT at, actor, action, subject, detail FROM audit_log
             WHERE tenant_id = ?1 AND (?2 IS NULL OR subject = ?2)
             ORDER BY at DESC, rowid DESC LIMIT ?3",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![tenant.id, subject, limit], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(at, actor, action, subject, detail)| {
                Ok(AuditEntry {
                    at: from_micros(at)?,
                    actor,
                    action: AuditAction::parse(&action)
                        .ok_or_else(|| corrupt(format!("audit action '{action}'")))?,
                    subject,
                    detail,
                })
            })
            .collect()
    }
}

pub(super) const INSERT_SUPPRESSION: &str = "
INSERT INTO suppressions (tenant_id, key, erased_at) VALUES (?1, ?2, ?3)
ON CONFLICT (tenant_id, key) DO NOTHING";

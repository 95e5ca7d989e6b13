//! Personal data on request, on PostgreSQL: suppression keys, erasure, the marketing
//! opt-out and the audit log.

use siyu_core::privacy::AuditAction;
use siyu_core::{CustomerId, Timestamp};

use super::{PgImport, PgStore};
use crate::{
    AuditEntry, AuditStore, Erased, Result, StoreError, Tenant, corrupt, from_micros, micros,
};

impl PgImport<'_> {
    pub(super) fn suppression_keys_now(&mut self) -> Result<Vec<String>> {
        let rows = self.tx.query(
            "SELECT key FROM suppressions WHERE tenant_id = $1",
            &[&self.tenant],
        )?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    pub(super) fn erase_customer_now(
        &mut self,
        id: &CustomerId,
        remains: &CustomerId,
        key: &str,
        at: Timestamp,
    ) -> Result<Erased> {
        let (tenant, id, remains, at) = (self.tenant, id.as_str(), remains.as_str(), micros(at));
        let tx = &mut self.tx;
        let kept = tx.execute(
            "UPDATE customers SET customer_id = $3, name = NULL, phone = NULL, gender = NULL,
                    birthday = NULL, region = NULL, opted_out_at = $4,
                    version = version + 1
             WHERE tenant_id = $1 AND customer_id = $2",
            &[&tenant, &id, &remains, &at],
        )?;
        if kept == 0 {
            return Err(StoreError::NotFound(format!("customer {id}")));
        }
        let orders = tx.execute(
            "UPDATE orders SET customer_id = $3, version = version + 1
             WHERE tenant_id = $1 AND customer_id = $2",
            &[&tenant, &id, &remains],
        )?;
        tx.execute(
            "UPDATE profiles SET customer_id = $3 WHERE tenant_id = $1 AND customer_id = $2",
            &[&tenant, &id, &remains],
        )?;
        let referees = tx.execute(
            "UPDATE customers SET referrer_id = $3 WHERE tenant_id = $1 AND referrer_id = $2",
            &[&tenant, &id, &remains],
        )?;
        let events = tx.execute(
            "DELETE FROM events WHERE tenant_id = $1 AND customer_id = $2",
            &[&tenant, &id],
        )?;
        let tags = tx.execute(
            "DELETE FROM customer_tags WHERE tenant_id = $1 AND customer_id = $2",
            &[&tenant, &id],
        )?;
        for table in ["rule_members", "rule_history"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE tenant_id = $1 AND customer_id = $2"),
                &[&tenant, &id],
            )?;
        }
        tx.execute(
            "INSERT INTO suppressions (tenant_id, key, erased_at) VALUES ($1, $2, $3)
             ON CONFLICT (tenant_id, key) DO NOTHING",
            &[&tenant, &key, &at],
        )?;
        Ok(Erased {
            orders,
            events,
            tags,
            referees,
        })
    }

    pub(super) fn set_opt_out_now(
        &mut self,
        id: &CustomerId,
        at: Option<Timestamp>,
    ) -> Result<bool> {
        let changed = self.tx.execute(
            "UPDATE customers SET opted_out_at = $3 WHERE tenant_id = $1 AND customer_id = $2",
            &[&self.tenant, &id.as_str(), &at.map(micros)],
        )?;
        Ok(changed > 0)
    }

    pub(super) fn record_audit_now(&mut self, e: &AuditEntry) -> Result<()> {
        self.tx.execute(
            "INSERT INTO audit_log (tenant_id, at, actor, action, subject, detail)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &self.tenant,
                &micros(e.at),
                &e.actor,
                &e.action.as_str(),
                &e.subject,
                &e.detail,
            ],
        )?;
        Ok(())
    }
}

impl AuditStore for PgStore {
    fn audit_log(
        &mut self,
        tenant: &Tenant,
        subject: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.client.query(
            "SELECT at, actor, action, subject, detail FROM audit_log
             WHERE tenant_id = $1 AND ($2::text IS NULL OR subject = $2)
             ORDER BY at DESC, seq DESC LIMIT $3",
            &[&tenant.id, &subject, &limit],
        )?;
        rows.iter()
            .map(|r| {
                let action: &str = r.try_get(2)?;
                Ok(AuditEntry {
                    at: from_micros(r.try_get(0)?)?,
                    actor: r.try_get(1)?,
                    action: AuditAction::parse(action)
                        .ok_or_else(|| corrupt(format!("audit action '{action}'")))?,
                    subject: r.try_get(3)?,
                    detail: r.try_get(4)?,
                })
            })
            .collect()
    }
}

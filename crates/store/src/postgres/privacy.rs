//! Personal data on request, on PostgreSQL: suppression keys, erasure, the marketing
//! opt-out and the audit log.

use siyu_core::{CustomerId, Timestamp};

use super::{PgImport, PgStore};
use crate::sql::{
    AUDIT_COLUMNS, ERASE_CUSTOMER, ERASE_ORDERS, ERASE_PROFILE, ERASE_REFERRER, ERASED_TABLES,
    INSERT_AUDIT, INSERT_SUPPRESSION, SET_OPT_OUT, SUPPRESSION_KEYS, audit_entry_from, erase_from,
    pg,
};
use crate::{AuditEntry, AuditStore, Erased, Result, StoreError, Tenant, micros};

impl PgImport<'_> {
    pub(super) fn suppression_keys_now(&mut self) -> Result<Vec<String>> {
        let rows = self.tx.query(&pg(SUPPRESSION_KEYS), &[&self.tenant])?;
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
        let kept = tx.execute(&pg(ERASE_CUSTOMER), &[&tenant, &id, &remains, &at])?;
        if kept == 0 {
            return Err(StoreError::NotFound(format!("customer {id}")));
        }
        let orders = tx.execute(&pg(ERASE_ORDERS), &[&tenant, &id, &remains])?;
        tx.execute(&pg(ERASE_PROFILE), &[&tenant, &id, &remains])?;
        let referees = tx.execute(&pg(ERASE_REFERRER), &[&tenant, &id, &remains])?;
        let mut deleted = [0; ERASED_TABLES.len()];
        for (n, table) in deleted.iter_mut().zip(ERASED_TABLES) {
            *n = tx.execute(&pg(&erase_from(table)), &[&tenant, &id])?;
        }
        let [events, tags, _, _] = deleted;
        tx.execute(&pg(INSERT_SUPPRESSION), &[&tenant, &key, &at])?;
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
            &pg(SET_OPT_OUT),
            &[&self.tenant, &id.as_str(), &at.map(micros)],
        )?;
        Ok(changed > 0)
    }

    pub(super) fn record_audit_now(&mut self, e: &AuditEntry) -> Result<()> {
        self.tx.execute(
            &pg(INSERT_AUDIT),
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

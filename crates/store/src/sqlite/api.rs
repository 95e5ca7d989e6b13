//! API tokens and batch message ids on SQLite.

use rusqlite::params;

use siyu_core::Timestamp;
use siyu_core::access::Role;

use std::collections::HashSet;

use super::{GROUP, SqliteImport, SqliteStore, multi_insert_sql, refuse_skipped};

/// The columns of `ingest_messages` a claim writes, its key first.
const COLUMNS: &[&str] = &["tenant_id", "message_id", "received_at"];
use crate::sql::{INSERT_TOKEN, TOKEN_BY_HASH, TOKENS_OF, token_from};
use crate::{Result, StoredToken, Tenant, TokenStore, micros};

impl TokenStore for SqliteStore {
    fn create_token(
        &mut self,
        tenant: &Tenant,
        hash: &str,
        role: Role,
        label: &str,
        now: Timestamp,
    ) -> Result<()> {
        self.conn.execute(
            INSERT_TOKEN,
            params![hash, tenant.id, role.as_str(), label, micros(now)],
        )?;
        Ok(())
    }

    fn token(&mut self, hash: &str) -> Result<Option<StoredToken>> {
        let mut stmt = self.conn.prepare_cached(TOKEN_BY_HASH)?;
        let mut rows = stmt.query([hash])?;
        rows.next()?.map(token_from).transpose()
    }

    fn tokens(&mut self, tenant: &Tenant) -> Result<Vec<StoredToken>> {
        let mut stmt = self.conn.prepare_cached(TOKENS_OF)?;
        let mut rows = stmt.query([tenant.id])?;
        let mut tokens = Vec::new();
        while let Some(r) = rows.next()? {
            tokens.push(token_from(r)?);
        }
        Ok(tokens)
    }

    fn revoke_token(&mut self, tenant: &Tenant, hash_prefix: &str, now: Timestamp) -> Result<bool> {
        if hash_prefix.len() < 8 || !hash_prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(false);
        }
        let n = self.conn.execute(
            "UPDATE api_tokens SET revoked_at = ?3
             WHERE tenant_id = ?1 AND substr(token_hash, 1, length(?2)) = ?2
               AND revoked_at IS NULL",
            params![tenant.id, hash_prefix.to_ascii_lowercase(), micros(now)],
        )?;
        Ok(n > 0)
    }
}

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

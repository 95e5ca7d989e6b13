//! API tokens and batch message ids on PostgreSQL.

use siyu_core::Timestamp;
use siyu_core::access::Role;

use super::{PgImport, PgStore};
use crate::sql::{INSERT_TOKEN, TOKEN_BY_HASH, TOKENS_OF, pg, token_from};
use crate::{Result, StoredToken, Tenant, TokenStore, micros};

impl TokenStore for PgStore {
    fn create_token(
        &mut self,
        tenant: &Tenant,
        hash: &str,
        role: Role,
        label: &str,
        now: Timestamp,
    ) -> Result<()> {
        self.client.execute(
            &pg(INSERT_TOKEN),
            &[&hash, &tenant.id, &role.as_str(), &label, &micros(now)],
        )?;
        Ok(())
    }

    fn token(&mut self, hash: &str) -> Result<Option<StoredToken>> {
        let row = self.client.query_opt(&pg(TOKEN_BY_HASH), &[&hash])?;
        row.as_ref().map(token_from).transpose()
    }

    fn tokens(&mut self, tenant: &Tenant) -> Result<Vec<StoredToken>> {
        let rows = self.client.query(&pg(TOKENS_OF), &[&tenant.id])?;
        rows.iter().map(token_from).collect()
    }

    fn revoke_token(&mut self, tenant: &Tenant, hash_prefix: &str, now: Timestamp) -> Result<bool> {
        if hash_prefix.len() < 8 || !hash_prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(false);
        }
        let n = self.client.execute(
            "UPDATE api_tokens SET revoked_at = $3
             WHERE tenant_id = $1 AND starts_with(token_hash, $2) AND revoked_at IS NULL",
            &[&tenant.id, &hash_prefix.to_ascii_lowercase(), &micros(now)],
        )?;
        Ok(n > 0)
    }
}

impl PgImport<'_> {
    pub(super) fn claim(&mut self, ids: &[&str], now: Timestamp) -> Result<Vec<bool>> {
        let rows = self.tx.query(
            "INSERT INTO ingest_messages (tenant_id, message_id, received_at)
             SELECT $1, id, $3 FROM unnest($2::text[]) AS u (id)
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

//! API tokens and batch message ids on PostgreSQL.

use siyu_core::access::Role;
use siyu_core::{TenantZone, Timestamp};

use super::{PgImport, PgStore};
use crate::{Result, StoredToken, Tenant, TokenStore, corrupt, from_micros, micros, other};

const TOKEN_COLUMNS: &str = "t.token_hash, t.tenant_id, n.name, n.time_zone, t.role, t.label,
                             t.created_at, t.revoked_at";

fn token(r: &postgres::Row) -> Result<StoredToken> {
    let role: &str = r.try_get(4)?;
    Ok(StoredToken {
        hash: r.try_get(0)?,
        tenant: Tenant {
            id: r.try_get(1)?,
            name: r.try_get(2)?,
            zone: TenantZone::named(r.try_get(3)?).map_err(other)?,
        },
        role: Role::parse(role).ok_or_else(|| corrupt(format!("stored role '{role}'")))?,
        label: r.try_get(5)?,
        created_at: from_micros(r.try_get(6)?)?,
        revoked_at: r
            .try_get::<_, Option<i64>>(7)?
            .map(from_micros)
            .transpose()?,
    })
}

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
            "INSERT INTO api_tokens (token_hash, tenant_id, role, label, created_at)
             VALUES ($1, $2, $3, $4, $5)",
            &[&hash, &tenant.id, &role.as_str(), &label, &micros(now)],
        )?;
        Ok(())
    }

    fn token(&mut self, hash: &str) -> Result<Option<StoredToken>> {
        let row = self.client.query_opt(
            &format!(
                "SELECT {TOKEN_COLUMNS} FROM api_tokens t JOIN tenants n ON n.id = t.tenant_id
                 WHERE t.token_hash = $1"
            ),
            &[&hash],
        )?;
        row.as_ref().map(token).transpose()
    }

    fn tokens(&mut self, tenant: &Tenant) -> Result<Vec<StoredToken>> {
        let rows = self.client.query(
            &format!(
                "SELECT {TOKEN_COLUMNS} FROM api_tokens t JOIN tenants n ON n.id = t.tenant_id
                 WHERE t.tenant_id = $1 ORDER BY t.created_at DESC, t.token_hash"
            ),
            &[&tenant.id],
        )?;
        rows.iter().map(token).collect()
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

//! API tokens and batch message ids on SQLite.

use rusqlite::{OptionalExtension, params};

use siyu_core::access::Role;
use siyu_core::{TenantZone, Timestamp};

use std::collections::HashSet;

use super::{GROUP, SqliteImport, SqliteStore, missing_keys_sql, multi_insert_sql, refuse_missing};

/// The columns of `ingest_messages` a claim writes, its key first.
const COLUMNS: &[&str] = &["tenant_id", "message_id", "received_at"];
use crate::{Result, StoredToken, Tenant, TokenStore, corrupt, from_micros, micros, other};

type TokenRow = (
    String,
    i64,
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
);

const TOKEN_COLUMNS: &str = "t.token_hash, t.tenant_id, n.name, n.time_zone, t.role, t.label,
                             t.created_at, t.revoked_at";

fn token_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    ))
}

fn token(row: TokenRow) -> Result<StoredToken> {
    let (hash, tenant_id, name, zone, role, label, created, revoked) = row;
    Ok(StoredToken {
        hash,
        tenant: Tenant {
            id: tenant_id,
            name,
            zone: TenantZone::named(&zone).map_err(other)?,
        },
        role: Role::parse(&role).ok_or_else(|| corrupt(format!("stored role '{role}'")))?,
        label,
        created_at: from_micros(created)?,
        revoked_at: revoked.map(from_micros).transpose()?,
    })
}

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
            "INSERT INTO api_tokens (token_hash, tenant_id, role, label, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![hash, tenant.id, role.as_str(), label, micros(now)],
        )?;
        Ok(())
    }

    fn token(&mut self, hash: &str) -> Result<Option<StoredToken>> {
        let row = self
            .conn
            .prepare_cached(&format!(
                "SELECT {TOKEN_COLUMNS} FROM api_tokens t JOIN tenants n ON n.id = t.tenant_id
                 WHERE t.token_hash = ?1"
            ))?
            .query_row([hash], token_row)
            .optional()?;
        row.map(token).transpose()
    }

    fn tokens(&mut self, tenant: &Tenant) -> Result<Vec<StoredToken>> {
        let rows = self
            .conn
            .prepare_cached(&format!(
                "SELECT {TOKEN_COLUMNS} FROM api_tokens t JOIN tenants n ON n.id = t.tenant_id
                 WHERE t.tenant_id = ?1 ORDER BY t.created_at DESC, t.token_hash"
            ))?
            .query_map([tenant.id], token_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(token).collect()
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
                let sql = missing_keys_sql("ingest_messages", COLUMNS, group.len());
                let mut check = self.tx.prepare_cached(&sql)?;
                for (k, id) in group.iter().enumerate() {
                    bind(&mut check, k, id)?;
                }
                refuse_missing("ingest_messages", &mut check)?;
            }
        }
        // An id twice in one call: the first is new, the second a duplicate.
        Ok(ids.iter().map(|id| fresh.remove(*id)).collect())
    }
}

//! Merges of one customer into another and their undoing, written once for both backends
//! over [`Db`] (see migrations `0014_merges` / `0011_merges`).
//!
//! The merged customer's row leaves `customers`, so that every figure, which reads
//! `customers` and `orders_by_customer`, counts persons without a change of its own. What
//! the merge changed is kept beside it: both rows as they were, the merged one's tags, and
//! the key of every row it moved (and of every row that arrives later naming the merged
//! id), so that an unmerge puts back exactly what was.

use siyu_core::{CustomerId, Timestamp};

use crate::shared::TxOnDb;
use crate::sql::{Arg, Db, HAS_CUSTOMER, parse_customer_id, rows};
use crate::{
    Identity, MergeReason, MergeRecord, MergeWrites, Moved, Result, StoreError, corrupt,
    from_micros, micros,
};

/// The columns of a customer's row, as `customers` and `merge_snapshots` both have them.
/// (Parameters in a `SELECT` list carry a cast: PostgreSQL types them by it.)
const COLUMNS: &str = "customer_id, name, phone, gender, birthday, region, channel, \
    channel_inferred, referrer_id, joined_at, joined_inferred, version, opted_out_at";

/// Rows noted per statement.
const ROWS_PER_STATEMENT: usize = 1_000;

/// Ids looked up per statement.
const IDS_PER_STATEMENT: usize = 500;

/// `?1` tenant, `?2` merged, `?3` survivor: both rows as they are.
fn snapshot_sql() -> String {
    format!(
        "INSERT INTO merge_snapshots (tenant_id, merged_id, role, {COLUMNS})
         SELECT CAST(?1 AS BIGINT), CAST(?2 AS TEXT), CASE WHEN customer_id = ?2 THEN 'merged' ELSE 'survivor' END, {COLUMNS}
         FROM customers WHERE tenant_id = ?1 AND (customer_id = ?2 OR customer_id = ?3)"
    )
}

/// `?1` tenant, `?2` merged, `?3` survivor: the rows of `table` (keyed by `key`) noted
/// under the merged id, then moved.
fn note_rows_sql(table: &str, kind: &str, key: &str) -> String {
    format!(
        "INSERT INTO merged_rows (tenant_id, merged_id, kind, row_key)
         SELECT CAST(?1 AS BIGINT), CAST(?2 AS TEXT), '{kind}', {key} FROM {table} WHERE tenant_id = ?1 AND customer_id = ?2
         ON CONFLICT (tenant_id, merged_id, kind, row_key) DO NOTHING"
    )
}

fn move_rows_sql(table: &str) -> String {
    format!("UPDATE {table} SET customer_id = ?3 WHERE tenant_id = ?1 AND customer_id = ?2")
}

const IDENTITY_KEY: &str = "namespace || ' ' || value";

const SNAPSHOT_TAGS: &str = "INSERT INTO merge_tags (tenant_id, merged_id, tag, source, since)
     SELECT CAST(?1 AS BIGINT), CAST(?2 AS TEXT), tag, source, since FROM customer_tags
     WHERE tenant_id = ?1 AND customer_id = ?2";
const NOTE_GAINED_TAGS: &str = "INSERT INTO merged_rows (tenant_id, merged_id, kind, row_key)
     SELECT CAST(?1 AS BIGINT), CAST(?2 AS TEXT), 'tag', m.tag FROM customer_tags m
     WHERE m.tenant_id = ?1 AND m.customer_id = ?2 AND NOT EXISTS (
         SELECT 1 FROM customer_tags s
         WHERE s.tenant_id = ?1 AND s.customer_id = ?3 AND s.tag = m.tag)";
const UNION_TAGS: &str = "INSERT INTO customer_tags (tenant_id, customer_id, tag, source, since)
     SELECT CAST(?1 AS BIGINT), CAST(?3 AS TEXT), tag, source, since FROM customer_tags
     WHERE tenant_id = ?1 AND customer_id = ?2
     ON CONFLICT (tenant_id, customer_id, tag) DO NOTHING";
const DELETE_TAGS: &str = "DELETE FROM customer_tags WHERE tenant_id = ?1 AND customer_id = ?2";

const NOTE_REFEREES: &str = "INSERT INTO merged_rows (tenant_id, merged_id, kind, row_key)
     SELECT CAST(?1 AS BIGINT), CAST(?2 AS TEXT), 'referee', customer_id FROM customers
     WHERE tenant_id = ?1 AND referrer_id = ?2 AND customer_id <> ?3";
const MOVE_REFEREES: &str = "UPDATE customers SET referrer_id = ?3
     WHERE tenant_id = ?1 AND referrer_id = ?2 AND customer_id <> ?3";

/// The survivor (`?3`) takes the earlier join and its channel (the other's if it has
/// none), blank attributes, a missing referrer (never itself) and an opt-out from the
/// merged one (`?2`).
const JOIN_SURVIVOR: &str = "UPDATE customers SET
        joined_at = CASE WHEN m.joined_at < customers.joined_at
            THEN m.joined_at ELSE customers.joined_at END,
        joined_inferred = CASE WHEN m.joined_at < customers.joined_at
            THEN m.joined_inferred ELSE customers.joined_inferred END,
        channel = CASE WHEN m.joined_at < customers.joined_at
            THEN COALESCE(m.channel, customers.channel)
            ELSE COALESCE(customers.channel, m.channel) END,
        channel_inferred = CASE
            WHEN m.joined_at < customers.joined_at AND m.channel IS NOT NULL
                THEN m.channel_inferred
            WHEN m.joined_at < customers.joined_at THEN customers.channel_inferred
            WHEN customers.channel IS NOT NULL THEN customers.channel_inferred
            ELSE m.channel_inferred END,
        name = COALESCE(customers.name, m.name),
        phone = COALESCE(customers.phone, m.phone),
        gender = COALESCE(customers.gender, m.gender),
        birthday = COALESCE(customers.birthday, m.birthday),
        region = COALESCE(customers.region, m.region),
        referrer_id = CASE
            WHEN customers.referrer_id IS NOT NULL AND customers.referrer_id <> ?2
                THEN customers.referrer_id
            WHEN m.referrer_id = ?3 THEN NULL
            ELSE m.referrer_id END,
        opted_out_at = COALESCE(customers.opted_out_at, m.opted_out_at),
        version = customers.version + 1
     FROM merge_snapshots m
     WHERE m.tenant_id = ?1 AND m.merged_id = ?2 AND m.role = 'merged'
       AND customers.tenant_id = ?1 AND customers.customer_id = ?3";

const DELETE_CUSTOMER: &str = "DELETE FROM customers WHERE tenant_id = ?1 AND customer_id = ?2";
const DELETE_PROFILE: &str = "DELETE FROM profiles WHERE tenant_id = ?1 AND customer_id = ?2";

const INSERT_MERGE: &str = "INSERT INTO merges
     (tenant_id, merged_id, survivor_id, reason, merged_at, unmerged_at)
     VALUES (?1, ?2, ?3, ?4, ?5, NULL)";

/// `?1` tenant, `?2` merged: its standing merge.
const STANDING_MERGE: &str = "SELECT survivor_id, merged_at FROM merges
     WHERE tenant_id = ?1 AND merged_id = ?2 AND unmerged_at IS NULL";
/// `?1` tenant, `?2` survivor, `?3` a merge's time: standing merges into it since.
const LATER_MERGES: &str = "SELECT merged_id FROM merges
     WHERE tenant_id = ?1 AND survivor_id = ?2 AND unmerged_at IS NULL AND merged_at > ?3
     ORDER BY merged_at";

/// `?1` tenant, `?2` merged, `?3` survivor: rows noted under the merged id go back to it.
fn unmove_rows_sql(table: &str, kind: &str, key: &str) -> String {
    format!(
        "UPDATE {table} SET customer_id = ?2
         WHERE tenant_id = ?1 AND customer_id = ?3 AND {key} IN (
             SELECT row_key FROM merged_rows
             WHERE tenant_id = ?1 AND merged_id = ?2 AND kind = '{kind}')"
    )
}
const UNMOVE_REFEREES: &str = "UPDATE customers SET referrer_id = ?2
     WHERE tenant_id = ?1 AND referrer_id = ?3 AND customer_id IN (
         SELECT row_key FROM merged_rows
         WHERE tenant_id = ?1 AND merged_id = ?2 AND kind = 'referee')";
const DROP_GAINED_TAGS: &str = "DELETE FROM customer_tags
     WHERE tenant_id = ?1 AND customer_id = ?3 AND tag IN (
         SELECT row_key FROM merged_rows
         WHERE tenant_id = ?1 AND merged_id = ?2 AND kind = 'tag')";
const RESTORE_TAGS: &str = "INSERT INTO customer_tags (tenant_id, customer_id, tag, source, since)
     SELECT CAST(?1 AS BIGINT), CAST(?2 AS TEXT), tag, source, since FROM merge_tags WHERE tenant_id = ?1 AND merged_id = ?2";
/// The survivor (`?3`) as it was before the merge of `?2`, but for what changed since: a
/// field is put back from the survivor's snapshot (`s`) only while it still holds what
/// the merge gave it from both snapshots (`m` the merged one's, as `JOIN_SURVIVOR`
/// computed); a field written since keeps its new value.
const RESTORE_SURVIVOR: &str = "UPDATE customers SET
        name = CASE WHEN customers.name IS NOT DISTINCT FROM COALESCE(s.name, m.name)
            THEN s.name ELSE customers.name END,
        phone = CASE WHEN customers.phone IS NOT DISTINCT FROM COALESCE(s.phone, m.phone)
            THEN s.phone ELSE customers.phone END,
        gender = CASE WHEN customers.gender IS NOT DISTINCT FROM COALESCE(s.gender, m.gender)
            THEN s.gender ELSE customers.gender END,
        birthday = CASE WHEN customers.birthday IS NOT DISTINCT FROM COALESCE(s.birthday, m.birthday)
            THEN s.birthday ELSE customers.birthday END,
        region = CASE WHEN customers.region IS NOT DISTINCT FROM COALESCE(s.region, m.region)
            THEN s.region ELSE customers.region END,
        opted_out_at = CASE
            WHEN customers.opted_out_at IS NOT DISTINCT FROM COALESCE(s.opted_out_at, m.opted_out_at)
            THEN s.opted_out_at ELSE customers.opted_out_at END,
        channel = CASE WHEN customers.channel IS NOT DISTINCT FROM (CASE WHEN m.joined_at < s.joined_at
                THEN COALESCE(m.channel, s.channel) ELSE COALESCE(s.channel, m.channel) END)
            THEN s.channel ELSE customers.channel END,
        channel_inferred = CASE WHEN customers.channel IS NOT DISTINCT FROM (CASE WHEN m.joined_at < s.joined_at
                THEN COALESCE(m.channel, s.channel) ELSE COALESCE(s.channel, m.channel) END)
            THEN s.channel_inferred ELSE customers.channel_inferred END,
        referrer_id = CASE WHEN customers.referrer_id IS NOT DISTINCT FROM (CASE
                WHEN s.referrer_id IS NOT NULL AND s.referrer_id <> ?2 THEN s.referrer_id
                WHEN m.referrer_id = ?3 THEN NULL
                ELSE m.referrer_id END)
            THEN s.referrer_id ELSE customers.referrer_id END,
        joined_at = CASE WHEN customers.joined_at = (CASE WHEN m.joined_at < s.joined_at
                THEN m.joined_at ELSE s.joined_at END)
            THEN s.joined_at ELSE customers.joined_at END,
        joined_inferred = CASE WHEN customers.joined_at = (CASE WHEN m.joined_at < s.joined_at
                THEN m.joined_at ELSE s.joined_at END)
            THEN s.joined_inferred ELSE customers.joined_inferred END,
        version = CASE WHEN customers.version = s.version + 1
            THEN s.version ELSE customers.version + 1 END
     FROM merge_snapshots s, merge_snapshots m
     WHERE s.tenant_id = ?1 AND s.merged_id = ?2 AND s.role = 'survivor'
       AND m.tenant_id = ?1 AND m.merged_id = ?2 AND m.role = 'merged'
       AND customers.tenant_id = ?1 AND customers.customer_id = ?3";
fn restore_merged_sql() -> String {
    format!(
        "INSERT INTO customers (tenant_id, {COLUMNS})
         SELECT tenant_id, {COLUMNS} FROM merge_snapshots
         WHERE tenant_id = ?1 AND merged_id = ?2 AND role = 'merged'"
    )
}
const FORGET_MERGE: [&str; 3] = [
    "DELETE FROM merged_rows WHERE tenant_id = ?1 AND merged_id = ?2",
    "DELETE FROM merge_snapshots WHERE tenant_id = ?1 AND merged_id = ?2",
    "DELETE FROM merge_tags WHERE tenant_id = ?1 AND merged_id = ?2",
];
/// `?1` tenant, `?2` a customer: the merges into it and the never-merge pairs naming it.
const FORGET_ALL_OF: [&str; 2] = [
    "DELETE FROM merges WHERE tenant_id = ?1 AND (merged_id = ?2 OR survivor_id = ?2)",
    "DELETE FROM never_merge WHERE tenant_id = ?1 AND (a = ?2 OR b = ?2)",
];
const CLOSE_MERGE: &str = "UPDATE merges SET unmerged_at = ?3
     WHERE tenant_id = ?1 AND merged_id = ?2 AND unmerged_at IS NULL";

const HAS_MERGES: &str =
    "SELECT 1 FROM merges WHERE tenant_id = ?1 AND unmerged_at IS NULL LIMIT 1";

const INSERT_NEVER_MERGE: &str = "INSERT INTO never_merge (tenant_id, a, b, at)
     VALUES (?1, ?2, ?3, ?4) ON CONFLICT (tenant_id, a, b) DO NOTHING";
const IS_NEVER_MERGE: &str = "SELECT 1 FROM never_merge WHERE tenant_id = ?1 AND a = ?2 AND b = ?3";

const MERGES_OF: &str = "SELECT merged_id, survivor_id, reason, merged_at, unmerged_at FROM merges
     WHERE tenant_id = ?1 AND (merged_id = ?2 OR survivor_id = ?2)
     ORDER BY merged_at, merged_id";

/// A pair in the stored order (`a` < `b`, byte order).
fn ordered<'a>(a: &'a CustomerId, b: &'a CustomerId) -> (&'a str, &'a str) {
    if a.as_str().as_bytes() <= b.as_str().as_bytes() {
        (a.as_str(), b.as_str())
    } else {
        (b.as_str(), a.as_str())
    }
}

/// The standing survivor of each of `ids` that is merged.
fn survivors_of(db: &mut dyn Db, tenant: i64, ids: &[&str]) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        let list: Vec<String> = (0..chunk.len()).map(|k| format!("?{}", k + 2)).collect();
        let sql = format!(
            "SELECT merged_id, survivor_id FROM merges
             WHERE tenant_id = ?1 AND unmerged_at IS NULL AND merged_id IN ({})",
            list.join(", ")
        );
        let mut args = vec![Arg::Int(tenant)];
        args.extend(chunk.iter().map(|id| Arg::Text(id)));
        out.extend(rows(db, &sql, &args, |r| {
            Ok((r.text(0)?.to_owned(), r.text(1)?.to_owned()))
        })?);
    }
    Ok(out)
}

impl<T: TxOnDb> MergeWrites for T {
    fn merge_customers(
        &mut self,
        survivor: &CustomerId,
        merged: &CustomerId,
        reason: MergeReason,
        at: Timestamp,
    ) -> Result<Moved> {
        if survivor == merged {
            return Err(StoreError::Conflict(format!(
                "customer {merged} cannot be merged into itself"
            )));
        }
        self.rewriting(&[survivor, merged])?;
        let tenant = Arg::Int(self.tenant_id());
        let (m, s) = (Arg::Text(merged.as_str()), Arg::Text(survivor.as_str()));
        let key = [tenant, m, s];
        let db = self.tx_db();
        if db.exec(&snapshot_sql(), &key)? != 2 {
            let missing = if rows(db, HAS_CUSTOMER, &[tenant, m], |_| Ok(()))?.is_empty() {
                merged
            } else {
                survivor
            };
            return Err(StoreError::NotFound(format!("customer {missing}")));
        }
        db.exec(
            INSERT_MERGE,
            &[
                tenant,
                m,
                s,
                Arg::Text(reason.as_str()),
                Arg::Int(micros(at)),
            ],
        )?;
        let mut moved = Moved::default();
        for (table, kind, row_key, count) in [
            ("orders", "order", "order_id", &mut moved.orders),
            ("events", "event", "event_id", &mut moved.events),
            (
                "identities",
                "identity",
                IDENTITY_KEY,
                &mut moved.identities,
            ),
        ] {
            db.exec(&note_rows_sql(table, kind, row_key), &key[..2])?;
            *count = db.exec(&move_rows_sql(table), &key)?;
        }
        db.exec(SNAPSHOT_TAGS, &key[..2])?;
        db.exec(NOTE_GAINED_TAGS, &key)?;
        db.exec(UNION_TAGS, &key)?;
        moved.tags = db.exec(DELETE_TAGS, &key[..2])?;
        db.exec(NOTE_REFEREES, &key)?;
        moved.referees = db.exec(MOVE_REFEREES, &key)?;
        db.exec(JOIN_SURVIVOR, &key)?;
        db.exec(DELETE_CUSTOMER, &[tenant, m])?;
        db.exec(DELETE_PROFILE, &[tenant, m])?;
        Ok(moved)
    }

    fn unmerge_customer(&mut self, merged: &CustomerId, at: Timestamp) -> Result<CustomerId> {
        let tenant = Arg::Int(self.tenant_id());
        let m = Arg::Text(merged.as_str());
        let db = self.tx_db();
        let Some((survivor, merged_at)) = rows(db, STANDING_MERGE, &[tenant, m], |r| {
            Ok((parse_customer_id(r.text(0)?)?, r.int(1)?))
        })?
        .pop() else {
            return Err(StoreError::NotFound(format!(
                "customer {merged} is not merged into anyone"
            )));
        };
        let s = Arg::Text(survivor.as_str());
        if let Some(later) = rows(db, LATER_MERGES, &[tenant, s, Arg::Int(merged_at)], |r| {
            Ok(r.text(0)?.to_owned())
        })?
        .pop()
        {
            return Err(StoreError::Conflict(format!(
                "{later} was merged into {survivor} after {merged}: unmerge {later} first"
            )));
        }
        if rows(db, HAS_CUSTOMER, &[tenant, s], |_| Ok(()))?.is_empty() {
            return Err(StoreError::Conflict(format!(
                "{survivor}, into whom {merged} was merged, is merged itself: unmerge {survivor} first"
            )));
        }
        self.rewriting(&[&survivor, merged])?;
        let db = self.tx_db();
        let key = [tenant, m, s];
        for (table, kind, row_key) in [
            ("orders", "order", "order_id"),
            ("events", "event", "event_id"),
            ("identities", "identity", IDENTITY_KEY),
        ] {
            db.exec(&unmove_rows_sql(table, kind, row_key), &key)?;
        }
        db.exec(UNMOVE_REFEREES, &key)?;
        db.exec(DROP_GAINED_TAGS, &key)?;
        db.exec(RESTORE_TAGS, &key[..2])?;
        db.exec(RESTORE_SURVIVOR, &key)?;
        if db.exec(&restore_merged_sql(), &[tenant, m])? != 1 {
            return Err(corrupt(format!("no snapshot of merged customer {merged}")));
        }
        for sql in FORGET_MERGE {
            db.exec(sql, &[tenant, m])?;
        }
        db.exec(CLOSE_MERGE, &[tenant, m, Arg::Int(micros(at))])?;
        Ok(survivor)
    }

    fn merge_chains(&mut self, ids: &[CustomerId]) -> Result<Vec<(CustomerId, Vec<CustomerId>)>> {
        let tenant = self.tenant_id();
        let db = self.tx_db();
        let names: Vec<&str> = ids.iter().map(CustomerId::as_str).collect();
        let mut chains: Vec<(CustomerId, Vec<CustomerId>)> = Vec::new();
        for (merged, survivor) in survivors_of(db, tenant, &names)? {
            chains.push((
                parse_customer_id(&merged)?,
                vec![parse_customer_id(&survivor)?],
            ));
        }
        // A survivor merged in turn: follow on (a chain is as long as merges were stacked).
        for _ in 0..64 {
            let ends: Vec<&str> = chains
                .iter()
                .filter_map(|(_, c)| c.last().map(CustomerId::as_str))
                .collect();
            let next = survivors_of(db, tenant, &ends)?;
            if next.is_empty() {
                return Ok(chains);
            }
            let next: std::collections::HashMap<String, String> = next.into_iter().collect();
            for (_, chain) in &mut chains {
                if let Some(s) = chain.last().and_then(|end| next.get(end.as_str())) {
                    chain.push(parse_customer_id(s)?);
                }
            }
        }
        Err(corrupt("a chain of merges longer than 64"))
    }

    fn has_merges(&mut self) -> Result<bool> {
        let tenant = Arg::Int(self.tenant_id());
        Ok(!rows(self.tx_db(), HAS_MERGES, &[tenant], |_| Ok(()))?.is_empty())
    }

    fn note_merged_rows(&mut self, noted: &[(CustomerId, &str, String)]) -> Result<()> {
        let tenant = self.tenant_id();
        for chunk in noted.chunks(ROWS_PER_STATEMENT) {
            let mut sql = String::from(
                "INSERT INTO merged_rows (tenant_id, merged_id, kind, row_key) VALUES ",
            );
            let mut args = vec![Arg::Int(tenant)];
            for (k, (merged, kind, key)) in chunk.iter().enumerate() {
                let n = 2 + k * 3;
                if k > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("(?1, ?{}, ?{}, ?{})", n, n + 1, n + 2));
                args.extend([Arg::Text(merged.as_str()), Arg::Text(kind), Arg::Text(key)]);
            }
            sql.push_str(" ON CONFLICT (tenant_id, merged_id, kind, row_key) DO NOTHING");
            self.tx_db().exec(&sql, &args)?;
        }
        Ok(())
    }

    fn add_never_merge(&mut self, a: &CustomerId, b: &CustomerId, at: Timestamp) -> Result<bool> {
        let (a, b) = ordered(a, b);
        let args = [
            Arg::Int(self.tenant_id()),
            Arg::Text(a),
            Arg::Text(b),
            Arg::Int(micros(at)),
        ];
        Ok(self.tx_db().exec(INSERT_NEVER_MERGE, &args)? > 0)
    }

    fn is_never_merge(&mut self, a: &CustomerId, b: &CustomerId) -> Result<bool> {
        let (a, b) = ordered(a, b);
        let args = [Arg::Int(self.tenant_id()), Arg::Text(a), Arg::Text(b)];
        Ok(!rows(self.tx_db(), IS_NEVER_MERGE, &args, |_| Ok(()))?.is_empty())
    }

    fn merges_of(&mut self, id: &CustomerId) -> Result<Vec<MergeRecord>> {
        let tenant = self.tenant_id();
        merges_of(self.tx_db(), tenant, id)
    }

    fn forget_merges(&mut self, ids: &[CustomerId]) -> Result<()> {
        let tenant = Arg::Int(self.tenant_id());
        for id in ids {
            let key = [tenant, Arg::Text(id.as_str())];
            let db = self.tx_db();
            for sql in FORGET_MERGE {
                db.exec(sql, &key)?;
            }
            for sql in FORGET_ALL_OF {
                db.exec(sql, &key)?;
            }
        }
        Ok(())
    }

    fn record_identities(&mut self, ids: &[(CustomerId, Identity)]) -> Result<u64> {
        let tenant = self.tenant_id();
        crate::shared::add_identities(self.tx_db(), tenant, ids)
    }

    fn identity_holders(
        &mut self,
        pairs: &[(&str, &str)],
    ) -> Result<Vec<(String, String, CustomerId)>> {
        let tenant = self.tenant_id();
        let mut out = Vec::new();
        for chunk in pairs.chunks(IDS_PER_STATEMENT) {
            let mut sql = String::from(
                "SELECT namespace, value, customer_id FROM identities
                 WHERE tenant_id = ?1 AND (",
            );
            let mut args = vec![Arg::Int(tenant)];
            for (k, (namespace, value)) in chunk.iter().enumerate() {
                let n = 2 + k * 2;
                if k > 0 {
                    sql.push_str(" OR ");
                }
                sql.push_str(&format!("(namespace = ?{} AND value = ?{})", n, n + 1));
                args.extend([Arg::Text(namespace), Arg::Text(value)]);
            }
            sql.push(')');
            out.extend(rows(self.tx_db(), &sql, &args, |r| {
                Ok((
                    r.text(0)?.to_owned(),
                    r.text(1)?.to_owned(),
                    parse_customer_id(r.text(2)?)?,
                ))
            })?);
        }
        Ok(out)
    }
}

/// The merges into or of `id` in a tenant, oldest first.
pub(crate) fn merges_of(db: &mut dyn Db, tenant: i64, id: &CustomerId) -> Result<Vec<MergeRecord>> {
    let args = [Arg::Int(tenant), Arg::Text(id.as_str())];
    rows(db, MERGES_OF, &args, |r| {
        Ok(MergeRecord {
            merged_id: parse_customer_id(r.text(0)?)?,
            survivor_id: parse_customer_id(r.text(1)?)?,
            reason: MergeReason::parse(r.text(2)?).ok_or_else(|| corrupt("stored merge reason"))?,
            merged_at: from_micros(r.int(3)?)?,
            unmerged_at: r.opt_int(4)?.map(from_micros).transpose()?,
        })
    })
}

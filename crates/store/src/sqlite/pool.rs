//! Segments and tags on SQLite: the pool as rules read it, saved rules, members and history.

use rusqlite::params;

use siyu_core::segment::pool::Attributes;
use siyu_core::segment::rules::Change;
use siyu_core::{CustomerId, Gender, Money, Timestamp};

use super::{SqliteImport, SqliteStore};
use crate::sql::{
    PROFILE_COLUMNS, RowAccess, member_from, parse_channel, pool_figures_from, pool_figures_sql,
    profile_from,
};
use crate::{
    Member, MemberChange, PoolCustomer, PoolFigures, PoolStore, PoolTx, Result, Scope, Tenant,
    micros, other,
};

impl PoolStore for SqliteStore {
    fn begin_pool<'s>(&'s mut self, tenant: &Tenant) -> Result<Box<dyn PoolTx + 's>> {
        Ok(Box::new(SqliteImport::begin(
            &self.conn, tenant, None, None,
        )?))
    }

    fn read_pool<'s>(&'s mut self, tenant: &Tenant) -> Result<Box<dyn PoolTx + 's>> {
        Ok(Box::new(SqliteImport::begin_read(&self.conn, tenant)?))
    }
}

impl PoolTx for SqliteImport<'_> {
    fn lock_evaluation(&mut self) -> Result<()> {
        // The transaction is immediate: it holds the only write lock already.
        Ok(())
    }

    fn pool_customers(
        &mut self,
        spend_from: Timestamp,
        spend_until: Timestamp,
        each: &mut dyn FnMut(PoolCustomer),
    ) -> Result<()> {
        self.end_of_writes_now()?;
        // The `+` keep SQLite from summing by way of orders_by_customer: a lookup in the
        // table for every index entry is several times slower than one pass and a sort.
        let mut stmt = self.tx.prepare_cached(&pool_sql(
            "s.spend",
            "FROM profiles p
             JOIN customers c ON c.tenant_id = p.tenant_id AND c.customer_id = p.customer_id
             LEFT JOIN (SELECT customer_id, sum(amount) AS spend FROM orders
                        WHERE +tenant_id = ?1 AND status = 'paid'
                          AND ordered_at >= ?2 AND ordered_at < ?3
                        GROUP BY +customer_id) s ON s.customer_id = p.customer_id
             WHERE p.tenant_id = ?1",
        ))?;
        let mut rows = stmt.query(params![
            self.tenant,
            micros(spend_from),
            micros(spend_until)
        ])?;
        while let Some(r) = rows.next()? {
            each(pool_customer_from(r)?);
        }
        Ok(())
    }

    fn pool_figures(
        &mut self,
        spend_from: Timestamp,
        spend_until: Timestamp,
        each: &mut dyn FnMut(PoolFigures),
    ) -> Result<()> {
        self.end_of_writes_now()?;
        let mut stmt = self.tx.prepare_cached(&pool_figures_sql("+"))?;
        let mut rows = stmt.query(params![
            self.tenant,
            micros(spend_from),
            micros(spend_until)
        ])?;
        while let Some(r) = rows.next()? {
            each(pool_figures_from(r)?);
        }
        Ok(())
    }

    fn pool_customers_of(
        &mut self,
        ids: &[CustomerId],
        spend_from: Timestamp,
        spend_until: Timestamp,
        each: &mut dyn FnMut(PoolCustomer),
    ) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.end_of_writes_now()?;
        self.scope_filter(Scope::Customers(ids), "customer_id")?;
        // By customer, the few asked for first: CROSS JOIN keeps SQLite from walking the
        // tenant's whole pool and looking each up in the scope. The paid orders of each
        // from orders_by_customer.
        let mut stmt = self.tx.prepare_cached(&pool_sql(
            "(SELECT sum(o.amount) FROM orders o
              WHERE o.customer_id = p.customer_id AND o.tenant_id = p.tenant_id
                AND o.ordered_at >= ?2 AND o.ordered_at < ?3 AND o.status = 'paid')",
            "FROM temp.siyu_scope s
             CROSS JOIN profiles p ON p.tenant_id = ?1 AND p.customer_id = s.customer_id
             CROSS JOIN customers c
                ON c.tenant_id = p.tenant_id AND c.customer_id = p.customer_id",
        ))?;
        let mut rows = stmt.query(params![
            self.tenant,
            micros(spend_from),
            micros(spend_until)
        ])?;
        while let Some(r) = rows.next()? {
            each(pool_customer_from(r)?);
        }
        Ok(())
    }

    fn pool_customers_between(
        &mut self,
        after: Option<&CustomerId>,
        through: &CustomerId,
        spend_from: Timestamp,
        spend_until: Timestamp,
        each: &mut dyn FnMut(PoolCustomer),
    ) -> Result<()> {
        self.end_of_writes_now()?;
        // One pass over each table's index in customer order, the range's rows only.
        let mut stmt = self.tx.prepare_cached(&pool_sql(
            "s.spend",
            "FROM profiles p
             JOIN customers c ON c.tenant_id = p.tenant_id AND c.customer_id = p.customer_id
             LEFT JOIN (SELECT customer_id, sum(amount) AS spend FROM orders
                        WHERE customer_id > ?4 AND customer_id <= ?5 AND tenant_id = ?1
                          AND status = 'paid' AND ordered_at >= ?2 AND ordered_at < ?3
                        GROUP BY customer_id) s ON s.customer_id = p.customer_id
             WHERE p.tenant_id = ?1 AND p.customer_id > ?4 AND p.customer_id <= ?5",
        ))?;
        let mut rows = stmt.query(params![
            self.tenant,
            micros(spend_from),
            micros(spend_until),
            after.map_or("", |a| a.as_str()),
            through.as_str()
        ])?;
        while let Some(r) = rows.next()? {
            each(pool_customer_from(r)?);
        }
        Ok(())
    }

    fn memberships_of(&mut self, ids: &[CustomerId]) -> Result<Vec<Member>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.scope_filter(Scope::Customers(ids), "customer_id")?;
        let mut stmt = self.tx.prepare_cached(
            "SELECT m.kind, m.name, m.customer_id, m.since
             FROM temp.siyu_scope s
             CROSS JOIN rule_members m ON m.tenant_id = ?1 AND m.customer_id = s.customer_id",
        )?;
        let mut rows = stmt.query([self.tenant])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(member_from(r)?);
        }
        Ok(out)
    }

    fn apply_changes(
        &mut self,
        changes: &[MemberChange],
        at: Timestamp,
        cause: &str,
    ) -> Result<()> {
        let mut enter = self.tx.prepare_cached(
            "INSERT INTO rule_members (tenant_id, kind, name, customer_id, since)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        let mut exit = self.tx.prepare_cached(
            "DELETE FROM rule_members
             WHERE tenant_id = ?1 AND kind = ?2 AND name = ?3 AND customer_id = ?4",
        )?;
        let mut record = self.tx.prepare_cached(
            "INSERT INTO rule_history (tenant_id, kind, name, customer_id, change, at, cause)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        let at = micros(at);
        for c in changes {
            let key = params![self.tenant, c.kind.as_str(), c.name, c.customer_id.as_str()];
            match c.change {
                Change::Entered => enter.execute(params![
                    self.tenant,
                    c.kind.as_str(),
                    c.name,
                    c.customer_id.as_str(),
                    at
                ])?,
                Change::Exited => exit.execute(key)?,
            };
            record.execute(params![
                self.tenant,
                c.kind.as_str(),
                c.name,
                c.customer_id.as_str(),
                c.change.as_str(),
                at,
                cause
            ])?;
        }
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        self.end_of_writes_now()?;
        self.tx.commit()?;
        if let Some(known) = self.known {
            known.committed();
        }
        Ok(())
    }
}

/// The pool as rules read it, rows for [`pool_customer_from`] in customer-id order: `spend`
/// the column of each customer's paid amount over `?2`..`?3`, `from` the FROM and WHERE
/// clauses (profiles `p`, customers `c`, tenant `?1`).
fn pool_sql(spend: &str, from: &str) -> String {
    format!(
        "SELECT {PROFILE_COLUMNS}, c.channel, c.region, c.gender,
                (SELECT json_group_array(t.tag) FROM customer_tags t
                 WHERE t.tenant_id = p.tenant_id AND t.customer_id = p.customer_id),
                {spend}, c.opted_out_at IS NOT NULL
         {from}
         ORDER BY p.customer_id"
    )
}

/// A pool customer from a row of the profile columns, then channel, region, gender, the
/// tags as a JSON array, the spend and whether they opted out.
fn pool_customer_from(r: &rusqlite::Row<'_>) -> Result<PoolCustomer> {
    let gender: Option<String> = r.get(18)?;
    let tags: String = r.get(19)?;
    Ok(PoolCustomer {
        profile: profile_from(r)?,
        attributes: Attributes {
            channel: parse_channel(r.opt_text(16)?)?,
            region: r.get(17)?,
            gender: gender
                .map(|g| Gender::parse(&g).map_err(other))
                .transpose()?,
            opted_out: r.get(21)?,
        },
        tags: serde_json::from_str(&tags).map_err(other)?,
        spend: Money::from_fen(r.get::<_, Option<i64>>(20)?.unwrap_or(0)),
    })
}

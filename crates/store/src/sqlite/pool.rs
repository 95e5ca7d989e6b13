//! Segments and tags on SQLite: the pool as rules read it, saved rules, members and history.

use rusqlite::fallible_streaming_iterator::FallibleStreamingIterator;
use rusqlite::params;

use siyu_core::segment::pool::Attributes;
use siyu_core::segment::rules::Change;
use siyu_core::{CustomerId, Gender, Money, Timestamp};

use super::{SqliteImport, SqliteStore};
use crate::sql::{
    POOL_FIGURES, PROFILE_COLUMNS, RowAccess, member_from, parse_channel, parse_customer_id,
    pool_figures_from, profile_from,
};
use crate::{
    Member, MemberChange, PoolCustomer, PoolFigures, PoolStore, PoolTx, Result, Scope, Tenant,
    from_micros, micros, other,
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
        each: &mut dyn FnMut(&str, PoolFigures),
    ) -> Result<()> {
        self.end_of_writes_now()?;
        // Two passes in customer order merged here: the profiles, and the paid orders
        // summed from orders_by_customer alone. Joined in SQL, the sums went through a
        // temporary table and a sort.
        let mut spend_stmt = self.tx.prepare_cached(&spend_sql(false))?;
        let mut spends = Spends::new(spend_stmt.query(params![
            self.tenant,
            micros(spend_from),
            micros(spend_until)
        ])?)?;
        let mut stmt = self.tx.prepare_cached(POOL_FIGURES)?;
        let mut rows = stmt.query([self.tenant])?;
        while let Some(r) = rows.next()? {
            let id = r.text(0)?;
            let spend = spends.of(id)?;
            each(id, pool_figures_from(r, spend)?);
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
        let (after, through) = (after.map_or("", |a| a.as_str()), through.as_str());
        // Four passes over the range in customer order, merged here: the profiles, the
        // customers, the paid orders summed from orders_by_customer alone, and the tags.
        // Joined in SQL (a lookup per customer, a subquery per customer for the tags and
        // the spend) it cost twice as much.
        let mut spend_stmt = self.tx.prepare_cached(&spend_sql(true))?;
        let mut spends = Spends::new(spend_stmt.query(params![
            self.tenant,
            micros(spend_from),
            micros(spend_until),
            after,
            through
        ])?)?;
        let range = params![self.tenant, after, through];
        let mut tag_stmt = self.tx.prepare_cached(TAGS_BETWEEN)?;
        let mut tag_rows = tag_stmt.query(range)?;
        tag_rows.advance()?;
        let mut customer_stmt = self.tx.prepare_cached(CUSTOMERS_BETWEEN)?;
        let mut customers = customer_stmt.query(range)?;
        customers.advance()?;
        let mut stmt = self.tx.prepare_cached(&profiles_between())?;
        let mut rows = stmt.query(range)?;
        while let Some(r) = rows.next()? {
            let id = r.text(0)?;
            // The customer's row, if any: a profile without one is no customer (as a join).
            let customer = loop {
                match customers.get() {
                    Some(c) if c.text(0)? < id => customers.advance()?,
                    Some(c) if c.text(0)? == id => break Some(c),
                    _ => break None,
                }
            };
            let Some(c) = customer else { continue };
            let mut profile = profile_from(r)?;
            profile.joined_at = from_micros(c.int(1)?)?;
            profile.referrer_id = c.opt_text(2)?.map(parse_customer_id).transpose()?;
            let attributes = attributes_from(c, 3, 6)?;
            let spend = spends.of(id)?;
            let mut tags = Vec::new();
            while let Some(t) = tag_rows.get() {
                match t.text(0)?.cmp(id) {
                    std::cmp::Ordering::Greater => break,
                    std::cmp::Ordering::Equal => tags.push(t.text(1)?.to_owned()),
                    std::cmp::Ordering::Less => {}
                }
                tag_rows.advance()?;
            }
            each(PoolCustomer {
                profile,
                attributes,
                tags,
                spend: Money::from_fen(spend),
            });
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
        drop((enter, exit, record));
        crate::campaign::queue_steps(&mut self.tx, self.tenant, changes, at)?;
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        self.end_of_writes_now()?;
        if self.writes {
            crate::shared::bump_changes(&mut self.tx, self.tenant)?;
        }
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
    let tags: String = r.get(19)?;
    Ok(PoolCustomer {
        profile: profile_from(r)?,
        attributes: attributes_from(r, 16, 21)?,
        tags: serde_json::from_str(&tags).map_err(other)?,
        spend: Money::from_fen(r.get::<_, Option<i64>>(20)?.unwrap_or(0)),
    })
}

/// A customer's attributes from the columns channel, region and gender, the first at
/// `at`, and whether they opted out at `opted_out`.
fn attributes_from(r: &rusqlite::Row<'_>, at: usize, opted_out: usize) -> Result<Attributes> {
    let gender: Option<String> = r.get(at + 2)?;
    Ok(Attributes {
        channel: parse_channel(r.opt_text(at)?)?,
        region: r.get(at + 1)?,
        gender: gender
            .map(|g| Gender::parse(&g).map_err(other))
            .transpose()?,
        opted_out: r.get(opted_out)?,
    })
}

/// The paid amount of each of a tenant's (`?1`) customers over `?2`..`?3`, in customer
/// order, from orders_by_customer alone: of those after `?4` up to and including `?5`, or
/// with `upto` false, of all. The `+` keeps SQLite from the primary key's tenant range,
/// which is every order, grouped by sorting.
fn spend_sql(upto: bool) -> String {
    let range = if upto {
        "customer_id > ?4 AND customer_id <= ?5 AND "
    } else {
        ""
    };
    format!(
        "SELECT customer_id, sum(amount) FROM orders
         WHERE {range}+tenant_id = ?1
           AND status = 'paid' AND ordered_at >= ?2 AND ordered_at < ?3
         GROUP BY customer_id ORDER BY customer_id"
    )
}

/// The tags of a tenant's (`?1`) customers after `?2` up to and including `?3`, in
/// customer order.
const TAGS_BETWEEN: &str = "SELECT customer_id, tag FROM customer_tags
     WHERE tenant_id = ?1 AND customer_id > ?2 AND customer_id <= ?3 ORDER BY customer_id";

/// The customers after `?2` up to and including `?3` of a tenant (`?1`), in customer
/// order: id, joined_at, referrer_id, then channel, region, gender and whether they
/// opted out (see [`attributes_from`]).
const CUSTOMERS_BETWEEN: &str = "SELECT customer_id, joined_at, referrer_id, channel, region,
         gender, opted_out_at IS NOT NULL
     FROM customers WHERE tenant_id = ?1 AND customer_id > ?2 AND customer_id <= ?3
     ORDER BY customer_id";

/// The profiles of a tenant's (`?1`) customers after `?2` up to and including `?3`, in
/// customer order: rows for [`profile_from`] with the customers' two columns (joined_at,
/// referrer_id) left 0 and NULL, to be taken from [`CUSTOMERS_BETWEEN`].
fn profiles_between() -> String {
    format!(
        "SELECT {}
         FROM profiles p
         WHERE p.tenant_id = ?1 AND p.customer_id > ?2 AND p.customer_id <= ?3
         ORDER BY p.customer_id",
        PROFILE_COLUMNS.replacen("c.joined_at, c.referrer_id", "0, NULL", 1)
    )
}

/// The rows of [`spend_sql`] read along with a pass in customer order.
struct Spends<'r> {
    rows: rusqlite::Rows<'r>,
}

impl<'r> Spends<'r> {
    fn new(mut rows: rusqlite::Rows<'r>) -> Result<Spends<'r>> {
        rows.advance()?;
        Ok(Spends { rows })
    }

    /// The paid amount of `id`; ids must come in increasing order.
    fn of(&mut self, id: &str) -> Result<i64> {
        while let Some(r) = self.rows.get() {
            match r.text(0)?.cmp(id) {
                std::cmp::Ordering::Greater => return Ok(0),
                std::cmp::Ordering::Equal => {
                    let spend = r.int(1)?;
                    self.rows.advance()?;
                    return Ok(spend);
                }
                std::cmp::Ordering::Less => self.rows.advance()?,
            }
        }
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;
    use crate::sql::RULE_MEMBERS_BETWEEN;

    /// The query plan of `sql` with its parameters NULL, steps joined by "; ".
    fn plan(store: &SqliteStore, sql: &str) -> String {
        let mut stmt = store
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("plan");
        let nulls = vec![rusqlite::types::Null; stmt.parameter_count()];
        stmt.query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3))
            .expect("query")
            .collect::<rusqlite::Result<Vec<_>>>()
            .expect("rows")
            .join("; ")
    }

    #[test]
    fn a_slice_of_the_pool_and_the_years_spend_are_read_in_customer_order_without_sorting() {
        let mut store = SqliteStore::open(":memory:").expect("open");
        store.migrate().expect("migrate");
        for upto in [false, true] {
            let plan = plan(&store, &spend_sql(upto));
            assert!(
                plan.contains("USING COVERING INDEX orders_by_customer")
                    && !plan.contains("TEMP B-TREE"),
                "{plan}"
            );
        }
        assert!(profiles_between().contains("p.customer_id, 0, NULL,"));
        let plan_of_members = plan(&store, RULE_MEMBERS_BETWEEN);
        assert!(
            plan_of_members.contains("USING PRIMARY KEY")
                && !plan_of_members.contains("TEMP B-TREE"),
            "{plan_of_members}"
        );
        for sql in [TAGS_BETWEEN, CUSTOMERS_BETWEEN, &profiles_between()] {
            let plan = plan(&store, sql);
            assert!(
                plan.contains("PRIMARY KEY (tenant_id=? AND customer_id>? AND customer_id<?)")
                    && !plan.contains("TEMP B-TREE"),
                "{plan}"
            );
        }
    }
}

//! Segments and tags on PostgreSQL: the pool as rules read it, saved rules, members and
//! history. Membership changes go in as arrays, a few statements per batch.

use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;

use siyu_core::segment::pool::Attributes;
use siyu_core::segment::rules::Change;
use siyu_core::{CustomerId, Gender, Money, Timestamp};

use super::{PgImport, PgStore};
use crate::sql::{
    POOL_FIGURES, PROFILE_COLUMNS, member_from, parse_channel, pg, pool_figures_from, profile_from,
};
use crate::{
    Member, MemberChange, PoolCustomer, PoolFigures, PoolStore, PoolTx, Result, Tenant, micros,
    other,
};

/// Membership changes written per statement.
const CHANGES_PER_STATEMENT: usize = 10_000;

impl PoolStore for PgStore {
    fn begin_pool<'s>(&'s mut self, tenant: &Tenant) -> Result<Box<dyn PoolTx + 's>> {
        Ok(Box::new(PgImport::begin(&mut self.client, tenant)?))
    }

    fn read_pool<'s>(&'s mut self, tenant: &Tenant) -> Result<Box<dyn PoolTx + 's>> {
        Ok(Box::new(PgImport::begin_read(&mut self.client, tenant)?))
    }
}

impl PoolTx for PgImport<'_> {
    fn lock_evaluation(&mut self) -> Result<()> {
        self.lock_evaluation_once()
    }

    fn pool_customers(
        &mut self,
        spend_from: Timestamp,
        spend_until: Timestamp,
        each: &mut dyn FnMut(PoolCustomer),
    ) -> Result<()> {
        let (from, until) = (micros(spend_from), micros(spend_until));
        let params: [&(dyn ToSql + Sync); 3] = [&self.tenant, &from, &until];
        let mut rows = self.tx.query_raw(
            &format!(
                "SELECT {PROFILE_COLUMNS}, c.channel, c.region, c.gender,
                        coalesce(t.tags, ARRAY[]::text[]), coalesce(s.spend, 0)::bigint,
                        c.opted_out_at IS NOT NULL
                 FROM profiles p
                 JOIN customers c
                   ON c.tenant_id = p.tenant_id AND c.customer_id = p.customer_id
                 LEFT JOIN (SELECT customer_id, array_agg(tag::text) AS tags
                            FROM customer_tags WHERE tenant_id = $1
                            GROUP BY customer_id) t ON t.customer_id = p.customer_id
                 LEFT JOIN (SELECT customer_id, sum(amount) AS spend FROM orders
                            WHERE tenant_id = $1 AND status = 'paid'
                              AND ordered_at >= $2 AND ordered_at < $3
                            GROUP BY customer_id) s ON s.customer_id = p.customer_id
                 WHERE p.tenant_id = $1 ORDER BY p.customer_id"
            ),
            params,
        )?;
        while let Some(r) = rows.next()? {
            each(pool_customer_from(&r)?);
        }
        Ok(())
    }

    fn pool_figures(
        &mut self,
        spend_from: Timestamp,
        spend_until: Timestamp,
        each: &mut dyn FnMut(&str, PoolFigures),
    ) -> Result<()> {
        let (from, until) = (micros(spend_from), micros(spend_until));
        let params: [&(dyn ToSql + Sync); 3] = [&self.tenant, &from, &until];
        // The paid sums first (a few tens of megabytes at a million customers: one
        // statement at a time per connection), then the profiles merged with them.
        let mut spends: Vec<(String, i64)> = Vec::new();
        let mut sums = self.tx.query_raw(
            "SELECT customer_id, sum(amount)::bigint FROM orders
             WHERE tenant_id = $1 AND status = 'paid' AND ordered_at >= $2 AND ordered_at < $3
             GROUP BY customer_id ORDER BY customer_id",
            params,
        )?;
        while let Some(r) = sums.next()? {
            spends.push((r.try_get(0)?, r.try_get(1)?));
        }
        drop(sums);
        let mut spends = spends.into_iter().peekable();
        let mut rows = self.tx.query_raw(&pg(POOL_FIGURES), [self.tenant])?;
        while let Some(r) = rows.next()? {
            let id: &str = r.try_get(0)?;
            while spends.next_if(|(c, _)| c.as_str() < id).is_some() {}
            let spend = spends.next_if(|(c, _)| c == id).map_or(0, |(_, s)| s);
            each(id, pool_figures_from(&r, spend)?);
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
        let (from, until) = (micros(spend_from), micros(spend_until));
        let ids: Vec<&str> = ids.iter().map(CustomerId::as_str).collect();
        let params: [&(dyn ToSql + Sync); 4] = [&self.tenant, &from, &until, &ids];
        let mut rows = self.tx.query_raw(
            &by_customer("p.customer_id = ANY($4) AND c.customer_id = ANY($4)"),
            params,
        )?;
        while let Some(r) = rows.next()? {
            each(pool_customer_from(&r)?);
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
        let (from, until) = (micros(spend_from), micros(spend_until));
        let (after, through) = (after.map_or("", |a| a.as_str()), through.as_str());
        let params: [&(dyn ToSql + Sync); 5] = [&self.tenant, &from, &until, &after, &through];
        let mut rows = self.tx.query_raw(
            &by_customer(
                "p.customer_id > $4 AND p.customer_id <= $5
                 AND c.customer_id > $4 AND c.customer_id <= $5",
            ),
            params,
        )?;
        while let Some(r) = rows.next()? {
            each(pool_customer_from(&r)?);
        }
        Ok(())
    }

    fn memberships_of(&mut self, ids: &[CustomerId]) -> Result<Vec<Member>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = ids.iter().map(CustomerId::as_str).collect();
        let rows = self.tx.query(
            "SELECT kind, name, customer_id, since FROM rule_members
             WHERE tenant_id = $1 AND customer_id = ANY($2)",
            &[&self.tenant, &ids],
        )?;
        rows.iter().map(member_from).collect()
    }

    fn apply_changes(
        &mut self,
        changes: &[MemberChange],
        at: Timestamp,
        cause: &str,
    ) -> Result<()> {
        let at = micros(at);
        for chunk in changes.chunks(CHANGES_PER_STATEMENT) {
            let column = |pick: &dyn Fn(&MemberChange) -> String, only: Option<Change>| {
                chunk
                    .iter()
                    .filter(|c| only.is_none_or(|o| c.change == o))
                    .map(pick)
                    .collect::<Vec<String>>()
            };
            let kinds = |only| column(&|c| c.kind.as_str().to_owned(), only);
            let names = |only| column(&|c| c.name.clone(), only);
            let ids = |only| column(&|c| c.customer_id.as_str().to_owned(), only);
            let only = Some(Change::Entered);
            self.tx.execute(
                "INSERT INTO rule_members (tenant_id, kind, name, customer_id, since)
                 SELECT $1, u.kind, u.name, u.id, $5
                 FROM unnest($2::text[], $3::text[], $4::text[]) AS u (kind, name, id)",
                &[&self.tenant, &kinds(only), &names(only), &ids(only), &at],
            )?;
            let only = Some(Change::Exited);
            self.tx.execute(
                "DELETE FROM rule_members m
                 USING unnest($2::text[], $3::text[], $4::text[]) AS u (kind, name, id)
                 WHERE m.tenant_id = $1 AND m.kind = u.kind AND m.name = u.name
                   AND m.customer_id = u.id",
                &[&self.tenant, &kinds(only), &names(only), &ids(only)],
            )?;
            let all = column(&|c| c.change.as_str().to_owned(), None);
            self.tx.execute(
                "INSERT INTO rule_history (tenant_id, kind, name, customer_id, change, at, cause)
                 SELECT $1, u.kind, u.name, u.id, u.change, $6, $7
                 FROM unnest($2::text[], $3::text[], $4::text[], $5::text[])
                      WITH ORDINALITY AS u (kind, name, id, change, n)
                 ORDER BY u.n",
                &[
                    &self.tenant,
                    &kinds(None),
                    &names(None),
                    &ids(None),
                    &all,
                    &at,
                    &cause,
                ],
            )?;
        }
        crate::campaign::queue_steps(&mut self.tx, self.tenant, changes, at)?;
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        if self.writes {
            // Last: the counter's row stays locked (other writers of the tenant wait at
            // their own commit) only from here to the commit.
            crate::shared::bump_changes(&mut self.tx, self.tenant)?;
        }
        self.tx.commit()?;
        Ok(())
    }
}

/// A pool customer from a row of the profile columns, then channel, region, gender, the
/// tags as an array, the spend and whether they opted out.
fn pool_customer_from(r: &postgres::Row) -> Result<PoolCustomer> {
    let gender: Option<&str> = r.try_get(18)?;
    Ok(PoolCustomer {
        profile: profile_from(r)?,
        attributes: Attributes {
            channel: parse_channel(r.try_get(16)?)?,
            region: r.try_get(17)?,
            gender: gender
                .map(|g| Gender::parse(g).map_err(other))
                .transpose()?,
            opted_out: r.try_get(21)?,
        },
        tags: r.try_get(19)?,
        spend: Money::from_fen(r.try_get(20)?),
    })
}

/// The pool of a tenant's (`$1`) customers that `filter` keeps, their spend from `$2`
/// until `$3`, in id order; rows for [`pool_customer_from`]. Tags and spend by customer,
/// from the indexes: joined to grouped subqueries instead, a prepared statement's generic
/// plan can loop over the groups for every customer (minutes for a slice of ten thousand).
/// `filter` names the customers on both tables: PostgreSQL does not carry `= ANY` or a
/// range from one side of the join to the other, and with it on the profiles alone it
/// read the tenant's every customer for a few hundred touched ones (30 ms at 100,000).
fn by_customer(filter: &str) -> String {
    format!(
        "SELECT {PROFILE_COLUMNS}, c.channel, c.region, c.gender,
                coalesce((SELECT array_agg(t.tag::text) FROM customer_tags t
                          WHERE t.tenant_id = p.tenant_id
                            AND t.customer_id = p.customer_id), ARRAY[]::text[]),
                coalesce((SELECT sum(o.amount) FROM orders o
                          WHERE o.tenant_id = p.tenant_id
                            AND o.customer_id = p.customer_id AND o.status = 'paid'
                            AND o.ordered_at >= $2 AND o.ordered_at < $3), 0)::bigint,
                c.opted_out_at IS NOT NULL
         FROM profiles p
         JOIN customers c ON c.tenant_id = p.tenant_id AND c.customer_id = p.customer_id
         WHERE p.tenant_id = $1 AND {filter}
         ORDER BY p.customer_id"
    )
}

//! One customer's view and pages of customers, on SQLite.

use rusqlite::{OptionalExtension, params};

use siyu_core::{CustomerId, EventId, EventType, Money, NewEvent, NewOrder, OrderId};

use super::SqliteStore;
use crate::sql::{
    CUSTOMERS_PAGE, MEMBERSHIPS, PROFILE_COLUMNS, RowAccess, customer_line_from, member_from,
    order_status, parse_channel, parse_customer_id, profile_from,
};

use crate::{
    CustomerLine, CustomerView, CustomerViewStore, ManualTag, Result, StoreError, Tenant,
    from_micros, other,
};

impl CustomerViewStore for SqliteStore {
    fn customer_view(
        &mut self,
        tenant: &Tenant,
        id: &CustomerId,
        recent: usize,
    ) -> Result<Option<CustomerView>> {
        let (customer, opted_out_at) = match self.customer_row(tenant, id) {
            Ok(c) => c,
            Err(StoreError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let limit = i64::try_from(recent).unwrap_or(i64::MAX);
        let profile = self
            .conn
            .prepare_cached(&format!(
                "SELECT {PROFILE_COLUMNS} FROM profiles p
                 JOIN customers c ON c.tenant_id = p.tenant_id AND c.customer_id = p.customer_id
                 WHERE p.tenant_id = ?1 AND p.customer_id = ?2"
            ))?
            .query_row(params![tenant.id, id.as_str()], |r| Ok(profile_from(r)))
            .optional()?
            .transpose()?;
        let mut recent_orders = Vec::new();
        {
            let mut stmt = self.conn.prepare_cached(
                "SELECT order_id, customer_id, ordered_at, amount, discount, coupon_code, channel,
                        status
                 FROM orders WHERE tenant_id = ?1 AND customer_id = ?2
                 ORDER BY ordered_at DESC, order_id DESC LIMIT ?3",
            )?;
            let mut rows = stmt.query(params![tenant.id, id.as_str(), limit])?;
            while let Some(r) = rows.next()? {
                let order_id: String = r.get(0)?;
                recent_orders.push(NewOrder {
                    id: OrderId::parse(&order_id).map_err(other)?,
                    customer_id: parse_customer_id(r.text(1)?)?,
                    ordered_at: from_micros(r.get(2)?)?,
                    amount: Money::from_fen(r.get(3)?),
                    discount: Money::from_fen(r.get(4)?),
                    coupon_code: r.get(5)?,
                    channel: parse_channel(r.opt_text(6)?)?,
                    status: order_status(r.text(7)?)?,
                });
            }
        }
        let mut recent_events = Vec::new();
        {
            let mut stmt = self.conn.prepare_cached(
                "SELECT event_id, customer_id, type, occurred_at, properties
                 FROM events WHERE tenant_id = ?1 AND customer_id = ?2
                 ORDER BY occurred_at DESC, event_id DESC LIMIT ?3",
            )?;
            let mut rows = stmt.query(params![tenant.id, id.as_str(), limit])?;
            while let Some(r) = rows.next()? {
                let event_id: String = r.get(0)?;
                let kind: String = r.get(2)?;
                recent_events.push(NewEvent {
                    id: EventId::parse(&event_id).map_err(other)?,
                    customer_id: parse_customer_id(r.text(1)?)?,
                    kind: EventType::parse(&kind).map_err(other)?,
                    occurred_at: from_micros(r.get(3)?)?,
                    properties: r.get(4)?,
                });
            }
        }
        // Read without a transaction: an immediate one would wait for every writer.
        let manual_tags = self
            .conn
            .prepare_cached(
                "SELECT tag, source, since FROM customer_tags
                 WHERE tenant_id = ?1 AND customer_id = ?2 ORDER BY tag",
            )?
            .query_map(params![tenant.id, id.as_str()], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?
            .into_iter()
            .map(|(tag, source, since)| {
                Ok(ManualTag {
                    customer_id: id.clone(),
                    tag,
                    source,
                    since: from_micros(since)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut memberships = Vec::new();
        let mut stmt = self.conn.prepare_cached(MEMBERSHIPS)?;
        let mut rows = stmt.query(params![tenant.id, id.as_str()])?;
        while let Some(r) = rows.next()? {
            memberships.push(member_from(r)?);
        }
        drop(rows);
        drop(stmt);
        Ok(Some(CustomerView {
            customer,
            profile,
            recent_orders,
            recent_events,
            manual_tags,
            memberships,
            opted_out_at,
        }))
    }

    fn customers_page(
        &mut self,
        tenant: &Tenant,
        after: Option<&CustomerId>,
        limit: usize,
    ) -> Result<Vec<CustomerLine>> {
        let mut stmt = self.conn.prepare_cached(CUSTOMERS_PAGE)?;
        let after = after.map_or("", CustomerId::as_str);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut rows = stmt.query(params![tenant.id, after, limit])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(customer_line_from(r)?);
        }
        Ok(out)
    }
}

//! One customer's view and pages of customers, on PostgreSQL.

use siyu_core::{CustomerId, EventId, EventType, Money, NewEvent, NewOrder, OrderId};

use super::PgStore;
use crate::sql::{
    CUSTOMERS_PAGE, MEMBERSHIPS, PROFILE_COLUMNS, customer_line_from, member_from, order_status,
    parse_channel, parse_customer_id, pg, profile_from,
};
use crate::{
    CustomerLine, CustomerView, CustomerViewStore, ManualTag, Result, StoreError, Tenant,
    from_micros, other,
};

impl CustomerViewStore for PgStore {
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
        let key: [&(dyn postgres::types::ToSql + Sync); 2] = [&tenant.id, &id.as_str()];
        let profile = self
            .client
            .query_opt(
                &format!(
                    "SELECT {PROFILE_COLUMNS} FROM profiles p
                     JOIN customers c
                       ON c.tenant_id = p.tenant_id AND c.customer_id = p.customer_id
                     WHERE p.tenant_id = $1 AND p.customer_id = $2"
                ),
                &key,
            )?
            .as_ref()
            .map(profile_from)
            .transpose()?;
        let recent_orders = self
            .client
            .query(
                "SELECT order_id, customer_id, ordered_at, amount, discount, coupon_code, channel,
                        status
                 FROM orders WHERE tenant_id = $1 AND customer_id = $2
                 ORDER BY ordered_at DESC, order_id DESC LIMIT $3",
                &[&tenant.id, &id.as_str(), &limit],
            )?
            .iter()
            .map(|r| {
                Ok(NewOrder {
                    id: OrderId::parse(r.try_get(0)?).map_err(other)?,
                    customer_id: parse_customer_id(r.try_get(1)?)?,
                    ordered_at: from_micros(r.try_get(2)?)?,
                    amount: Money::from_fen(r.try_get(3)?),
                    discount: Money::from_fen(r.try_get(4)?),
                    coupon_code: r.try_get(5)?,
                    channel: parse_channel(r.try_get(6)?)?,
                    status: order_status(r.try_get(7)?)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let recent_events = self
            .client
            .query(
                "SELECT event_id, customer_id, type, occurred_at, properties
                 FROM events WHERE tenant_id = $1 AND customer_id = $2
                 ORDER BY occurred_at DESC, event_id DESC LIMIT $3",
                &[&tenant.id, &id.as_str(), &limit],
            )?
            .iter()
            .map(|r| {
                Ok(NewEvent {
                    id: EventId::parse(r.try_get(0)?).map_err(other)?,
                    customer_id: parse_customer_id(r.try_get(1)?)?,
                    kind: EventType::parse(r.try_get(2)?).map_err(other)?,
                    occurred_at: from_micros(r.try_get(3)?)?,
                    properties: r.try_get(4)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let manual_tags = self
            .client
            .query(
                "SELECT tag, source, since FROM customer_tags
                 WHERE tenant_id = $1 AND customer_id = $2 ORDER BY tag",
                &key,
            )?
            .iter()
            .map(|r| {
                Ok(ManualTag {
                    customer_id: id.clone(),
                    tag: r.try_get(0)?,
                    source: r.try_get(1)?,
                    since: from_micros(r.try_get(2)?)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let memberships = self
            .client
            .query(&pg(MEMBERSHIPS), &key)?
            .iter()
            .map(member_from)
            .collect::<Result<Vec<_>>>()?;
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
        let after = after.map_or("", CustomerId::as_str);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.client
            .query(&pg(CUSTOMERS_PAGE), &[&tenant.id, &after, &limit])?
            .iter()
            .map(customer_line_from)
            .collect()
    }
}

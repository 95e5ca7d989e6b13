//! One customer's view and pages of customers, on PostgreSQL.

use siyu_core::CustomerId;

use super::PgStore;
use crate::sql::{
    CUSTOMERS_PAGE, MEMBERSHIPS, RECENT_EVENTS, RECENT_ORDERS, TAGS_OF, customer_line_from,
    event_from, manual_tag_from, member_from, order_from, pg, profile_from, profile_of,
};
use crate::{CustomerLine, CustomerView, CustomerViewStore, Result, StoreError, Tenant};

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
        let recent_key: [&(dyn postgres::types::ToSql + Sync); 3] =
            [&tenant.id, &id.as_str(), &limit];
        let client = &mut self.client;
        let mut all = |sql: &str, params: &[&(dyn postgres::types::ToSql + Sync)]| {
            client.query(&pg(sql), params)
        };
        let profile = all(&profile_of(), &key)?
            .iter()
            .map(profile_from)
            .next()
            .transpose()?;
        let recent_orders = all(RECENT_ORDERS, &recent_key)?
            .iter()
            .map(order_from)
            .collect::<Result<Vec<_>>>()?;
        let recent_events = all(RECENT_EVENTS, &recent_key)?
            .iter()
            .map(event_from)
            .collect::<Result<Vec<_>>>()?;
        let manual_tags = all(TAGS_OF, &key)?
            .iter()
            .map(|r| manual_tag_from(id, r))
            .collect::<Result<Vec<_>>>()?;
        let memberships = all(MEMBERSHIPS, &key)?
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

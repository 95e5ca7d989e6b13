//! One customer's view and pages of customers, on SQLite.

use rusqlite::{Connection, Params, params};

use siyu_core::CustomerId;

use super::SqliteStore;
use crate::sql::{
    CUSTOMERS_PAGE, MEMBERSHIPS, RECENT_EVENTS, RECENT_ORDERS, TAGS_OF, customer_line_from,
    event_from, manual_tag_from, member_from, order_from, profile_from, profile_of,
};

use crate::{CustomerLine, CustomerView, CustomerViewStore, Result, StoreError, Tenant};

/// Every row `sql` gives, decoded.
fn all<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    decode: impl Fn(&rusqlite::Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(decode(r)?);
    }
    Ok(out)
}

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
        let (t, c) = (tenant.id, id.as_str());
        let conn = &self.conn;
        // Read without a transaction: an immediate one would wait for every writer.
        let profile = all(conn, &profile_of(), params![t, c], |r| profile_from(r))?.pop();
        let recent_orders = all(conn, RECENT_ORDERS, params![t, c, limit], |r| order_from(r))?;
        let recent_events = all(conn, RECENT_EVENTS, params![t, c, limit], |r| event_from(r))?;
        let manual_tags = all(conn, TAGS_OF, params![t, c], |r| manual_tag_from(id, r))?;
        let memberships = all(conn, MEMBERSHIPS, params![t, c], |r| member_from(r))?;
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

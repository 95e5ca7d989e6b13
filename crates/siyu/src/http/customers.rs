//! `GET /v1/customers/{id}` (the 360 view, with the model CLV) and `GET /v1/customers` (a
//! page of the pool).

use std::sync::Arc;

use anyhow::Context;
use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};

use siyu_core::access::Action;
use siyu_core::{CustomerId, Money, Timestamp};
use siyu_store::{Store, Tenant};

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, Code};
use crate::service::customers::{self, CustomerAnswer};

/// A customer id from a path or a query, or 400 `invalid_customer_id`.
pub(super) fn customer_id(text: &str) -> Result<CustomerId, ApiError> {
    CustomerId::parse(text)
        .map_err(|e| ApiError::new(Code::InvalidCustomerId, format!("customer id: {e}")))
}

/// 404 `customer_not_found` unless the tenant has the customer.
pub(super) fn require_customer(
    store: &mut dyn Store,
    tenant: &Tenant,
    id: &CustomerId,
) -> Result<(), ApiError> {
    // A plain read: a transaction would wait for the writers (on SQLite, for the lock).
    match store.customer(tenant, id) {
        Ok(_) => Ok(()),
        Err(siyu_store::StoreError::NotFound(_)) => Err(ApiError::new(
            Code::CustomerNotFound,
            format!("no customer {id}"),
        )),
        Err(e) => Err(anyhow::Error::from(e).context("reading customers").into()),
    }
}

pub async fn get_one(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<CustomerAnswer>, ApiError> {
    caller.require(Action::Read)?;
    let id = customer_id(&id)?;
    let tenant = caller.tenant.clone();
    let key = id.clone();
    let answer = state
        .with_store(move |store| Ok(customers::view(store, &tenant, &key)?))
        .await?
        .ok_or_else(|| ApiError::new(Code::CustomerNotFound, format!("no customer {id}")))?;
    Ok(Json(answer))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    after: Option<String>,
    limit: Option<usize>,
}

#[derive(Serialize)]
pub struct CustomerListLine {
    customer_id: String,
    channel: Option<String>,
    joined_at: Timestamp,
    orders: u32,
    net_spend: Money,
    last_order_at: Option<Timestamp>,
}

#[derive(Serialize)]
pub struct CustomerPage {
    customers: Vec<CustomerListLine>,
    /// Pass as `after` for the next page; none on the last.
    next: Option<String>,
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<CustomerPage>, ApiError> {
    caller.require(Action::Read)?;
    let Query(q) = query.map_err(|e| ApiError::new(Code::InvalidQuery, e.body_text()))?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::new(Code::InvalidQuery, "limit: from 1 to 500"));
    }
    let after = q.after.as_deref().map(customer_id).transpose()?;
    let tenant = caller.tenant.clone();
    let lines = state
        .with_store(move |store| {
            Ok(store
                .customers_page(&tenant, after.as_ref(), limit + 1)
                .context("reading customers")?)
        })
        .await?;
    let more = lines.len() > limit;
    let customers: Vec<CustomerListLine> = lines
        .into_iter()
        .take(limit)
        .map(|c| CustomerListLine {
            customer_id: c.id.to_string(),
            channel: c.channel.map(|ch| ch.as_str().to_owned()),
            joined_at: c.joined_at,
            orders: c.orders,
            net_spend: c.net_spend,
            last_order_at: c.last_order_at,
        })
        .collect();
    let next = more
        .then(|| customers.last().map(|c| c.customer_id.clone()))
        .flatten();
    Ok(Json(CustomerPage { customers, next }))
}

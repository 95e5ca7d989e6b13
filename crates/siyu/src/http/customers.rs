//! `GET /v1/customers/{id}` (the 360 view, with the model CLV) and `GET /v1/customers` (a
//! page of the pool).

use std::sync::Arc;

use anyhow::Context;
use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use siyu_core::access::Action;
use siyu_core::profile::Profile;
use siyu_core::segment::rules::RuleKind;
use siyu_core::{Customer, CustomerId, Money, Timestamp};
use siyu_store::{Store, Tenant};

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use crate::service::privacy::{EventLine, OrderLine, TagLine};

/// Orders and events shown in the 360 view.
const RECENT: usize = 20;

#[derive(Serialize)]
pub struct ProfileFigures {
    #[serde(flatten)]
    profile: Profile,
    aov: Option<Money>,
    mean_interval_days: Option<f64>,
    coupon_share: Option<f64>,
    has_left: bool,
}

#[derive(Serialize)]
pub struct CustomerAnswer {
    customer: Customer,
    profile: Option<ProfileFigures>,
    /// As of the last evaluation of segments and tags.
    stage: Option<String>,
    rfm: Option<String>,
    segments: Vec<String>,
    tags: Vec<TagLine>,
    recent_orders: Vec<OrderLine>,
    recent_events: Vec<EventLine>,
    /// The customer's prediction by the tenant's kept lifetime value model (spend and CLV
    /// in yuan, as `siyu clv predict`); none before a fit, or without a paid order by the
    /// model's calibration end.
    model_clv: Option<Value>,
    /// When the customer opted out of marketing, if they did.
    marketing_opt_out_at: Option<Timestamp>,
}

/// A customer id from a path or a query, or 400 `invalid_customer_id`.
pub(super) fn customer_id(text: &str) -> Result<CustomerId, ApiError> {
    CustomerId::parse(text)
        .map_err(|e| ApiError::bad_request("invalid_customer_id", format!("customer id: {e}")))
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
        Err(siyu_store::StoreError::NotFound(_)) => Err(ApiError::not_found(
            "customer_not_found",
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
    let (view, model_clv) = state
        .with_store(move |store| {
            let Some(view) = store
                .customer_view(&tenant, &key, RECENT)
                .context("reading a customer")?
            else {
                return Ok(None);
            };
            let model_clv = super::clv::model_clv(store, &tenant, &key)?;
            Ok(Some((view, model_clv)))
        })
        .await?
        .ok_or_else(|| ApiError::not_found("customer_not_found", format!("no customer {id}")))?;
    let mut tags: Vec<TagLine> = view
        .manual_tags
        .into_iter()
        .map(|t| TagLine {
            tag: t.tag,
            source: t.source,
            since: t.since,
        })
        .collect();
    let (mut stage, mut rfm, mut segments) = (None, None, Vec::new());
    for m in view.memberships {
        match m.kind {
            RuleKind::Segment => segments.push(m.name),
            RuleKind::Tag => tags.push(TagLine {
                source: format!("rule:{}", m.name),
                tag: m.name,
                since: m.since,
            }),
            RuleKind::Level => {
                if let Some(s) = m.name.strip_prefix("stage:") {
                    stage = Some(s.to_owned());
                } else if let Some(r) = m.name.strip_prefix("rfm:") {
                    rfm = Some(r.to_owned());
                }
                tags.push(TagLine {
                    tag: m.name,
                    source: "level".into(),
                    since: m.since,
                });
            }
        }
    }
    Ok(Json(CustomerAnswer {
        customer: view.customer,
        profile: view.profile.map(|p| ProfileFigures {
            aov: p.aov(),
            mean_interval_days: p.mean_interval_days(),
            coupon_share: p.coupon_share(),
            has_left: p.has_left(),
            profile: p,
        }),
        stage,
        rfm,
        segments,
        tags,
        recent_orders: view
            .recent_orders
            .into_iter()
            .map(OrderLine::from)
            .collect(),
        recent_events: view
            .recent_events
            .into_iter()
            .map(EventLine::from)
            .collect(),
        model_clv,
        marketing_opt_out_at: view.opted_out_at,
    }))
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
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "limit: from 1 to 500",
        ));
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

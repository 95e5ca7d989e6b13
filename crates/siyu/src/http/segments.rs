//! Segments and tags through the API: list, create (a rule with a mistake is refused with
//! its column), members by page, history, delete; a customer's manual tags.

use std::sync::Arc;

use anyhow::Context;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use siyu_core::access::Action;
use siyu_core::rule::Rule;
use siyu_core::segment::rules::{RuleKind, check_name};
use siyu_store::MemberFilter;

use super::AppState;
use super::auth::Caller;
use super::batch::json_body;
use super::customers::customer_id;
use super::error::ApiError;
use crate::service::segments;

fn bad(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::bad_request(code, message)
}

/// Whether the tenant has a segment of that name.
fn segment_exists(
    store: &mut dyn siyu_store::Store,
    tenant: &siyu_store::Tenant,
    name: &str,
) -> Result<bool, ApiError> {
    let mut tx = store.begin_pool(tenant).context("reading segments")?;
    let rules = tx.rules().context("reading segments")?;
    Ok(rules
        .iter()
        .any(|r| r.kind == RuleKind::Segment && r.name == name))
}

#[derive(Serialize)]
pub struct SegmentLine {
    name: String,
    rule: String,
    members: u64,
    created_by: String,
    created_at: siyu_core::Timestamp,
}

/// `GET /v1/segments`: every segment with its members now.
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<Vec<SegmentLine>>, ApiError> {
    caller.require(Action::Read)?;
    let tenant = caller.tenant.clone();
    let lines = state
        .with_store(move |store| {
            let (evaluation, rules) = segments::evaluate_now(store, &tenant, "segments looked at")?;
            Ok(rules
                .into_iter()
                .filter(|r| r.kind == RuleKind::Segment)
                .map(|r| SegmentLine {
                    members: evaluation
                        .selection(RuleKind::Segment, &r.name)
                        .map_or(0, |s| s.members.count() as u64),
                    name: r.name,
                    rule: r.rule,
                    created_by: r.created_by,
                    created_at: r.created_at,
                })
                .collect())
        })
        .await?;
    Ok(Json(lines))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSegment {
    name: String,
    rule: String,
}

/// `POST /v1/segments` `{"name", "rule"}`: 201 with the segment, 400
/// `invalid_segment_rule` naming the column, 409 `segment_exists`.
pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require(Action::Manage)?;
    let value = json_body(body, 64 * 1024).await?;
    let new: NewSegment =
        serde_json::from_value(value).map_err(|e| bad("invalid_segment", e.to_string()))?;
    check_name(&new.name).map_err(|e| bad("invalid_segment", format!("name: {e}")))?;
    let rule = Rule::parse(&new.rule).map_err(|e| {
        bad(
            "invalid_segment_rule",
            format!("the rule does not read: {e}"),
        )
    })?;
    let tenant = caller.tenant.clone();
    let by = format!("api:{}", caller.role);
    let name = new.name.clone();
    let members = state
        .with_store(move |store| {
            if segment_exists(store, &tenant, &name)? {
                return Err(ApiError::Conflict {
                    code: "segment_exists",
                    message: format!("there is a segment '{name}' already"),
                });
            }
            let e = segments::save_rule(
                store,
                &tenant,
                RuleKind::Segment,
                &name,
                &new.rule,
                &by,
                false,
                None,
            )?;
            Ok(e.selection(RuleKind::Segment, &name)
                .map_or(0, |s| s.members.count()))
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"name": new.name, "rule": rule.to_string(), "members": members})),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    after: Option<String>,
    limit: Option<usize>,
}

#[derive(Serialize)]
pub struct MembersPage {
    segment: String,
    as_of: jiff::civil::Date,
    total: usize,
    members: Vec<segments::SegmentMember>,
    next: Option<String>,
}

/// `GET /v1/segments/{name}/members?after=&limit=`: members now, by customer id.
pub async fn members(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<MembersPage>, ApiError> {
    caller.require(Action::Read)?;
    let Query(q) = query.map_err(|e| bad("invalid_query", e.body_text()))?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1_000).contains(&limit) {
        return Err(bad("invalid_query", "limit: from 1 to 1000"));
    }
    let tenant = caller.tenant.clone();
    let segment = name.clone();
    let now = state
        .with_store(move |store| {
            if !segment_exists(store, &tenant, &segment)? {
                return Err(ApiError::not_found(
                    "segment_not_found",
                    format!("no segment '{segment}'"),
                ));
            }
            Ok(segments::segment_now(store, &tenant, &segment)?)
        })
        .await?;
    let total = now.members.len();
    let mut members: Vec<_> = now
        .members
        .into_iter()
        .filter(|m| {
            q.after
                .as_deref()
                .is_none_or(|a| m.customer_id.as_str() > a)
        })
        .take(limit + 1)
        .collect();
    let next = (members.len() > limit).then(|| members[limit - 1].customer_id.clone());
    members.truncate(limit);
    Ok(Json(MembersPage {
        segment: name,
        as_of: now.as_of,
        total,
        members,
        next,
    }))
}

#[derive(Serialize)]
pub struct HistoryLine {
    at: siyu_core::Timestamp,
    customer_id: String,
    change: &'static str,
    kind: &'static str,
    name: String,
    cause: String,
}

/// `GET /v1/segments/{name}/history`: entries and exits, newest first (at most 1,000).
pub async fn history(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Vec<HistoryLine>>, ApiError> {
    caller.require(Action::Read)?;
    let tenant = caller.tenant.clone();
    let records = state
        .with_store(move |store| {
            Ok(segments::history(
                store,
                &tenant,
                MemberFilter::Rule(RuleKind::Segment, &name),
                1_000,
            )?)
        })
        .await?;
    Ok(Json(
        records
            .into_iter()
            .map(|r| HistoryLine {
                at: r.at,
                customer_id: r.customer_id.to_string(),
                change: r.change.as_str(),
                kind: r.kind.as_str(),
                name: r.name,
                cause: r.cause,
            })
            .collect(),
    ))
}

/// `DELETE /v1/segments/{name}`: 204, or 404 `segment_not_found`.
pub async fn delete(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Action::Manage)?;
    let tenant = caller.tenant.clone();
    let deleted = state
        .with_store(move |store| {
            Ok(segments::delete_rule(
                store,
                &tenant,
                RuleKind::Segment,
                &name,
            )?)
        })
        .await?;
    if deleted {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("segment_not_found", "no such segment"))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTag {
    tag: String,
}

/// `POST /v1/customers/{id}/tags` `{"tag"}`: tags the customer by hand (source `manual:api`).
pub async fn add_tag(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Body,
) -> Result<Json<Value>, ApiError> {
    caller.require(Action::Manage)?;
    let id = customer_id(&id)?;
    let value = json_body(body, 16 * 1024).await?;
    let new: NewTag =
        serde_json::from_value(value).map_err(|e| bad("invalid_tag", e.to_string()))?;
    check_name(&new.tag).map_err(|e| bad("invalid_tag", format!("tag: {e}")))?;
    let tenant = caller.tenant.clone();
    let by = format!("api:{}", caller.role);
    let added = state
        .with_store(move |store| {
            let mut tx = store.begin_pool(&tenant).context("reading customers")?;
            let known = tx.has_customer(&id).context("reading customers")?;
            drop(tx);
            if !known {
                return Err(ApiError::not_found(
                    "customer_not_found",
                    format!("no customer {id}"),
                ));
            }
            Ok(segments::add_tag(store, &tenant, &id, &new.tag, &by, None)?)
        })
        .await?;
    Ok(Json(serde_json::json!({"added": added})))
}

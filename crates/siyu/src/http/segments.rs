//! Segments through the API: list, create (a rule with a mistake is refused with its
//! column), members by page or all as CSV, history, delete.

use std::sync::Arc;

use anyhow::Context;
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use siyu_core::CustomerId;
use siyu_core::access::Action;
use siyu_core::rule::Rule;
use siyu_core::segment::rules::{Purpose, RuleKind, check_name};
use siyu_store::MemberFilter;

use super::AppState;
use super::auth::Caller;
use super::batch::json_body;
use super::error::{ApiError, Code};
use crate::service::segments;

fn bad(code: Code, message: impl Into<String>) -> ApiError {
    ApiError::new(code, message)
}

/// Whether the tenant has a segment (or tag rule) of that name.
pub(super) fn rule_exists(
    store: &mut dyn siyu_store::Store,
    tenant: &siyu_store::Tenant,
    kind: RuleKind,
    name: &str,
) -> Result<bool, ApiError> {
    let mut tx = store
        .begin_pool(tenant)
        .context("reading the saved rules")?;
    let rules = tx.rules().context("reading the saved rules")?;
    Ok(rules.iter().any(|r| r.kind == kind && r.name == name))
}

#[derive(Serialize)]
pub struct SegmentLine {
    name: String,
    rule: String,
    purpose: Purpose,
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
            let (rules, evaluation) = segments::current(store, &tenant)?;
            Ok(rules
                .into_iter()
                .filter(|r| r.kind == RuleKind::Segment)
                .map(|r| SegmentLine {
                    members: evaluation.members(RuleKind::Segment, &r.name),
                    name: r.name,
                    rule: r.rule,
                    purpose: r.purpose,
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
    /// `marketing` (default) or `analysis`.
    #[serde(default)]
    purpose: Purpose,
}

/// `POST /v1/segments` `{"name", "rule", "purpose"?}`: 201 with the segment, 400
/// `invalid_segment_rule` naming the column, 409 `segment_exists`.
pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require(Action::Manage)?;
    let value = json_body(body, 64 * 1024).await?;
    let new: NewSegment =
        serde_json::from_value(value).map_err(|e| bad(Code::InvalidSegment, e.to_string()))?;
    check_name(&new.name).map_err(|e| bad(Code::InvalidSegment, format!("name: {e}")))?;
    let rule = Rule::parse(&new.rule).map_err(|e| {
        bad(
            Code::InvalidSegmentRule,
            format!("the rule does not read: {e}"),
        )
    })?;
    let tenant = caller.tenant.clone();
    let by = format!("api:{}", caller.role);
    let name = new.name.clone();
    let members = state
        .with_store(move |store| {
            if rule_exists(store, &tenant, RuleKind::Segment, &name)? {
                return Err(ApiError::new(
                    Code::SegmentExists,
                    format!("there is a segment '{name}' already"),
                ));
            }
            let rule = segments::NewRule::segment(&name, &new.rule, new.purpose);
            let e = segments::save_rule(store, &tenant, rule, &by, false).map_err(|e| match e {
                // A segment asks no tag rule's members of its own, so only a rule that
                // fails on the pool gets here.
                segments::RulesError::Refused(e) => bad(Code::InvalidSegmentRule, e.to_string()),
                segments::RulesError::Other(e) => ApiError::Internal(e),
            })?;
            Ok(e.members(RuleKind::Segment, &name))
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({
            "name": new.name,
            "rule": rule.to_string(),
            "purpose": new.purpose,
            "members": members
        })),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembersQuery {
    after: Option<String>,
    limit: Option<usize>,
    /// `json` (pages, the default) or `csv` (every member at once).
    format: Option<String>,
}

#[derive(Serialize)]
pub struct MembersPage {
    segment: String,
    as_of: jiff::civil::Date,
    total: u64,
    members: Vec<segments::SegmentMember>,
    next: Option<String>,
}

/// Whether the members go out as CSV: `format=csv`, or no `format` and an `Accept` that
/// names text/csv.
fn wants_csv(format: Option<&str>, headers: &HeaderMap) -> Result<bool, ApiError> {
    match format {
        Some("csv") => Ok(true),
        Some("json") => Ok(false),
        Some(other) => Err(bad(
            Code::InvalidQuery,
            format!("format: '{other}' is not json or csv"),
        )),
        None => Ok(headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|kind| {
                kind.split(';')
                    .next()
                    .is_some_and(|k| k.trim().eq_ignore_ascii_case("text/csv"))
            })),
    }
}

/// `GET /v1/segments/{name}/members?after=&limit=`: members now, by customer id; with
/// `format=csv` (or `Accept: text/csv`) every member as CSV, the columns of
/// `siyu segment members NAME --format csv`.
pub async fn members(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    query: Result<Query<MembersQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require(Action::Read)?;
    let Query(q) = query.map_err(|e| bad(Code::InvalidQuery, e.body_text()))?;
    let csv = wants_csv(q.format.as_deref(), &headers)?;
    if csv && (q.after.is_some() || q.limit.is_some()) {
        return Err(bad(
            Code::InvalidQuery,
            "format=csv gives every member; it takes no after or limit",
        ));
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=1_000).contains(&limit) {
        return Err(bad(Code::InvalidQuery, "limit: from 1 to 1000"));
    }
    let after = q
        .after
        .as_deref()
        .map(CustomerId::parse)
        .transpose()
        .map_err(|e| bad(Code::InvalidQuery, format!("after: {e}")))?;
    let tenant = caller.tenant.clone();
    let segment = name.clone();
    let now = state
        .with_store(move |store| {
            if !rule_exists(store, &tenant, RuleKind::Segment, &segment)? {
                return Err(ApiError::new(
                    Code::SegmentNotFound,
                    format!("no segment '{segment}'"),
                ));
            }
            // One more than the page, to know whether another follows.
            let page = (!csv).then_some(segments::Page {
                after: after.as_ref(),
                limit: limit + 1,
            });
            Ok(segments::segment_now(store, &tenant, &segment, page)?)
        })
        .await?;
    if csv {
        return Ok((
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            Body::from_stream(CsvRows {
                members: now.members,
                next: 0,
            }),
        )
            .into_response());
    }
    let total = now.total;
    let mut members = now.members;
    let next = (members.len() > limit).then(|| members[limit - 1].customer_id.clone());
    members.truncate(limit);
    Ok(Json(MembersPage {
        segment: name,
        as_of: now.as_of,
        total,
        members,
        next,
    })
    .into_response())
}

/// Members written as CSV a run of rows at a time, the header with the first run, so an
/// export of any size never sits in memory as one text.
struct CsvRows {
    members: Vec<segments::SegmentMember>,
    next: usize,
}

/// Rows per chunk of a CSV export.
const CSV_ROWS: usize = 1_000;

impl futures_core::Stream for CsvRows {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let start = this.next;
        // The header goes out even when there are no members.
        if start > 0 && start >= this.members.len() {
            return std::task::Poll::Ready(None);
        }
        let end = (start + CSV_ROWS).min(this.members.len());
        this.next = end.max(1);
        let mut out = Vec::with_capacity(64 * (end - start + 1));
        let written = segments::write_members_csv(&mut out, &this.members[start..end], start == 0)
            .map(|()| Bytes::from(out))
            .map_err(std::io::Error::other);
        std::task::Poll::Ready(Some(written))
    }
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
        Err(ApiError::new(Code::SegmentNotFound, "no such segment"))
    }
}

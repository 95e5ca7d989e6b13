//! `GET /v1/reports/{name}`: every report of the CLI, the same numbers, as JSON.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::Value;

use siyu_core::access::Action;
use siyu_core::metrics::gmv::parse_what_if;
use siyu_core::metrics::shop::{Period, PeriodError};
use siyu_core::{TenantZone, Timestamp};
use siyu_store::Tenant;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, Code};
use crate::service::reports::{self, By};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    from: Option<String>,
    to: Option<String>,
    compare_from: Option<String>,
    compare_to: Option<String>,
    as_of: Option<String>,
    what_if: Option<String>,
    by: Option<String>,
    months: Option<u32>,
    top: Option<usize>,
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(Code::InvalidQuery, message)
}

impl From<PeriodError> for ApiError {
    fn from(e: PeriodError) -> ApiError {
        bad(e.to_string())
    }
}

fn day(text: &str, what: &str) -> Result<jiff::civil::Date, ApiError> {
    TenantZone::parse_day(text).map_err(|e| bad(format!("{what}: {e}")))
}

fn today(tenant: &Tenant) -> jiff::civil::Date {
    tenant.zone.day_of(Timestamp::now())
}

/// `from`..`to`, by default the `days` days to today.
fn period(q: &ReportQuery, tenant: &Tenant, days: i64) -> Result<Period, ApiError> {
    let to =
        q.to.as_deref()
            .map(|t| day(t, "to"))
            .transpose()?
            .unwrap_or_else(|| today(tenant));
    let from = match q.from.as_deref() {
        Some(f) => day(f, "from")?,
        None => to
            .checked_sub(jiff::Span::new().days(days - 1))
            .map_err(|e| bad(format!("from: {e}")))?,
    };
    Ok(Period::new(from, to)?)
}

fn by(q: &ReportQuery) -> Result<Option<By>, ApiError> {
    q.by.as_deref()
        .map(|b| match b {
            "channel" => Ok(By::Channel),
            "segment" => Ok(By::Segment),
            "stage" => Ok(By::Stage),
            other => Err(bad(format!(
                "by: '{other}' is not channel, segment or stage"
            ))),
        })
        .transpose()
}

fn json(value: impl serde::Serialize) -> Result<Value, ApiError> {
    serde_json::to_value(value).map_err(|e| ApiError::Internal(e.into()))
}

pub async fn report(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
    query: Result<Query<ReportQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Action::Read)?;
    let Query(q) = query.map_err(|e| bad(e.body_text()))?;
    let tenant = caller.tenant.clone();
    let as_of = q.as_of.as_deref().map(|d| day(d, "as_of")).transpose()?;
    let value = match name.as_str() {
        "overview" => {
            state
                .with_store(move |store| json(crate::service::overview::overview(store, &tenant)?))
                .await?
        }
        "gmv" => {
            let p = period(&q, &tenant, 30)?;
            let compare = match (&q.compare_from, &q.compare_to) {
                (Some(f), Some(t)) => {
                    Some(Period::new(day(f, "compare_from")?, day(t, "compare_to")?)?)
                }
                (None, None) => None,
                _ => return Err(bad("compare_from and compare_to go together")),
            };
            let moves = q
                .what_if
                .as_deref()
                .map(parse_what_if)
                .transpose()
                .map_err(|e| bad(format!("what_if: {e}")))?;
            let by = by(&q)?;
            state
                .with_store(move |store| {
                    json(reports::gmv(
                        store,
                        &tenant,
                        p,
                        compare,
                        moves.as_ref(),
                        by,
                    )?)
                })
                .await?
        }
        "cohorts" => {
            let months = q.months.unwrap_or(12).min(120);
            state
                .with_store(move |store| {
                    let as_of = as_of.unwrap_or_else(|| today(&tenant));
                    json(reports::cohort_report(store, &tenant, as_of, months)?)
                })
                .await?
        }
        "funnel" => {
            state
                .with_store(move |store| {
                    let as_of = as_of.unwrap_or_else(|| today(&tenant));
                    json(reports::funnel_report(store, &tenant, as_of)?)
                })
                .await?
        }
        "pareto" => {
            let to =
                q.to.as_deref()
                    .map(|t| day(t, "to"))
                    .transpose()?
                    .unwrap_or_else(|| today(&tenant));
            let p = q
                .from
                .as_deref()
                .map(|f| day(f, "from").and_then(|f| Ok(Period::new(f, to)?)))
                .transpose()?;
            state
                .with_store(move |store| json(reports::pareto_report(store, &tenant, p, to)?))
                .await?
        }
        "channels" => {
            let p = period(&q, &tenant, 365)?;
            state
                .with_store(move |store| json(reports::channel_report(store, &tenant, p)?))
                .await?
        }
        "referrals" => {
            let top = q.top.unwrap_or(10).min(1_000);
            state
                .with_store(move |store| {
                    let as_of = as_of.unwrap_or_else(|| today(&tenant));
                    json(reports::referral_report(store, &tenant, as_of, top)?)
                })
                .await?
        }
        "clv" => {
            let by = by(&q)?;
            state
                .with_store(move |store| {
                    let as_of = as_of.unwrap_or_else(|| today(&tenant));
                    json(reports::formula_clv_report(store, &tenant, as_of, by)?)
                })
                .await?
        }
        other => {
            return Err(ApiError::new(
                Code::ReportNotFound,
                format!(
                    "no report '{other}' (overview, gmv, cohorts, funnel, pareto, channels, referrals, clv)"
                ),
            ));
        }
    };
    Ok(Json(value))
}

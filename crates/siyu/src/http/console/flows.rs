//! The console's lifecycle flows: how many customers moved from one stage to another over a
//! period (the last 30 days by default), from the stages' recorded history.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;

use siyu_core::access::Action;
use siyu_core::{TenantZone, Timestamp};

use super::{Operator, Refusal, page_or_refused, views};
use crate::http::AppState;
use crate::service::flows;

#[derive(Debug, Deserialize)]
pub struct FlowsQuery {
    from: Option<String>,
    to: Option<String>,
}

fn day(text: Option<&str>, default: jiff::civil::Date) -> Result<jiff::civil::Date, String> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(default),
        Some(t) => TenantZone::parse_day(t).map_err(|e| format!("{t}: {e}")),
    }
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    op: Operator,
    Query(q): Query<FlowsQuery>,
) -> Result<Response, Refusal> {
    op.require(Action::Read)?;
    let tenant = op.session.user.tenant.clone();
    let today = tenant.zone.day_of(Timestamp::now());
    let last_30 = today
        .checked_sub(jiff::Span::new().days(29))
        .unwrap_or(today);
    let asked =
        day(q.to.as_deref(), today).and_then(|to| Ok((day(q.from.as_deref(), last_30)?, to)));
    let (from, to, mut problem) = match asked {
        Ok((from, to)) => (from, to, None),
        Err(problem) => (last_30, today, Some(problem)),
    };
    let read = state
        .with_store(move |store| Ok(flows::stage_flows(store, &tenant, from, to)?))
        .await?;
    let shown = match read {
        Ok(f) => f,
        Err(e) => {
            problem = Some(e.to_string());
            let tenant = op.session.user.tenant.clone();
            state
                .with_store(move |store| {
                    Ok(flows::stage_flows(store, &tenant, last_30, today)?
                        .map_err(anyhow::Error::from)?)
                })
                .await?
        }
    };
    Ok(page_or_refused(
        views::flows(&op, &shown, problem.as_deref()),
        problem.is_some(),
    ))
}

//! The console's RFM pages beyond the grid: the customers of one class, a page at a time or
//! all as CSV (as `siyu rfm --format csv --quintiles`, that class's lines). The grid and the
//! quintile view are the RFM page itself.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use siyu_core::Timestamp;
use siyu_core::access::Action;
use siyu_core::segment::rfm::{Rfm, RfmClass, RfmWindow};

use super::{Operator, Refusal, page, views};
use crate::http::AppState;

/// Customers shown per page.
const PAGE: usize = 100;

/// The tenant's RFM as of today over all history (as `siyu rfm`).
async fn rfm_today(state: &Arc<AppState>, op: &Operator) -> Result<Rfm, Refusal> {
    let tenant = op.session.user.tenant.clone();
    Ok(state
        .with_store(move |store| {
            let today = tenant.zone.day_of(Timestamp::now());
            let window = RfmWindow::new(today, None);
            Ok(crate::service::rfm::from_store(store, &tenant, window)?)
        })
        .await?)
}

fn class_of(name: &str) -> Option<RfmClass> {
    RfmClass::parse(name)
}

#[derive(Debug, Deserialize)]
pub struct ClassQuery {
    after: Option<String>,
}

/// The customers of one class, by customer id, a page at a time.
pub async fn class(
    State(state): State<Arc<AppState>>,
    op: Operator,
    Path(name): Path<String>,
    Query(q): Query<ClassQuery>,
) -> Result<Response, Refusal> {
    op.require(Action::Read)?;
    let Some(class) = class_of(&name) else {
        let page = Html(views::not_found(&op).into_string());
        return Ok((StatusCode::NOT_FOUND, page).into_response());
    };
    let mut rfm = rfm_today(&state, &op).await?;
    let total = rfm
        .classes
        .iter()
        .find(|l| l.class == class)
        .map_or(0, |l| l.customers);
    let after = q.after.unwrap_or_default();
    rfm.customers
        .retain(|c| c.class == class && c.customer_id.as_str() > after.as_str());
    let more = rfm.customers.len() > PAGE;
    rfm.customers.truncate(PAGE);
    Ok(page(views::rfm_class(&op, class, &rfm, total, more)))
}

/// Every customer of one class as CSV, with the quintile scores (the lines of
/// `siyu rfm --format csv --quintiles` of that class).
pub async fn class_csv(
    State(state): State<Arc<AppState>>,
    op: Operator,
    Path(name): Path<String>,
) -> Result<Response, Refusal> {
    op.require(Action::Read)?;
    let Some(class) = class_of(&name) else {
        return Ok(StatusCode::NOT_FOUND.into_response());
    };
    let mut rfm = rfm_today(&state, &op).await?;
    rfm.customers.retain(|c| c.class == class);
    let mut out = Vec::new();
    crate::cli::rfm::write_csv(&mut out, &rfm, true)
        .map_err(|e| crate::http::error::ApiError::Internal(e.into()))?;
    super::segments::csv_download(&format!("rfm-{}", class.name()), out)
}

//! The console's customers: a search by id, phone or name (a list of the pool when
//! nothing is asked), and each customer's 360 view — attributes with the phone masked,
//! stage, RFM class, segments, tags with where each came from, profile figures, the
//! model's lifetime value, orders and events. Operators add and remove manual tags and
//! record an opt-out; admins export (audited, as the API's) and erase with confirmation.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use siyu_core::CustomerId;
use siyu_core::access::Action;

use super::views::{self, path_part};
use super::{Operator, Refusal, page};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::service::{customers, privacy, segments};

/// Customers listed per page, and found by a search at most.
const PAGE: usize = 50;
/// The longest search taken.
const MAX_QUERY_CHARS: usize = 100;

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    after: Option<String>,
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    op: Operator,
    Query(query): Query<ListQuery>,
) -> Result<Response, Refusal> {
    op.require(Action::Read)?;
    let tenant = op.session.user.tenant.clone();
    let q: String = query
        .q
        .unwrap_or_default()
        .trim()
        .chars()
        .take(MAX_QUERY_CHARS)
        .collect();
    let after = match query.after.as_deref().map(CustomerId::parse).transpose() {
        Ok(a) => a,
        Err(_) => return Ok(StatusCode::BAD_REQUEST.into_response()),
    };
    // A phone is kept normalised (digits, an optional +).
    let asked = siyu_core::customer::normalise_phone(&q).unwrap_or_else(|| q.clone());
    let found = state
        .with_store(move |store| {
            if asked.is_empty() {
                return Ok(store
                    .customers_page(&tenant, after.as_ref(), PAGE + 1)
                    .map_err(anyhow::Error::from)?);
            }
            Ok(store
                .search_customers(&tenant, &asked, PAGE + 1)
                .map_err(anyhow::Error::from)?)
        })
        .await?;
    let mut lines = found;
    // One customer found by an id: their page.
    if !q.is_empty() && lines.len() == 1 && lines[0].id.as_str() == q {
        let to = format!("/console/customers/{}", path_part(lines[0].id.as_str()));
        return Ok(Redirect::to(&to).into_response());
    }
    let more = lines.len() > PAGE;
    lines.truncate(PAGE);
    Ok(page(views::customers(&op, &q, &lines, more)))
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    op: Operator,
    Path(id): Path<String>,
) -> Result<Response, Refusal> {
    op.require(Action::Read)?;
    let Ok(id) = CustomerId::parse(&id) else {
        return Ok(not_found(&op));
    };
    let tenant = op.session.user.tenant.clone();
    let answer = state
        .with_store(move |store| Ok(customers::view(store, &tenant, &id)?))
        .await?;
    match answer {
        Some(answer) => Ok(page(views::customer(&op, &answer, None))),
        None => Ok(not_found(&op)),
    }
}

/// An admin's reveal of the customer's phone: written to the audit log (`view_phone`),
/// then the customer's page with the phone whole. Other roles are refused.
pub async fn reveal_phone(
    State(state): State<Arc<AppState>>,
    op: Operator,
    Path(id): Path<String>,
    Form(form): Form<super::CsrfForm>,
) -> Result<Response, Refusal> {
    op.check_form(&form.csrf)?;
    op.require(Action::Administer)?;
    let Ok(id) = CustomerId::parse(&id) else {
        return Ok(not_found(&op));
    };
    let tenant = op.session.user.tenant.clone();
    let actor = format!("console:{}", op.session.user.name);
    let answer = state
        .with_store(move |store| {
            if !privacy::record_phone_view(store, &tenant, &id, &actor)? {
                return Ok(None);
            }
            Ok(customers::view(store, &tenant, &id)?)
        })
        .await?;
    match answer {
        Some(answer) => Ok(page(views::customer_with(&op, &answer, None, true))),
        None => Ok(not_found(&op)),
    }
}

fn not_found(op: &Operator) -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(views::not_found(op).into_string()),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
pub struct TagForm {
    #[serde(default)]
    tag: String,
    #[serde(default)]
    csrf: String,
}

/// Adds a manual tag (operators and admins).
pub async fn add_tag(
    State(state): State<Arc<AppState>>,
    op: Operator,
    Path(id): Path<String>,
    Form(form): Form<TagForm>,
) -> Result<Response, Refusal> {
    op.check_form(&form.csrf)?;
    op.require(Action::Manage)?;
    let Ok(customer) = CustomerId::parse(&id) else {
        return Ok(not_found(&op));
    };
    if let Err(e) = segments::check_tag_name(form.tag.trim()) {
        return problem(&state, &op, customer, format!("tag: {e}")).await;
    }
    let tenant = op.session.user.tenant.clone();
    let by = format!("console:{}", op.session.user.name);
    let who = customer.clone();
    let tag = form.tag.trim().to_owned();
    state
        .with_store(move |store| Ok(segments::add_tag(store, &tenant, &who, &tag, &by, None)?))
        .await?;
    Ok(back_to(&customer))
}

/// Removes a manual tag (operators and admins).
pub async fn remove_tag(
    State(state): State<Arc<AppState>>,
    op: Operator,
    Path(id): Path<String>,
    Form(form): Form<TagForm>,
) -> Result<Response, Refusal> {
    op.check_form(&form.csrf)?;
    op.require(Action::Manage)?;
    let Ok(customer) = CustomerId::parse(&id) else {
        return Ok(not_found(&op));
    };
    let tenant = op.session.user.tenant.clone();
    let by = format!("console:{}", op.session.user.name);
    let who = customer.clone();
    let tag = form.tag.clone();
    state
        .with_store(move |store| Ok(segments::remove_tag(store, &tenant, &who, &tag, &by)?))
        .await?;
    Ok(back_to(&customer))
}

#[derive(Debug, Deserialize)]
pub struct OptOutForm {
    #[serde(default)]
    opted_out: String,
    #[serde(default)]
    csrf: String,
}

/// Records or withdraws a marketing opt-out (operators and admins, as the API's).
pub async fn opt_out(
    State(state): State<Arc<AppState>>,
    op: Operator,
    Path(id): Path<String>,
    Form(form): Form<OptOutForm>,
) -> Result<Response, Refusal> {
    op.check_form(&form.csrf)?;
    op.require(Action::Manage)?;
    let Ok(customer) = CustomerId::parse(&id) else {
        return Ok(not_found(&op));
    };
    let tenant = op.session.user.tenant.clone();
    let actor = format!("console:{}", op.session.user.name);
    let who = customer.clone();
    let out = form.opted_out == "true";
    state
        .with_store(move |store| {
            privacy::set_opt_out(store, &tenant, &who, out, &actor)
                .map_err(|e| ApiError::Internal(anyhow::anyhow!("{e}")))
        })
        .await?;
    Ok(back_to(&customer))
}

/// Everything held on the customer, as JSON to download (admins; audited).
pub async fn export(
    State(state): State<Arc<AppState>>,
    op: Operator,
    Path(id): Path<String>,
    Form(form): Form<super::CsrfForm>,
) -> Result<Response, Refusal> {
    op.check_form(&form.csrf)?;
    op.require(Action::Administer)?;
    let Ok(customer) = CustomerId::parse(&id) else {
        return Ok(not_found(&op));
    };
    let tenant = op.session.user.tenant.clone();
    let actor = format!("console:{}", op.session.user.name);
    let who = customer.clone();
    let data = state
        .with_store(move |store| {
            privacy::export(store, &tenant, &who, &actor)
                .map_err(|e| ApiError::Internal(anyhow::anyhow!("{e}")))
        })
        .await?;
    let json = serde_json::to_vec_pretty(&data).map_err(|e| ApiError::Internal(e.into()))?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "application/json; charset=utf-8".to_owned(),
            ),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"customer-export.json\"".to_owned(),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        json,
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
pub struct EraseForm {
    /// The customer's id typed again, to confirm.
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    csrf: String,
}

/// Erases the customer (admins), once their id is typed again to confirm.
pub async fn erase(
    State(state): State<Arc<AppState>>,
    op: Operator,
    Path(id): Path<String>,
    Form(form): Form<EraseForm>,
) -> Result<Response, Refusal> {
    op.check_form(&form.csrf)?;
    op.require(Action::Administer)?;
    let Ok(customer) = CustomerId::parse(&id) else {
        return Ok(not_found(&op));
    };
    if form.confirm.trim() != customer.as_str() {
        let text = op.lang.t(super::text::Key::EraseConfirmMismatch).to_owned();
        return problem(&state, &op, customer, text).await;
    }
    let tenant = op.session.user.tenant.clone();
    let actor = format!("console:{}", op.session.user.name);
    state
        .with_store(move |store| {
            privacy::erase(store, &tenant, &customer, &actor)
                .map_err(|e| ApiError::Internal(anyhow::anyhow!("{e}")))
        })
        .await?;
    Ok(Redirect::to("/console/customers?erased=1").into_response())
}

fn back_to(customer: &CustomerId) -> Response {
    Redirect::to(&format!(
        "/console/customers/{}",
        path_part(customer.as_str())
    ))
    .into_response()
}

/// The customer's page again, with what was wrong with the form (400).
async fn problem(
    state: &Arc<AppState>,
    op: &Operator,
    customer: CustomerId,
    problem: String,
) -> Result<Response, Refusal> {
    let tenant = op.session.user.tenant.clone();
    let answer = state
        .with_store(move |store| Ok(customers::view(store, &tenant, &customer)?))
        .await?;
    let Some(answer) = answer else {
        return Ok(not_found(op));
    };
    Ok((
        StatusCode::BAD_REQUEST,
        Html(views::customer(op, &answer, Some(&problem)).into_string()),
    )
        .into_response())
}

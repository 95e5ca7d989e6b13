//! A person's data on request (PIPL) through the API: export, erase, marketing opt-out,
//! and the audit log of those. Export, erase and the audit log are for admin tokens; the
//! opt-out for operators too.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use siyu_core::access::Action;

use super::AppState;
use super::auth::Caller;
use super::customers::customer_id;
use super::error::{ApiError, Code};
use crate::service::privacy::{self, AuditLine, Erasure, PersonalData, PrivacyError};

impl From<PrivacyError> for ApiError {
    /// A privacy action's failure as the API answers it.
    fn from(e: PrivacyError) -> ApiError {
        match e {
            PrivacyError::NotFound(id) => {
                ApiError::new(Code::CustomerNotFound, format!("no customer {id}"))
            }
            e @ PrivacyError::Erased(_) => ApiError::new(Code::CustomerErased, e.to_string()),
            e @ PrivacyError::Remains(_) => ApiError::new(Code::ErasedRemains, e.to_string()),
            PrivacyError::Other(e) => ApiError::Internal(e),
        }
    }
}

/// Who acted, for the audit log: `api:ROLE:TOKEN` (the token's hash prefix, as
/// `siyu token list` shows it).
fn actor(caller: &Caller) -> String {
    format!("api:{}:{}", caller.role, caller.token)
}

/// `GET /v1/customers/{id}/export`: everything held on the customer.
pub async fn export(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<PersonalData>, ApiError> {
    caller.require(Action::Administer)?;
    let id = customer_id(&id)?;
    let (tenant, by) = (caller.tenant.clone(), actor(&caller));
    let data = state
        .with_store(move |store| privacy::export(store, &tenant, &id, &by).map_err(ApiError::from))
        .await?;
    Ok(Json(data))
}

/// `DELETE /v1/customers/{id}`: erases the customer's personal data and events, keeps the
/// orders de-linked and refuses the id from now on.
pub async fn erase(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Erasure>, ApiError> {
    caller.require(Action::Administer)?;
    let id = customer_id(&id)?;
    let (tenant, by) = (caller.tenant.clone(), actor(&caller));
    let erasure = state
        .with_store(move |store| privacy::erase(store, &tenant, &id, &by).map_err(ApiError::from))
        .await?;
    Ok(Json(erasure))
}

async fn opt(
    state: Arc<AppState>,
    caller: Caller,
    id: String,
    opted_out: bool,
) -> Result<Json<Value>, ApiError> {
    caller.require(Action::Manage)?;
    let id = customer_id(&id)?;
    let (tenant, by) = (caller.tenant.clone(), actor(&caller));
    let shown = id.to_string();
    state
        .with_store(move |store| {
            privacy::set_opt_out(store, &tenant, &id, opted_out, &by).map_err(ApiError::from)
        })
        .await?;
    Ok(Json(
        json!({"customer_id": shown, "marketing_opt_out": opted_out}),
    ))
}

/// `POST /v1/customers/{id}/opt-out`: no marketing segment holds the customer from now on.
pub async fn opt_out(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    opt(state, caller, id, true).await
}

/// `DELETE /v1/customers/{id}/opt-out`: the customer withdrew their opt-out.
pub async fn opt_in(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    opt(state, caller, id, false).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    customer: Option<String>,
    limit: Option<usize>,
}

/// `GET /v1/audit?customer=ID&limit=N`: the audit log, newest first.
pub async fn audit(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<AuditLine>>, ApiError> {
    caller.require(Action::Administer)?;
    let Query(q) = query.map_err(|e| ApiError::new(Code::InvalidQuery, e.body_text()))?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::new(Code::InvalidQuery, "limit: from 1 to 1000"));
    }
    let customer = q.customer.as_deref().map(customer_id).transpose()?;
    let tenant = caller.tenant.clone();
    let lines = state
        .with_store(move |store| {
            Ok(privacy::audit_log(
                store,
                &tenant,
                customer.as_ref(),
                limit,
            )?)
        })
        .await?;
    Ok(Json(lines))
}

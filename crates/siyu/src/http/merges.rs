//! One person under many ids, through the API: `POST /v1/customers/{id}/merge {"with": B}`,
//! `POST /v1/customers/{id}/unmerge`, `POST /v1/customers/{id}/never-merge {"with": B}`
//! (the write permission: operator or admin) and `GET /v1/customers/{id}/ids` (read).

use std::sync::Arc;

use anyhow::Context;
use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use siyu_core::access::Action;
use siyu_store::{Identity, MergeReason};

use super::AppState;
use super::auth::Caller;
use super::batch::json_body;
use super::customers::customer_id;
use super::error::{ApiError, Code};
use crate::service::merge::{self, MergeError, MergeLine, Merged, Unmerged};

impl From<MergeError> for ApiError {
    fn from(e: MergeError) -> ApiError {
        match e {
            MergeError::NotFound(id) => {
                ApiError::new(Code::CustomerNotFound, format!("no customer {id}"))
            }
            e @ MergeError::Same(..) => ApiError::new(Code::InvalidMerge, e.to_string()),
            e @ MergeError::Refused(..) => ApiError::new(Code::MergeRefused, e.to_string()),
            e @ MergeError::NotMerged(_) => ApiError::new(Code::NotMerged, e.to_string()),
            MergeError::OutOfOrder(why) => ApiError::new(Code::UnmergeOrder, why),
            e @ MergeError::Remains(_) => ApiError::new(Code::ErasedRemains, e.to_string()),
            MergeError::Other(e) => ApiError::Internal(e),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct With {
    with: String,
}

/// The other customer of a body `{"with": ID}`, or 400 `invalid_merge`.
async fn other_of(body: axum::body::Body) -> Result<siyu_core::CustomerId, ApiError> {
    let value: Value = json_body(body, 4 * 1024).await?;
    let with: With = serde_json::from_value(value)
        .map_err(|e| ApiError::new(Code::InvalidMerge, format!("body: {e}")))?;
    customer_id(&with.with)
}

/// `POST /v1/customers/{id}/merge {"with": B}`: the two are one person; the earlier joined
/// survives. 404 `customer_not_found`, 409 `merge_refused` for a never-merge pair.
pub async fn merge(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Body,
) -> Result<Json<Merged>, ApiError> {
    caller.require(Action::Manage)?;
    let a = customer_id(&id)?;
    let b = other_of(body).await?;
    let tenant = caller.tenant.clone();
    let merged = state
        .with_store(move |store| {
            merge::merge(store, &tenant, &a, &b, MergeReason::Manual).map_err(ApiError::from)
        })
        .await?;
    Ok(Json(merged))
}

/// `POST /v1/customers/{id}/unmerge`: both customers as they were before the merge of
/// `id`. 409 `not_merged`, 409 `unmerge_order` while a later merge into the same survivor
/// stands.
pub async fn unmerge(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Unmerged>, ApiError> {
    caller.require(Action::Manage)?;
    let id = customer_id(&id)?;
    let tenant = caller.tenant.clone();
    let done = state
        .with_store(move |store| merge::unmerge(store, &tenant, &id).map_err(ApiError::from))
        .await?;
    Ok(Json(done))
}

/// `POST /v1/customers/{id}/never-merge {"with": B}`: the two are two persons.
pub async fn never_merge(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Body,
) -> Result<Json<Value>, ApiError> {
    caller.require(Action::Manage)?;
    let a = customer_id(&id)?;
    let b = other_of(body).await?;
    let tenant = caller.tenant.clone();
    let (shown_a, shown_b) = (a.to_string(), b.to_string());
    let new = state
        .with_store(move |store| merge::never_merge(store, &tenant, &a, &b).map_err(ApiError::from))
        .await?;
    Ok(Json(
        json!({"customer_id": shown_a, "with": shown_b, "recorded": new}),
    ))
}

/// A customer's ids, and the customers merged into them.
#[derive(Serialize)]
pub struct Ids {
    customer_id: String,
    identities: Vec<IdentityLine>,
    merged_from: Vec<MergeLine>,
}

#[derive(Serialize)]
struct IdentityLine {
    namespace: String,
    value: String,
    source: String,
    at: siyu_core::Timestamp,
}

impl From<Identity> for IdentityLine {
    fn from(i: Identity) -> IdentityLine {
        IdentityLine {
            namespace: i.namespace,
            value: i.value,
            source: i.source,
            at: i.at,
        }
    }
}

/// `GET /v1/customers/{id}/ids`: the customer's identities and whom they absorbed (standing
/// merges). A merged id answers 404 `customer_not_found` with its survivor named.
pub async fn ids(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Ids>, ApiError> {
    caller.require(Action::Read)?;
    let id = customer_id(&id)?;
    let tenant = caller.tenant.clone();
    let answer = state
        .with_store(move |store| {
            let merges = merge::merges_of(store, &tenant, &id)?;
            if store.customer(&tenant, &id).is_err() {
                let into = merges
                    .iter()
                    .find(|m| m.merged == id.as_str() && m.unmerged_at.is_none());
                let message = match into {
                    Some(m) => format!("no customer {id}: merged into {}", m.survivor),
                    None => format!("no customer {id}"),
                };
                return Err(ApiError::new(Code::CustomerNotFound, message));
            }
            let identities = store
                .identities_of(&tenant, &id)
                .context("reading identities")?;
            Ok(Ids {
                customer_id: id.to_string(),
                identities: identities.into_iter().map(IdentityLine::from).collect(),
                merged_from: merges
                    .into_iter()
                    .filter(|m| m.survivor == id.as_str() && m.unmerged_at.is_none())
                    .collect(),
            })
        })
        .await?;
    Ok(Json(answer))
}

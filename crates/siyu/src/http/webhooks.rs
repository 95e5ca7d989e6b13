//! The tenant's webhook endpoints through the API (admin only): listed with their sends
//! by state, and added (the signing secret shown once).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use siyu_core::access::Action;
use siyu_store::SendState;

use super::AppState;
use super::auth::Caller;
use super::batch::json_body;
use super::error::{ApiError, Code};
use crate::service::delivery::{self, Limits, WebhookError};

impl From<WebhookError> for ApiError {
    fn from(e: WebhookError) -> ApiError {
        match e {
            // No route names an endpoint yet: an unknown one is only ever a body's.
            WebhookError::Invalid(_) | WebhookError::NotFound(_) => {
                ApiError::new(Code::InvalidWebhook, e.to_string())
            }
            WebhookError::Exists(_) => ApiError::new(Code::WebhookExists, e.to_string()),
            WebhookError::Other(e) => ApiError::Internal(e),
        }
    }
}

/// An endpoint as the API shows it: never its secret.
#[derive(Serialize)]
pub struct WebhookLine {
    name: String,
    url: String,
    max_attempts: u32,
    max_in_flight: u32,
    max_per_second: u32,
    timeout_ms: u64,
    backoff_ms: u64,
    created_at: String,
    /// Its sends by state.
    outbox: Outbox,
}

#[derive(Serialize, Default)]
struct Outbox {
    pending: u64,
    delivered: u64,
    dead: u64,
    cancelled: u64,
}

fn line(e: siyu_store::WebhookEndpoint, counts: &[siyu_store::OutboxCount]) -> WebhookLine {
    let mut outbox = Outbox::default();
    for c in counts.iter().filter(|c| c.endpoint == e.name) {
        match c.state {
            SendState::Pending => outbox.pending += c.sends,
            SendState::Delivered => outbox.delivered += c.sends,
            SendState::Dead => outbox.dead += c.sends,
            SendState::Cancelled => outbox.cancelled += c.sends,
        }
    }
    WebhookLine {
        name: e.name,
        url: e.url,
        max_attempts: e.max_attempts,
        max_in_flight: e.max_in_flight,
        max_per_second: e.max_per_second,
        timeout_ms: e.timeout_ms,
        backoff_ms: e.backoff_ms,
        created_at: e.created_at.to_string(),
        outbox,
    }
}

/// `GET /v1/webhooks`: the tenant's endpoints by name, their limits and sends by state.
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<Vec<WebhookLine>>, ApiError> {
    caller.require(Action::Administer)?;
    let tenant = caller.tenant.clone();
    let lines = state
        .with_store(move |store| {
            let counts = store
                .outbox_counts(&tenant)
                .map_err(|e| ApiError::Internal(e.into()))?;
            let endpoints = store
                .webhooks(&tenant)
                .map_err(|e| ApiError::Internal(e.into()))?;
            Ok(endpoints.into_iter().map(|e| line(e, &counts)).collect())
        })
        .await?;
    Ok(Json(lines))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewWebhookBody {
    name: String,
    url: String,
    secret: Option<String>,
    max_attempts: Option<u32>,
    max_in_flight: Option<u32>,
    max_per_second: Option<u32>,
    timeout_ms: Option<u64>,
    backoff_ms: Option<u64>,
}

#[derive(Serialize)]
pub struct CreatedWebhook {
    /// Shown this once.
    secret: String,
    #[serde(flatten)]
    line: WebhookLine,
}

/// `POST /v1/webhooks` `{"name", "url", "secret"?, limits?}`: 201 with the endpoint and
/// its secret (generated unless given), shown this once.
pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<CreatedWebhook>), ApiError> {
    caller.require(Action::Administer)?;
    let value = json_body(body, 16 * 1024).await?;
    let new: NewWebhookBody = serde_json::from_value(value)
        .map_err(|e| ApiError::new(Code::InvalidWebhook, e.to_string()))?;
    let tenant = caller.tenant.clone();
    let created = state
        .with_store(move |store| {
            let limits = Limits {
                max_attempts: new.max_attempts,
                max_in_flight: new.max_in_flight,
                max_per_second: new.max_per_second,
                timeout_ms: new.timeout_ms,
                backoff_ms: new.backoff_ms,
            };
            Ok(delivery::add_webhook(
                store,
                &tenant,
                &new.name,
                &new.url,
                new.secret.as_deref(),
                &limits,
            )?)
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedWebhook {
            secret: created.secret.clone(),
            line: line(created, &[]),
        }),
    ))
}

//! The tenant's API tokens through the API (admin only): listed, created (the token shown
//! once), revoked (at once on this server).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use siyu_core::access::{Action, Role};

use super::AppState;
use super::auth::Caller;
use super::batch::json_body;
use super::error::{ApiError, Code};
use crate::service::tokens::{self, TokenError, TokenLine};

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(Code::InvalidToken, message)
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> ApiError {
        match e {
            TokenError::LabelTooLong | TokenError::LabelControl => bad(format!("label: {e}")),
            TokenError::Prefix(_) => ApiError::new(Code::InvalidTokenPrefix, e.to_string()),
        }
    }
}

/// `GET /v1/tokens`: the tenant's tokens, newest first (hash prefix, role, label, created,
/// revoked); never a token or a whole hash.
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<Vec<TokenLine>>, ApiError> {
    caller.require(Action::Administer)?;
    let tenant = caller.tenant.clone();
    let lines = state
        .with_store(move |store| Ok(tokens::list(store, &tenant)?))
        .await?;
    Ok(Json(lines))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTokenBody {
    role: String,
    #[serde(default)]
    label: String,
}

#[derive(Serialize)]
pub struct CreatedToken {
    /// Shown this once; only its hash is kept.
    token: String,
    #[serde(flatten)]
    line: TokenLine,
}

/// `POST /v1/tokens` `{"role", "label"}`: 201 with the new token of the caller's tenant.
pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    caller.require(Action::Administer)?;
    let value = json_body(body, 16 * 1024).await?;
    let new: NewTokenBody = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
    let role = Role::parse(&new.role).ok_or_else(|| {
        bad(format!(
            "role: '{}' is not admin, operator, viewer or ingest",
            new.role
        ))
    })?;
    tokens::check_label(&new.label)?;
    let tenant = caller.tenant.clone();
    let created = state
        .with_store(move |store| Ok(tokens::create(store, &tenant, role, &new.label)?))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token: created.token,
            line: created.line,
        }),
    ))
}

/// `DELETE /v1/tokens/{prefix}`: revokes the tenant's live token(s) whose hash starts with
/// `prefix` (8 hex digits or more): 204, 400 `invalid_token_prefix`, or 404
/// `token_not_found`. This server stops taking them at once.
pub async fn revoke(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(prefix): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Action::Administer)?;
    tokens::check_prefix(&prefix)?;
    let tenant = caller.tenant.clone();
    let key = prefix.clone();
    let revoked = state
        .with_store(move |store| Ok(tokens::revoke(store, &tenant, &key)?))
        .await?;
    if !revoked {
        return Err(ApiError::new(
            Code::TokenNotFound,
            format!("no live token of this tenant has a hash starting with '{prefix}'"),
        ));
    }
    state.tokens.forget(&prefix);
    Ok(StatusCode::NO_CONTENT)
}

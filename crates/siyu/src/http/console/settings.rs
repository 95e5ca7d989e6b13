//! The console's settings: the tenant's settings (time zone, repurchase cycle, VIP rule,
//! language of the command line), its console users and API tokens, and the audit log.
//! Everyone may read the settings; only admins change them, see users and tokens, and
//! read the audit log.

use std::sync::Arc;

use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use siyu_core::access::Action;
use siyu_core::settings::Setting;

use super::views::{self, SettingsPage};
use super::{Operator, Refusal, page};
use crate::http::AppState;
use crate::service::{config, privacy, tokens, users};

/// Audit entries shown.
const AUDIT_SHOWN: usize = 50;

async fn read(
    state: &Arc<AppState>,
    op: &Operator,
    problem: Option<String>,
    new_token: Option<String>,
) -> Result<SettingsPage, Refusal> {
    let tenant = op.session.user.tenant.clone();
    let admin = op.session.user.role.allows(Action::Administer);
    Ok(state
        .with_store(move |store| {
            let settings = config::values(store, &tenant)?;
            let (users, tokens, audit) = if admin {
                (
                    store
                        .console_users(&tenant)
                        .map_err(anyhow::Error::from)?
                        .into_iter()
                        .map(|u| (u.name, u.role, u.locked_until))
                        .collect(),
                    tokens::list(store, &tenant)?,
                    privacy::audit_log(store, &tenant, None, AUDIT_SHOWN)?,
                )
            } else {
                (Vec::new(), Vec::new(), Vec::new())
            };
            Ok(SettingsPage {
                settings,
                users,
                tokens,
                audit,
                problem,
                new_token,
            })
        })
        .await?)
}

pub async fn show(State(state): State<Arc<AppState>>, op: Operator) -> Result<Response, Refusal> {
    op.require(Action::Read)?;
    let shown = read(&state, &op, None, None).await?;
    Ok(page(views::settings(&op, &shown)))
}

/// The settings page again, with what was wrong (400).
async fn refused(
    state: &Arc<AppState>,
    op: &Operator,
    problem: String,
) -> Result<Response, Refusal> {
    let shown = read(state, op, Some(problem), None).await?;
    Ok((
        StatusCode::BAD_REQUEST,
        Html(views::settings(op, &shown).into_string()),
    )
        .into_response())
}

fn back() -> Response {
    Redirect::to("/console/settings").into_response()
}

#[derive(Debug, Deserialize)]
pub struct SettingForm {
    #[serde(default)]
    key: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    csrf: String,
}

pub async fn set(
    State(state): State<Arc<AppState>>,
    op: Operator,
    Form(form): Form<SettingForm>,
) -> Result<Response, Refusal> {
    op.check_form(&form.csrf)?;
    op.require(Action::Administer)?;
    let setting = match Setting::parse(&form.key) {
        Ok(s) => s,
        Err(e) => return refused(&state, &op, e.to_string()).await,
    };
    let tenant = op.session.user.tenant.clone();
    let value = form.value;
    let done = state
        .with_store(move |store| {
            Ok(config::set(store, &tenant, setting, &value).map_err(|e| format!("{e:#}")))
        })
        .await?;
    match done {
        Ok(_) => Ok(back()),
        Err(problem) => refused(&state, &op, problem).await,
    }
}

#[derive(Debug, Deserialize)]
pub struct UserForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

pub async fn add_user(
    State(state): State<Arc<AppState>>,
    op: Operator,
    Form(form): Form<UserForm>,
) -> Result<Response, Refusal> {
    op.check_form(&form.csrf)?;
    op.require(Action::Administer)?;
    let tenant = op.session.user.tenant.clone();
    let done = state
        .with_store(move |store| {
            Ok(users::console_role(&form.role)
                .and_then(|role| {
                    users::create_user(store, &tenant, form.name.trim(), role, &form.password)
                })
                .map_err(|e| format!("{e:#}")))
        })
        .await?;
    match done {
        Ok(()) => Ok(back()),
        Err(problem) => refused(&state, &op, problem).await,
    }
}

#[derive(Debug, Deserialize)]
pub struct NameForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    csrf: String,
}

pub async fn delete_user(
    State(state): State<Arc<AppState>>,
    op: Operator,
    Form(form): Form<NameForm>,
) -> Result<Response, Refusal> {
    op.check_form(&form.csrf)?;
    op.require(Action::Administer)?;
    if form.name == op.session.user.name {
        let text = op.lang.t(super::text::Key::NotYourself).to_owned();
        return refused(&state, &op, text).await;
    }
    let tenant = op.session.user.tenant.clone();
    state
        .with_store(move |store| {
            Ok(store
                .delete_user(&tenant, &form.name)
                .map_err(anyhow::Error::from)?)
        })
        .await?;
    Ok(back())
}

#[derive(Debug, Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    role: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    csrf: String,
}

/// Creates an API token and shows it once, on the page that answers the form.
pub async fn add_token(
    State(state): State<Arc<AppState>>,
    op: Operator,
    Form(form): Form<TokenForm>,
) -> Result<Response, Refusal> {
    op.check_form(&form.csrf)?;
    op.require(Action::Administer)?;
    let Some(role) = siyu_core::access::Role::parse(&form.role) else {
        let problem = format!("'{}' is not admin, operator, viewer or ingest", form.role);
        return refused(&state, &op, problem).await;
    };
    let tenant = op.session.user.tenant.clone();
    let label = form.label;
    let made = state
        .with_store(move |store| {
            Ok(tokens::create(store, &tenant, role, label.trim()).map_err(|e| format!("{e:#}")))
        })
        .await?;
    match made {
        Ok(new) => {
            let shown = read(&state, &op, None, Some(new.token)).await?;
            Ok(page(views::settings(&op, &shown)))
        }
        Err(problem) => refused(&state, &op, problem).await,
    }
}

#[derive(Debug, Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    csrf: String,
}

pub async fn revoke_token(
    State(state): State<Arc<AppState>>,
    op: Operator,
    Form(form): Form<RevokeForm>,
) -> Result<Response, Refusal> {
    op.check_form(&form.csrf)?;
    op.require(Action::Administer)?;
    let tenant = op.session.user.tenant.clone();
    let prefix = form.prefix.clone();
    let done = state
        .with_store(move |store| {
            Ok(tokens::revoke(store, &tenant, &prefix).map_err(|e| format!("{e:#}")))
        })
        .await?;
    match done {
        Ok(_) => {
            // At once on this server, as the API's revoke.
            state.tokens.forget(&form.prefix);
            Ok(back())
        }
        Err(problem) => refused(&state, &op, problem).await,
    }
}

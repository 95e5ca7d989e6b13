//! Tags through the API: every tag of the tenant or of one customer, a customer's manual
//! tags given and taken away, and tag rules saved (a rule with a mistake refused with its
//! column, a circle of rules refused naming it) and deleted.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use siyu_core::access::Action;
use siyu_core::rule::Rule;
use siyu_core::segment::rules::{EvaluationError, RuleKind, TagFamily};

use super::AppState;
use super::auth::Caller;
use super::batch::json_body;
use super::customers::{customer_id, require_customer};
use super::error::{ApiError, Code};
use super::segments::rule_exists;
use crate::service::segments::{self, RulesError, TagNameError, TagRemoval, check_tag_name};

fn bad(code: Code, message: impl Into<String>) -> ApiError {
    ApiError::new(code, message)
}

impl From<TagNameError> for ApiError {
    fn from(e: TagNameError) -> ApiError {
        bad(Code::InvalidTag, format!("tag: {e}"))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagsQuery {
    customer: Option<String>,
}

/// `GET /v1/tags`: every tag with its family, source, rule and customers, as
/// `siyu tag list --format json`; with `customer=ID`, that customer's tags, where from and
/// since when, as `siyu tag list --customer ID --format json`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    query: Result<Query<TagsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Action::Read)?;
    let Query(q) = query.map_err(|e| bad(Code::InvalidQuery, e.body_text()))?;
    let customer = q.customer.as_deref().map(customer_id).transpose()?;
    let tenant = caller.tenant.clone();
    let value = state
        .with_store(move |store| {
            let value = match customer {
                Some(id) => {
                    require_customer(store, &tenant, &id)?;
                    serde_json::to_value(segments::customer_tags(store, &tenant, &id)?)
                }
                None => serde_json::to_value(segments::tag_summary(store, &tenant)?),
            };
            value.map_err(|e| ApiError::Internal(e.into()))
        })
        .await?;
    Ok(Json(value))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTag {
    tag: String,
}

/// `POST /v1/customers/{id}/tags` `{"tag"}`: tags the customer by hand (source `manual:api`).
pub async fn add(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Body,
) -> Result<Json<Value>, ApiError> {
    caller.require(Action::Manage)?;
    let id = customer_id(&id)?;
    if id.is_erased_remains() {
        return Err(ApiError::new(
            Code::ErasedRemains,
            format!("{id} is an erased customer's remains, which take no tags"),
        ));
    }
    let value = json_body(body, 16 * 1024).await?;
    let new: NewTag =
        serde_json::from_value(value).map_err(|e| bad(Code::InvalidTag, e.to_string()))?;
    check_tag_name(&new.tag)?;
    let tenant = caller.tenant.clone();
    let by = format!("api:{}", caller.role);
    let added = state
        .with_store(move |store| {
            require_customer(store, &tenant, &id)?;
            Ok(segments::add_tag(store, &tenant, &id, &new.tag, &by, None)?)
        })
        .await?;
    Ok(Json(serde_json::json!({"added": added})))
}

/// `DELETE /v1/customers/{id}/tags/{tag}`: takes a manual (or imported) tag off: 204, or
/// 404 `customer_not_found` / `tag_not_found`, or 409 `tag_not_manual` for a tag that a
/// tag rule or the figures (a level tag) give.
pub async fn remove(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((id, tag)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.require(Action::Manage)?;
    let id = customer_id(&id)?;
    let tenant = caller.tenant.clone();
    let by = format!("api:{}", caller.role);
    let (key, name) = (id.clone(), tag.clone());
    let removal = state
        .with_store(move |store| Ok(segments::remove_tag(store, &tenant, &key, &name, &by)?))
        .await?;
    let refusal = removal.refusal(&id, &tag).unwrap_or_default();
    match removal {
        TagRemoval::Removed => Ok(StatusCode::NO_CONTENT),
        TagRemoval::NoCustomer => Err(ApiError::new(Code::CustomerNotFound, refusal)),
        TagRemoval::NotTagged => Err(ApiError::new(Code::TagNotFound, refusal)),
        TagRemoval::NotManual(_) => Err(ApiError::new(Code::TagNotManual, refusal)),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TagRuleBody {
    rule: String,
    /// consumption (the default for a new rule tag), static, behaviour or level.
    family: Option<String>,
}

/// `PUT /v1/tags/rules/{name}` `{"rule", "family"}`: defines or redefines a tag by a rule;
/// 201 when new, 200 when replaced, with the canonical rule and the customers it gives the
/// tag to now. 400 `invalid_tag_rule` names the column of a mistake; 409 `tag_rule_circle`
/// names the tags whose rules would ask for each other.
pub async fn put_rule(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require(Action::Manage)?;
    check_tag_name(&name)?;
    let value = json_body(body, 64 * 1024).await?;
    let body: TagRuleBody =
        serde_json::from_value(value).map_err(|e| bad(Code::InvalidTag, e.to_string()))?;
    let family = body
        .family
        .as_deref()
        .map(|f| {
            TagFamily::parse(f).ok_or_else(|| {
                bad(
                    Code::InvalidTag,
                    format!("family: '{f}' is not static, consumption, behaviour or level"),
                )
            })
        })
        .transpose()?;
    let rule = Rule::parse(&body.rule)
        .map_err(|e| bad(Code::InvalidTagRule, format!("the rule does not read: {e}")))?;
    let tenant = caller.tenant.clone();
    let by = format!("api:{}", caller.role);
    let tag = name.clone();
    let (existed, customers) = state
        .with_store(move |store| {
            let existed = rule_exists(store, &tenant, RuleKind::Tag, &tag)?;
            let rule = segments::NewRule::tag(&tag, &body.rule, family);
            let e = segments::save_rule(store, &tenant, rule, &by, true).map_err(refused_rule)?;
            let customers = e.members(RuleKind::Tag, &tag);
            Ok((existed, customers))
        })
        .await?;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Json(serde_json::json!({"name": name, "rule": rule.to_string(), "customers": customers})),
    ))
}

/// A tag rule the evaluation refused: a circle of rules (409) or a rule that does not
/// hold against the others (400); anything else is the server's.
fn refused_rule(e: RulesError) -> ApiError {
    match e {
        RulesError::Refused(cycle @ EvaluationError::Cycle(_)) => {
            ApiError::new(Code::TagRuleCircle, cycle.to_string())
        }
        RulesError::Refused(rule @ EvaluationError::Rule { .. }) => {
            bad(Code::InvalidTagRule, rule.to_string())
        }
        RulesError::Other(e) => ApiError::Internal(e),
    }
}

/// `DELETE /v1/tags/rules/{name}`: 204, or 404 `tag_rule_not_found`. Customers lose the
/// tag; the history stays.
pub async fn delete_rule(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Action::Manage)?;
    let tenant = caller.tenant.clone();
    let tag = name.clone();
    let deleted = state
        .with_store(move |store| Ok(segments::delete_rule(store, &tenant, RuleKind::Tag, &tag)?))
        .await?;
    if deleted {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            Code::TagRuleNotFound,
            format!("no tag rule '{name}'"),
        ))
    }
}

//! Offers and campaigns through the API: the same use cases as `siyu coupon` and `siyu
//! campaign` (create, list, show, run, pause, resume, decisions, results). Amounts in
//! requests are yuan, as everywhere in the API; answers are in fen.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use siyu_core::Money;
use siyu_core::access::Action;
use siyu_core::campaign::{
    Audience, Benefit, CampaignSpec, Offer, Policy, SendChannel, Step, Tier, Trigger, Validity,
    default_tiers,
};
use siyu_store::DecisionRow;

use super::AppState;
use super::auth::Caller;
use super::batch::json_body;
use super::error::{ApiError, Code};
use crate::service::campaigns::{self, CampaignsError, Results, RunSummary};

impl From<CampaignsError> for ApiError {
    fn from(e: CampaignsError) -> ApiError {
        let code = match &e {
            CampaignsError::OfferNotFound(_) => Code::OfferNotFound,
            CampaignsError::OfferExists(_) => Code::OfferExists,
            CampaignsError::CampaignNotFound(_) => Code::CampaignNotFound,
            CampaignsError::CampaignExists(_) => Code::CampaignExists,
            CampaignsError::Invalid(_) => Code::InvalidCampaign,
            CampaignsError::NotRunnable(_) => Code::CampaignNotRunnable,
            CampaignsError::Other(_) => {
                let CampaignsError::Other(e) = e else {
                    unreachable!()
                };
                return ApiError::Internal(e);
            }
        };
        ApiError::new(code, e.to_string())
    }
}

/// A money field given as a string (`"128.50"`) or a number of yuan (`128.5`).
fn yuan(field: &str, v: Option<&Value>, code: Code) -> Result<Money, ApiError> {
    let text = match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => {
            return Err(ApiError::new(
                code,
                format!("{field}: expected an amount in yuan, e.g. \"128.50\""),
            ));
        }
    };
    Money::parse_yuan(&text).map_err(|e| ApiError::new(code, format!("{field}: {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewOffer {
    name: String,
    /// `threshold` (min, off), `no_threshold` (off), `percent` (percent, cap),
    /// `free_item` (item, value).
    kind: String,
    min: Option<Value>,
    off: Option<Value>,
    percent: Option<u32>,
    cap: Option<Value>,
    item: Option<String>,
    value: Option<Value>,
    /// Valid this many days from issue (default 14)…
    days: Option<u32>,
    /// …or these local days.
    from: Option<jiff::civil::Date>,
    until: Option<jiff::civil::Date>,
    max_coupons: Option<u64>,
    max_face: Option<Value>,
}

fn offer_of(n: &NewOffer) -> Result<Offer, ApiError> {
    let c = Code::InvalidOffer;
    let benefit = match n.kind.as_str() {
        "threshold" => Benefit::Threshold {
            min: yuan("min", n.min.as_ref(), c)?,
            off: yuan("off", n.off.as_ref(), c)?,
        },
        "no_threshold" => Benefit::NoThreshold {
            off: yuan("off", n.off.as_ref(), c)?,
        },
        "percent" => Benefit::Percent {
            percent: n
                .percent
                .ok_or_else(|| ApiError::new(c, "percent: required for kind percent"))?,
            cap: yuan("cap", n.cap.as_ref(), c)?,
        },
        "free_item" => Benefit::FreeItem {
            item: n.item.clone().unwrap_or_default(),
            value: yuan("value", n.value.as_ref(), c)?,
        },
        other => {
            return Err(ApiError::new(
                c,
                format!("kind: '{other}' is not threshold, no_threshold, percent or free_item"),
            ));
        }
    };
    let validity = match (n.from, n.until, n.days) {
        (Some(from), Some(until), None) => Validity::Dates { from, until },
        (None, None, days) => Validity::Days {
            days: days.unwrap_or(14),
        },
        _ => return Err(ApiError::new(c, "validity: days, or from and until")),
    };
    let offer = Offer {
        benefit,
        validity,
        max_coupons: n.max_coupons,
        max_face: n
            .max_face
            .as_ref()
            .map(|v| yuan("max_face", Some(v), c))
            .transpose()?,
    };
    offer.check().map_err(|e| ApiError::new(c, e.to_string()))?;
    Ok(offer)
}

#[derive(Serialize)]
pub struct OfferLine {
    name: String,
    label: String,
    #[serde(flatten)]
    offer: Offer,
    issued: u64,
    issued_face: Money,
    created_by: String,
    created_at: siyu_core::Timestamp,
}

/// `GET /v1/offers`: every offer, with what it has issued.
pub async fn list_offers(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<Vec<OfferLine>>, ApiError> {
    caller.require(Action::Read)?;
    let tenant = caller.tenant.clone();
    let lines = state
        .with_store(move |store| {
            Ok(campaigns::offers(store, &tenant)?
                .into_iter()
                .map(|(s, o)| OfferLine {
                    label: o.benefit.label(),
                    offer: o,
                    issued: s.issued,
                    issued_face: s.issued_face,
                    created_by: s.created_by,
                    created_at: s.created_at,
                    name: s.name,
                })
                .collect())
        })
        .await?;
    Ok(Json(lines))
}

/// `POST /v1/offers`: 201, 400 `invalid_offer`, 409 `offer_exists`.
pub async fn create_offer(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require(Action::Manage)?;
    let value = json_body(body, 16 * 1024).await?;
    let new: NewOffer = serde_json::from_value(value)
        .map_err(|e| ApiError::new(Code::InvalidOffer, e.to_string()))?;
    let offer = offer_of(&new)?;
    let tenant = caller.tenant.clone();
    let by = format!("api:{}", caller.role);
    let (name, saved) = (new.name.clone(), offer.clone());
    state
        .with_store(move |store| {
            campaigns::create_offer(store, &tenant, &name, &saved, &by).map_err(|e| match e {
                CampaignsError::Invalid(m) => ApiError::new(Code::InvalidOffer, m),
                e => e.into(),
            })
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"name": new.name, "label": offer.benefit.label(), "offer": offer})),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTier {
    name: String,
    #[serde(default)]
    rule: String,
    offer: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCampaign {
    name: String,
    segment: Option<String>,
    customers: Option<Vec<String>>,
    message: String,
    #[serde(default = "export")]
    channel: String,
    value_offer: Option<String>,
    lapsed_offer: Option<String>,
    tiers: Option<Vec<NewTier>>,
    /// Percent, 0 to 50 (default 10).
    holdout: Option<f64>,
    frequency_cap: Option<u32>,
    frequency_days: Option<u32>,
    platform_cap: Option<u32>,
    platform_days: Option<u32>,
    /// `HH:MM-HH:MM`, or `none` (default 21:00-08:00).
    quiet_hours: Option<String>,
    #[serde(default)]
    message_in_cycle: bool,
    attribution_days: Option<u32>,
    start_at: Option<siyu_core::Timestamp>,
    /// Triggered on entering this segment (the audience), or this lifecycle stage.
    on_enter: Option<String>,
    on_stage: Option<String>,
    on_event: Option<String>,
    /// The steps of a triggered campaign: `DELAY` or `DELAY:TIER` (`0`, `30m`, `2h`, `3d`).
    #[serde(default)]
    steps: Vec<String>,
}

/// A campaign's definition from the fields of `POST /v1/campaigns` (the console's form
/// sends the same), checked as the API checks it; the name beside it.
pub(crate) fn spec_from_json(value: Value) -> Result<(String, CampaignSpec), ApiError> {
    let new: NewCampaign = serde_json::from_value(value)
        .map_err(|e| ApiError::new(Code::InvalidCampaign, e.to_string()))?;
    let name = new.name.clone();
    Ok((name, spec_of(new)?))
}

fn export() -> String {
    "export".to_owned()
}

fn spec_of(n: NewCampaign) -> Result<CampaignSpec, ApiError> {
    let bad = |m: String| ApiError::new(Code::InvalidCampaign, m);
    let trigger = match (&n.on_enter, &n.on_stage, &n.on_event) {
        (Some(segment), None, None) => Some(Trigger::Enter {
            segment: segment.clone(),
        }),
        (None, Some(stage), None) => Some(Trigger::stage(stage).map_err(|e| bad(e.to_string()))?),
        (None, None, Some(event)) => Some(Trigger::event(event).map_err(|e| bad(e.to_string()))?),
        (None, None, None) => None,
        _ => {
            return Err(bad(
                "a campaign is triggered by one of on_enter, on_stage or on_event".into(),
            ));
        }
    };
    let steps = n
        .steps
        .iter()
        .map(|s| Step::parse(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    let audience = match (n.segment, n.customers) {
        _ if trigger.is_some() => match &trigger {
            Some(Trigger::Enter { segment }) => Audience::Segment {
                name: segment.clone(),
            },
            _ => Audience::List { ids: Vec::new() },
        },
        (Some(name), None) => Audience::Segment { name },
        (None, Some(ids)) if !ids.is_empty() => Audience::List { ids },
        _ => {
            return Err(bad(
                "the audience is segment or customers (a list of ids)".into()
            ));
        }
    };
    let tiers = match n.tiers {
        Some(tiers) => tiers
            .into_iter()
            .map(|t| Tier {
                name: t.name,
                rule: t.rule,
                offer: t.offer,
            })
            .collect(),
        None => default_tiers(n.value_offer.as_deref(), n.lapsed_offer.as_deref()),
    };
    let defaults = Policy::default();
    let holdout = n.holdout.unwrap_or(10.0);
    if !(0.0..=50.0).contains(&holdout) {
        return Err(bad(format!("holdout: {holdout}% is not 0 to 50")));
    }
    let quiet_hours = match n.quiet_hours.as_deref() {
        None => defaults.quiet_hours,
        Some("none") => None,
        Some(text) => {
            let parse = |s: &str| jiff::civil::Time::strptime("%H:%M", s.trim()).ok();
            let (a, b) = text
                .split_once('-')
                .and_then(|(a, b)| Some((parse(a)?, parse(b)?)))
                .ok_or_else(|| bad(format!("quiet_hours: '{text}' is not HH:MM-HH:MM")))?;
            Some((a, b))
        }
    };
    let platform_cap = match (n.platform_cap, n.platform_days) {
        (Some(cap), days) => Some((cap, days.unwrap_or(1))),
        (None, None) => None,
        (None, Some(_)) => return Err(bad("platform_days without platform_cap".into())),
    };
    let spec = CampaignSpec {
        audience,
        tiers,
        message: n.message,
        channel: SendChannel::parse(&n.channel).map_err(|e| bad(e.to_string()))?,
        policy: Policy {
            holdout_bp: (holdout * 100.0).round() as u32,
            frequency_cap: n.frequency_cap.unwrap_or(defaults.frequency_cap),
            frequency_days: n.frequency_days.unwrap_or(defaults.frequency_days),
            platform_cap,
            quiet_hours,
            message_in_cycle: n.message_in_cycle,
            attribution_days: n.attribution_days.unwrap_or(defaults.attribution_days),
        },
        start_at: n.start_at,
        trigger,
        steps,
    };
    spec.check().map_err(|e| bad(e.to_string()))?;
    Ok(spec)
}

#[derive(Serialize)]
pub struct CampaignLine {
    name: String,
    status: String,
    #[serde(flatten)]
    spec: CampaignSpec,
    runs: Vec<siyu_core::Timestamp>,
    created_by: String,
    created_at: siyu_core::Timestamp,
}

impl From<campaigns::Campaign> for CampaignLine {
    fn from(c: campaigns::Campaign) -> CampaignLine {
        CampaignLine {
            name: c.stored.name,
            status: c.stored.status,
            spec: c.spec,
            runs: c.stored.runs,
            created_by: c.stored.created_by,
            created_at: c.stored.created_at,
        }
    }
}

/// `GET /v1/campaigns`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<Vec<CampaignLine>>, ApiError> {
    caller.require(Action::Read)?;
    let tenant = caller.tenant.clone();
    let lines = state
        .with_store(move |store| {
            Ok(campaigns::campaigns(store, &tenant)?
                .into_iter()
                .map(CampaignLine::from)
                .collect())
        })
        .await?;
    Ok(Json(lines))
}

/// `POST /v1/campaigns`: 201, 400 `invalid_campaign`, 409 `campaign_exists`.
pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<CampaignLine>), ApiError> {
    caller.require(Action::Manage)?;
    let value = json_body(body, 1024 * 1024).await?;
    let new: NewCampaign = serde_json::from_value(value)
        .map_err(|e| ApiError::new(Code::InvalidCampaign, e.to_string()))?;
    let name = new.name.clone();
    let spec = spec_of(new)?;
    let tenant = caller.tenant.clone();
    let by = format!("api:{}", caller.role);
    let line = state
        .with_store(move |store| {
            campaigns::create_campaign(store, &tenant, &name, &spec, &by)?;
            Ok(campaigns::campaign(store, &tenant, &name)?.into())
        })
        .await?;
    Ok((StatusCode::CREATED, Json(line)))
}

/// `GET /v1/campaigns/{name}`.
pub async fn show(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<CampaignLine>, ApiError> {
    caller.require(Action::Read)?;
    let tenant = caller.tenant.clone();
    let line = state
        .with_store(move |store| Ok(campaigns::campaign(store, &tenant, &name)?.into()))
        .await?;
    Ok(Json(line))
}

#[derive(Serialize)]
pub struct PendingLine {
    step: u32,
    customer_id: String,
    entered_at: siyu_core::Timestamp,
    due_at: siyu_core::Timestamp,
}

/// `GET /v1/campaigns/{name}/pending`: a triggered campaign's queued steps, the first
/// due first (at most 10,000).
pub async fn pending(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Vec<PendingLine>>, ApiError> {
    caller.require(Action::Read)?;
    let tenant = caller.tenant.clone();
    let lines = state
        .with_store(move |store| {
            Ok(
                campaigns::pending(store, &tenant, &name, campaigns::TICK_LIMIT)?
                    .into_iter()
                    .map(|d| PendingLine {
                        step: d.step,
                        customer_id: d.customer_id,
                        entered_at: d.entered_at,
                        due_at: d.due_at,
                    })
                    .collect(),
            )
        })
        .await?;
    Ok(Json(lines))
}

/// `POST /v1/campaigns/{name}/run`: decides every customer now; 409
/// `campaign_not_runnable` when paused, scheduled later or run meanwhile.
pub async fn run(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<RunSummary>, ApiError> {
    caller.require(Action::Manage)?;
    let tenant = caller.tenant.clone();
    let summary = state
        .with_store(move |store| Ok(campaigns::run(store, &tenant, &name)?))
        .await?;
    Ok(Json(summary))
}

async fn set_status(
    state: Arc<AppState>,
    caller: Caller,
    name: String,
    status: &'static str,
) -> Result<Json<Value>, ApiError> {
    caller.require(Action::Manage)?;
    let tenant = caller.tenant.clone();
    let shown = name.clone();
    state
        .with_store(move |store| Ok(campaigns::set_status(store, &tenant, &name, status)?))
        .await?;
    Ok(Json(serde_json::json!({"name": shown, "status": status})))
}

/// `POST /v1/campaigns/{name}/pause`.
pub async fn pause(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_status(state, caller, name, "paused").await
}

/// `POST /v1/campaigns/{name}/resume`.
pub async fn resume(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_status(state, caller, name, "active").await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionsQuery {
    customer: Option<String>,
}

#[derive(Serialize)]
pub struct DecisionLine {
    run: u32,
    customer_id: String,
    tier: Option<String>,
    outcome: String,
    reason: String,
    detail: Option<String>,
    decided_at: siyu_core::Timestamp,
    channel: Option<String>,
    not_before: Option<siyu_core::Timestamp>,
    coupon_code: Option<String>,
    sent_at: Option<siyu_core::Timestamp>,
}

impl From<DecisionRow> for DecisionLine {
    fn from(d: DecisionRow) -> DecisionLine {
        DecisionLine {
            run: d.run,
            customer_id: d.customer_id,
            tier: d.tier,
            outcome: d.outcome,
            reason: d.reason,
            detail: d.detail,
            decided_at: d.decided_at,
            channel: d.channel,
            not_before: d.not_before,
            coupon_code: d.coupon_code,
            sent_at: d.sent_at,
        }
    }
}

/// `GET /v1/campaigns/{name}/decisions[?customer=ID]`: each decision with its reason.
pub async fn decisions(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
    query: Result<Query<DecisionsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<DecisionLine>>, ApiError> {
    caller.require(Action::Read)?;
    let Query(q) = query.map_err(|e| ApiError::new(Code::InvalidQuery, e.body_text()))?;
    let tenant = caller.tenant.clone();
    let lines = state
        .with_store(move |store| {
            Ok(
                campaigns::decisions(store, &tenant, &name, q.customer.as_deref())?
                    .into_iter()
                    .map(DecisionLine::from)
                    .collect(),
            )
        })
        .await?;
    Ok(Json(lines))
}

/// `GET /v1/campaigns/{name}/results`: treated against holdout, overall and per tier.
pub async fn results(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Results>, ApiError> {
    caller.require(Action::Read)?;
    let tenant = caller.tenant.clone();
    let r = state
        .with_store(move |store| Ok(campaigns::results(store, &tenant, &name)?))
        .await?;
    Ok(Json(r))
}

//! Lifetime value by model through the API: `POST /v1/clv/fit` fits BG/NBD and
//! Gamma-Gamma on the tenant's orders and keeps the model for the tenant; `GET
//! /v1/clv/predict` predicts with the kept model, for one customer or a page of them, from
//! those customers' own orders.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use siyu_core::access::Action;
use siyu_core::{TenantZone, Timestamp};
use siyu_store::{Store, Tenant};

use super::AppState;
use super::auth::Caller;
use super::batch::optional_json_body;
use super::customers::{customer_id, require_customer};
use super::error::{ApiError, Code};
use crate::service::clv::{
    self as service, HorizonError, ModelsJson, Predicted, PredictedPage, PredictionLine,
    StoredModel,
};

fn bad(code: Code, message: impl Into<String>) -> ApiError {
    ApiError::new(code, message)
}

impl From<HorizonError> for ApiError {
    fn from(e: HorizonError) -> ApiError {
        let field = match e {
            HorizonError::Weeks(_) => "horizon_weeks",
            HorizonError::Discount(_) => "discount_monthly",
        };
        bad(Code::InvalidClvFit, format!("{field}: {e}"))
    }
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FitBody {
    /// YYYY-MM-DD; default: the day of the last paid order.
    calibration_end: Option<String>,
    horizon_weeks: Option<f64>,
    discount_monthly: Option<f64>,
}

/// `POST /v1/clv/fit` `{"calibration_end", "horizon_weeks", "discount_monthly"}` (each
/// optional, the body too): fits and keeps the tenant's model; answers as
/// `siyu clv fit --format json`. 409 `clv_cannot_fit` when the orders do not allow a fit.
pub async fn fit(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: axum::body::Body,
) -> Result<Json<ModelsJson>, ApiError> {
    caller.require(Action::Manage)?;
    let body: FitBody = match optional_json_body(body, 16 * 1024).await? {
        Some(value) => {
            serde_json::from_value(value).map_err(|e| bad(Code::InvalidClvFit, e.to_string()))?
        }
        None => FitBody::default(),
    };
    let calibration_end = body
        .calibration_end
        .as_deref()
        .map(|d| {
            TenantZone::parse_day(d)
                .map_err(|e| bad(Code::InvalidClvFit, format!("calibration_end: {e}")))
        })
        .transpose()?;
    let default = service::DEFAULT_HORIZON;
    let horizon = service::horizon(
        body.horizon_weeks.unwrap_or(default.weeks),
        body.discount_monthly.unwrap_or(default.discount_monthly),
    )?;
    let tenant = caller.tenant.clone();
    let fitted = state
        .with_store(move |store| {
            service::fit_tenant(store, &tenant, calibration_end, horizon).map_err(|e| {
                match e.cannot_fit() {
                    Some(why) => ApiError::new(Code::ClvCannotFit, why.to_string()),
                    None => ApiError::Internal(e.into()),
                }
            })
        })
        .await?;
    Ok(Json(ModelsJson::of(&fitted.models)))
}

/// The tenant's kept model, or 409 `clv_not_fitted`.
fn kept_model(store: &mut dyn Store, tenant: &Tenant) -> Result<StoredModel, ApiError> {
    let not_fitted = |why: &str| {
        ApiError::new(
            Code::ClvNotFitted,
            format!("{why}: POST /v1/clv/fit (or siyu clv fit) first"),
        )
    };
    let model = service::stored_model(store, tenant)?
        .ok_or_else(|| not_fitted("no lifetime value model is fitted for this tenant yet"))?;
    if model.params().is_none() {
        return Err(not_fitted(
            "the kept model has BG/NBD parameters that are not numbers",
        ));
    }
    Ok(model)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictQuery {
    customer: Option<String>,
    after: Option<String>,
    limit: Option<usize>,
}

#[derive(Serialize)]
pub struct PredictAnswer {
    calibration_end: jiff::civil::Date,
    horizon_weeks: f64,
    months: u32,
    discount_monthly: f64,
    fitted_at: Timestamp,
    #[serde(flatten)]
    models: ModelsJson,
    /// As `siyu clv predict --format json` lists them: id, frequency, recency, T,
    /// monetary_value, p_alive, expected_purchases, expected_spend, clv.
    customers: Vec<Value>,
    /// Pass as `after` for the next page; none on the last.
    next: Option<String>,
}

fn lines(predictions: &[Predicted]) -> Result<Vec<Value>, ApiError> {
    predictions
        .iter()
        .map(|(c, p)| {
            serde_json::to_value(PredictionLine::new(c, p))
                .map_err(|e| ApiError::Internal(e.into()))
        })
        .collect()
}

/// `GET /v1/clv/predict?customer=ID` or `?after=&limit=`: P(alive), expected purchases,
/// expected spend and CLV by the kept model, for customers with a paid order by its
/// calibration end, in id order: the numbers of `siyu clv predict --format json` as of
/// that day. 409 `clv_not_fitted` before a fit.
pub async fn predict(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    query: Result<Query<PredictQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<PredictAnswer>, ApiError> {
    caller.require(Action::Read)?;
    let Query(q) = query.map_err(|e| bad(Code::InvalidQuery, e.body_text()))?;
    let customer = q.customer.as_deref().map(customer_id).transpose()?;
    if customer.is_some() && (q.after.is_some() || q.limit.is_some()) {
        return Err(bad(
            Code::InvalidQuery,
            "customer asks for one customer; it takes no after or limit",
        ));
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=1_000).contains(&limit) {
        return Err(bad(Code::InvalidQuery, "limit: from 1 to 1000"));
    }
    let after = q.after.as_deref().map(customer_id).transpose()?;
    let tenant = caller.tenant.clone();
    let answer = state
        .with_store(move |store| {
            let model = kept_model(store, &tenant)?;
            let page = match &customer {
                Some(id) => {
                    require_customer(store, &tenant, id)?;
                    PredictedPage {
                        predictions: service::predict_kept(
                            store,
                            &tenant,
                            &model,
                            std::slice::from_ref(id),
                        )?,
                        next: None,
                    }
                }
                None => service::predict_kept_page(store, &tenant, &model, after.as_ref(), limit)?,
            };
            Ok(PredictAnswer {
                calibration_end: model.calibration_end,
                horizon_weeks: model.horizon_weeks,
                months: model.horizon().months(),
                discount_monthly: model.discount_monthly,
                fitted_at: model.fitted_at,
                models: model.models(),
                customers: lines(&page.predictions)?,
                next: page.next.map(|id| id.to_string()),
            })
        })
        .await?;
    Ok(Json(answer))
}

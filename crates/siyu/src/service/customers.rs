//! The 360 view of a customer (`GET /v1/customers/{id}`, `siyu customer show`): who they
//! are, their figures, stage, segments and tags, latest orders and events, and the kept
//! model's prediction. Money is in fen throughout, as everywhere in JSON.

use anyhow::Context;
use serde::Serialize;
use serde_json::Value;

use siyu_core::profile::Profile;
use siyu_core::segment::rules::RuleKind;
use siyu_core::{Customer, CustomerId, Money, Timestamp};
use siyu_store::{Store, Tenant};

use crate::service::clv::{PredictionLine, predict_kept, stored_model};
use crate::service::privacy::{EventLine, OrderLine, TagLine};

/// Orders and events shown in the 360 view.
pub const RECENT: usize = 20;

#[derive(Debug, Serialize)]
pub struct ProfileFigures {
    #[serde(flatten)]
    pub profile: Profile,
    pub aov: Option<Money>,
    pub mean_interval_days: Option<f64>,
    pub coupon_share: Option<f64>,
    pub has_left: bool,
}

#[derive(Debug, Serialize)]
pub struct CustomerAnswer {
    pub customer: Customer,
    pub profile: Option<ProfileFigures>,
    /// As of the last evaluation of segments and tags.
    pub stage: Option<String>,
    pub rfm: Option<String>,
    pub segments: Vec<String>,
    pub tags: Vec<TagLine>,
    pub recent_orders: Vec<OrderLine>,
    pub recent_events: Vec<EventLine>,
    /// The customer's prediction by the tenant's kept lifetime value model, its money
    /// (`monetary_value`, `expected_spend`, `clv`) in fen like the rest of the view; none
    /// before a fit, or without a paid order by the model's calibration end.
    pub model_clv: Option<Value>,
    /// When the customer opted out of marketing, if they did.
    pub marketing_opt_out_at: Option<Timestamp>,
}

/// The keys of a prediction that are money (yuan in `siyu clv predict`, fen here).
pub const MODEL_MONEY: [&str; 3] = ["monetary_value", "expected_spend", "clv"];

/// The 360 view, or none when the tenant has no such customer. A read: no audit entry.
pub fn view(
    store: &mut dyn Store,
    tenant: &Tenant,
    id: &CustomerId,
) -> anyhow::Result<Option<CustomerAnswer>> {
    let Some(view) = store
        .customer_view(tenant, id, RECENT)
        .context("reading a customer")?
    else {
        return Ok(None);
    };
    let model_clv = model_clv(store, tenant, id)?;
    let mut tags: Vec<TagLine> = view
        .manual_tags
        .into_iter()
        .map(|t| TagLine {
            tag: t.tag,
            source: t.source,
            since: t.since,
        })
        .collect();
    let (mut stage, mut rfm, mut segments) = (None, None, Vec::new());
    for m in view.memberships {
        match m.kind {
            RuleKind::Segment => segments.push(m.name),
            RuleKind::Tag => tags.push(TagLine {
                source: format!("rule:{}", m.name),
                tag: m.name,
                since: m.since,
            }),
            RuleKind::Level => {
                if let Some(s) = m.name.strip_prefix("stage:") {
                    stage = Some(s.to_owned());
                } else if let Some(r) = m.name.strip_prefix("rfm:") {
                    rfm = Some(r.to_owned());
                }
                tags.push(TagLine {
                    tag: m.name,
                    source: "level".into(),
                    since: m.since,
                });
            }
        }
    }
    Ok(Some(CustomerAnswer {
        customer: view.customer,
        profile: view.profile.map(|p| ProfileFigures {
            aov: p.aov(),
            mean_interval_days: p.mean_interval_days(),
            coupon_share: p.coupon_share(),
            has_left: p.has_left(),
            profile: p,
        }),
        stage,
        rfm,
        segments,
        tags,
        recent_orders: view
            .recent_orders
            .into_iter()
            .map(OrderLine::from)
            .collect(),
        recent_events: view
            .recent_events
            .into_iter()
            .map(EventLine::from)
            .collect(),
        model_clv,
        marketing_opt_out_at: view.opted_out_at,
    }))
}

/// The kept model's prediction for the customer, money in fen, with the model's
/// calibration end, horizon and discount.
fn model_clv(
    store: &mut dyn Store,
    tenant: &Tenant,
    customer: &CustomerId,
) -> anyhow::Result<Option<Value>> {
    let Some(model) = stored_model(store, tenant)? else {
        return Ok(None);
    };
    let lines = predict_kept(store, tenant, &model, std::slice::from_ref(customer))?;
    let Some((summary, prediction)) = lines.first() else {
        return Ok(None);
    };
    let mut value = serde_json::to_value(PredictionLine::new(summary, prediction))
        .context("writing a prediction")?;
    if let Value::Object(m) = &mut value {
        m.remove("customer_id");
        for key in MODEL_MONEY {
            if let Some(yuan) = m.get(key).and_then(Value::as_f64) {
                m.insert(key.into(), Value::from((yuan * 100.0).round() as i64));
            }
        }
        m.insert(
            "calibration_end".into(),
            Value::String(model.calibration_end.to_string()),
        );
        m.insert(
            "horizon_weeks".into(),
            serde_json::json!(model.horizon_weeks),
        );
        m.insert(
            "discount_monthly".into(),
            serde_json::json!(model.discount_monthly),
        );
    }
    Ok(Some(value))
}

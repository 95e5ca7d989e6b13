//! Offers and campaigns: creating them, running a campaign (a decision per customer with
//! its reason, the coupons issued and the webhook deliveries, in one transaction), the
//! decisions read back, the export for manual sending, and the results against the holdout.

use std::collections::HashMap;

use anyhow::Context;
use serde::Serialize;

use siyu_core::campaign::stats::{Interval, Moments, proportion_diff, too_small, welch_diff};
use siyu_core::campaign::{
    Audience, Budget, CampaignSpec, CustomerFacts, Cycle, Decision, Offer, Outcome, Reason,
    SendChannel, Trigger, check_name, coupon_code, decide, in_holdout, not_before,
};
use siyu_core::fasthash::FastHashMap;
use siyu_core::privacy::{AuditAction, ERASED_PREFIX};
use siyu_core::rng::Rng;
use siyu_core::rule::{Bitset, Rule};
use siyu_core::segment::rules::RuleKind;
use siyu_core::{CustomerId, Money, OrderStatus, Timestamp};
use siyu_store::{
    AuditEntry, DecisionRow, DueStep, ExportRow, NewCoupon, NewDecision, NewDelivery, NewRun,
    NewTrigger, Store, StoredCampaign, StoredOffer, Tenant,
};

use super::evaluate;
use super::privacy::suppression_key;
use super::segments::{self, rule_settings};
use super::tokens::random_hex;

/// What can go wrong with offers and campaigns, by what the caller answers.
#[derive(Debug, thiserror::Error)]
pub enum CampaignsError {
    #[error("there is no offer '{0}' (siyu coupon list shows them)")]
    OfferNotFound(String),
    #[error("there is already an offer '{0}'")]
    OfferExists(String),
    #[error("there is no campaign '{0}' (siyu campaign list shows them)")]
    CampaignNotFound(String),
    #[error("there is already a campaign '{0}'")]
    CampaignExists(String),
    /// An offer or campaign that is refused as defined.
    #[error("{0}")]
    Invalid(String),
    /// A campaign that cannot run now: paused, scheduled later, or run meanwhile.
    #[error("{0}")]
    NotRunnable(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<siyu_core::campaign::CampaignError> for CampaignsError {
    fn from(e: siyu_core::campaign::CampaignError) -> CampaignsError {
        CampaignsError::Invalid(e.to_string())
    }
}

impl From<siyu_store::StoreError> for CampaignsError {
    fn from(e: siyu_store::StoreError) -> CampaignsError {
        CampaignsError::Other(e.into())
    }
}

type Result<T, E = CampaignsError> = std::result::Result<T, E>;

// ---- offers --------------------------------------------------------------------------

/// Saves an offer after checking it.
pub fn create_offer(
    store: &mut dyn Store,
    tenant: &Tenant,
    name: &str,
    offer: &Offer,
    by: &str,
) -> Result<()> {
    check_name(name)?;
    offer.check()?;
    let spec = serde_json::to_string(offer).context("writing the offer")?;
    if !store.create_offer(tenant, name, &spec, by, Timestamp::now())? {
        return Err(CampaignsError::OfferExists(name.to_owned()));
    }
    Ok(())
}

/// The tenant's offers with their definitions.
pub fn offers(store: &mut dyn Store, tenant: &Tenant) -> Result<Vec<(StoredOffer, Offer)>> {
    store
        .offers(tenant)
        .context("reading the offers")?
        .into_iter()
        .map(|o| {
            let offer: Offer = serde_json::from_str(&o.spec)
                .with_context(|| format!("reading offer '{}'", o.name))?;
            Ok((o, offer))
        })
        .collect()
}

pub fn offer(store: &mut dyn Store, tenant: &Tenant, name: &str) -> Result<(StoredOffer, Offer)> {
    offers(store, tenant)?
        .into_iter()
        .find(|(o, _)| o.name == name)
        .ok_or_else(|| CampaignsError::OfferNotFound(name.to_owned()))
}

// ---- campaigns -----------------------------------------------------------------------

/// Saves a campaign after checking it: its offers exist, its segment exists, its tier
/// rules read. Its holdout key is drawn now.
pub fn create_campaign(
    store: &mut dyn Store,
    tenant: &Tenant,
    name: &str,
    spec: &CampaignSpec,
    by: &str,
) -> Result<()> {
    create_campaign_keyed(store, tenant, name, spec, by, &random_hex(16)?)
}

/// [`create_campaign`] with the holdout's key given (the demo's, from its seed, so that
/// the same seed holds out the same customers).
pub fn create_campaign_keyed(
    store: &mut dyn Store,
    tenant: &Tenant,
    name: &str,
    spec: &CampaignSpec,
    by: &str,
    secret: &str,
) -> Result<()> {
    check_name(name)?;
    spec.check()?;
    let known = offers(store, tenant)?;
    for t in &spec.tiers {
        if let Some(o) = &t.offer
            && !known.iter().any(|(k, _)| k.name == *o)
        {
            return Err(CampaignsError::Invalid(format!(
                "tier '{}': there is no offer '{o}' (siyu coupon create makes one)",
                t.name
            )));
        }
        if !t.rule.trim().is_empty() {
            Rule::parse(&t.rule).map_err(|e| {
                CampaignsError::Invalid(format!(
                    "tier '{}': {}",
                    t.name,
                    segments::show_rule_error(&t.rule, &e)
                ))
            })?;
        }
    }
    if let SendChannel::Webhook { endpoint } = &spec.channel
        && !store.webhooks(tenant)?.iter().any(|w| w.name == *endpoint)
    {
        return Err(CampaignsError::Invalid(format!(
            "there is no webhook endpoint '{endpoint}' (siyu webhook add makes one)"
        )));
    }
    if let Audience::Segment { name: segment } = &spec.audience {
        let rules = store.read_pool(tenant)?.rules()?;
        if !rules
            .iter()
            .any(|r| r.kind == RuleKind::Segment && r.name == *segment)
        {
            return Err(CampaignsError::Invalid(format!(
                "there is no segment '{segment}' (siyu segment list shows them)"
            )));
        }
    }
    if let Some(Trigger::Enter { segment }) = &spec.trigger {
        let rules = store.read_pool(tenant)?.rules()?;
        if !rules
            .iter()
            .any(|r| r.kind == RuleKind::Segment && r.name == *segment)
        {
            return Err(CampaignsError::Invalid(format!(
                "there is no segment '{segment}' (siyu segment list shows them)"
            )));
        }
    }
    let triggers: Vec<NewTrigger> = match &spec.trigger {
        None => Vec::new(),
        Some(trigger) => {
            let (kind, on) = trigger.membership();
            spec.steps
                .iter()
                .enumerate()
                .map(|(i, s)| NewTrigger {
                    step: i as u32 + 1,
                    kind: kind.to_owned(),
                    name: on.clone(),
                    delay_secs: s.delay_secs,
                })
                .collect()
        }
    };
    let json = serde_json::to_string(spec).context("writing the campaign")?;
    if !store.create_campaign(tenant, name, &json, secret, by, Timestamp::now(), &triggers)? {
        return Err(CampaignsError::CampaignExists(name.to_owned()));
    }
    Ok(())
}

/// A campaign as stored, with its definition.
pub struct Campaign {
    pub stored: StoredCampaign,
    pub spec: CampaignSpec,
}

pub fn campaigns(store: &mut dyn Store, tenant: &Tenant) -> Result<Vec<Campaign>> {
    store
        .campaigns(tenant)
        .context("reading the campaigns")?
        .into_iter()
        .map(|c| {
            let spec: CampaignSpec = serde_json::from_str(&c.spec)
                .with_context(|| format!("reading campaign '{}'", c.name))?;
            Ok(Campaign { stored: c, spec })
        })
        .collect()
}

pub fn campaign(store: &mut dyn Store, tenant: &Tenant, name: &str) -> Result<Campaign> {
    campaigns(store, tenant)?
        .into_iter()
        .find(|c| c.stored.name == name)
        .ok_or_else(|| CampaignsError::CampaignNotFound(name.to_owned()))
}

/// Pauses (`paused`) or resumes (`active`) a campaign: a paused one does not run.
pub fn set_status(store: &mut dyn Store, tenant: &Tenant, name: &str, status: &str) -> Result<()> {
    if !store.set_campaign_status(tenant, name, status)? {
        return Err(CampaignsError::CampaignNotFound(name.to_owned()));
    }
    Ok(())
}

// ---- running -------------------------------------------------------------------------

/// What a run decided.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunSummary {
    pub run: u32,
    pub audience: u64,
    /// (outcome, reason) → customers, in outcome and reason order.
    pub counts: Vec<(String, String, u64)>,
    pub coupons: u64,
    pub face_value: Money,
    /// When the sends go out (the end of the quiet hours, or the run's time).
    pub not_before: Option<Timestamp>,
    pub deliveries: u64,
    pub seconds: f64,
}

/// Runs a campaign now: see [`run_at`].
pub fn run(store: &mut dyn Store, tenant: &Tenant, name: &str) -> Result<RunSummary> {
    run_at(store, tenant, name, Timestamp::now())
}

/// Decides every customer of the campaign's audience as of `now`, and records the
/// decisions, the coupons issued and the webhook deliveries in one transaction.
pub fn run_at(
    store: &mut dyn Store,
    tenant: &Tenant,
    name: &str,
    now: Timestamp,
) -> Result<RunSummary> {
    run_or_preview(store, tenant, name, now, true)
}

/// What a run as of `now` would decide, by the same code as [`run_at`], written nowhere:
/// no decision, coupon, delivery or run is recorded (`run` is the number it would have).
pub fn preview_at(
    store: &mut dyn Store,
    tenant: &Tenant,
    name: &str,
    now: Timestamp,
) -> Result<RunSummary> {
    run_or_preview(store, tenant, name, now, false)
}

/// A run's decisions as of `now`, recorded when `record`.
fn run_or_preview(
    store: &mut dyn Store,
    tenant: &Tenant,
    name: &str,
    now: Timestamp,
    record: bool,
) -> Result<RunSummary> {
    let c = campaign(store, tenant, name)?;
    if c.stored.status != "active" {
        return Err(CampaignsError::NotRunnable(format!(
            "campaign '{name}' is paused (siyu campaign resume {name} lets it run)"
        )));
    }
    if c.spec.trigger.is_some() {
        return Err(CampaignsError::NotRunnable(format!(
            "campaign '{name}' is triggered: its steps are decided when due (siyu campaign tick)"
        )));
    }
    if let Some(start) = c.spec.start_at
        && now < start
    {
        return Err(CampaignsError::NotRunnable(format!(
            "campaign '{name}' is scheduled for {start}, not before"
        )));
    }
    // The audience, sorted, with no repeats.
    let mut ids: Vec<CustomerId> = match &c.spec.audience {
        Audience::Segment { name: segment } => {
            segments::member_ids(store, tenant, RuleKind::Segment, segment)
                .with_context(|| format!("reading the members of segment '{segment}'"))?
        }
        Audience::List { ids } => ids
            .iter()
            .map(|i| {
                CustomerId::parse(i)
                    .map_err(|e| CampaignsError::Invalid(format!("customer id '{i}': {e}")))
            })
            .collect::<Result<_>>()?,
    };
    ids.sort();
    ids.dedup();
    decide_and_record(store, tenant, c, &ids, now, None, record)
}

/// A step of a triggered campaign being decided: its number, its tier (none: by the
/// tiers' rules), who left the trigger's segment or stage before it came due, and the
/// queued rows it decides.
struct StepRun<'a> {
    step: u32,
    tier: Option<usize>,
    left: std::collections::HashSet<&'a str>,
    done: &'a [DueStep],
}

/// Decides each of `ids` (sorted, no repeats) as of `now`, and records the decisions, the
/// coupons issued, the webhook deliveries (and a step's queued rows done) in one
/// transaction: a run of the campaign. Without `record`, nothing is written (a preview).
fn decide_and_record(
    store: &mut dyn Store,
    tenant: &Tenant,
    c: Campaign,
    ids: &[CustomerId],
    now: Timestamp,
    step: Option<&StepRun<'_>>,
    record: bool,
) -> Result<RunSummary> {
    let started = std::time::Instant::now();
    let Campaign { stored, spec } = c;
    let name = stored.name.as_str();
    let policy = &spec.policy;
    let zone = &tenant.zone;
    let settings = rule_settings(store, tenant)?;

    // Their stages, classes and cycles as of today, against today's thresholds.
    let today = zone.day_of(now);
    let pool = {
        let mut tx = store.read_pool(tenant)?;
        let thresholds = match tx.thresholds()? {
            Some(t) if t.day == today => t,
            _ => evaluate::compute_thresholds(tx.as_mut(), zone, today)?,
        };
        let pool = evaluate::pool_of(tx.as_mut(), zone, &settings, &thresholds, ids)?;
        tx.commit()?;
        pool
    };
    let tiers: Vec<Bitset> = spec
        .tiers
        .iter()
        .map(|t| {
            if t.rule.trim().is_empty() {
                Ok(Bitset::full(pool.rows.len()))
            } else {
                Rule::parse(&t.rule)
                    .and_then(|r| r.members(&pool.table))
                    .map_err(|e| CampaignsError::Invalid(format!("tier '{}': {e}", t.name)))
            }
        })
        .collect::<Result<_>>()?;

    // Recent sends, for the caps.
    let channel = spec.channel.name();
    let freq_since = now - jiff::SignedDuration::from_hours(24 * i64::from(policy.frequency_days));
    let platform_since = policy
        .platform_cap
        .map(|(_, days)| now - jiff::SignedDuration::from_hours(24 * i64::from(days)));
    let since = platform_since.map_or(freq_since, |p| p.min(freq_since));
    let mut touches: FastHashMap<Box<str>, (u32, u32)> = FastHashMap::default();
    store.sends_since(tenant, since, &mut |customer, ch, at| {
        let t = match touches.get_mut(customer) {
            Some(t) => t,
            None => touches.entry(customer.into()).or_default(),
        };
        if at >= freq_since {
            t.0 += 1;
        }
        if platform_since.is_some_and(|p| at >= p) && ch == channel {
            t.1 += 1;
        }
    })?;

    // The budgets of the tiers' offers (tiers may share one).
    let mut offer_names: Vec<String> = Vec::new();
    let mut budgets: Vec<Budget> = Vec::new();
    let mut validity = Vec::new();
    let known = offers(store, tenant)?;
    let tier_offer: Vec<Option<usize>> = spec
        .tiers
        .iter()
        .map(|t| {
            let name = t.offer.as_ref()?;
            if let Some(i) = offer_names.iter().position(|n| n == name) {
                return Some(Ok(i));
            }
            Some(match known.iter().find(|(o, _)| o.name == *name) {
                Some((stored, offer)) => {
                    offer_names.push(name.clone());
                    budgets.push(Budget::of(offer, stored.issued, stored.issued_face));
                    validity.push(offer.validity);
                    Ok(offer_names.len() - 1)
                }
                None => Err(CampaignsError::Invalid(format!(
                    "tier '{}': there is no offer '{name}'",
                    t.name
                ))),
            })
        })
        .map(Option::transpose)
        .collect::<Result<_>>()?;

    let runs_before = u32::try_from(stored.runs.len()).unwrap_or(u32::MAX);
    let run_number = runs_before + 1;
    let send_after = not_before(now, zone, policy.quiet_hours);
    let mut seed = [0u8; 8];
    let hex = random_hex(8)?;
    for (i, b) in seed.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or(0);
    }
    let mut rng = Rng::new(u64::from_le_bytes(seed));
    let mut codes = std::collections::HashSet::new();

    // Every audience id: a pool row, or unknown.
    let mut decisions: Vec<NewDecision<'_>> = Vec::with_capacity(ids.len());
    let mut row = 0usize;
    let rows = pool.rows.len();
    let mut coupons = 0u64;
    let mut face = Money::ZERO;
    for id in ids {
        let id = id.as_str();
        let at_row = row < rows && pool.table.customer_id(row) == id;
        let facts = if at_row {
            let r = &pool.rows[row];
            let (span, gaps, own) = r.cycle;
            let (freq, on_channel) = touches.get(id).copied().unwrap_or_default();
            CustomerFacts {
                unknown: false,
                erased: id.starts_with(ERASED_PREFIX),
                opted_out: pool.opted_out.contains(row),
                holdout: in_holdout(&stored.secret, tenant.id, name, id, policy.holdout_bp),
                tier: match step {
                    Some(StepRun { tier: Some(t), .. }) => Some(*t),
                    _ => tiers.iter().position(|t| t.contains(row)),
                },
                // A run as of a past day reads today's profiles: a purchase after that
                // day says nothing of the one before it (never negative for a run now).
                days_since_purchase: r.days_since_order.filter(|d| *d >= 0),
                cycle: Cycle { span, gaps, own },
                touches: freq,
                channel_touches: on_channel,
            }
        } else {
            CustomerFacts {
                unknown: true,
                erased: false,
                opted_out: false,
                holdout: false,
                tier: None,
                days_since_purchase: None,
                cycle: Cycle {
                    span: 1,
                    gaps: 1,
                    own: false,
                },
                touches: 0,
                channel_touches: 0,
            }
        };
        if at_row {
            row += 1;
        }
        let offer = facts.tier.and_then(|t| tier_offer[t]);
        let left = step.is_some_and(|s| s.left.contains(id));
        let d = if left && !(facts.unknown || facts.erased || facts.opted_out || facts.holdout) {
            // Recorded, not sent: a step for someone no longer in its segment or stage.
            Decision {
                outcome: Outcome::Held,
                reason: Reason::Left,
                tier: facts.tier,
                coupon: false,
            }
        } else {
            decide(&facts, policy, offer.map(|o| &mut budgets[o]))
        };
        let coupon = if d.coupon {
            let o = offer.expect("a coupon comes from the tier's offer");
            let mut code = coupon_code(&mut rng);
            while !codes.insert(code.clone()) {
                code = coupon_code(&mut rng);
            }
            coupons += 1;
            face += budgets[o].face;
            Some(Box::new(NewCoupon {
                code,
                offer: offer_names[o].clone(),
                face: budgets[o].face,
                valid_until: validity[o].valid_until(now, zone),
            }))
        } else {
            None
        };
        // The figures behind a reason are kept; a reason without any reads from its code.
        let detail = matches!(
            d.reason,
            Reason::InCycle { .. }
                | Reason::MessageInCycle { .. }
                | Reason::FrequencyCap { .. }
                | Reason::PlatformCap { .. }
        )
        .then(|| d.reason.detail());
        decisions.push(NewDecision {
            customer_id: id,
            tier: d.tier.map(|t| spec.tiers[t].name.as_str()),
            outcome: d.outcome.name(),
            reason: d.reason.code(),
            detail,
            coupon,
        });
    }

    // The webhook sends' deliveries.
    let deliveries: Vec<NewDelivery> = match &spec.channel {
        SendChannel::Export => Vec::new(),
        SendChannel::Webhook { endpoint } => decisions
            .iter()
            .filter(|d| d.outcome == "send")
            .map(|d| {
                let send_id = format!("{}.{run_number}.{}", stored.id, d.customer_id);
                let coupon = d.coupon.as_ref();
                let offer = coupon
                    .and_then(|c| known.iter().find(|(o, _)| o.name == c.offer))
                    .map(|(_, o)| o.benefit.label());
                let payload = serde_json::json!({
                    "send_id": send_id,
                    "tenant": tenant.name,
                    "campaign": name,
                    "step": step.map(|s| s.step),
                    "customer_id": d.customer_id,
                    "tier": d.tier,
                    "offer": coupon.map(|c| c.offer.as_str()),
                    "benefit": offer,
                    "coupon_code": coupon.map(|c| c.code.as_str()),
                    "valid_until": coupon.map(|c| c.valid_until.to_string()),
                    "message": spec.message,
                });
                NewDelivery {
                    send_id,
                    endpoint: endpoint.clone(),
                    payload: payload.to_string(),
                    not_before: send_after,
                }
            })
            .collect(),
    };

    let mut counts: FastHashMap<(&str, &str), u64> = FastHashMap::default();
    for d in &decisions {
        *counts.entry((d.outcome, d.reason)).or_default() += 1;
    }
    let mut counts: Vec<(String, String, u64)> = counts
        .into_iter()
        .map(|((o, r), n)| (o.to_owned(), r.to_owned(), n))
        .collect();
    let rank = |o: &str| Outcome::parse(o).map_or(9, |o| o as u8);
    counts.sort_by(|a, b| (rank(&a.0), &a.1).cmp(&(rank(&b.0), &b.1)));

    if !record {
        return Ok(RunSummary {
            run: run_number,
            audience: ids.len() as u64,
            counts,
            coupons,
            face_value: face,
            not_before: Some(send_after),
            deliveries: deliveries.len() as u64,
            seconds: started.elapsed().as_secs_f64(),
        });
    }
    let new_run = NewRun {
        campaign_id: stored.id,
        run: run_number,
        at: now,
        channel: &channel,
        not_before: send_after,
        decisions,
        steps_done: step.map_or(&[], |s| s.done),
    };
    let recorded = match store.record_run(tenant, &new_run, &deliveries) {
        Ok(n) => n,
        Err(siyu_store::StoreError::Conflict(why)) => {
            return Err(CampaignsError::NotRunnable(format!(
                "campaign '{name}': {why}; run it again"
            )));
        }
        Err(e) => {
            return Err(anyhow::Error::from(e)
                .context(format!("recording run {run_number} of campaign '{name}'"))
                .into());
        }
    };
    Ok(RunSummary {
        run: recorded,
        audience: ids.len() as u64,
        counts,
        coupons,
        face_value: face,
        not_before: Some(send_after),
        deliveries: deliveries.len() as u64,
        seconds: started.elapsed().as_secs_f64(),
    })
}

// ---- triggered steps -----------------------------------------------------------------

/// The most queued steps one tick decides; the rest wait for the next.
pub const TICK_LIMIT: usize = 10_000;

/// What a tick decided: per campaign and step, its run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TickSummary {
    /// Queued steps decided (a customer's step once each).
    pub steps: u64,
    pub runs: Vec<StepSummary>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepSummary {
    pub campaign: String,
    pub step: u32,
    #[serde(flatten)]
    pub run: RunSummary,
}

/// Decides the tenant's queued steps due by `now` (at most [`TICK_LIMIT`]), a run per
/// campaign and step, each with the policy as a run applies it and the customers no
/// longer in the trigger's segment or stage recorded as `left`. A paused campaign's steps
/// stay queued. A step another tick decided meanwhile makes this one's run a conflict,
/// nothing written (the next tick reads the queue again).
pub fn tick(store: &mut dyn Store, tenant: &Tenant, now: Timestamp) -> Result<TickSummary> {
    // A step decided by another tick after this read is not decided twice: its row is
    // gone when this run records, which makes the run a conflict, nothing written.
    let due = store
        .due_steps(tenant, None, Some(now), TICK_LIMIT)
        .context("reading the steps due")?;
    if due.is_empty() {
        return Ok(TickSummary::default());
    }
    let all = campaigns(store, tenant)?;
    let mut groups: std::collections::BTreeMap<(i64, u32), Vec<DueStep>> = Default::default();
    for d in due {
        groups.entry((d.campaign_id, d.step)).or_default().push(d);
    }
    let mut summary = TickSummary::default();
    for ((campaign_id, step), done) in groups {
        let Some(c) = all.iter().find(|c| c.stored.id == campaign_id) else {
            continue;
        };
        let Some(trigger) = c.spec.trigger.as_ref() else {
            continue;
        };
        if c.stored.status != "active" {
            continue;
        }
        let mut ids: Vec<CustomerId> = done
            .iter()
            .filter_map(|d| CustomerId::parse(&d.customer_id).ok())
            .collect();
        ids.sort();
        ids.dedup();
        let (kind, on) = trigger.membership();
        let members = if !trigger.can_leave() {
            Vec::new()
        } else {
            let mut tx = store.read_pool(tenant)?;
            let m = tx.memberships_of(&ids)?;
            tx.commit()?;
            m
        };
        let still: std::collections::HashSet<&str> = members
            .iter()
            .filter(|m| m.kind.as_str() == kind && m.name == on)
            .map(|m| m.customer_id.as_str())
            .collect();
        let left = ids
            .iter()
            .map(CustomerId::as_str)
            .filter(|id| trigger.can_leave() && !still.contains(id))
            .collect();
        let tier = c
            .spec
            .steps
            .get(step as usize - 1)
            .and_then(|s| s.tier.as_ref())
            .and_then(|t| c.spec.tiers.iter().position(|k| k.name == *t));
        let run = StepRun {
            step,
            tier,
            left,
            done: &done,
        };
        let copy = Campaign {
            stored: c.stored.clone(),
            spec: c.spec.clone(),
        };
        let decided = decide_and_record(store, tenant, copy, &ids, now, Some(&run), true)?;
        summary.steps += done.len() as u64;
        summary.runs.push(StepSummary {
            campaign: c.stored.name.clone(),
            step,
            run: decided,
        });
    }
    Ok(summary)
}

/// How often `siyu serve` decides the steps due: a zero-delay step is in the outbox
/// within this and the decision's time of the entry that queued it.
pub const TICK_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Starts the ticker of `siyu serve` on a thread of its own with a connection of its own
/// to `db`: every [`TICK_EVERY`] it decides every tenant's steps due, until `stop`.
pub fn start_ticker(
    db: &str,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let mut store = siyu_store::open(db).context("opening the database for the steps' ticker")?;
    std::thread::Builder::new()
        .name("siyu-steps".into())
        .spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // One indexed read when nothing is due, however many tenants there are.
                let now = Timestamp::now();
                let due = store.tenants_with_due_steps(now).and_then(|due| {
                    if due.is_empty() {
                        return Ok(Vec::new());
                    }
                    let all = store.tenants()?;
                    Ok(all.into_iter().filter(|t| due.contains(&t.id)).collect())
                });
                match due {
                    Ok(tenants) => {
                        for t in &tenants {
                            if let Err(e) = tick(store.as_mut(), t, now) {
                                tracing::warn!(tenant = %t.name, "the steps' ticker: {e:#}");
                            }
                        }
                    }
                    Err(e) => tracing::warn!("the steps' ticker: {e:#}"),
                }
                std::thread::sleep(TICK_EVERY);
            }
        })
        .context("starting the steps' ticker")
}

/// A campaign's queued steps, the first due first (at most `limit`).
pub fn pending(
    store: &mut dyn Store,
    tenant: &Tenant,
    name: &str,
    limit: usize,
) -> Result<Vec<DueStep>> {
    let c = campaign(store, tenant, name)?;
    Ok(store.due_steps(tenant, Some(c.stored.id), None, limit)?)
}

/// A campaign's decisions, of one customer or all.
pub fn decisions(
    store: &mut dyn Store,
    tenant: &Tenant,
    name: &str,
    customer: Option<&str>,
) -> Result<Vec<DecisionRow>> {
    let c = campaign(store, tenant, name)?;
    let mut out = Vec::new();
    store.decisions(tenant, c.stored.id, customer, &mut |d| out.push(d))?;
    Ok(out)
}

// ---- export --------------------------------------------------------------------------

/// A line of the manual-sending CSV.
#[derive(Debug, Clone, Serialize)]
pub struct ExportLine {
    pub customer_id: String,
    pub name: String,
    pub phone: String,
    pub tier: String,
    pub coupon_code: String,
    pub message: String,
    pub not_before: String,
}

/// The campaign's export sends not yet exported, marked sent: phones masked unless
/// `full_phones`, which is recorded in the audit log, one entry per customer.
pub fn export(
    store: &mut dyn Store,
    tenant: &Tenant,
    name: &str,
    full_phones: bool,
    actor: &str,
) -> Result<Vec<ExportLine>> {
    let c = campaign(store, tenant, name)?;
    if c.spec.channel != SendChannel::Export {
        return Err(CampaignsError::Invalid(format!(
            "campaign '{name}' sends by {}, not by export",
            c.spec.channel.name()
        )));
    }
    let now = Timestamp::now();
    let rows: Vec<ExportRow> = store.export_sends(tenant, c.stored.id, now)?;
    if full_phones {
        let mut tx = store.begin_privacy(tenant)?;
        for r in rows.iter().filter(|r| r.phone.is_some()) {
            let id = CustomerId::parse(&r.customer_id).context("a stored customer id")?;
            tx.record_audit(&AuditEntry {
                at: now,
                actor: actor.to_owned(),
                action: AuditAction::Export,
                subject: suppression_key(tenant, &id),
                detail: format!("full phone in the export of campaign '{name}'"),
            })?;
        }
        tx.commit()?;
    }
    Ok(rows
        .into_iter()
        .map(|r| ExportLine {
            customer_id: r.customer_id,
            name: r.name.unwrap_or_default(),
            phone: r
                .phone
                .map(|p| {
                    if full_phones {
                        p
                    } else {
                        siyu_core::customer::hide_phone(&p)
                    }
                })
                .unwrap_or_default(),
            tier: r.tier.unwrap_or_default(),
            coupon_code: r.coupon_code.unwrap_or_default(),
            message: c.spec.message.clone(),
            not_before: r.not_before.map(|t| t.to_string()).unwrap_or_default(),
        })
        .collect())
}

// ---- results -------------------------------------------------------------------------

/// One group's figures over the attribution window.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GroupFigures {
    pub customers: u64,
    pub buyers: u64,
    pub orders: u64,
    pub revenue: Money,
    /// Revenue per customer, fen.
    pub revenue_per_customer: f64,
    pub conversion: f64,
    #[serde(skip)]
    moments: Moments,
}

/// Treated (every customer decided, sent or held back: intent to treat) against the
/// holdout, for the campaign or one tier.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Comparison {
    pub tier: Option<String>,
    pub treated: GroupFigures,
    pub holdout: GroupFigures,
    pub sent: u64,
    pub coupons: u64,
    pub redeemed: u64,
    pub redemption_rate: f64,
    /// Face value of the coupons redeemed: what they cost at most.
    pub coupon_cost: Money,
    /// (treated − holdout revenue per customer) × treated customers, fen.
    pub incremental_gmv: f64,
    /// Incremental GMV over coupon cost; none without cost.
    pub roi: Option<f64>,
    /// Conversion lift (treated − holdout) and its 95% interval.
    pub conversion_lift: Option<Lift>,
    /// Revenue per customer lift in fen and its 95% interval (Welch).
    pub revenue_lift: Option<Lift>,
    /// Why no conclusion can be drawn, when the groups are too small.
    pub too_small: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Lift {
    pub diff: f64,
    pub low: f64,
    pub high: f64,
    pub significant: bool,
}

impl From<Interval> for Lift {
    fn from(i: Interval) -> Lift {
        Lift {
            diff: i.diff,
            low: i.low,
            high: i.high,
            significant: i.excludes_zero(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Results {
    pub campaign: String,
    pub attribution_days: u32,
    pub overall: Comparison,
    pub tiers: Vec<Comparison>,
}

/// The campaign's results: each customer counted once, from their first decision (sent
/// or held back: treated; holdout), their paid orders in the attribution window after it.
pub fn results(store: &mut dyn Store, tenant: &Tenant, name: &str) -> Result<Results> {
    let c = campaign(store, tenant, name)?;
    let window = jiff::SignedDuration::from_hours(24 * i64::from(c.spec.policy.attribution_days));
    // customer → (tier, holdout, decided at, sent)
    let mut first: HashMap<String, (Option<String>, bool, Timestamp, bool)> = HashMap::new();
    store.decisions(tenant, c.stored.id, None, &mut |d| {
        let group = match d.outcome.as_str() {
            "holdout" => true,
            "send" | "held" => false,
            _ => return,
        };
        let sent = d.outcome == "send";
        first
            .entry(d.customer_id)
            .and_modify(|e| e.3 |= sent)
            .or_insert((d.tier, group, d.decided_at, sent));
    })?;
    let mut ids: Vec<CustomerId> = first
        .keys()
        .filter_map(|k| CustomerId::parse(k).ok())
        .collect();
    ids.sort();
    // customer → (orders, revenue) in the window
    let mut bought: HashMap<String, (u64, i64)> = HashMap::new();
    store.order_facts_of(tenant, &ids, &mut |o| {
        let Some((_, _, at, _)) = first.get(o.customer_id.as_str()) else {
            return;
        };
        if o.status == OrderStatus::Paid && o.ordered_at >= *at && o.ordered_at < *at + window {
            let b = bought.entry(o.customer_id.as_str().to_owned()).or_default();
            b.0 += 1;
            b.1 += o.amount.fen();
        }
    })?;
    let coupons = store.coupons_of(tenant, c.stored.id)?;
    let uses = store.code_uses(tenant, c.stored.id)?;
    let mut redeemed: HashMap<&str, bool> = HashMap::new();
    for k in &coupons {
        let used = uses
            .iter()
            .any(|u| u.code == k.code && u.at >= k.issued_at && u.at < k.valid_until);
        redeemed.insert(k.code.as_str(), used);
    }

    let mut overall = Comparison::default();
    let mut tiers: Vec<Comparison> = c
        .spec
        .tiers
        .iter()
        .map(|t| Comparison {
            tier: Some(t.name.clone()),
            ..Comparison::default()
        })
        .collect();
    let mut keys: Vec<&String> = first.keys().collect();
    keys.sort();
    for id in keys {
        let (tier, holdout, _, sent) = &first[id];
        let (orders, revenue) = bought.get(id).copied().unwrap_or_default();
        let tier_index = tier
            .as_ref()
            .and_then(|t| c.spec.tiers.iter().position(|x| x.name == *t));
        for cmp in std::iter::once(&mut overall).chain(tier_index.map(|i| &mut tiers[i])) {
            let g = if *holdout {
                &mut cmp.holdout
            } else {
                &mut cmp.treated
            };
            g.customers += 1;
            g.buyers += u64::from(orders > 0);
            g.orders += orders;
            g.revenue += Money::from_fen(revenue);
            g.moments.push(revenue as f64);
            if *sent {
                cmp.sent += 1;
            }
        }
    }
    for k in &coupons {
        let tier = first.get(&k.customer_id).and_then(|f| f.0.clone());
        let tier_index = tier.and_then(|t| c.spec.tiers.iter().position(|x| x.name == t));
        let used = redeemed.get(k.code.as_str()).copied().unwrap_or(false);
        for cmp in std::iter::once(&mut overall).chain(tier_index.map(|i| &mut tiers[i])) {
            cmp.coupons += 1;
            if used {
                cmp.redeemed += 1;
                cmp.coupon_cost += k.face;
            }
        }
    }
    for cmp in std::iter::once(&mut overall).chain(tiers.iter_mut()) {
        finish(cmp);
    }
    Ok(Results {
        campaign: name.to_owned(),
        attribution_days: c.spec.policy.attribution_days,
        overall,
        tiers,
    })
}

fn finish(cmp: &mut Comparison) {
    for g in [&mut cmp.treated, &mut cmp.holdout] {
        if g.customers > 0 {
            g.revenue_per_customer = g.revenue.fen() as f64 / g.customers as f64;
            g.conversion = g.buyers as f64 / g.customers as f64;
        }
    }
    if cmp.coupons > 0 {
        cmp.redemption_rate = cmp.redeemed as f64 / cmp.coupons as f64;
    }
    let (t, h) = (&cmp.treated, &cmp.holdout);
    if h.customers > 0 {
        cmp.incremental_gmv =
            (t.revenue_per_customer - h.revenue_per_customer) * t.customers as f64;
    }
    if cmp.coupon_cost > Money::ZERO {
        cmp.roi = Some(cmp.incremental_gmv / cmp.coupon_cost.fen() as f64);
    }
    cmp.conversion_lift =
        proportion_diff(t.buyers, t.customers, h.buyers, h.customers).map(Lift::from);
    cmp.revenue_lift = welch_diff(&t.moments, &h.moments).map(Lift::from);
    cmp.too_small = too_small(t.buyers, t.customers, h.buyers, h.customers);
}

// ---- the demo's campaigns ------------------------------------------------------------

/// Two finished campaigns in the demo shop, so that results show something real: a
/// win-back 40 days before `until` and a thank-you 20 days before, to the shop's buyers, with the default tiers
/// and offers, each decided as of its day; some of the coupons sent are redeemed (a
/// `coupon_redeemed` event within their validity), chosen by `seed`, as is the holdout.
/// Nothing is done when the demo's campaigns exist already or the shop has no buyer.
/// Returns the campaigns made.
pub fn demo_campaigns(
    store: &mut dyn Store,
    tenant: &Tenant,
    seed: u64,
    until: jiff::civil::Date,
) -> Result<Vec<String>> {
    use siyu_core::campaign::{Benefit, Validity, default_tiers};
    const NAMES: [(&str, i64, &str); 2] = [
        ("demo_winback", 40, "好久不见，送您一张券，欢迎回来看看"),
        (
            "demo_thanks",
            20,
            "感谢一直以来的支持，新品到店，凭券更优惠",
        ),
    ];
    let existing = campaigns(store, tenant)?;
    if existing.iter().any(|c| c.stored.name == NAMES[0].0) {
        return Ok(Vec::new());
    }
    let known = offers(store, tenant)?;
    for (name, benefit, days) in [
        (
            "demo_high",
            Benefit::Threshold {
                min: Money::yuan(300),
                off: Money::yuan(50),
            },
            14,
        ),
        (
            "demo_back",
            Benefit::NoThreshold {
                off: Money::yuan(10),
            },
            7,
        ),
    ] {
        if !known.iter().any(|(o, _)| o.name == name) {
            let offer = Offer {
                benefit,
                validity: Validity::Days { days },
                max_coupons: None,
                max_face: None,
            };
            create_offer(store, tenant, name, &offer, "demo")?;
        }
    }
    // Sent to the shop's buyers, as a merchant's win-back or thank-you is (the rest of
    // the pool has nothing to come back to or be thanked for).
    let mut ids = Vec::new();
    store.scan_profiles(tenant, &mut |p| {
        if p.orders > 0 {
            ids.push(p.customer_id.as_str().to_owned());
        }
    })?;
    ids.sort_unstable();
    if ids.is_empty() {
        // A shop with no buyer yet has nobody to win back or thank.
        return Ok(Vec::new());
    }
    let zone = tenant.zone.clone();
    let mut rng = Rng::new(seed ^ 0x5EED_CA4B);
    let mut events = String::new();
    let mut made = Vec::new();
    for (name, days_before, message) in NAMES {
        let spec = CampaignSpec {
            audience: Audience::List { ids: ids.clone() },
            tiers: default_tiers(Some("demo_high"), Some("demo_back")),
            message: message.to_owned(),
            channel: SendChannel::Export,
            policy: siyu_core::campaign::Policy::default(),
            start_at: None,
            trigger: None,
            steps: Vec::new(),
        };
        create_campaign_keyed(store, tenant, name, &spec, "demo", &format!("demo-{seed}"))?;
        let day = until
            .checked_sub(jiff::Span::new().days(days_before))
            .map_err(|e| anyhow::anyhow!("the demo's campaign day: {e}"))?;
        let at = zone.instant_of(day.to_datetime(jiff::civil::Time::constant(10, 0, 0, 0)));
        run_at(store, tenant, name, at)?;
        let id = campaign(store, tenant, name)?.stored.id;
        // By customer: the codes are random, the seed's choice of redeemers is not.
        let mut coupons = store.coupons_of(tenant, id)?;
        coupons.sort_by(|a, b| a.customer_id.cmp(&b.customer_id));
        for k in coupons {
            // A high-threshold coupon is redeemed by one in four, a small one by one in six.
            let odds = if k.face >= Money::yuan(50) {
                0.25
            } else {
                0.17
            };
            if !rng.chance(odds) {
                continue;
            }
            let span = (k.valid_until.as_second() - k.issued_at.as_second()).max(3600);
            let when = k.issued_at
                + jiff::SignedDuration::from_secs(3600 + rng.below(span as u64 - 3600) as i64);
            let line = serde_json::json!({
                "event_id": format!("redeem-{}", k.code),
                "customer_id": k.customer_id,
                "type": "coupon_redeemed",
                "occurred_at": when.to_string(),
                "properties": {"coupon_code": k.code, "campaign": name},
            });
            events.push_str(&line.to_string());
            events.push('\n');
        }
        made.push(name.to_owned());
    }
    if !events.is_empty() {
        let dir = tempfile::tempdir().context("creating a scratch directory")?;
        let path = dir.path().join("redemptions.jsonl");
        std::fs::write(&path, events).context("writing the demo's redemptions")?;
        super::import::import_file(
            store,
            tenant,
            siyu_core::import::Kind::Events,
            &path,
            super::import::ImportOptions::default(),
        )
        .context("importing the demo's redemptions")?;
    }
    Ok(made)
}

//! The console's campaigns: the list (each one's audience, channel, runs and its last
//! run's counts) with the offers and what each issued, and a campaign's page: its
//! definition, runs, the decisions by page (filtered by outcome), its results against the
//! holdout per tier, and for operators and admins "run now" and pause/resume. Reading is
//! for every role; the forms are for operators and admins, each with the session's CSRF
//! token. Figures come from the same service as `siyu campaign …`.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use siyu_core::access::Action;
use siyu_core::campaign::{Audience, SendChannel};
use siyu_store::DecisionRow;

use super::text::Lang;
use super::views::{self, layout, path_part};
use super::{Operator, Refusal, page};
use crate::http::AppState;
use crate::service::campaigns::{self, Campaign, Comparison, Lift, Results};

/// Decisions shown per page.
const PAGE: usize = 100;
/// The outcomes a decision can have, in the order shown.
const OUTCOMES: [&str; 3] = ["send", "held", "holdout"];

/// A word in the operator's language.
fn w(lang: Lang, zh: &'static str, en: &'static str) -> &'static str {
    match lang {
        Lang::Zh => zh,
        Lang::En => en,
    }
}

fn outcome_name(lang: Lang, outcome: &str) -> String {
    match outcome {
        "send" => w(lang, "发送", "sent").to_owned(),
        "held" => w(lang, "暂缓", "held back").to_owned(),
        "holdout" => w(lang, "对照组", "holdout").to_owned(),
        other => other.to_owned(),
    }
}

fn audience_text(lang: Lang, a: &Audience) -> String {
    match a {
        Audience::Segment { name } => format!("{}: {name}", w(lang, "分组", "segment")),
        Audience::List { ids } => format!(
            "{} {}",
            ids.len(),
            w(lang, "个指定客户", "listed customers")
        ),
    }
}

fn channel_text(lang: Lang, c: &SendChannel) -> String {
    match c {
        SendChannel::Export => w(lang, "导出（手动发送）", "export (sent by hand)").to_owned(),
        SendChannel::Webhook { endpoint } => format!("webhook: {endpoint}"),
    }
}

fn local(op: &Operator, at: siyu_core::Timestamp) -> String {
    views::local(&op.session.user.tenant.zone, at)
}

fn status_text(lang: Lang, status: &str) -> &'static str {
    match status {
        "paused" => w(lang, "已暂停", "paused"),
        _ => w(lang, "进行中", "active"),
    }
}

/// `GET /console/campaigns`.
pub async fn list(State(state): State<Arc<AppState>>, op: Operator) -> Result<Response, Refusal> {
    list_page(state, op, None).await
}

/// The list, with what was wrong with an offer's form (400) if anything.
async fn list_page(
    state: Arc<AppState>,
    op: Operator,
    problem: Option<String>,
) -> Result<Response, Refusal> {
    op.require(Action::Read)?;
    let tenant = op.session.user.tenant.clone();
    let (lines, offers) = state
        .with_store(move |store| {
            let mut lines = Vec::new();
            for c in campaigns::campaigns(store, &tenant)? {
                let last = last_run_counts(store, &tenant, &c)?;
                lines.push((c, last));
            }
            let offers = campaigns::offers(store, &tenant)?;
            Ok((lines, offers))
        })
        .await?;
    let lang = op.lang;
    let body = html! {
        div.panel {
            @if lines.is_empty() {
                p.muted { (w(lang, "还没有营销活动", "No campaigns yet")) }
            } @else {
                table.campaigns {
                    thead { tr {
                        th scope="col" { (w(lang, "活动", "Campaign")) }
                        th scope="col" { (w(lang, "状态", "Status")) }
                        th scope="col" { (w(lang, "人群", "Audience")) }
                        th scope="col" { (w(lang, "渠道", "Channel")) }
                        th scope="col" { (w(lang, "运行次数", "Runs")) }
                        th scope="col" { (w(lang, "最近一次", "Last run")) }
                    } }
                    tbody {
                        @for (c, last) in &lines {
                            tr {
                                td { a href={ "/console/campaigns/" (path_part(&c.stored.name)) } { (c.stored.name) } }
                                td { (status_text(lang, &c.stored.status)) }
                                td { (audience_text(lang, &c.spec.audience)) }
                                td { (channel_text(lang, &c.spec.channel)) }
                                td { (lang.count(c.stored.runs.len() as u64)) }
                                td {
                                    @if let Some(at) = c.stored.runs.last() {
                                        (local(&op, *at)) " · "
                                        @for (i, (outcome, n)) in last.iter().enumerate() {
                                            @if i > 0 { ", " }
                                            (outcome_name(lang, outcome)) " " (lang.count(*n))
                                        }
                                    } @else {
                                        span.muted { (w(lang, "未运行", "not run")) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { (w(lang, "优惠券", "Offers")) }
        div.panel {
            @if offers.is_empty() {
                p.muted { (w(lang, "还没有优惠券", "No offers yet")) }
            } @else {
                table.offers {
                    thead { tr {
                        th scope="col" { (w(lang, "优惠券", "Offer")) }
                        th scope="col" { (w(lang, "定义", "Definition")) }
                        th scope="col" { (w(lang, "已发放", "Issued")) }
                        th scope="col" { (w(lang, "面值合计", "Face value")) }
                    } }
                    tbody {
                        @for (o, offer) in &offers {
                            tr {
                                td { (o.name) }
                                td { (offer.benefit.label()) }
                                td { (lang.count(o.issued)) }
                                td { (lang.money(o.issued_face)) }
                            }
                        }
                    }
                }
            }
        }
    };
    let markup = layout(
        &op,
        "/console/campaigns",
        w(lang, "营销活动", "Campaigns"),
        false,
        html! {
            (body)
            @if op.session.user.role.allows(Action::Manage) {
                p { a href="/console/campaigns/new" { (w(lang, "新建营销活动", "New campaign")) } }
                h2 { (w(lang, "新建优惠券", "New offer")) }
                form.panel method="post" action="/console/offers" {
                    input type="hidden" name="csrf" value=(op.session.csrf);
                    label for="offer-name" { (w(lang, "名称", "Name")) }
                    input #offer-name name="name" required maxlength="64";
                    label for="offer-kind" { (w(lang, "类型", "Kind")) }
                    select #offer-kind name="kind" {
                        option value="threshold" { (w(lang, "满减", "threshold (spend at least, get off)")) }
                        option value="no_threshold" { (w(lang, "无门槛", "no threshold")) }
                    }
                    label for="offer-min" { (w(lang, "门槛（元，满减用）", "Spend at least (yuan, threshold only)")) }
                    input #offer-min name="min" inputmode="decimal";
                    label for="offer-off" { (w(lang, "减（元）", "Off (yuan)")) }
                    input #offer-off name="off" required inputmode="decimal";
                    label for="offer-days" { (w(lang, "有效天数", "Valid for (days)")) }
                    input #offer-days name="days" type="number" min="1" value="14";
                    label for="offer-max" { (w(lang, "最多发放张数（可空）", "At most this many coupons (optional)")) }
                    input #offer-max name="max_coupons" type="number" min="1";
                    @if let Some(problem) = &problem {
                        p.problem role="alert" { (problem) }
                    }
                    div { button.primary type="submit" { (w(lang, "创建", "Create")) } }
                }
            }
        },
    );
    Ok(super::page_or_refused(markup, problem.is_some()))
}

#[derive(Debug, Deserialize)]
pub struct CampaignForm {
    csrf: String,
    name: String,
    #[serde(default)]
    segment: String,
    #[serde(default)]
    customers: String,
    message: String,
    #[serde(default)]
    channel: String,
    /// One tier a line: `name | rule | offer` (rule and offer may be empty).
    #[serde(default)]
    tiers: String,
    #[serde(default)]
    holdout: String,
    #[serde(default)]
    frequency_cap: String,
    #[serde(default)]
    frequency_days: String,
    #[serde(default)]
    quiet_hours: String,
}

/// The form's fields as the API's body, so that a campaign is checked by one code.
fn campaign_json(f: &CampaignForm) -> Result<serde_json::Value, String> {
    let mut v = serde_json::json!({"name": f.name.trim(), "message": f.message.trim()});
    let segment = f.segment.trim();
    let ids: Vec<&str> = f
        .customers
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .collect();
    match (segment.is_empty(), ids.is_empty()) {
        (false, true) => v["segment"] = segment.into(),
        (true, false) => v["customers"] = ids.into(),
        _ => return Err("the audience is a segment or pasted customer ids, one of the two".into()),
    }
    if !f.channel.trim().is_empty() {
        v["channel"] = f.channel.trim().into();
    }
    let tiers: Vec<serde_json::Value> = f
        .tiers
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut parts = l.splitn(3, '|').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let rule = parts.next().unwrap_or_default();
            let offer = parts.next().filter(|o| !o.is_empty());
            serde_json::json!({"name": name, "rule": rule, "offer": offer})
        })
        .collect();
    if !tiers.is_empty() {
        v["tiers"] = tiers.into();
    }
    let number = |field: &str, text: &str| -> Result<Option<f64>, String> {
        let t = text.trim();
        if t.is_empty() {
            return Ok(None);
        }
        t.parse::<f64>()
            .map(Some)
            .map_err(|_| format!("{field}: '{t}' is not a number"))
    };
    if let Some(h) = number("holdout", &f.holdout)? {
        v["holdout"] = h.into();
    }
    for (field, text) in [
        ("frequency_cap", &f.frequency_cap),
        ("frequency_days", &f.frequency_days),
    ] {
        if let Some(n) = number(field, text)? {
            if n.fract() != 0.0 || !(0.0..=u32::MAX as f64).contains(&n) {
                return Err(format!("{field}: '{n}' is not a whole number"));
            }
            v[field] = (n as u32).into();
        }
    }
    if !f.quiet_hours.trim().is_empty() {
        v["quiet_hours"] = f.quiet_hours.trim().into();
    }
    Ok(v)
}

/// `GET /console/campaigns/new`: the form to create one (operators and admins), the
/// default tiers shown to edit.
pub async fn new_form(
    State(state): State<Arc<AppState>>,
    op: Operator,
) -> Result<Response, Refusal> {
    campaign_form(state, op, None, None).await
}

async fn campaign_form(
    state: Arc<AppState>,
    op: Operator,
    form: Option<&CampaignForm>,
    problem: Option<String>,
) -> Result<Response, Refusal> {
    op.require(Action::Manage)?;
    let tenant = op.session.user.tenant.clone();
    let segment_names = state
        .with_store(move |store| {
            let mut tx = store.read_pool(&tenant).map_err(anyhow::Error::from)?;
            let rules = tx.rules().map_err(anyhow::Error::from)?;
            Ok(rules
                .into_iter()
                .filter(|r| r.kind == siyu_core::segment::rules::RuleKind::Segment)
                .map(|r| r.name)
                .collect::<Vec<_>>())
        })
        .await?;
    let lang = op.lang;
    let defaults: String = siyu_core::campaign::default_tiers(None, None)
        .iter()
        .map(|t| {
            format!(
                "{} | {} | {}\n",
                t.name,
                t.rule,
                t.offer.as_deref().unwrap_or("")
            )
        })
        .collect();
    let field = |f: fn(&CampaignForm) -> &str, default: &str| -> String {
        form.map_or_else(|| default.to_owned(), |v| f(v).to_owned())
    };
    let chosen = field(|f| &f.segment, "");
    let body = html! {
        form.panel.campaign-form method="post" action="/console/campaigns" {
            input type="hidden" name="csrf" value=(op.session.csrf);
            label for="c-name" { (w(lang, "名称", "Name")) }
            input #c-name name="name" required maxlength="64" value=(field(|f| &f.name, ""));
            label for="c-segment" { (w(lang, "人群：分组", "Audience: a segment")) }
            select #c-segment name="segment" {
                option value="" { (w(lang, "（用下面粘贴的客户 ID）", "(the ids pasted below)")) }
                @for s in &segment_names {
                    option value=(s) selected[*s == chosen] { (s) }
                }
            }
            label for="c-customers" { (w(lang, "或粘贴客户 ID（空格、逗号或换行分隔）", "or customer ids (separated by spaces, commas or lines)")) }
            textarea #c-customers name="customers" rows="3" { (field(|f| &f.customers, "")) }
            label for="c-tiers" { (w(lang, "分层：每行 名称 | 规则 | 优惠券", "Tiers, one a line: name | rule | offer")) }
            textarea #c-tiers name="tiers" rows="4" { (field(|f| &f.tiers, &defaults)) }
            label for="c-message" { (w(lang, "消息", "Message")) }
            textarea #c-message name="message" rows="2" required maxlength="1000" { (field(|f| &f.message, "")) }
            label for="c-channel" { (w(lang, "渠道：export 或 webhook:端点名", "Channel: export or webhook:ENDPOINT")) }
            input #c-channel name="channel" value=(field(|f| &f.channel, "export"));
            label for="c-holdout" { (w(lang, "对照组 %（0–50）", "Holdout % (0-50)")) }
            input #c-holdout name="holdout" inputmode="decimal" value=(field(|f| &f.holdout, "10"));
            label for="c-cap" { (w(lang, "频次上限（次）", "Frequency cap (sends)")) }
            input #c-cap name="frequency_cap" type="number" min="0" value=(field(|f| &f.frequency_cap, "2"));
            label for="c-days" { (w(lang, "频次窗口（天）", "Frequency window (days)")) }
            input #c-days name="frequency_days" type="number" min="1" value=(field(|f| &f.frequency_days, "7"));
            label for="c-quiet" { (w(lang, "免打扰时段（HH:MM-HH:MM 或 none）", "Quiet hours (HH:MM-HH:MM or none)")) }
            input #c-quiet name="quiet_hours" value=(field(|f| &f.quiet_hours, "21:00-08:00"));
            @if let Some(problem) = &problem {
                p.problem role="alert" { (problem) }
            }
            p.muted { (w(lang, "创建后不会运行：可先在活动页预览。", "Creating does not run it: preview it on its page first.")) }
            div { button.primary type="submit" { (w(lang, "创建", "Create")) } }
        }
    };
    let markup = layout(
        &op,
        "/console/campaigns",
        w(lang, "新建营销活动", "New campaign"),
        false,
        body,
    );
    Ok(super::page_or_refused(markup, problem.is_some()))
}

/// `POST /console/campaigns`: creates a campaign (operators and admins), checked as the
/// API checks it; the form again with the mistake (400) when refused, else its page.
pub async fn create(
    State(state): State<Arc<AppState>>,
    op: Operator,
    Form(form): Form<CampaignForm>,
) -> Result<Response, Refusal> {
    op.require(Action::Manage)?;
    op.check_form(&form.csrf)?;
    let checked = campaign_json(&form)
        .and_then(|v| crate::http::campaigns::spec_from_json(v).map_err(|e| e.message()));
    let (name, spec) = match checked {
        Ok(c) => c,
        Err(problem) => return campaign_form(state, op, Some(&form), Some(problem)).await,
    };
    let tenant = op.session.user.tenant.clone();
    let by = format!("console:{}", op.session.user.name);
    let asked = name.clone();
    let saved = state
        .with_store(move |store| {
            match campaigns::create_campaign(store, &tenant, &asked, &spec, &by) {
                Ok(()) => Ok(None),
                Err(
                    e @ (campaigns::CampaignsError::Invalid(_)
                    | campaigns::CampaignsError::CampaignExists(_)),
                ) => Ok(Some(e.to_string())),
                Err(e) => Err(e.into()),
            }
        })
        .await?;
    match saved {
        None => {
            Ok(Redirect::to(&format!("/console/campaigns/{}", path_part(&name))).into_response())
        }
        Some(problem) => campaign_form(state, op, Some(&form), Some(problem)).await,
    }
}

#[derive(Debug, Deserialize)]
pub struct OfferForm {
    csrf: String,
    name: String,
    kind: String,
    #[serde(default)]
    min: String,
    #[serde(default)]
    off: String,
    #[serde(default)]
    days: String,
    #[serde(default)]
    max_coupons: String,
}

fn offer_of(f: &OfferForm) -> Result<siyu_core::campaign::Offer, String> {
    use siyu_core::Money;
    use siyu_core::campaign::{Benefit, Offer, Validity};
    let yuan = |field: &str, text: &str| {
        Money::parse_yuan(text.trim()).map_err(|e| format!("{field}: {e}"))
    };
    let benefit = match f.kind.as_str() {
        "threshold" => Benefit::Threshold {
            min: yuan("min", &f.min)?,
            off: yuan("off", &f.off)?,
        },
        "no_threshold" => Benefit::NoThreshold {
            off: yuan("off", &f.off)?,
        },
        other => return Err(format!("kind: '{other}' is not threshold or no_threshold")),
    };
    let number = |field: &str, text: &str| -> Result<Option<u32>, String> {
        let t = text.trim();
        if t.is_empty() {
            return Ok(None);
        }
        t.parse()
            .map(Some)
            .map_err(|_| format!("{field}: '{t}' is not a whole number"))
    };
    Ok(Offer {
        benefit,
        validity: Validity::Days {
            days: number("days", &f.days)?.unwrap_or(14),
        },
        max_coupons: number("max_coupons", &f.max_coupons)?.map(u64::from),
        max_face: None,
    })
}

/// `POST /console/offers`: a new offer (operators and admins), checked as the
/// API checks it; the list again with the mistake (400) when refused.
pub async fn create_offer(
    State(state): State<Arc<AppState>>,
    op: Operator,
    Form(form): Form<OfferForm>,
) -> Result<Response, Refusal> {
    op.require(Action::Manage)?;
    op.check_form(&form.csrf)?;
    let offer = match offer_of(&form) {
        Ok(o) => o,
        Err(problem) => return list_page(state, op, Some(problem)).await,
    };
    let tenant = op.session.user.tenant.clone();
    let by = format!("console:{}", op.session.user.name);
    let name = form.name.trim().to_owned();
    let saved = state
        .with_store(move |store| {
            match campaigns::create_offer(store, &tenant, &name, &offer, &by) {
                Ok(()) => Ok(None),
                Err(
                    e @ (campaigns::CampaignsError::Invalid(_)
                    | campaigns::CampaignsError::OfferExists(_)),
                ) => Ok(Some(e.to_string())),
                Err(e) => Err(e.into()),
            }
        })
        .await?;
    match saved {
        None => Ok(Redirect::to("/console/campaigns").into_response()),
        Some(problem) => list_page(state, op, Some(problem)).await,
    }
}

/// The outcomes of a campaign's last run, each with its customers.
fn last_run_counts(
    store: &mut dyn siyu_store::Store,
    tenant: &siyu_store::Tenant,
    c: &Campaign,
) -> anyhow::Result<Vec<(String, u64)>> {
    let last = c.stored.runs.len() as u32;
    let mut counts = [0u64; OUTCOMES.len()];
    if last > 0 {
        store.decisions(tenant, c.stored.id, None, &mut |d| {
            if d.run == last
                && let Some(i) = OUTCOMES.iter().position(|o| *o == d.outcome)
            {
                counts[i] += 1;
            }
        })?;
    }
    Ok(OUTCOMES
        .iter()
        .zip(counts)
        .map(|(o, n)| ((*o).to_owned(), n))
        .collect())
}

#[derive(Debug, Deserialize)]
pub struct ShowQuery {
    outcome: Option<String>,
    page: Option<usize>,
}

/// `GET /console/campaigns/{name}`.
pub async fn show(
    State(state): State<Arc<AppState>>,
    op: Operator,
    Path(name): Path<String>,
    Query(q): Query<ShowQuery>,
) -> Result<Response, Refusal> {
    op.require(Action::Read)?;
    let tenant = op.session.user.tenant.clone();
    let outcome = q
        .outcome
        .filter(|o| OUTCOMES.contains(&o.as_str()))
        .map(|o| o.to_owned());
    let wanted = outcome.clone();
    let asked = name.clone();
    let read = state
        .with_store(move |store| {
            let c = match campaigns::campaign(store, &tenant, &asked) {
                Ok(c) => c,
                Err(campaigns::CampaignsError::CampaignNotFound(_)) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            let mut rows = Vec::new();
            store
                .decisions(&tenant, c.stored.id, None, &mut |d| {
                    if wanted.as_deref().is_none_or(|o| o == d.outcome) {
                        rows.push(d);
                    }
                })
                .map_err(anyhow::Error::from)?;
            let results = campaigns::results(store, &tenant, &asked)?;
            Ok(Some((c, rows, results)))
        })
        .await?;
    let Some((c, rows, results)) = read else {
        let markup = super::views::not_found(&op);
        return Ok((StatusCode::NOT_FOUND, Html(markup.into_string())).into_response());
    };
    let page_no = q.page.unwrap_or(1).max(1);
    Ok(page(campaign_page(
        &op,
        &c,
        &rows,
        &results,
        outcome.as_deref(),
        page_no,
        None,
    )))
}

fn lift_text(l: &Option<Lift>, scale: f64, unit: &str) -> String {
    match l {
        Some(l) => format!(
            "{:+.2}{unit} [{:+.2}, {:+.2}]{}",
            l.diff * scale,
            l.low * scale,
            l.high * scale,
            if l.significant { " *" } else { "" }
        ),
        None => "—".to_owned(),
    }
}

fn results_rows(lang: Lang, cmp: &Comparison) -> Markup {
    let tier = cmp
        .tier
        .clone()
        .unwrap_or_else(|| w(lang, "全部", "all").to_owned());
    html! {
        tr {
            th scope="row" { (tier) }
            td { (lang.count(cmp.treated.customers)) " / " (lang.count(cmp.holdout.customers)) }
            td { (lang.count(cmp.treated.buyers)) " / " (lang.count(cmp.holdout.buyers)) }
            td { (lang.count(cmp.treated.orders)) " / " (lang.count(cmp.holdout.orders)) }
            td { (format!("{:.2}", cmp.treated.revenue_per_customer / 100.0)) " / " (format!("{:.2}", cmp.holdout.revenue_per_customer / 100.0)) }
            td { (format!("{:.1}%", cmp.redemption_rate * 100.0)) }
            td { (format!("{:.2}", cmp.incremental_gmv / 100.0)) }
            td { (lang.money(cmp.coupon_cost)) }
            td { @if let Some(r) = cmp.roi { (format!("{r:.2}")) } @else { "—" } }
            td { (lift_text(&cmp.conversion_lift, 100.0, " pp")) }
            td { (lift_text(&cmp.revenue_lift, 0.01, "")) }
        }
        @if let Some(why) = &cmp.too_small {
            tr.too-small { td colspan="11" { (w(lang, "样本太小，无法下结论：", "Too small to conclude: ")) (why) } }
        }
    }
}

/// The conversion lift of the campaign and each tier, in percentage points, as a point
/// with its 95% interval (a candlestick whose body is the point and whose wick is the
/// interval): drawn only where there is a lift.
fn lift_chart(lang: Lang, results: &Results) -> Option<String> {
    let all = w(lang, "全部", "all").to_owned();
    let groups: Vec<(String, Lift)> = std::iter::once(&results.overall)
        .chain(&results.tiers)
        .filter_map(|c| {
            let l = c.conversion_lift?;
            Some((c.tier.clone().unwrap_or_else(|| all.clone()), l))
        })
        .collect();
    if groups.is_empty() {
        return None;
    }
    let pp = |x: f64| (x * 10_000.0).round() / 100.0;
    let names: Vec<&str> = groups.iter().map(|(n, _)| n.as_str()).collect();
    let bars: Vec<[f64; 4]> = groups
        .iter()
        .map(|(_, l)| [pp(l.diff), pp(l.diff), pp(l.low), pp(l.high)])
        .collect();
    let points: Vec<f64> = groups.iter().map(|(_, l)| pp(l.diff)).collect();
    Some(
        serde_json::json!({
            "animation": false,
            "tooltip": {"trigger": "axis"},
            "grid": {"left": 60, "right": 16, "top": 24, "bottom": 40},
            "xAxis": {"type": "category", "data": names},
            "yAxis": {"type": "value", "name": w(lang, "转化率提升（百分点）", "conversion lift (pp)")},
            "series": [
                {"type": "candlestick", "name": w(lang, "95% 区间", "95% interval"), "data": bars,
                 "barMaxWidth": 12,
                 "itemStyle": {"color": "#0b5cad", "color0": "#0b5cad", "borderColor": "#0b5cad", "borderColor0": "#0b5cad"}},
                {"type": "scatter", "name": w(lang, "提升", "lift"), "data": points, "symbolSize": 10,
                 "itemStyle": {"color": "#c0392b"},
                 "markLine": {"silent": true, "symbol": "none", "data": [{"yAxis": 0}], "lineStyle": {"color": "#888"}}},
            ],
        })
        .to_string(),
    )
}

fn campaign_page(
    op: &Operator,
    c: &Campaign,
    rows: &[DecisionRow],
    results: &Results,
    outcome: Option<&str>,
    page_no: usize,
    problem: Option<&str>,
) -> Markup {
    let lang = op.lang;
    let base = format!("/console/campaigns/{}", path_part(&c.stored.name));
    let manage = op.session.user.role.allows(Action::Manage);
    let pages = rows.len().div_ceil(PAGE).max(1);
    let page_no = page_no.min(pages);
    let shown = rows.iter().skip((page_no - 1) * PAGE).take(PAGE);
    let filter = |o: Option<&str>, p: usize| -> String {
        match o {
            Some(o) => format!("{base}?outcome={o}&page={p}"),
            None => format!("{base}?page={p}"),
        }
    };
    let body = html! {
        @if let Some(problem) = problem {
            p.problem role="alert" { (problem) }
        }
        div.panel {
            dl.definition {
                dt { (w(lang, "状态", "Status")) } dd { (status_text(lang, &c.stored.status)) }
                dt { (w(lang, "人群", "Audience")) } dd { (audience_text(lang, &c.spec.audience)) }
                dt { (w(lang, "渠道", "Channel")) } dd { (channel_text(lang, &c.spec.channel)) }
                dt { (w(lang, "消息", "Message")) } dd { (c.spec.message) }
                dt { (w(lang, "分层", "Tiers")) }
                dd { ul { @for t in &c.spec.tiers {
                    li { (t.name) ": " code { (t.rule) } @if let Some(o) = &t.offer { " → " (o) } }
                } } }
                dt { (w(lang, "规则", "Policy")) }
                dd { code { (serde_json::to_string(&c.spec.policy).unwrap_or_default()) } }
                dt { (w(lang, "创建", "Created")) } dd { (c.stored.created_by) " · " (local(op, c.stored.created_at)) }
            }
        }
        @if manage {
            div.panel.actions {
                form.inline method="post" action={ (base) "/run" } {
                    input type="hidden" name="csrf" value=(op.session.csrf);
                    label {
                        input type="checkbox" name="confirm" value="yes" required;
                        " " (w(lang, "确认现在运行（会发券并发送）", "Yes, run it now (issues coupons and sends)"))
                    }
                    " "
                    button.primary type="submit" { (w(lang, "立即运行", "Run now")) }
                }
                @let (to, label) = if c.stored.status == "paused" { ("resume", w(lang, "恢复", "Resume")) } else { ("pause", w(lang, "暂停", "Pause")) };
                form.inline method="post" action={ (base) "/" (to) } {
                    input type="hidden" name="csrf" value=(op.session.csrf);
                    button type="submit" { (label) }
                }
            }
        }
        @if manage && c.spec.channel == SendChannel::Export {
            form.panel method="post" action={ (base) "/export" } {
                input type="hidden" name="csrf" value=(op.session.csrf);
                @if op.session.user.role.allows(Action::Administer) {
                    label {
                        input type="checkbox" name="full_phones" value="yes";
                        " " (w(lang, "完整手机号（记入审计日志）", "Whole phones (written to the audit log)"))
                    }
                    " "
                }
                button type="submit" { (w(lang, "下载待发送 CSV（标记为已发送）", "Download the sends as CSV (marks them sent)")) }
            }
        }
        p { a href={ (base) "/preview" } { (w(lang, "预览现在运行的结果（不写入）", "Preview a run now (writes nothing)")) } }
        h2 { (w(lang, "运行记录", "Runs")) }
        div.panel {
            @if c.stored.runs.is_empty() {
                p.muted { (w(lang, "还没有运行过", "Not run yet")) }
            } @else {
                ol.runs { @for at in &c.stored.runs { li { (local(op, *at)) } } }
            }
        }
        h2 { (w(lang, "效果（处理组 / 对照组）", "Results (treated / holdout)")) }
        div.panel {
            p.muted { (w(lang, "归因窗口", "Attribution window")) ": " (results.attribution_days) (w(lang, " 天；提升为 95% 区间，* 为显著", " days; lifts with their 95% interval, * significant")) }
            @if let Some(chart) = lift_chart(lang, results) {
                div.chart.small data-chart=(chart) role="img" aria-label=(w(lang, "转化率提升及其 95% 区间", "Conversion lift with its 95% interval")) {}
            }
            table.results {
                thead { tr {
                    th scope="col" { (w(lang, "分层", "Tier")) }
                    th scope="col" { (w(lang, "客户", "Customers")) }
                    th scope="col" { (w(lang, "购买人数", "Buyers")) }
                    th scope="col" { (w(lang, "订单", "Orders")) }
                    th scope="col" { (w(lang, "人均收入（元）", "Revenue per customer (yuan)")) }
                    th scope="col" { (w(lang, "核销率", "Redemption")) }
                    th scope="col" { (w(lang, "增量 GMV（元）", "Incremental GMV (yuan)")) }
                    th scope="col" { (w(lang, "券成本", "Coupon cost")) }
                    th scope="col" { "ROI" }
                    th scope="col" { (w(lang, "转化率提升", "Conversion lift")) }
                    th scope="col" { (w(lang, "人均收入提升（元）", "Revenue lift (yuan)")) }
                } }
                tbody {
                    (results_rows(lang, &results.overall))
                    @for t in &results.tiers { (results_rows(lang, t)) }
                }
            }
        }
        h2 { (w(lang, "决策", "Decisions")) }
        nav.filter aria-label=(w(lang, "按结果筛选", "Filter by outcome")) {
            @if outcome.is_none() { strong { (w(lang, "全部", "all")) } } @else { a href=(filter(None, 1)) { (w(lang, "全部", "all")) } }
            @for o in OUTCOMES {
                " · "
                @if outcome == Some(o) { strong { (outcome_name(lang, o)) } } @else { a href=(filter(Some(o), 1)) { (outcome_name(lang, o)) } }
            }
        }
        div.panel {
            @if rows.is_empty() {
                p.muted { (w(lang, "没有决策", "No decisions")) }
            } @else {
                table.decisions {
                    thead { tr {
                        th scope="col" { (w(lang, "运行", "Run")) }
                        th scope="col" { (w(lang, "客户", "Customer")) }
                        th scope="col" { (w(lang, "分层", "Tier")) }
                        th scope="col" { (w(lang, "结果", "Outcome")) }
                        th scope="col" { (w(lang, "原因", "Reason")) }
                        th scope="col" { (w(lang, "券码", "Coupon")) }
                    } }
                    tbody {
                        @for d in shown {
                            tr {
                                td { (d.run) }
                                td { a href={ "/console/customers/" (path_part(&d.customer_id)) } { (d.customer_id) } }
                                td { (d.tier.as_deref().unwrap_or("—")) }
                                td { (outcome_name(lang, &d.outcome)) }
                                td { (d.reason) @if let Some(detail) = &d.detail { " (" (detail) ")" } }
                                td { (d.coupon_code.as_deref().unwrap_or("—")) }
                            }
                        }
                    }
                }
                p.pager {
                    (page_no) " / " (pages)
                    @if page_no > 1 { " " a href=(filter(outcome, page_no - 1)) rel="prev" { "‹" } }
                    @if page_no < pages { " " a href=(filter(outcome, page_no + 1)) rel="next" { "›" } }
                }
            }
        }
    };
    let charts = lift_chart(lang, results).is_some();
    layout(op, "/console/campaigns", &c.stored.name, charts, body)
}

/// `GET /console/campaigns/{name}/preview`: what a run now would decide (treated, held
/// back with each reason, held out), by the run's own code, written nowhere.
pub async fn preview(
    State(state): State<Arc<AppState>>,
    op: Operator,
    Path(name): Path<String>,
) -> Result<Response, Refusal> {
    op.require(Action::Read)?;
    let tenant = op.session.user.tenant.clone();
    let asked = name.clone();
    let read = state
        .with_store(move |store| {
            match campaigns::preview_at(store, &tenant, &asked, siyu_core::Timestamp::now()) {
                Ok(s) => Ok(Ok(s)),
                Err(campaigns::CampaignsError::NotRunnable(why)) => Ok(Err(Some(why))),
                Err(campaigns::CampaignsError::CampaignNotFound(_)) => Ok(Err(None)),
                Err(e) => Err(e.into()),
            }
        })
        .await?;
    let lang = op.lang;
    let summary = match read {
        Ok(s) => s,
        Err(None) => {
            let markup = views::not_found(&op);
            return Ok((StatusCode::NOT_FOUND, Html(markup.into_string())).into_response());
        }
        Err(Some(why)) => {
            let body = html! { p.problem role="alert" { (why) } };
            let markup = layout(&op, "/console/campaigns", &name, false, body);
            return Ok((StatusCode::CONFLICT, Html(markup.into_string())).into_response());
        }
    };
    let body = html! {
        p.muted { (w(lang, "按运行的同一决策逻辑计算，不写入任何记录。", "Decided by the same code as a run, and written nowhere.")) }
        div.panel {
            dl {
                dt { (w(lang, "人群", "Audience")) } dd.audience { (lang.count(summary.audience)) }
                dt { (w(lang, "将发券", "Coupons to issue")) } dd.coupons { (lang.count(summary.coupons)) " · " (lang.money(summary.face_value)) }
                dt { (w(lang, "webhook 投递", "Webhook deliveries")) } dd { (lang.count(summary.deliveries)) }
                @if let Some(at) = summary.not_before { dt { (w(lang, "最早发送", "Sends from")) } dd { (local(&op, at)) } }
            }
            table.preview {
                thead { tr {
                    th scope="col" { (w(lang, "结果", "Outcome")) }
                    th scope="col" { (w(lang, "原因", "Reason")) }
                    th scope="col" { (w(lang, "客户", "Customers")) }
                } }
                tbody {
                    @for (outcome, reason, n) in &summary.counts {
                        tr data-outcome=(outcome) data-reason=(reason) {
                            td { (outcome_name(lang, outcome)) }
                            td { (reason) }
                            td { (n) }
                        }
                    }
                }
            }
        }
        p { a href={ "/console/campaigns/" (path_part(&name)) } { "‹ " (name) } }
    };
    let title = format!("{} · {}", name, w(lang, "预览", "preview"));
    Ok(page(layout(&op, "/console/campaigns", &title, false, body)))
}

#[derive(Debug, Deserialize)]
pub struct ExportForm {
    csrf: String,
    /// `yes` for whole phones: admins only, each customer's written to the audit log.
    full_phones: Option<String>,
}

/// `POST /console/campaigns/{name}/export`: the CSV of the sends not yet exported, which
/// are marked sent (operators and admins); phones masked but for an admin who asks for
/// them whole, audited as `siyu campaign export --full-phones` is.
pub async fn export(
    State(state): State<Arc<AppState>>,
    op: Operator,
    Path(name): Path<String>,
    Form(form): Form<ExportForm>,
) -> Result<Response, Refusal> {
    op.require(Action::Manage)?;
    op.check_form(&form.csrf)?;
    let full = form.full_phones.as_deref() == Some("yes");
    if full {
        op.require(Action::Administer)?;
    }
    let tenant = op.session.user.tenant.clone();
    let actor = format!("console:{}", op.session.user.name);
    let asked = name.clone();
    let lines = state
        .with_store(move |store| Ok(campaigns::export(store, &tenant, &asked, full, &actor)?))
        .await?;
    let mut csv = csv::Writer::from_writer(Vec::new());
    let written = (|| -> anyhow::Result<Vec<u8>> {
        if lines.is_empty() {
            csv.write_record([
                "customer_id",
                "name",
                "phone",
                "tier",
                "coupon_code",
                "message",
                "not_before",
            ])?;
        }
        for l in &lines {
            csv.serialize(l)?;
        }
        csv.into_inner().map_err(|e| anyhow::anyhow!("{e}"))
    })()
    .map_err(crate::http::error::ApiError::from)?;
    super::segments::csv_download(&format!("{name}-sends"), written)
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

#[derive(Debug, Deserialize)]
pub struct RunForm {
    csrf: String,
    /// `yes` once the operator confirmed.
    confirm: Option<String>,
}

/// `POST /console/campaigns/{name}/run`: runs it now (operators and admins), then shows
/// its page; a campaign that cannot run now (paused, scheduled later) says why (409).
pub async fn run(
    State(state): State<Arc<AppState>>,
    op: Operator,
    Path(name): Path<String>,
    Form(form): Form<RunForm>,
) -> Result<Response, Refusal> {
    op.require(Action::Manage)?;
    op.check_form(&form.csrf)?;
    if form.confirm.as_deref() != Some("yes") {
        let text = w(
            op.lang,
            "请先勾选确认再运行",
            "Tick the confirmation to run it",
        );
        return Ok((
            StatusCode::BAD_REQUEST,
            Html(html! { p { (text) } }.into_string()),
        )
            .into_response());
    }
    let tenant = op.session.user.tenant.clone();
    let asked = name.clone();
    let ran = state
        .with_store(move |store| match campaigns::run(store, &tenant, &asked) {
            Ok(_) => Ok(None),
            Err(campaigns::CampaignsError::NotRunnable(why)) => Ok(Some(why)),
            Err(e) => Err(e.into()),
        })
        .await?;
    if let Some(why) = ran {
        return Ok((
            StatusCode::CONFLICT,
            Html(html! { p { (why) } }.into_string()),
        )
            .into_response());
    }
    Ok(Redirect::to(&format!("/console/campaigns/{}", path_part(&name))).into_response())
}

async fn set_status(
    state: Arc<AppState>,
    op: Operator,
    name: String,
    csrf: String,
    status: &'static str,
) -> Result<Response, Refusal> {
    op.require(Action::Manage)?;
    op.check_form(&csrf)?;
    let tenant = op.session.user.tenant.clone();
    let asked = name.clone();
    state
        .with_store(move |store| Ok(campaigns::set_status(store, &tenant, &asked, status)?))
        .await?;
    Ok(Redirect::to(&format!("/console/campaigns/{}", path_part(&name))).into_response())
}

/// `POST /console/campaigns/{name}/pause`.
pub async fn pause(
    State(state): State<Arc<AppState>>,
    op: Operator,
    Path(name): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, Refusal> {
    set_status(state, op, name, form.csrf, "paused").await
}

/// `POST /console/campaigns/{name}/resume`.
pub async fn resume(
    State(state): State<Arc<AppState>>,
    op: Operator,
    Path(name): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, Refusal> {
    set_status(state, op, name, form.csrf, "active").await
}

//! The operator's web console, served by `siyu serve` beside the API: server-rendered
//! pages (maud), a little plain JavaScript for the charts (ECharts, vendored and embedded),
//! nothing fetched from another host. Operators sign in with a user of their tenant
//! (`siyu user create`); a session cookie carries a secret whose hash the store keeps, and
//! every form carries the session's CSRF token. Pages read through the same services as
//! the CLI and the API, so a figure on a page is the figure `siyu report` prints.

mod assets;
pub mod cache;
mod campaigns;
mod customers;
mod flows;
mod guard;
mod rfm;
mod segments;
mod settings;
pub mod text;
mod views;

use std::sync::Arc;

use axum::Form;
use axum::Router;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use siyu_core::Timestamp;
use siyu_core::access::{Action, Role};
use siyu_core::metrics::overview::Grain;
use siyu_store::ConsoleSession;

use super::AppState;
use super::error::ApiError;
use crate::service::tokens::random_hex;
use crate::service::users::{self, Refused};
pub use guard::AddressGuard;
use text::Lang;
pub use views::masked_phone;

/// The session cookie: the session's secret.
const SESSION_COOKIE: &str = "siyu_session";
/// The sign-in form's token, before there is a session.
const SIGN_IN_COOKIE: &str = "siyu_sign_in";
/// The operator's language.
const LANG_COOKIE: &str = "siyu_lang";
/// The longest form body taken (a sign-in, a segment rule).
const MAX_FORM_BYTES: usize = 64 * 1024;

/// The console's routes (under `/console`, its assets under `/assets`, and `/`).
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console") }))
        .route("/console", get(overview))
        .route("/console/rfm", get(rfm))
        .route("/console/rfm/{class}", get(rfm::class))
        .route("/console/rfm/{class}/members.csv", get(rfm::class_csv))
        .route("/console/gmv", get(gmv))
        .route("/console/lifecycle", get(lifecycle))
        .route("/console/lifecycle/flows", get(flows::show))
        .route("/console/cohorts", get(cohorts))
        .route("/console/channels", get(channels))
        .route("/console/channels/spend", post(channel_spend))
        .route("/console/referrals", get(referrals))
        .route("/console/clv", get(clv))
        .route("/console/clv/fit", post(clv_fit))
        .route("/console/settings", get(settings::show).post(settings::set))
        .route("/console/settings/users", post(settings::add_user))
        .route(
            "/console/settings/users/delete",
            post(settings::delete_user),
        )
        .route("/console/settings/tokens", post(settings::add_token))
        .route(
            "/console/settings/tokens/revoke",
            post(settings::revoke_token),
        )
        .route("/console/customers", get(customers::list))
        .route("/console/customers/{id}", get(customers::show))
        .route("/console/customers/{id}/tags", post(customers::add_tag))
        .route(
            "/console/customers/{id}/tags/remove",
            post(customers::remove_tag),
        )
        .route("/console/customers/{id}/opt-out", post(customers::opt_out))
        .route("/console/customers/{id}/export", post(customers::export))
        .route("/console/customers/{id}/erase", post(customers::erase))
        .route(
            "/console/customers/{id}/phone",
            post(customers::reveal_phone),
        )
        .route(
            "/console/segments",
            get(segments::list).post(segments::create),
        )
        .route("/console/segments/check", get(segments::check))
        .route("/console/segments/{name}", get(segments::members))
        .route(
            "/console/segments/{name}/members.csv",
            get(segments::members_csv),
        )
        // Segments' deletion, and rule tags as segments are (one code path).
        .route("/console/segments/{name}/delete", post(segments::delete))
        .route(
            "/console/tags",
            get(segments::tag_list).post(segments::tag_create),
        )
        .route("/console/tags/check", get(segments::tag_check))
        .route("/console/tags/{name}", get(segments::tag_members))
        .route(
            "/console/tags/{name}/members.csv",
            get(segments::tag_members_csv),
        )
        .route("/console/tags/{name}/delete", post(segments::tag_delete))
        // campaigns
        .route(
            "/console/campaigns",
            get(campaigns::list).post(campaigns::create),
        )
        .route("/console/campaigns/new", get(campaigns::new_form))
        .route("/console/offers", post(campaigns::create_offer))
        .route("/console/campaigns/{name}", get(campaigns::show))
        .route("/console/campaigns/{name}/preview", get(campaigns::preview))
        .route("/console/campaigns/{name}/run", post(campaigns::run))
        .route("/console/campaigns/{name}/export", post(campaigns::export))
        .route("/console/campaigns/{name}/pause", post(campaigns::pause))
        .route("/console/campaigns/{name}/resume", post(campaigns::resume))
        .route("/console/sign-in", get(sign_in_form).post(sign_in))
        .route("/console/sign-out", post(sign_out))
        .route("/console/lang/{lang}", get(switch_lang))
        .route("/assets/{version}/{file}", get(assets::serve))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_FORM_BYTES))
}

/// The cookie `name` of a request.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn lang_of(headers: &HeaderMap) -> Lang {
    Lang::from_cookie(cookie(headers, LANG_COOKIE))
}

/// Whether the request came over TLS (through a proxy that says so): cookies are then
/// `Secure`.
fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, for the whole site; `Secure` over TLS.
fn set_cookie(name: &str, value: &str, max_age: u64, tls: bool) -> HeaderValue {
    let secure = if tls { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Two tokens equal, compared in time that does not depend on where they differ.
fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A page refused or failed: the answer given instead.
pub struct Refusal(Box<Response>);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        *self.0
    }
}

impl From<Response> for Refusal {
    fn from(r: Response) -> Refusal {
        Refusal(Box::new(r))
    }
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Refusal {
        Refusal(Box::new(e.into_response()))
    }
}

/// A signed-in operator: their session, and the language they read.
pub struct Operator {
    pub session: ConsoleSession,
    pub lang: Lang,
}

impl Operator {
    fn role(&self) -> Role {
        self.session.user.role
    }

    /// The page refused to an operator whose role may not do `action`.
    fn require(&self, action: Action) -> Result<(), Refusal> {
        if self.role().allows(action) {
            Ok(())
        } else {
            let page = Html(views::forbidden(self).into_string());
            Err((StatusCode::FORBIDDEN, page).into_response().into())
        }
    }

    /// Checks a form's CSRF token against the session's.
    fn check_form(&self, token: &str) -> Result<(), Refusal> {
        if same_token(token, &self.session.csrf) {
            Ok(())
        } else {
            Err(csrf_refused(self.lang).into())
        }
    }
}

fn csrf_refused(lang: Lang) -> Response {
    let text = match lang {
        Lang::Zh => "表单已失效，请返回刷新页面后重试",
        Lang::En => "This form has expired: go back, reload the page and try again",
    };
    (StatusCode::FORBIDDEN, text).into_response()
}

impl FromRequestParts<Arc<AppState>> for Operator {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Operator, Response> {
        let lang = lang_of(&parts.headers);
        let to_sign_in = || Redirect::to("/console/sign-in").into_response();
        let Some(secret) = cookie(&parts.headers, SESSION_COOKIE).map(str::to_owned) else {
            return Err(to_sign_in());
        };
        let session = state
            .with_store(move |store| Ok(users::session(store, &secret)?))
            .await
            .map_err(IntoResponse::into_response)?;
        match session {
            Some(session) => Ok(Operator { session, lang }),
            None => Err(to_sign_in()),
        }
    }
}

/// A page sent back with what was wrong with its form (400), or the page.
fn page_or_refused(markup: maud::Markup, refused: bool) -> Response {
    if refused {
        (StatusCode::BAD_REQUEST, Html(markup.into_string())).into_response()
    } else {
        page(markup)
    }
}

/// A page's answer: HTML that is never cached (it holds the tenant's figures).
fn page(markup: maud::Markup) -> Response {
    (
        [(header::CACHE_CONTROL, "no-store")],
        Html(markup.into_string()),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct OverviewQuery {
    /// GMV by `day`, `week` or `month` (the default).
    by: Option<String>,
}

async fn overview(
    State(state): State<Arc<AppState>>,
    op: Operator,
    Query(q): Query<OverviewQuery>,
) -> Result<Response, Refusal> {
    op.require(Action::Read)?;
    let grain = match q.by.as_deref() {
        None | Some("month") => Grain::Month,
        Some("week") => Grain::Week,
        Some("day") => Grain::Day,
        Some(_) => {
            let markup = views::refused_request(&op, op.lang.t(text::Key::BadGrain));
            return Ok((StatusCode::BAD_REQUEST, Html(markup.into_string())).into_response());
        }
    };
    let tenant = op.session.user.tenant.clone();
    let figures = Arc::clone(&state.figures);
    let shown = state
        .with_store(move |store| {
            let today = tenant.zone.day_of(Timestamp::now());
            Ok(
                figures.figure(store, &tenant, "overview", String::new(), today, |store| {
                    crate::service::overview::overview_with_periods(store, &tenant)
                })?,
            )
        })
        .await?;
    let (overview, periods) = &*shown;
    let at = Grain::ALL.iter().position(|g| *g == grain).unwrap_or(2);
    Ok(page(views::overview(&op, overview, grain, &periods[at])))
}

async fn rfm(State(state): State<Arc<AppState>>, op: Operator) -> Result<Response, Refusal> {
    op.require(Action::Read)?;
    let tenant = op.session.user.tenant.clone();
    let figures = Arc::clone(&state.figures);
    let rfm = state
        .with_store(move |store| {
            let today = tenant.zone.day_of(Timestamp::now());
            Ok(
                figures.figure(store, &tenant, "rfm", String::new(), today, |store| {
                    let window = siyu_core::segment::rfm::RfmWindow::new(today, None);
                    crate::service::rfm::from_store(store, &tenant, window)
                })?,
            )
        })
        .await?;
    Ok(page(views::rfm(&op, &rfm)))
}

async fn lifecycle(State(state): State<Arc<AppState>>, op: Operator) -> Result<Response, Refusal> {
    op.require(Action::Read)?;
    let tenant = op.session.user.tenant.clone();
    let figures = Arc::clone(&state.figures);
    let shown = state
        .with_store(move |store| {
            let today = tenant.zone.day_of(Timestamp::now());
            Ok(
                figures.figure(store, &tenant, "lifecycle", String::new(), today, |store| {
                    lifecycle_figures(store, &tenant, today)
                })?,
            )
        })
        .await?;
    let (report, funnel) = &*shown;
    Ok(page(views::lifecycle(&op, report, funnel)))
}

/// Customers the lifecycle page lists per stage.
const LISTED_PER_STAGE: usize = 50;

/// The lifecycle page's figures: the stages, the funnel of the same customers' journeys
/// (as `siyu report funnel`, without reading the shop a second time), and of the customers
/// only the first at risk and lost, which the page lists (kept, the report's million
/// customers would hold tens of megabytes).
fn lifecycle_figures(
    store: &mut dyn siyu_store::Store,
    tenant: &siyu_store::Tenant,
    today: jiff::civil::Date,
) -> anyhow::Result<(
    crate::service::lifecycle::LifecycleReport,
    crate::service::reports::FunnelReport,
)> {
    use siyu_core::lifecycle::Stage;
    let mut report = crate::service::lifecycle::lifecycle(store, tenant, today)?;
    let funnel = crate::service::reports::FunnelReport {
        as_of: today,
        customers: report.customers.len() as u64,
        steps: siyu_core::metrics::funnel::funnel_of(report.customers.iter().map(|c| c.journey)),
    };
    let (mut at_risk, mut lost) = (0, 0);
    report.customers.retain(|c| {
        let seen = match c.stage {
            Stage::AtRisk => &mut at_risk,
            Stage::Lost => &mut lost,
            _ => return false,
        };
        *seen += 1;
        *seen <= LISTED_PER_STAGE
    });
    report.customers.shrink_to_fit();
    Ok((report, funnel))
}

async fn cohorts(State(state): State<Arc<AppState>>, op: Operator) -> Result<Response, Refusal> {
    op.require(Action::Read)?;
    let tenant = op.session.user.tenant.clone();
    let figures = Arc::clone(&state.figures);
    let cohorts = state
        .with_store(move |store| {
            let today = tenant.zone.day_of(Timestamp::now());
            Ok(
                figures.figure(store, &tenant, "cohorts", String::new(), today, |store| {
                    crate::service::reports::cohort_report(store, &tenant, today, 12)
                })?,
            )
        })
        .await?;
    Ok(page(views::cohorts(&op, &cohorts)))
}

/// The channels of the last 365 days to today (as `siyu report channels`).
async fn channel_page(
    state: &Arc<AppState>,
    op: &Operator,
    problem: Option<String>,
) -> Result<Response, Refusal> {
    let tenant = op.session.user.tenant.clone();
    let figures = Arc::clone(&state.figures);
    let report = state
        .with_store(move |store| {
            let today = tenant.zone.day_of(Timestamp::now());
            let from = today
                .checked_sub(jiff::Span::new().days(364))
                .map_err(anyhow::Error::from)?;
            let period =
                siyu_core::metrics::shop::Period::new(from, today).map_err(anyhow::Error::from)?;
            Ok(
                figures.figure(store, &tenant, "channels", String::new(), today, |store| {
                    crate::service::reports::channel_report(store, &tenant, period)
                })?,
            )
        })
        .await?;
    Ok(page_or_refused(
        views::channels(op, &report, problem.as_deref()),
        problem.is_some(),
    ))
}

async fn channels(State(state): State<Arc<AppState>>, op: Operator) -> Result<Response, Refusal> {
    op.require(Action::Read)?;
    channel_page(&state, &op, None).await
}

#[derive(Debug, Deserialize)]
struct SpendForm {
    #[serde(default)]
    channel: String,
    #[serde(default)]
    month: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    csrf: String,
}

/// Records a channel's acquisition spend in a month (as `siyu channel-cost set`).
async fn channel_spend(
    State(state): State<Arc<AppState>>,
    op: Operator,
    Form(form): Form<SpendForm>,
) -> Result<Response, Refusal> {
    op.check_form(&form.csrf)?;
    op.require(Action::Manage)?;
    let tenant = op.session.user.tenant.clone();
    let done = state
        .with_store(move |store| {
            let set = (|| -> anyhow::Result<()> {
                let channel = siyu_core::channel::Channel::parse(form.channel.trim())
                    .map_err(|e| anyhow::anyhow!("channel: {e}"))?;
                crate::cli::report::known_channel(store, &tenant, &channel)?;
                let month = siyu_core::metrics::cohorts::Month::parse(&form.month)
                    .map_err(|e| anyhow::anyhow!("month: {e}"))?;
                let amount = siyu_core::money::Money::parse_yuan(form.amount.trim())
                    .map_err(|e| anyhow::anyhow!("amount: {e}"))?;
                store.set_channel_cost(&tenant, &channel, month, amount)?;
                Ok(())
            })();
            Ok(set.map_err(|e| format!("{e:#}")))
        })
        .await?;
    match done {
        Ok(()) => Ok(Redirect::to("/console/channels").into_response()),
        Err(problem) => channel_page(&state, &op, Some(problem)).await,
    }
}

async fn referrals(State(state): State<Arc<AppState>>, op: Operator) -> Result<Response, Refusal> {
    op.require(Action::Read)?;
    let tenant = op.session.user.tenant.clone();
    let figures = Arc::clone(&state.figures);
    let report = state
        .with_store(move |store| {
            let today = tenant.zone.day_of(Timestamp::now());
            Ok(
                figures.figure(store, &tenant, "referrals", String::new(), today, |store| {
                    crate::service::reports::referral_report(store, &tenant, today, 20)
                })?,
            )
        })
        .await?;
    Ok(page(views::referrals(&op, &report)))
}

#[derive(Debug, Deserialize)]
struct GmvQuery {
    from: Option<String>,
    to: Option<String>,
    compare_from: Option<String>,
    compare_to: Option<String>,
    users: Option<f64>,
    retention: Option<f64>,
    conversion: Option<f64>,
    purchases_per_buyer: Option<f64>,
    aov: Option<f64>,
}

/// GMV's five factors over a period against the one before (30 days each by default),
/// each factor's LMDI share of the change, and a what-if of moves in percent.
async fn gmv(
    State(state): State<Arc<AppState>>,
    op: Operator,
    Query(q): Query<GmvQuery>,
) -> Result<Response, Refusal> {
    use siyu_core::metrics::gmv::Factor;
    use siyu_core::metrics::shop::Period;
    op.require(Action::Read)?;
    let tenant = op.session.user.tenant.clone();
    let today = tenant.zone.day_of(Timestamp::now());
    let day =
        |text: &Option<String>, default: jiff::civil::Date| -> Result<jiff::civil::Date, String> {
            match text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
                None => Ok(default),
                Some(t) => siyu_core::TenantZone::parse_day(t).map_err(|e| format!("{t}: {e}")),
            }
        };
    let back =
        |d: jiff::civil::Date, days: i64| d.checked_sub(jiff::Span::new().days(days)).unwrap_or(d);
    type Asked = (Period, Period, Vec<(Factor, f64)>);
    let asked = (|| -> Result<Asked, String> {
        let to = day(&q.to, today)?;
        let from = day(&q.from, back(to, 29))?;
        let period = Period::new(from, to).map_err(|e| e.to_string())?;
        let length = (to - from).get_days() as i64;
        let compare_to = day(&q.compare_to, back(from, 1))?;
        let compare_from = day(&q.compare_from, back(compare_to, length))?;
        let compare = Period::new(compare_from, compare_to).map_err(|e| e.to_string())?;
        let mut moves = Vec::new();
        for (f, v) in [
            (Factor::Users, q.users),
            (Factor::Retention, q.retention),
            (Factor::Conversion, q.conversion),
            (Factor::PurchasesPerBuyer, q.purchases_per_buyer),
            (Factor::Aov, q.aov),
        ] {
            match v {
                Some(v) if !(-50.0..=50.0).contains(&v) || !v.is_finite() => {
                    return Err(format!("{}: a move from -50% to +50%", f.name()));
                }
                Some(v) if v != 0.0 => moves.push((f, v)),
                _ => {}
            }
        }
        Ok((period, compare, moves))
    })();
    let (period, compare, moves, problem) = match asked {
        Ok((p, c, m)) => (p, c, m, None),
        Err(problem) => {
            let p =
                Period::new(back(today, 29), today).map_err(|e| ApiError::Internal(e.into()))?;
            let c = Period::new(back(today, 59), back(today, 30))
                .map_err(|e| ApiError::Internal(e.into()))?;
            (p, c, Vec::new(), Some(problem))
        }
    };
    let shown = views::GmvAsked {
        from: period.from.to_string(),
        to: period.to.to_string(),
        compare_from: compare.from.to_string(),
        compare_to: compare.to.to_string(),
        moves: moves.clone(),
    };
    let fractions: Vec<(Factor, f64)> = moves.iter().map(|(f, v)| (*f, v / 100.0)).collect();
    let figures = Arc::clone(&state.figures);
    // The periods and the moves are the figure's parameters (a move's f64 by its bits).
    let params = format!(
        "{} {} {} {} {:?}",
        period.from,
        period.to,
        compare.from,
        compare.to,
        fractions
            .iter()
            .map(|(f, v)| (f.name(), v.to_bits()))
            .collect::<Vec<_>>()
    );
    let report = state
        .with_store(move |store| {
            Ok(
                figures.figure(store, &tenant, "gmv", params, today, |store| {
                    let moves = (!fractions.is_empty()).then_some(&fractions);
                    crate::service::reports::gmv(store, &tenant, period, Some(compare), moves, None)
                })?,
            )
        })
        .await?;
    Ok(page_or_refused(
        views::gmv(&op, &shown, &report, problem.as_deref()),
        problem.is_some(),
    ))
}

/// Customers listed by predicted value.
const TOP_CLV: usize = 20;

/// The lifetime value page's figures: the kept model, the holdout check of a fit with the
/// last 26 weeks held out, and the customers of highest predicted value.
fn clv_figures(
    store: &mut dyn siyu_store::Store,
    tenant: &siyu_store::Tenant,
) -> anyhow::Result<views::ClvPage> {
    use crate::service::clv as service;
    let model = service::stored_model(store, tenant)?;
    let days = service::purchase_days_from_store(store, tenant)?;
    let holdout = days.last_day().and_then(|last| {
        let end = last.checked_sub(jiff::Span::new().weeks(26)).ok()?;
        let summary = service::summarise(&days, Some(end), Some(last)).ok()?;
        let histories: Vec<_> = summary.customers.iter().map(|c| c.history).collect();
        let models = service::fit(&histories).ok()?;
        service::holdout(&models, &summary)
    });
    let mut top = Vec::new();
    if let Some(m) = &model
        && let Some((bgnbd, spend)) = m.params()
        && let Ok(summary) = days.summary(m.calibration_end, None)
    {
        let horizon = m.horizon();
        for c in &summary.customers {
            let p = siyu_core::clv::value::predict(&bgnbd, spend.as_ref(), &c.history, &horizon);
            if let Some(clv) = p.clv.and_then(service::finite) {
                top.push((c.customer_id.to_string(), service::finite(p.p_alive), clv));
            }
        }
        top.sort_by(|a, b| b.2.total_cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
        top.truncate(TOP_CLV);
    }
    Ok(views::ClvPage {
        model,
        holdout,
        top,
        problem: None,
    })
}

async fn clv(State(state): State<Arc<AppState>>, op: Operator) -> Result<Response, Refusal> {
    op.require(Action::Read)?;
    let tenant = op.session.user.tenant.clone();
    let figures = Arc::clone(&state.figures);
    let shown = state
        .with_store(move |store| {
            let today = tenant.zone.day_of(Timestamp::now());
            Ok(
                figures.figure(store, &tenant, "clv", String::new(), today, |store| {
                    clv_figures(store, &tenant)
                })?,
            )
        })
        .await?;
    Ok(page(views::clv(&op, &shown)))
}

/// Fits the tenant's model on every paid order (as `siyu clv fit`), then shows the page.
async fn clv_fit(
    State(state): State<Arc<AppState>>,
    op: Operator,
    Form(form): Form<CsrfForm>,
) -> Result<Response, Refusal> {
    op.check_form(&form.csrf)?;
    op.require(Action::Manage)?;
    let tenant = op.session.user.tenant.clone();
    let problem = state
        .with_store(move |store| {
            let horizon = crate::service::clv::DEFAULT_HORIZON;
            Ok(
                match crate::service::clv::fit_tenant(store, &tenant, None, horizon) {
                    Ok(_) => None,
                    Err(e) => match e.cannot_fit() {
                        Some(why) => Some(why.to_string()),
                        None => return Err(ApiError::Internal(anyhow::anyhow!("{e:#}"))),
                    },
                },
            )
        })
        .await?;
    match problem {
        None => Ok(Redirect::to("/console/clv").into_response()),
        Some(problem) => {
            let tenant = op.session.user.tenant.clone();
            let mut shown = state
                .with_store(move |store| Ok(clv_figures(store, &tenant)?))
                .await?;
            shown.problem = Some(format!("{}: {problem}", op.lang.t(text::Key::CannotFit)));
            Ok((
                StatusCode::BAD_REQUEST,
                Html(views::clv(&op, &shown).into_string()),
            )
                .into_response())
        }
    }
}

#[derive(Debug, Deserialize)]
struct SignInQuery {
    #[serde(default)]
    failed: Option<String>,
}

async fn sign_in_form(headers: HeaderMap, query: Query<SignInQuery>) -> Response {
    let lang = lang_of(&headers);
    let token = random_hex(16).unwrap_or_default();
    let problem = match query.failed.as_deref() {
        Some("locked") => Some(lang.t(text::Key::LockedSignIn)),
        Some("address") => Some(lang.t(text::Key::AddressLocked)),
        Some(_) => Some(lang.t(text::Key::WrongSignIn)),
        None => None,
    };
    let mut response = page(views::sign_in(lang, &token, problem));
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SIGN_IN_COOKIE, &token, 3600, over_tls(&headers)),
    );
    response
}

#[derive(Debug, Deserialize)]
struct SignInForm {
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    /// Missing, it is refused as a wrong token (403), never as a malformed form.
    #[serde(default)]
    csrf: String,
}

async fn sign_in(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    Form(form): Form<SignInForm>,
) -> Response {
    let lang = lang_of(&headers);
    match cookie(&headers, SIGN_IN_COOKIE) {
        Some(token) if same_token(token, &form.csrf) => {}
        _ => return csrf_refused(lang),
    }
    // An address with too many failures is refused before any password is looked at.
    let client = guard::client_of(&extensions, &headers);
    let now = std::time::Instant::now();
    if let Some(client) = client
        && state.sign_ins.locked(client, now).is_some()
    {
        return Redirect::to("/console/sign-in?failed=address").into_response();
    }
    let failed = |state: &AppState| {
        if let Some(client) = client
            && state.sign_ins.failed(client, now)
        {
            tracing::warn!("console sign-ins refused from an address after repeated failures");
        }
    };
    if form.tenant.len() > 200 {
        failed(&state);
        return Redirect::to("/console/sign-in?failed=wrong").into_response();
    }
    let outcome = state
        .with_store(move |store| {
            // An unknown tenant is a wrong sign-in, never a new tenant.
            let tenants = store.tenants().map_err(anyhow::Error::from)?;
            let Some(tenant) = tenants.into_iter().find(|t| t.name == form.tenant.trim()) else {
                return Ok(Err(Refused::Wrong));
            };
            Ok(users::sign_in(
                store,
                &tenant,
                form.name.trim(),
                &form.password,
            )?)
        })
        .await;
    match outcome {
        Ok(Ok(signed_in)) => {
            tracing::info!(
                tenant = %signed_in.session.user.tenant.name,
                role = %signed_in.session.user.role,
                "console sign-in"
            );
            let tls = over_tls(&headers);
            let mut response = Redirect::to("/console").into_response();
            let h = response.headers_mut();
            h.append(
                header::SET_COOKIE,
                set_cookie(
                    SESSION_COOKIE,
                    &signed_in.secret,
                    users::SESSION_FOR.as_secs(),
                    tls,
                ),
            );
            h.append(header::SET_COOKIE, set_cookie(SIGN_IN_COOKIE, "", 0, tls));
            response
        }
        Ok(Err(Refused::Locked(_))) => {
            failed(&state);
            Redirect::to("/console/sign-in?failed=locked").into_response()
        }
        Ok(Err(Refused::Wrong)) => {
            failed(&state);
            Redirect::to("/console/sign-in?failed=wrong").into_response()
        }
        Err(e) => e.into_response(),
    }
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

async fn sign_out(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    op: Operator,
    Form(form): Form<CsrfForm>,
) -> Result<Response, Refusal> {
    op.check_form(&form.csrf)?;
    if let Some(secret) = cookie(&headers, SESSION_COOKIE).map(str::to_owned) {
        state
            .with_store(move |store| Ok(users::sign_out(store, &secret)?))
            .await?;
    }
    let mut response = Redirect::to("/console/sign-in").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", 0, over_tls(&headers)),
    );
    Ok(response)
}

#[derive(Debug, Deserialize)]
struct Back {
    back: Option<String>,
}

/// Sets the language and goes back to the console page the operator was on (never
/// elsewhere: only `/console` paths are followed).
async fn switch_lang(
    headers: HeaderMap,
    Path(lang): Path<String>,
    Query(back): Query<Back>,
) -> Response {
    let lang = Lang::from_cookie(Some(lang.as_str()));
    let to = back
        .back
        .filter(|b| {
            (b == "/console" || b.starts_with("/console/"))
                && !b.contains("//")
                && !b.contains('\\')
        })
        .unwrap_or_else(|| "/console".to_owned());
    let mut response = Redirect::to(&to).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            LANG_COOKIE,
            lang.code(),
            365 * 24 * 3600,
            over_tls(&headers),
        ),
    );
    response
}

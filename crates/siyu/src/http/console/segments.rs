//! The console's segments and rule tags, one code path for both: the list with member
//! counts, a form to create one whose rule is checked as it is typed (the mistake shown at
//! its column, else the number of customers it would hold now, over the whole pool), each
//! one's members by page or as CSV and its history of entries and exits by page, and
//! deleting. Reading is for every role; creating and deleting for operators and admins.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use siyu_core::CustomerId;
use siyu_core::access::Action;
use siyu_core::rule::Rule;
use siyu_core::segment::rules::{Purpose, RuleKind, check_name};

use super::views::{self, RuleCheck, RulePages, SegmentForm};
use super::{Operator, Refusal, page};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::service::{evaluate, segments};

/// Members shown per page.
const PAGE: usize = 100;
/// Changes of membership shown per page.
const HISTORY_PAGE: usize = 50;
/// The longest rule taken (as the API's body limit allows).
const MAX_RULE_CHARS: usize = 4_000;

/// The rule's check: its mistake (message, column) or nothing.
fn parse(text: &str) -> Result<Rule, RuleCheck> {
    if text.chars().count() > MAX_RULE_CHARS {
        return Err(RuleCheck::Mistake {
            message: format!("a rule has at most {MAX_RULE_CHARS} characters"),
            column: 1,
        });
    }
    Rule::parse(text).map_err(|e| RuleCheck::Mistake {
        message: e.to_string(),
        column: e.column(),
    })
}

fn purpose_of(text: Option<&str>) -> Purpose {
    match text {
        Some("analysis") => Purpose::Analysis,
        _ => Purpose::Marketing,
    }
}

/// Whether the tenant has a rule of that kind and name: read on a snapshot, so a page
/// never waits for the write lock (unlike the API's `rule_exists`, which takes it).
fn rule_exists(
    store: &mut dyn siyu_store::Store,
    tenant: &siyu_store::Tenant,
    kind: RuleKind,
    name: &str,
) -> anyhow::Result<bool> {
    let mut tx = store.read_pool(tenant)?;
    let rules = tx.rules()?;
    Ok(rules.iter().any(|r| r.kind == kind && r.name == name))
}

/// The tenant's rules of the pages' kind, each with its members' count.
async fn rule_lines(
    state: &Arc<AppState>,
    op: &Operator,
    pages: RulePages,
) -> Result<Vec<(u64, siyu_store::StoredRule)>, ApiError> {
    let tenant = op.session.user.tenant.clone();
    state
        .with_store(move |store| {
            let (rules, evaluation) = segments::current(store, &tenant)?;
            Ok(rules
                .into_iter()
                .filter(|r| r.kind == pages.kind)
                .map(|r| (evaluation.members(pages.kind, &r.name), r))
                .collect())
        })
        .await
}

async fn list_of(
    state: Arc<AppState>,
    op: Operator,
    pages: RulePages,
) -> Result<Response, Refusal> {
    op.require(Action::Read)?;
    let lines = rule_lines(&state, &op, pages).await?;
    // The editor is on this page for those who may save a rule: the pool its counts are
    // judged on is read now, beside, so the first count does not wait seconds for it.
    let tenant_id = op.session.user.tenant.id;
    if op.role().allows(Action::Manage) && Counting::start(&state, tenant_id) {
        read_beside(&state, &op, Counting(Arc::clone(&state), tenant_id));
    }
    Ok(page(views::segments(
        &op,
        pages,
        &lines,
        &SegmentForm::default(),
    )))
}

pub async fn list(State(state): State<Arc<AppState>>, op: Operator) -> Result<Response, Refusal> {
    list_of(state, op, RulePages::SEGMENTS).await
}

pub async fn tag_list(
    State(state): State<Arc<AppState>>,
    op: Operator,
) -> Result<Response, Refusal> {
    list_of(state, op, RulePages::TAGS).await
}

/// A tenant's live count under way; ended when dropped.
struct Counting(Arc<AppState>, i64);

impl Counting {
    /// Whether the tenant had no count under way (and now has one).
    fn start(state: &AppState, tenant: i64) -> bool {
        state
            .counting
            .lock()
            .map(|mut c| c.insert(tenant))
            .unwrap_or(false)
    }
}

impl Drop for Counting {
    fn drop(&mut self) {
        if let Ok(mut c) = self.0.counting.lock() {
            c.remove(&self.1);
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct CheckQuery {
    #[serde(default)]
    rule: String,
    /// `analysis` for an analysis segment and for a rule tag (given to everyone its rule
    /// selects); a marketing segment's otherwise.
    purpose: Option<String>,
}

/// The live check of a rule tag being typed: counted as a tag is given, to everyone its
/// rule selects.
pub async fn tag_check(
    state: State<Arc<AppState>>,
    op: Operator,
    Query(mut q): Query<CheckQuery>,
) -> Result<Response, Refusal> {
    q.purpose = Some("analysis".to_owned());
    check(state, op, Query(q)).await
}

/// The live check of a rule being typed: a fragment the page puts under the rule.
pub async fn check(
    State(state): State<Arc<AppState>>,
    op: Operator,
    Query(q): Query<CheckQuery>,
) -> Result<Response, Refusal> {
    op.require(Action::Read)?;
    let result = if q.rule.trim().is_empty() {
        RuleCheck::Empty
    } else {
        match parse(&q.rule) {
            Err(mistake) => mistake,
            // One count at a time per tenant: a typist's next key waits for the last.
            Ok(rule) => count(&state, &op, rule, purpose_of(q.purpose.as_deref())).await?,
        }
    };
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Html(views::rule_check(op.lang, &q.rule, &result).into_string()),
    )
        .into_response())
}

/// How old a read of the pool may be and still count at once while a fresh one is read
/// beside (ingest moves the tenant's counter with every batch; a read takes seconds at a
/// million customers).
const COUNT_POOL_AGE: std::time::Duration = std::time::Duration::from_secs(60);

/// A rule's count on the pool kept for counting: current if the tenant has not changed
/// since it was read; a moment old (said so, with its age) while a fresh one is read beside
/// if it has; read now when none was read in the last minute. One read at a time per
/// tenant: a count finding one under way and nothing to count on waits for it (up to ten
/// seconds, then the typist is told to wait).
async fn count(
    state: &Arc<AppState>,
    op: &Operator,
    rule: Rule,
    purpose: Purpose,
) -> Result<RuleCheck, ApiError> {
    // A read under way (the editor's page starts one) is waited for a while: the count
    // follows it at once.
    for _ in 0..COUNT_WAITS {
        match count_once(state, op, rule.clone(), purpose).await? {
            RuleCheck::Busy => tokio::time::sleep(COUNT_WAIT).await,
            check => return Ok(check),
        }
    }
    Ok(RuleCheck::Busy)
}

/// How long a count waits for a read under way, in steps.
const COUNT_WAIT: std::time::Duration = std::time::Duration::from_millis(100);
const COUNT_WAITS: usize = 100;

async fn count_once(
    state: &Arc<AppState>,
    op: &Operator,
    rule: Rule,
    purpose: Purpose,
) -> Result<RuleCheck, ApiError> {
    let tenant_id = op.session.user.tenant.id;
    let reading = Counting::start(state, tenant_id).then(|| Counting(Arc::clone(state), tenant_id));
    let tenant = op.session.user.tenant.clone();
    let figures = Arc::clone(&state.figures);
    let can_read = reading.is_some();
    let (check, refresh) = state
        .with_store(move |store| {
            let today = tenant.zone.day_of(siyu_core::Timestamp::now());
            let recent = figures.recent::<CountPool>(
                store,
                &tenant,
                COUNT_POOL,
                String::new(),
                today,
                COUNT_POOL_AGE,
            )?;
            let (pool, age, refresh) = match recent {
                Some(r) if r.current => (r.value, None, false),
                Some(r) => (r.value, Some(r.age), can_read),
                None if can_read => (
                    read_count_pool(&figures, store, &tenant, today)?,
                    None,
                    false,
                ),
                None => return Ok((RuleCheck::Busy, false)),
            };
            let check = match &*pool {
                Ok(pool) => match pool.count(&rule, purpose) {
                    Ok(n) => match age {
                        None => RuleCheck::Count(n),
                        Some(age) => RuleCheck::CountAged {
                            n,
                            seconds: age.as_secs(),
                        },
                    },
                    Err(e) => RuleCheck::Mistake {
                        message: refused(e).map_err(ApiError::Internal)?,
                        column: 1,
                    },
                },
                Err(message) => RuleCheck::Mistake {
                    message: message.clone(),
                    column: 1,
                },
            };
            Ok((check, refresh))
        })
        .await?;
    if refresh && let Some(reading) = reading {
        read_beside(state, op, reading);
    }
    Ok(check)
}

/// Reads the pool for counting after the answer, unless one read in the last minute is
/// current; the count under way (`reading`) ends with it.
fn read_beside(state: &Arc<AppState>, op: &Operator, reading: Counting) {
    let state = Arc::clone(state);
    let tenant = op.session.user.tenant.clone();
    tokio::spawn(async move {
        let _reading = reading;
        let figures = Arc::clone(&state.figures);
        let read = state
            .with_store(move |store| {
                let today = tenant.zone.day_of(siyu_core::Timestamp::now());
                let recent = figures.recent::<CountPool>(
                    store,
                    &tenant,
                    COUNT_POOL,
                    String::new(),
                    today,
                    COUNT_POOL_AGE,
                )?;
                if recent.is_none_or(|r| !r.current) {
                    read_count_pool(&figures, store, &tenant, today)?;
                }
                Ok(())
            })
            .await;
        if let Err(e) = read {
            tracing::warn!(error = ?e, "reading the pool for the console's rule count failed");
        }
    });
}

/// The pool for counting, or why no rule can be counted on it (a tag rule that fails).
type CountPool = Result<evaluate::CountPool, String>;

const COUNT_POOL: &str = "rule_count";

/// The pool read once and kept while the tenant has not changed.
fn read_count_pool(
    figures: &super::cache::FigureCache,
    store: &mut dyn siyu_store::Store,
    tenant: &siyu_store::Tenant,
    today: jiff::civil::Date,
) -> Result<Arc<CountPool>, ApiError> {
    Ok(
        figures.figure(store, tenant, COUNT_POOL, String::new(), today, |store| {
            match evaluate::CountPool::read(store, tenant) {
                Ok(pool) => Ok(Ok(pool)),
                Err(e) => Ok(Err(refused(e)?)),
            }
        })?,
    )
}

/// A rule that fails on the pool (a tag no rule makes, say) is the typist's mistake; a
/// tag rule that fails, every count's.
fn refused(e: segments::RulesError) -> anyhow::Result<String> {
    match e {
        segments::RulesError::Refused(e) => Ok(e.to_string()),
        segments::RulesError::Other(e) => Err(e),
    }
}

#[derive(Debug, Deserialize)]
pub struct NewSegment {
    #[serde(default)]
    name: String,
    #[serde(default)]
    rule: String,
    purpose: Option<String>,
    #[serde(default)]
    csrf: String,
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    op: Operator,
    Form(form): Form<NewSegment>,
) -> Result<Response, Refusal> {
    create_of(state, op, RulePages::SEGMENTS, form).await
}

pub async fn tag_create(
    State(state): State<Arc<AppState>>,
    op: Operator,
    Form(form): Form<NewSegment>,
) -> Result<Response, Refusal> {
    create_of(state, op, RulePages::TAGS, form).await
}

/// Creates a segment or rule tag; a mistake shows the form again with it (400).
async fn create_of(
    state: Arc<AppState>,
    op: Operator,
    pages: RulePages,
    form: NewSegment,
) -> Result<Response, Refusal> {
    op.check_form(&form.csrf)?;
    op.require(Action::Manage)?;
    let tenant = op.session.user.tenant.clone();
    let name = form.name.trim().to_owned();
    let refused = |problem: String, op: &Operator, lines: Vec<(u64, siyu_store::StoredRule)>| {
        let shown = SegmentForm {
            name: form.name.clone(),
            rule: form.rule.clone(),
            analysis: form.purpose.as_deref() == Some("analysis"),
            problem: Some(problem),
        };
        (
            StatusCode::BAD_REQUEST,
            Html(views::segments(op, pages, &lines, &shown).into_string()),
        )
            .into_response()
    };
    let name_checked = match pages.kind {
        RuleKind::Tag => segments::check_tag_name(&name).map_err(|e| e.to_string()),
        _ => check_name(&name).map_err(|e| e.to_string()),
    };
    let checked = match (name_checked, parse(&form.rule)) {
        (Err(e), _) => Err(e),
        (_, Err(RuleCheck::Mistake { message, column })) => {
            Err(views::caret_text(&form.rule, &message, column))
        }
        (Ok(()), Ok(_)) => Ok(()),
        (Ok(()), Err(_)) => Err("the rule is empty".to_owned()),
    };
    let purpose = purpose_of(form.purpose.as_deref());
    let by = format!("console:{}", op.session.user.name);
    let rule_text = form.rule.clone();
    let saved = match checked {
        Err(problem) => Err(problem),
        Ok(()) => {
            let tenant = tenant.clone();
            let name = name.clone();
            state
                .with_store(move |store| {
                    let kind = pages.kind;
                    if rule_exists(store, &tenant, kind, &name)? {
                        return Ok(Err(format!("there is a {kind} '{name}' already")));
                    }
                    let new = match kind {
                        RuleKind::Tag => segments::NewRule::tag(&name, &rule_text, None),
                        _ => segments::NewRule::segment(&name, &rule_text, purpose),
                    };
                    Ok(match segments::save_rule(store, &tenant, new, &by, false) {
                        Ok(_) => Ok(()),
                        Err(segments::RulesError::Refused(e)) => Err(e.to_string()),
                        Err(segments::RulesError::Other(e)) => {
                            return Err(ApiError::Internal(e));
                        }
                    })
                })
                .await?
        }
    };
    match saved {
        Ok(()) => {
            let to = format!("{}/{}", pages.base(), views::path_part(&name));
            Ok(Redirect::to(&to).into_response())
        }
        Err(problem) => {
            let lines = rule_lines(&state, &op, pages).await?;
            Ok(refused(problem, &op, lines))
        }
    }
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    op: Operator,
    Path(name): Path<String>,
    Form(form): Form<super::CsrfForm>,
) -> Result<Response, Refusal> {
    delete_of(state, op, RulePages::SEGMENTS, name, form).await
}

pub async fn tag_delete(
    State(state): State<Arc<AppState>>,
    op: Operator,
    Path(name): Path<String>,
    Form(form): Form<super::CsrfForm>,
) -> Result<Response, Refusal> {
    delete_of(state, op, RulePages::TAGS, name, form).await
}

/// Deletes a segment or rule tag (its history stays), then shows the list.
async fn delete_of(
    state: Arc<AppState>,
    op: Operator,
    pages: RulePages,
    name: String,
    form: super::CsrfForm,
) -> Result<Response, Refusal> {
    op.check_form(&form.csrf)?;
    op.require(Action::Manage)?;
    let tenant = op.session.user.tenant.clone();
    let deleted = state
        .with_store(move |store| Ok(segments::delete_rule(store, &tenant, pages.kind, &name)?))
        .await?;
    if !deleted {
        return Ok((
            StatusCode::NOT_FOUND,
            Html(views::not_found(&op).into_string()),
        )
            .into_response());
    }
    Ok(Redirect::to(pages.base()).into_response())
}

#[derive(Debug, Deserialize)]
pub struct MembersQuery {
    after: Option<String>,
    /// The page of the history, from 0.
    history: Option<usize>,
}

pub async fn members(
    State(state): State<Arc<AppState>>,
    op: Operator,
    Path(name): Path<String>,
    Query(q): Query<MembersQuery>,
) -> Result<Response, Refusal> {
    members_of(state, op, RulePages::SEGMENTS, name, q).await
}

pub async fn tag_members(
    State(state): State<Arc<AppState>>,
    op: Operator,
    Path(name): Path<String>,
    Query(q): Query<MembersQuery>,
) -> Result<Response, Refusal> {
    members_of(state, op, RulePages::TAGS, name, q).await
}

/// A segment's or rule tag's members, a page at a time, and its entries and exits,
/// newest first, a page at a time.
async fn members_of(
    state: Arc<AppState>,
    op: Operator,
    pages: RulePages,
    name: String,
    q: MembersQuery,
) -> Result<Response, Refusal> {
    op.require(Action::Read)?;
    let after = match q.after.as_deref().map(CustomerId::parse).transpose() {
        Ok(a) => a,
        Err(_) => return Ok(StatusCode::BAD_REQUEST.into_response()),
    };
    let history_page = q.history.unwrap_or(0);
    let Some(offset) = history_page.checked_mul(HISTORY_PAGE) else {
        return Ok(StatusCode::BAD_REQUEST.into_response());
    };
    let tenant = op.session.user.tenant.clone();
    let rule = name.clone();
    let now = state
        .with_store(move |store| {
            let kind = pages.kind;
            if !rule_exists(store, &tenant, kind, &rule)? {
                return Ok(None);
            }
            let page = segments::Page {
                after: after.as_ref(),
                limit: PAGE + 1,
            };
            let now = segments::rule_now(store, &tenant, kind, &rule, Some(page))?;
            let filter = siyu_store::MemberFilter::Rule(kind, &rule);
            let history = segments::history_page(store, &tenant, filter, offset, HISTORY_PAGE + 1)?;
            let series = segments::member_series(store, &tenant, kind, &rule)?;
            Ok(Some((now, history, series)))
        })
        .await?;
    let Some((mut now, mut history, series)) = now else {
        return Ok((
            StatusCode::NOT_FOUND,
            Html(views::not_found(&op).into_string()),
        )
            .into_response());
    };
    let more = now.members.len() > PAGE;
    now.members.truncate(PAGE);
    let more_history = history.len() > HISTORY_PAGE;
    history.truncate(HISTORY_PAGE);
    let shown = views::RuleHistory {
        series: &series,
        records: &history,
        page: history_page,
        more: more_history,
    };
    Ok(page(views::segment_members(
        &op, pages, &name, &now, more, &shown,
    )))
}

pub async fn members_csv(
    State(state): State<Arc<AppState>>,
    op: Operator,
    Path(name): Path<String>,
) -> Result<Response, Refusal> {
    members_csv_of(state, op, RulePages::SEGMENTS, name).await
}

pub async fn tag_members_csv(
    State(state): State<Arc<AppState>>,
    op: Operator,
    Path(name): Path<String>,
) -> Result<Response, Refusal> {
    members_csv_of(state, op, RulePages::TAGS, name).await
}

/// Every member of a segment or rule tag as CSV (as `siyu segment members --format csv`).
async fn members_csv_of(
    state: Arc<AppState>,
    op: Operator,
    pages: RulePages,
    name: String,
) -> Result<Response, Refusal> {
    op.require(Action::Read)?;
    let tenant = op.session.user.tenant.clone();
    let rule = name.clone();
    let csv = state
        .with_store(move |store| {
            if !rule_exists(store, &tenant, pages.kind, &rule)? {
                return Ok(None);
            }
            let now = segments::rule_now(store, &tenant, pages.kind, &rule, None)?;
            let mut out = Vec::new();
            segments::write_members_csv(&mut out, &now.members, true)?;
            Ok(Some(out))
        })
        .await?;
    let Some(csv) = csv else {
        return Ok(StatusCode::NOT_FOUND.into_response());
    };
    csv_download(&format!("{}-{name}", pages.kind), csv)
}

/// A CSV download named after `what` (letters and digits kept, the rest `_`).
pub fn csv_download(what: &str, csv: Vec<u8>) -> Result<Response, Refusal> {
    let file = format!(
        "attachment; filename=\"{}.csv\"",
        what.chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            })
            .collect::<String>()
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, file),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        csv,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_live_count_runs_at_a_time_per_tenant() {
        let dir = tempfile::tempdir().expect("dir");
        let db = dir.path().join("c.db");
        let state = AppState::new(
            db.to_str().expect("path"),
            crate::http::RateLimit::default(),
        )
        .expect("state");
        assert!(Counting::start(&state, 1));
        let running = Counting(Arc::clone(&state), 1);
        assert!(!Counting::start(&state, 1), "the tenant's second waits");
        assert!(Counting::start(&state, 2), "another tenant's runs");
        drop(running);
        assert!(Counting::start(&state, 1), "ended, the next may run");
    }
}

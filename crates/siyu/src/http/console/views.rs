//! The console's pages as HTML (maud escapes every value it writes). One layout: a top
//! bar with the tenant, the user and the language switch; a menu of the pages; the page.

use maud::{DOCTYPE, Markup, html};
use serde_json::json;

use siyu_core::channel::{Channel, aliases};
pub use siyu_core::customer::hide_phone as masked_phone;
use siyu_core::metrics::overview::{Grain, Overview, PeriodLine};
use siyu_core::segment::rfm::Rfm;

use siyu_core::access::Action;
use siyu_store::StoredRule;

use super::Operator;
use super::assets;
use super::text::{Key, Lang};

/// The console's pages, in menu order: (path, title).
const MENU: &[(&str, Key)] = &[
    ("/console", Key::Overview),
    ("/console/gmv", Key::GmvTree),
    ("/console/customers", Key::CustomersMenu),
    ("/console/segments", Key::Segments),
    ("/console/tags", Key::TagRules),
    ("/console/campaigns", Key::Campaigns),
    ("/console/rfm", Key::Rfm),
    ("/console/lifecycle", Key::Lifecycle),
    ("/console/cohorts", Key::Cohorts),
    ("/console/channels", Key::Channels),
    ("/console/referrals", Key::Referrals),
    ("/console/clv", Key::Clv),
    ("/console/settings", Key::Settings),
];

fn head(lang: Lang, title: &str) -> Markup {
    html! {
        meta charset="utf-8";
        meta name="viewport" content="width=device-width, initial-scale=1";
        title { (title) " · " (lang.t(Key::Console)) }
        link rel="stylesheet" href=(assets::url("console.css"));
    }
}

/// A page of a signed-in operator: `path` is the page's menu entry.
pub(super) fn layout(op: &Operator, path: &str, title: &str, charts: bool, body: Markup) -> Markup {
    let lang = op.lang;
    let user = &op.session.user;
    html! {
        (DOCTYPE)
        html lang=(lang.html()) {
            head { (head(lang, title)) }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    span.brand { (lang.t(Key::Console)) }
                    div.who {
                        span { (lang.t(Key::Tenant)) ": " (user.tenant.name) }
                        span { (user.name) " (" (user.role) ")" }
                        a href={ "/console/lang/" (lang.other().code()) "?back=" (path) } { (lang.t(Key::Language)) }
                        form.inline method="post" action="/console/sign-out" {
                            input type="hidden" name="csrf" value=(op.session.csrf);
                            button type="submit" { (lang.t(Key::SignOut)) }
                        }
                    }
                }
                div.layout {
                    nav.menu aria-label=(lang.t(Key::Console)) {
                        @for (href, key) in MENU {
                            @if *href == path || (href.len() > "/console".len() && path.starts_with(href)) {
                                a href=(href) aria-current="page" { (lang.t(*key)) }
                            } @else {
                                a href=(href) { (lang.t(*key)) }
                            }
                        }
                    }
                    main #main {
                        h1 { (title) }
                        (body)
                    }
                }
                @if charts {
                    script src=(assets::url("echarts.min.js")) {}
                }
                script src=(assets::url("console.js")) {}
            }
        }
    }
}

/// A channel as the operator names it: the Chinese name of a well-known channel.
fn channel_name(lang: Lang, channel: Option<&Channel>) -> String {
    let Some(c) = channel else {
        return lang.t(Key::Unknown).to_owned();
    };
    if lang == Lang::Zh
        && let Some((name, _)) =
            aliases().find(|(name, kept)| *kept == c.as_str() && !name.is_ascii())
    {
        return name.to_owned();
    }
    c.as_str().to_owned()
}

fn card(label: &str, value: &str) -> Markup {
    html! {
        div.card {
            div.label { (label) }
            div.value { (value) }
        }
    }
}

/// Periods of GMV shown at most on the overview (the newest): a chart of years of days
/// reads as noise.
const PERIODS_SHOWN: usize = 120;

pub fn overview(op: &Operator, o: &Overview, grain: Grain, all: &[PeriodLine]) -> Markup {
    let lang = op.lang;
    let money = |m: Option<siyu_core::money::Money>| m.map_or("–".to_owned(), |m| lang.money(m));
    let months = &all[all.len().saturating_sub(PERIODS_SHOWN)..];
    let labels: Vec<String> = months
        .iter()
        .map(|m| match grain {
            Grain::Month => m.first_day.strftime("%Y-%m").to_string(),
            Grain::Week | Grain::Day => m.first_day.to_string(),
        })
        .collect();
    let (heading, period) = match grain {
        Grain::Day => (Key::GmvByDay, Key::Day),
        Grain::Week => (Key::GmvByWeek, Key::WeekOf),
        Grain::Month => (Key::GmvByMonth, Key::Month),
    };
    // Yuan for the chart's scale; the page's figures stay exact in fen.
    let values: Vec<f64> = months.iter().map(|m| m.gmv.fen() as f64 / 100.0).collect();
    // No animation: the chart is read, not watched (and a screenshot shows it whole).
    let option = json!({
        "animation": false,
        "tooltip": {"trigger": "axis"},
        "grid": {"left": 60, "right": 16, "top": 24, "bottom": 40},
        "xAxis": {"type": "category", "data": labels},
        "yAxis": {"type": "value", "name": "¥"},
        "series": [{"type": "bar", "name": lang.t(Key::Gmv), "data": values, "itemStyle": {"color": "#0b5cad"}}],
    });
    let body = html! {
        div.cards {
            (card(lang.t(Key::Pool), &lang.count(o.customers)))
            (card(lang.t(Key::Buyers), &lang.count(o.buyers)))
            (card(lang.t(Key::BuyerShare), &lang.share(o.buyer_share)))
            (card(lang.t(Key::Gmv), &lang.money(o.gmv)))
            (card(lang.t(Key::Aov), &money(o.aov)))
            (card(lang.t(Key::Repurchase), &lang.share(o.repurchase_rate)))
            (card(lang.t(Key::PaidOrders), &lang.count(o.paid_orders)))
        }
        @if let (Some(first), Some(last)) = (o.first_order_day, o.last_order_day) {
            p.muted { (lang.t(Key::OrderDays)) ": " (first) " – " (last) }
        }
        h2 { (lang.t(heading)) }
        nav.grains aria-label=(lang.t(heading)) {
            @for (g, by, key) in [(Grain::Day, "day", Key::ByDay), (Grain::Week, "week", Key::ByWeek), (Grain::Month, "month", Key::ByMonth)] {
                @if g == grain {
                    strong aria-current="page" { (lang.t(key)) }
                } @else {
                    a href={ "/console?by=" (by) } { (lang.t(key)) }
                }
                " "
            }
        }
        div.panel {
            @if months.is_empty() {
                p.muted { (lang.t(Key::NoOrders)) }
            } @else {
                @if all.len() > months.len() {
                    p.muted { (lang.t(Key::NewestPeriods)) " " (months.len()) }
                }
                div.chart data-chart=(option.to_string()) role="img" aria-label=(lang.t(heading)) {}
                details {
                    summary { (lang.t(heading)) }
                    table {
                        thead { tr { th { (lang.t(period)) } th { (lang.t(Key::Gmv)) } th { (lang.t(Key::PaidOrders)) } } }
                        tbody {
                            @for (label, m) in labels.iter().zip(months) {
                                tr { td { (label) } td { (lang.money(m.gmv)) } td { (lang.count(m.paid_orders)) } }
                            }
                        }
                    }
                }
            }
        }
        h2 { (lang.t(Key::ByChannel)) }
        div.panel {
            table {
                thead {
                    tr {
                        th scope="col" { (lang.t(Key::Channel)) }
                        th scope="col" { (lang.t(Key::Customers)) }
                        th scope="col" { (lang.t(Key::Buyers)) }
                        th scope="col" { (lang.t(Key::Conversion)) }
                        th scope="col" { (lang.t(Key::Gmv)) }
                    }
                }
                tbody {
                    @for line in &o.channels {
                        tr {
                            td { (channel_name(lang, line.channel.as_ref())) }
                            td { (lang.count(line.customers)) }
                            td { (lang.count(line.buyers)) }
                            td { (lang.share(line.conversion)) }
                            td { (lang.money(line.gmv)) }
                        }
                    }
                }
            }
        }
    };
    layout(op, "/console", lang.t(Key::Overview), true, body)
}

pub fn rfm(op: &Operator, rfm: &Rfm) -> Markup {
    let lang = op.lang;
    let class_name = |c: siyu_core::segment::rfm::RfmClass| match lang {
        Lang::Zh => c.chinese().to_owned(),
        Lang::En => c.name().replace('_', " "),
    };
    let body = html! {
        p.muted { (lang.t(Key::RfmAsOf)) " " (rfm.window.as_of) }
        div.rfm-grid {
            @for line in &rfm.classes {
                a.card.important[line.class.name().starts_with("important")] href={ "/console/rfm/" (line.class.name()) } {
                    div.label { (class_name(line.class)) }
                    div.value { (lang.count(line.customers)) }
                    div.muted { (lang.share(line.share_of_customers)) " · " (lang.money(line.revenue)) }
                }
            }
        }
        div.panel {
            table {
                thead {
                    tr {
                        th scope="col" { (lang.t(Key::Class)) }
                        th scope="col" { (lang.t(Key::Customers)) }
                        th scope="col" { (lang.t(Key::Share)) }
                        th scope="col" { (lang.t(Key::Spend)) }
                        th scope="col" { (lang.t(Key::ShareOfSpend)) }
                    }
                }
                tbody {
                    @for line in &rfm.classes {
                        tr {
                            td { a href={ "/console/rfm/" (line.class.name()) } { (class_name(line.class)) } }
                            td { (lang.count(line.customers)) }
                            td { (lang.share(line.share_of_customers)) }
                            td { (lang.money(line.revenue)) }
                            td { (lang.share(line.share_of_revenue)) }
                        }
                    }
                }
            }
        }
    };
    let body = html! { (body) (quintile_view(lang, rfm)) };
    layout(op, "/console/rfm", lang.t(Key::Rfm), false, body)
}

/// Customers per quintile score (1–5, 5 best) of R, F and M, and per R and F score
/// together: `[r][f]`.
pub fn quintile_counts(rfm: &Rfm) -> ([[u64; 5]; 3], [[u64; 5]; 5]) {
    let mut each = [[0u64; 5]; 3];
    let mut rf = [[0u64; 5]; 5];
    let at = |s: u8| usize::from(s.clamp(1, 5) - 1);
    for c in &rfm.customers {
        let q = c.quintiles;
        for (d, s) in [q.r, q.f, q.m].into_iter().enumerate() {
            each[d][at(s)] += 1;
        }
        rf[at(q.r)][at(q.f)] += 1;
    }
    (each, rf)
}

/// The quintile view: customers per score, and the R×F grid (R down from 5, F across).
fn quintile_view(lang: Lang, rfm: &Rfm) -> Markup {
    let (each, rf) = quintile_counts(rfm);
    html! {
        h2 #quintiles { (lang.t(Key::Quintiles)) }
        div.panel {
            table.quintiles {
                thead { tr {
                    th scope="col" { (lang.t(Key::Score)) }
                    @for s in 1..=5 { th scope="col" { (s) } }
                } }
                tbody {
                    @for (name, row) in ["R", "F", "M"].into_iter().zip(each) {
                        tr data-dimension=(name) {
                            th scope="row" { (name) }
                            @for n in row { td { (lang.count(n)) } }
                        }
                    }
                }
            }
        }
        h2 { (lang.t(Key::RfGrid)) }
        div.panel {
            table.rf-grid {
                thead { tr {
                    th scope="col" { "R \\ F" }
                    @for f in 1..=5 { th scope="col" { "F" (f) } }
                } }
                tbody {
                    @for r in (1..=5usize).rev() {
                        tr data-r=(r) {
                            th scope="row" { "R" (r) }
                            @for n in rf[r - 1] { td { (lang.count(n)) } }
                        }
                    }
                }
            }
        }
    }
}

/// The customers of one RFM class: a page of them, by customer id.
pub fn rfm_class(
    op: &Operator,
    class: siyu_core::segment::rfm::RfmClass,
    rfm: &Rfm,
    total: u64,
    more: bool,
) -> Markup {
    let lang = op.lang;
    let href = format!("/console/rfm/{}", class.name());
    let title = match lang {
        Lang::Zh => class.chinese().to_owned(),
        Lang::En => class.name().replace('_', " "),
    };
    let body = html! {
        p.muted {
            (lang.t(Key::RfmAsOf)) " " (rfm.window.as_of)
            " · " (lang.t(Key::Customers)) ": " strong { (lang.count(total)) }
            " · " a href={ (href) "/members.csv" } download { (lang.t(Key::DownloadCsv)) }
        }
        div.panel {
            table {
                thead { tr {
                    th scope="col" { (lang.t(Key::Customer)) }
                    th scope="col" { (lang.t(Key::DaysSinceOrder)) }
                    th scope="col" { (lang.t(Key::PaidOrders)) }
                    th scope="col" { (lang.t(Key::Spend)) }
                    th scope="col" { "R" }
                    th scope="col" { "F" }
                    th scope="col" { "M" }
                } }
                tbody {
                    @for c in &rfm.customers {
                        tr {
                            td { a href={ "/console/customers/" (path_part(c.customer_id.as_str())) } { (c.customer_id) } }
                            td { (c.recency_days) }
                            td { (c.frequency) }
                            td { (lang.money(c.monetary)) }
                            td { (c.quintiles.r) }
                            td { (c.quintiles.f) }
                            td { (c.quintiles.m) }
                        }
                    }
                }
            }
        }
        @if more {
            @if let Some(last) = rfm.customers.last() {
                p { a href={ (href) "?after=" (path_part(last.customer_id.as_str())) } { (lang.t(Key::NextPage)) " →" } }
            }
        }
    };
    layout(op, "/console/rfm", &title, false, body)
}

/// The page an operator's role may not see.
pub fn forbidden(op: &Operator) -> Markup {
    let lang = op.lang;
    let text = match lang {
        Lang::Zh => "你的角色无权使用此页面",
        Lang::En => "Your role may not use this page",
    };
    layout(op, "", text, false, html! { p { (text) } })
}

pub fn sign_in(lang: Lang, token: &str, problem: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang.html()) {
            head { (head(lang, lang.t(Key::SignIn))) }
            body {
                main.sign-in {
                    h1 { (lang.t(Key::Console)) }
                    form method="post" action="/console/sign-in" {
                        input type="hidden" name="csrf" value=(token);
                        label for="tenant" { (lang.t(Key::Tenant)) }
                        input #tenant name="tenant" value="default" required autocomplete="organization";
                        label for="name" { (lang.t(Key::User)) }
                        input #name name="name" required autocomplete="username" autofocus;
                        label for="password" { (lang.t(Key::Password)) }
                        input #password name="password" type="password" required autocomplete="current-password";
                        @if let Some(problem) = problem {
                            p.problem role="alert" { (problem) }
                        }
                        button.primary type="submit" { (lang.t(Key::SignIn)) }
                    }
                    p.muted {
                        a href={ "/console/lang/" (lang.other().code()) "?back=/console" } { (lang.t(Key::Language)) }
                    }
                }
            }
        }
    }
}

/// A text as one segment of a URL path (percent-encoded but for letters and digits).
pub fn path_part(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What the live check of a rule says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleCheck {
    Empty,
    /// The rule does not read: why, and at which column (from 1, in characters).
    Mistake {
        message: String,
        column: usize,
    },
    /// The customers the rule holds now.
    Count(u64),
    /// The customers it held in the pool as read `seconds` ago (the tenant has changed
    /// since; a fresh read is under way).
    CountAged {
        n: u64,
        seconds: u64,
    },
    /// Another count of the tenant is under way: asked again at the next key.
    Busy,
}

/// A mistake with the rule and a caret under its column, as plain text.
pub fn caret_text(rule: &str, message: &str, column: usize) -> String {
    let pad: String = rule
        .chars()
        .take(column.saturating_sub(1))
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    format!("{message}\n{rule}\n{pad}^")
}

/// The fragment under the rule being typed.
pub fn rule_check(lang: Lang, rule: &str, check: &RuleCheck) -> Markup {
    html! {
        @match check {
            RuleCheck::Empty => {},
            RuleCheck::Mistake { message, column } => {
                div.problem role="alert" data-column=(column) {
                    (lang.t(Key::RuleMistake)) ": " (message)
                    pre.caret { (caret_text(rule, "", *column).trim_start_matches('\n')) }
                }
            },
            RuleCheck::Busy => {
                p.muted data-busy="true" { (lang.t(Key::CountBusy)) }
            },
            RuleCheck::Count(n) => {
                p.count data-count=(n) { (lang.t(Key::WouldHold)) " " strong { (lang.count(*n)) } " " (lang.t(Key::CustomersNow)) }
            },
            RuleCheck::CountAged { n, seconds } => {
                p.count data-count=(n) data-aged=(seconds) {
                    (lang.t(Key::WouldHold)) " " strong { (lang.count(*n)) } " " (lang.t(Key::CustomersNow))
                    " " span.muted { (lang.t(Key::CountAgedBefore)) (seconds) (lang.t(Key::CountAgedAfter)) }
                }
            },
        }
    }
}

/// The segment form's fields as last sent, and the problem that sent them back.
#[derive(Debug, Clone, Default)]
pub struct SegmentForm {
    pub name: String,
    pub rule: String,
    pub analysis: bool,
    pub problem: Option<String>,
}

/// Which rules a set of pages is about: segments or rule tags, one code path for both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RulePages {
    pub kind: siyu_core::segment::rules::RuleKind,
}

impl RulePages {
    pub const SEGMENTS: RulePages = RulePages {
        kind: siyu_core::segment::rules::RuleKind::Segment,
    };
    pub const TAGS: RulePages = RulePages {
        kind: siyu_core::segment::rules::RuleKind::Tag,
    };

    /// The list's path; a rule's page is under it.
    pub fn base(self) -> &'static str {
        match self.kind {
            siyu_core::segment::rules::RuleKind::Tag => "/console/tags",
            _ => "/console/segments",
        }
    }

    fn is_tags(self) -> bool {
        self.kind == siyu_core::segment::rules::RuleKind::Tag
    }

    /// (title, none yet, new one, one's name)
    fn words(self) -> (Key, Key, Key, Key) {
        if self.is_tags() {
            (
                Key::TagRules,
                Key::NoTagRules,
                Key::NewTagRule,
                Key::TagName,
            )
        } else {
            (
                Key::Segments,
                Key::NoSegments,
                Key::NewSegment,
                Key::SegmentName,
            )
        }
    }
}

/// The fields a rule may use, with what each is: the editor's reference.
fn field_list(lang: Lang) -> Markup {
    use siyu_core::rule::Field;
    html! {
        details.fields {
            summary { (lang.t(Key::FieldList)) }
            table {
                thead { tr { th scope="col" { (lang.t(Key::Field)) } th scope="col" { (lang.t(Key::Detail)) } } }
                tbody {
                    @for f in Field::ALL {
                        tr { td { code { (f.name()) } } td { (f.about()) } }
                    }
                }
            }
        }
    }
}

pub fn segments(
    op: &Operator,
    pages: RulePages,
    lines: &[(u64, StoredRule)],
    form: &SegmentForm,
) -> Markup {
    let lang = op.lang;
    let (title, none, new, name_key) = pages.words();
    let base = pages.base();
    let body = html! {
        div.panel {
            @if lines.is_empty() {
                p.muted { (lang.t(none)) }
            } @else {
                table {
                    thead { tr {
                        th scope="col" { (lang.t(if pages.is_tags() { Key::TagName } else { Key::Segment })) }
                        th scope="col" { (lang.t(Key::Members)) }
                        th scope="col" { (lang.t(Key::Rule)) }
                    } }
                    tbody {
                        @for (members, r) in lines {
                            tr {
                                td { a href={ (base) "/" (path_part(&r.name)) } { (r.name) } }
                                td { (lang.count(*members)) }
                                td.rule { code { (r.rule) } }
                            }
                        }
                    }
                }
            }
        }
        @if op.session.user.role.allows(Action::Manage) {
            h2 { (lang.t(new)) }
            form.panel.segment-form method="post" action=(base) {
                input type="hidden" name="csrf" value=(op.session.csrf);
                label for="segment-name" { (lang.t(name_key)) }
                input #segment-name name="name" value=(form.name) required maxlength="64";
                label for="segment-rule" { (lang.t(Key::Rule)) }
                textarea #segment-rule name="rule" rows="3" required data-check={ (base) "/check" } aria-describedby="rule-check rule-help" { (form.rule) }
                p #rule-help .muted { (lang.t(Key::RuleHelp)) }
                div #rule-check aria-live="polite" {}
                (field_list(lang))
                @if !pages.is_tags() {
                    label {
                        input type="checkbox" name="purpose" value="analysis" checked[form.analysis];
                        " " (lang.t(Key::ForAnalysis))
                    }
                }
                @if let Some(problem) = &form.problem {
                    pre.problem role="alert" { (problem) }
                }
                div { button.primary type="submit" { (lang.t(Key::Create)) } }
            }
        }
    };
    layout(op, base, lang.t(title), false, body)
}

/// A page of a rule's history: its changes, which page, whether there are more.
pub struct RuleHistory<'a> {
    /// Members at the end of each day, oldest first.
    pub series: &'a [(jiff::civil::Date, u64)],
    pub records: &'a [siyu_store::HistoryRecord],
    pub page: usize,
    pub more: bool,
}

/// What a change of membership was, in the page's language.
fn change_name(lang: Lang, change: siyu_core::segment::rules::Change) -> &'static str {
    use siyu_core::segment::rules::Change;
    match (change, lang) {
        (Change::Entered, Lang::Zh) => "进入",
        (Change::Entered, Lang::En) => "entered",
        (Change::Exited, Lang::Zh) => "退出",
        (Change::Exited, Lang::En) => "left",
    }
}

pub fn segment_members(
    op: &Operator,
    pages: RulePages,
    name: &str,
    now: &crate::service::segments::SegmentNow,
    more: bool,
    history: &RuleHistory<'_>,
) -> Markup {
    let lang = op.lang;
    let zone = &op.session.user.tenant.zone;
    let href = format!("{}/{}", pages.base(), path_part(name));
    let body = html! {
        p { code { (now.rule.rule) } }
        p.muted {
            (lang.t(Key::Members)) ": " strong { (lang.count(now.total)) }
            " · " (lang.t(Key::RfmAsOf)) " " (now.as_of)
            " · " a href={ (href) "/members.csv" } download { (lang.t(Key::DownloadCsv)) }
        }
        div.panel {
            table {
                thead { tr {
                    th scope="col" { (lang.t(Key::Customer)) }
                    th scope="col" { (lang.t(Key::Stage)) }
                    th scope="col" { "RFM" }
                    th scope="col" { (lang.t(Key::PurchaseDays)) }
                    th scope="col" { (lang.t(Key::DaysSinceOrder)) }
                    th scope="col" { (lang.t(Key::Spend365)) }
                } }
                tbody {
                    @for m in &now.members {
                        tr {
                            td { a href={ "/console/customers/" (path_part(&m.customer_id)) } { (m.customer_id) } }
                            td { (stage_name(lang, m.stage)) }
                            td { @if let Some(c) = m.rfm { (match lang { Lang::Zh => c.chinese(), Lang::En => c.name() }) } }
                            td { (m.purchase_days) }
                            td { @if let Some(d) = m.days_since_order { (d) } }
                            td { (lang.money(m.spend_365d)) }
                        }
                    }
                }
            }
        }
        @if more {
            @if let Some(last) = now.members.last() {
                p { a href={ (href) "?after=" (path_part(&last.customer_id)) } { (lang.t(Key::NextPage)) " →" } }
            }
        }
        h2 #history { (lang.t(Key::History)) }
        @if !history.series.is_empty() {
            div.panel {
                // One day is no line: its table says it.
                @if history.series.len() > 1 {
                    div.chart.small data-chart=(series_chart(lang, history.series)) role="img" aria-label=(lang.t(Key::MembersByDay)) {}
                }
                details {
                    summary { (lang.t(Key::MembersByDay)) }
                    table.series {
                        thead { tr { th scope="col" { (lang.t(Key::Day)) } th scope="col" { (lang.t(Key::Members)) } } }
                        tbody {
                            @for (d, n) in history.series {
                                tr { td { (d) } td { (lang.count(*n)) } }
                            }
                        }
                    }
                }
            }
        }
        div.panel {
            @if history.records.is_empty() {
                p.muted { (lang.t(Key::NoHistory)) }
            } @else {
                table.history {
                    thead { tr {
                        th scope="col" { (lang.t(Key::Time)) }
                        th scope="col" { (lang.t(Key::Customer)) }
                        th scope="col" { (lang.t(Key::Change)) }
                        th scope="col" { (lang.t(Key::Occasion)) }
                    } }
                    tbody {
                        @for r in history.records {
                            tr data-change=(r.change.as_str()) {
                                td { (local(zone, r.at)) }
                                td { a href={ "/console/customers/" (path_part(r.customer_id.as_str())) } { (r.customer_id) } }
                                td { (change_name(lang, r.change)) }
                                td { (r.cause) }
                            }
                        }
                    }
                }
            }
            p.pager {
                @if history.page > 0 {
                    a href={ (href) "?history=" (history.page - 1) "#history" } { "← " (lang.t(Key::NewerPage)) }
                    " "
                }
                @if history.more {
                    a href={ (href) "?history=" (history.page + 1) "#history" } { (lang.t(Key::OlderPage)) " →" }
                }
            }
        }
        @if op.session.user.role.allows(Action::Manage) {
            form.inline method="post" action={ (href) "/delete" } {
                input type="hidden" name="csrf" value=(op.session.csrf);
                button.danger type="submit" { (lang.t(Key::Delete)) " " (name) }
            }
        }
    };
    layout(op, pages.base(), name, history.series.len() > 1, body)
}

/// A rule's members by day as a chart's option.
fn series_chart(lang: Lang, series: &[(jiff::civil::Date, u64)]) -> String {
    let days: Vec<String> = series.iter().map(|(d, _)| d.to_string()).collect();
    let members: Vec<u64> = series.iter().map(|(_, n)| *n).collect();
    json!({
        "animation": false,
        "tooltip": {"trigger": "axis"},
        "grid": {"left": 60, "right": 16, "top": 24, "bottom": 40},
        "xAxis": {"type": "category", "data": days},
        "yAxis": {"type": "value", "minInterval": 1},
        "series": [{"type": "line", "step": "end", "name": lang.t(Key::Members), "data": members,
                    "itemStyle": {"color": "#0b5cad"}}],
    })
    .to_string()
}

/// A page asked for with a parameter it does not take: what was wrong.
pub fn refused_request(op: &Operator, text: &str) -> Markup {
    layout(
        op,
        "",
        text,
        false,
        html! { p.problem role="alert" { (text) } },
    )
}

pub fn not_found(op: &Operator) -> Markup {
    let text = op.lang.t(Key::NotFound);
    layout(op, "", text, false, html! { p { (text) } })
}

/// An instant in the tenant's zone, to the minute.
pub(super) fn local(zone: &siyu_core::TenantZone, at: siyu_core::Timestamp) -> String {
    let tz = jiff::tz::TimeZone::get(zone.name()).unwrap_or(jiff::tz::TimeZone::UTC);
    tz.to_datetime(at).strftime("%Y-%m-%d %H:%M").to_string()
}

pub fn customers(op: &Operator, q: &str, lines: &[siyu_store::CustomerLine], more: bool) -> Markup {
    let lang = op.lang;
    let zone = &op.session.user.tenant.zone;
    let body = html! {
        form.search method="get" action="/console/customers" role="search" {
            label for="q" { (lang.t(Key::Search)) }
            input #q type="search" name="q" value=(q) maxlength="100" placeholder=(lang.t(Key::SearchHint));
            button type="submit" { (lang.t(Key::Search)) }
        }
        div.panel {
            @if lines.is_empty() {
                p.muted { (lang.t(Key::NoneFound)) }
            } @else {
                table {
                    thead { tr {
                        th scope="col" { (lang.t(Key::Customer)) }
                        th scope="col" { (lang.t(Key::SourceChannel)) }
                        th scope="col" { (lang.t(Key::Joined)) }
                        th scope="col" { (lang.t(Key::Orders)) }
                        th scope="col" { (lang.t(Key::NetSpend)) }
                        th scope="col" { (lang.t(Key::LastOrder)) }
                    } }
                    tbody {
                        @for c in lines {
                            tr {
                                td { a href={ "/console/customers/" (path_part(c.id.as_str())) } { (c.id) } }
                                td { (channel_name(lang, c.channel.as_ref())) }
                                td { (zone.day_of(c.joined_at)) }
                                td { (c.orders) }
                                td { (lang.money(c.net_spend)) }
                                td { @if let Some(at) = c.last_order_at { (zone.day_of(at)) } }
                            }
                        }
                    }
                }
            }
        }
        @if more && q.is_empty() {
            @if let Some(last) = lines.last() {
                p { a href={ "/console/customers?after=" (path_part(last.id.as_str())) } { (lang.t(Key::NextPage)) " →" } }
            }
        }
    };
    layout(
        op,
        "/console/customers",
        lang.t(Key::CustomersMenu),
        false,
        body,
    )
}

pub fn customer(
    op: &Operator,
    a: &crate::service::customers::CustomerAnswer,
    problem: Option<&str>,
) -> Markup {
    customer_with(op, a, problem, false)
}

/// A customer's page; `revealed`, with the phone whole (an admin's audited reveal).
pub fn customer_with(
    op: &Operator,
    a: &crate::service::customers::CustomerAnswer,
    problem: Option<&str>,
    revealed: bool,
) -> Markup {
    let lang = op.lang;
    let zone = &op.session.user.tenant.zone;
    let c = &a.customer;
    let href = format!("/console/customers/{}", path_part(c.id.as_str()));
    let manage = op.session.user.role.allows(Action::Manage);
    let admin = op.session.user.role.allows(Action::Administer);
    let csrf = &op.session.csrf;
    let model = a.model_clv.as_ref();
    let model_money = |key: &str| {
        model
            .and_then(|m| m.get(key))
            .and_then(serde_json::Value::as_i64)
            .map(|fen| lang.money(siyu_core::money::Money::from_fen(fen)))
    };
    let body = html! {
        @if let Some(problem) = problem {
            p.problem role="alert" { (problem) }
        }
        div.cards {
            (card(lang.t(Key::Stage), &a.stage.as_deref().map_or("–".to_owned(), |s| stage_text(lang, s))))
            (card("RFM", &a.rfm.as_deref().and_then(siyu_core::segment::rfm::RfmClass::parse).map_or("–".to_owned(), |c| match lang { Lang::Zh => c.chinese().to_owned(), Lang::En => c.name().replace('_', " ") })))
            @if let Some(p) = &a.profile {
                (card(lang.t(Key::Orders), &lang.count(u64::from(p.profile.orders))))
                (card(lang.t(Key::NetSpend), &lang.money(p.profile.net_spend)))
                (card(lang.t(Key::Aov), &p.aov.map_or("–".to_owned(), |m| lang.money(m))))
                (card(lang.t(Key::MeanInterval), &p.mean_interval_days.map_or("–".to_owned(), |d| format!("{d:.1}"))))
            }
            @if let Some(clv) = model_money("clv") {
                (card(lang.t(Key::ModelClv), &clv))
            }
            @if let Some(p) = model.and_then(|m| m.get("p_alive")).and_then(serde_json::Value::as_f64) {
                (card(lang.t(Key::PAlive), &lang.share(Some(p))))
            }
        }
        h2 { (lang.t(Key::Attributes)) }
        div.panel {
            table.attributes {
                tbody {
                    tr { th scope="row" { (lang.t(Key::Name)) } td { (c.name.as_deref().unwrap_or("")) } }
                    tr { th scope="row" { (lang.t(Key::Phone)) } td {
                        @if let Some(p) = &c.phone {
                            @if revealed && admin {
                                span.phone { (p) } " " span.muted { "(" (lang.t(Key::PhoneRevealed)) ")" }
                            } @else {
                                span.phone { (masked_phone(p)) } " " span.muted { "(" (lang.t(Key::PhoneMasked)) ")" }
                                @if admin {
                                    " "
                                    form.inline method="post" action={ (href) "/phone" } {
                                        input type="hidden" name="csrf" value=(csrf);
                                        button type="submit" { (lang.t(Key::RevealPhone)) }
                                    }
                                }
                            }
                        }
                    } }
                    tr { th scope="row" { (lang.t(Key::Gender)) } td { @if let Some(g) = c.gender { (g.as_str()) } } }
                    tr { th scope="row" { (lang.t(Key::Birthday)) } td { @if let Some(b) = c.birthday { (b) } } }
                    tr { th scope="row" { (lang.t(Key::Region)) } td { (c.region.as_deref().unwrap_or("")) } }
                    tr { th scope="row" { (lang.t(Key::SourceChannel)) } td { (channel_name(lang, c.channel.as_ref())) } }
                    tr { th scope="row" { (lang.t(Key::Joined)) } td { (local(zone, c.joined_at)) } }
                    tr { th scope="row" { (lang.t(Key::Referrer)) } td { @if let Some(r) = &c.referrer_id { a href={ "/console/customers/" (path_part(r.as_str())) } { (r) } } } }
                    @if let Some(at) = a.marketing_opt_out_at {
                        tr { th scope="row" { (lang.t(Key::MarketingOptOut)) } td { (local(zone, at)) } }
                    }
                }
            }
        }
        h2 { (lang.t(Key::Segments)) }
        div.panel {
            @if a.segments.is_empty() { p.muted { "–" } }
            @for name in &a.segments {
                a.chip href={ "/console/segments/" (path_part(name)) } { (name) } " "
            }
        }
        h2 { (lang.t(Key::Tags)) }
        div.panel {
            table {
                thead { tr { th scope="col" { (lang.t(Key::Tags)) } th scope="col" { (lang.t(Key::TagSource)) } th scope="col" { (lang.t(Key::Since)) } @if manage { th {} } } }
                tbody {
                    @for t in &a.tags {
                        tr {
                            td { (t.tag) }
                            td { (t.source) }
                            td { (zone.day_of(t.since)) }
                            @if manage {
                                td {
                                    @if t.source.starts_with("manual:") || t.source == "import" {
                                        form.inline method="post" action={ (href) "/tags/remove" } {
                                            input type="hidden" name="csrf" value=(csrf);
                                            input type="hidden" name="tag" value=(t.tag);
                                            button type="submit" { (lang.t(Key::Remove)) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if manage {
                form.add-tag method="post" action={ (href) "/tags" } {
                    input type="hidden" name="csrf" value=(csrf);
                    label for="tag" { (lang.t(Key::AddTag)) }
                    " "
                    input #tag name="tag" required maxlength="64";
                    " "
                    button type="submit" { (lang.t(Key::AddTag)) }
                }
            }
        }
        h2 { (lang.t(Key::RecentOrders)) }
        div.panel {
            table {
                thead { tr { th scope="col" { (lang.t(Key::Time)) } th scope="col" { "ID" } th scope="col" { (lang.t(Key::Amount)) } th scope="col" { (lang.t(Key::Status)) } th scope="col" { (lang.t(Key::Channel)) } } }
                tbody {
                    @for o in &a.recent_orders {
                        tr { td { (local(zone, o.ordered_at)) } td { (o.order_id) } td { (lang.money(o.amount)) } td { (o.status) } td { (o.channel.as_deref().unwrap_or("")) } }
                    }
                }
            }
        }
        h2 { (lang.t(Key::RecentEvents)) }
        div.panel {
            table {
                thead { tr { th scope="col" { (lang.t(Key::Time)) } th scope="col" { (lang.t(Key::EventType)) } } }
                tbody {
                    @for e in &a.recent_events {
                        tr { td { (local(zone, e.occurred_at)) } td { (e.kind) } }
                    }
                }
            }
        }
        @if manage {
            div.panel {
                form.inline method="post" action={ (href) "/opt-out" } {
                    input type="hidden" name="csrf" value=(csrf);
                    @if a.marketing_opt_out_at.is_some() {
                        input type="hidden" name="opted_out" value="false";
                        button type="submit" { (lang.t(Key::OptIn)) }
                    } @else {
                        input type="hidden" name="opted_out" value="true";
                        button type="submit" { (lang.t(Key::OptOut)) }
                    }
                }
            }
        }
        @if admin {
            h2 { (lang.t(Key::AdminOnly)) }
            div.panel {
                form.inline method="post" action={ (href) "/export" } {
                    input type="hidden" name="csrf" value=(csrf);
                    button type="submit" { (lang.t(Key::ExportData)) }
                }
                form.erase method="post" action={ (href) "/erase" } {
                    input type="hidden" name="csrf" value=(csrf);
                    label for="confirm" { (lang.t(Key::EraseConfirm)) }
                    " "
                    input #confirm name="confirm" required autocomplete="off";
                    " "
                    button.danger type="submit" { (lang.t(Key::EraseData)) }
                }
            }
        }
    };
    layout(op, "/console/customers", c.id.as_str(), false, body)
}

fn journey_name(lang: Lang, j: siyu_core::lifecycle::Journey) -> &'static str {
    use siyu_core::lifecycle::Journey;
    match lang {
        Lang::En => j.name(),
        Lang::Zh => match j {
            Journey::Stranger => "陌生",
            Journey::Engaged => "互动",
            Journey::Intent => "意向",
            Journey::Customer => "成交",
            Journey::Repeat => "复购",
            Journey::Advocate => "推荐",
        },
    }
}

fn stage_name(lang: Lang, s: siyu_core::lifecycle::Stage) -> &'static str {
    match lang {
        Lang::Zh => s.chinese(),
        Lang::En => s.name(),
    }
}

pub fn lifecycle(
    op: &Operator,
    report: &crate::service::lifecycle::LifecycleReport,
    funnel: &crate::service::reports::FunnelReport,
) -> Markup {
    use siyu_core::lifecycle::Stage;
    let lang = op.lang;
    let names: Vec<&str> = funnel
        .steps
        .iter()
        .map(|s| journey_name(lang, s.stage))
        .collect();
    let data: Vec<serde_json::Value> = funnel
        .steps
        .iter()
        .zip(&names)
        .map(|(s, n)| json!({"name": n, "value": s.reached}))
        .collect();
    let option = json!({
        "animation": false,
        "tooltip": {"trigger": "item"},
        "series": [{"type": "funnel", "sort": "descending", "left": "10%", "width": "80%",
                     "label": {"show": true, "position": "inside"}, "data": data}],
    });
    let list = |stage: Stage| -> Vec<&siyu_core::lifecycle::CustomerStage> {
        report
            .customers
            .iter()
            .filter(|c| c.stage == stage)
            .take(50)
            .collect()
    };
    let people = |rows: Vec<&siyu_core::lifecycle::CustomerStage>| {
        html! {
            table {
                thead { tr {
                    th scope="col" { (lang.t(Key::Customer)) }
                    th scope="col" { (lang.t(Key::DaysSinceOrder)) }
                    th scope="col" { (lang.t(Key::PurchaseDays)) }
                    th scope="col" { (lang.t(Key::Spend365)) }
                } }
                tbody {
                    @for c in rows {
                        tr {
                            td { a href={ "/console/customers/" (path_part(c.customer_id.as_str())) } { (c.customer_id) } }
                            td { @if let Some(d) = c.days_since_order { (d) } }
                            td { (c.purchase_days) }
                            td { (lang.money(c.spend_365d)) }
                        }
                    }
                }
            }
        }
    };
    let body = html! {
        p.muted { (lang.t(Key::RfmAsOf)) " " (report.as_of) " · " a href="/console/lifecycle/flows" { (lang.t(Key::Flows)) " →" } }
        h2 { (lang.t(Key::StageCounts)) }
        div.cards {
            @for s in &report.stages {
                (card(stage_name(lang, s.stage), &lang.count(s.customers)))
            }
        }
        h2 { (lang.t(Key::Journey)) }
        div.panel {
            div.chart data-chart=(option.to_string()) role="img" aria-label=(lang.t(Key::Journey)) {}
            table {
                thead { tr {
                    th scope="col" { (lang.t(Key::Stage)) }
                    th scope="col" { (lang.t(Key::Reached)) }
                    th scope="col" { (lang.t(Key::StepConversion)) }
                    th scope="col" { (lang.t(Key::Share)) }
                } }
                tbody {
                    @for (s, n) in funnel.steps.iter().zip(&names) {
                        tr { td { (n) } td { (lang.count(s.reached)) } td { (lang.share(s.step_conversion)) } td { (lang.share(s.share_of_pool)) } }
                    }
                }
            }
        }
        h2 { (lang.t(Key::AtRiskList)) }
        div.panel { (people(list(Stage::AtRisk))) }
        h2 { (lang.t(Key::LostList)) }
        div.panel { (people(list(Stage::Lost))) }
    };
    layout(op, "/console/lifecycle", lang.t(Key::Lifecycle), true, body)
}

pub fn cohorts(op: &Operator, c: &siyu_core::metrics::cohorts::Cohorts) -> Markup {
    let lang = op.lang;
    let months: Vec<String> = c
        .cohorts
        .iter()
        .map(|k| format!("{:04}-{:02}", k.month.year, k.month.month))
        .collect();
    let width = c.cohorts.iter().map(|k| k.shares.len()).max().unwrap_or(0);
    let mut cells = Vec::new();
    for (y, k) in c.cohorts.iter().enumerate() {
        for (x, share) in k.shares.iter().enumerate() {
            if let Some(share) = share {
                cells.push(json!([x, y, (share * 1000.0).round() / 10.0]));
            }
        }
    }
    let option = json!({
        "animation": false,
        "tooltip": {"position": "top"},
        "grid": {"left": 80, "right": 16, "top": 16, "bottom": 60},
        "xAxis": {"type": "category", "data": (1..=width).map(|k| k.to_string()).collect::<Vec<_>>()},
        "yAxis": {"type": "category", "data": months, "inverse": true},
        "visualMap": {"min": 0, "max": 50, "calculable": false, "orient": "horizontal", "left": "center", "bottom": 0,
                       "inRange": {"color": ["#f6f8fa", "#0b5cad"]}},
        "series": [{"type": "heatmap", "data": cells, "label": {"show": width <= 12}}],
    });
    let body = html! {
        p.muted { (lang.t(Key::RfmAsOf)) " " (c.as_of) " · " (lang.t(Key::Repurchase)) " " (lang.share(c.repurchase.rate)) }
        h2 { (lang.t(Key::MonthsAfter)) }
        div.panel {
            @if c.cohorts.is_empty() {
                p.muted { (lang.t(Key::NoOrders)) }
            } @else {
                div.chart.tall data-chart=(option.to_string()) role="img" aria-label=(lang.t(Key::MonthsAfter)) {}
                table {
                    thead { tr {
                        th scope="col" { (lang.t(Key::CohortMonth)) }
                        th scope="col" { (lang.t(Key::Buyers)) }
                        @for k in 1..=width { th scope="col" { "+" (k) } }
                    } }
                    tbody {
                        @for (k, m) in c.cohorts.iter().zip(&months) {
                            tr {
                                td { (m) }
                                td { (lang.count(k.customers)) }
                                @for s in &k.shares { td { (lang.share(*s)) } }
                            }
                        }
                    }
                }
            }
        }
        h2 { (lang.t(Key::RepurchaseByChannel)) }
        div.panel {
            table {
                thead { tr {
                    th scope="col" { (lang.t(Key::Channel)) }
                    th scope="col" { (lang.t(Key::Buyers)) }
                    th scope="col" { (lang.t(Key::Repeaters)) }
                    th scope="col" { (lang.t(Key::Repurchase)) }
                } }
                tbody {
                    @for l in &c.by_channel {
                        tr {
                            td { (channel_name(lang, l.channel.as_ref())) }
                            td { (lang.count(l.buyers)) }
                            td { (lang.count(l.repeaters)) }
                            td { (lang.share(l.rate)) }
                        }
                    }
                }
            }
        }
    };
    layout(op, "/console/cohorts", lang.t(Key::Cohorts), true, body)
}

/// What the settings page shows.
pub struct SettingsPage {
    pub settings: Vec<(siyu_core::settings::Setting, String)>,
    /// Admins only: (name, role, locked until).
    pub users: Vec<(
        String,
        siyu_core::access::Role,
        Option<siyu_core::Timestamp>,
    )>,
    pub tokens: Vec<crate::service::tokens::TokenLine>,
    pub audit: Vec<crate::service::privacy::AuditLine>,
    pub problem: Option<String>,
    /// A token just made, shown this once.
    pub new_token: Option<String>,
}

pub fn settings(op: &Operator, p: &SettingsPage) -> Markup {
    let lang = op.lang;
    let zone = &op.session.user.tenant.zone;
    let admin = op.session.user.role.allows(Action::Administer);
    let csrf = &op.session.csrf;
    let body = html! {
        @if let Some(problem) = &p.problem {
            p.problem role="alert" { (problem) }
        }
        @if let Some(token) = &p.new_token {
            div.panel.new-token role="status" {
                p { (lang.t(Key::NewTokenOnce)) }
                code #new-token { (token) }
            }
        }
        div.panel {
            table.attributes {
                thead { tr { th scope="col" { (lang.t(Key::Setting)) } th scope="col" { (lang.t(Key::Value)) } } }
                tbody {
                    @for (setting, value) in &p.settings {
                        tr {
                            th scope="row" { code { (setting.key()) } }
                            td {
                                @if admin {
                                    form.inline.setting method="post" action="/console/settings" {
                                        input type="hidden" name="csrf" value=(csrf);
                                        input type="hidden" name="key" value=(setting.key());
                                        input name="value" value=(value) aria-label=(setting.key());
                                        " "
                                        button type="submit" { (lang.t(Key::Save)) }
                                    }
                                } @else {
                                    (value)
                                }
                            }
                        }
                    }
                }
            }
        }
        @if admin {
            h2 { (lang.t(Key::Users)) }
            div.panel {
                table {
                    thead { tr { th scope="col" { (lang.t(Key::User)) } th scope="col" { "Role" } th scope="col" { (lang.t(Key::LockedUntil)) } th {} } }
                    tbody {
                        @for (name, role, locked) in &p.users {
                            tr {
                                td { (name) }
                                td { (role) }
                                td { @if let Some(t) = locked { (local(zone, *t)) } }
                                td {
                                    @if *name != op.session.user.name {
                                        form.inline method="post" action="/console/settings/users/delete" {
                                            input type="hidden" name="csrf" value=(csrf);
                                            input type="hidden" name="name" value=(name);
                                            button type="submit" { (lang.t(Key::Delete)) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                form.add-tag method="post" action="/console/settings/users" {
                    input type="hidden" name="csrf" value=(csrf);
                    label for="new-user" { (lang.t(Key::AddUser)) } " "
                    input #new-user name="name" required maxlength="64" placeholder=(lang.t(Key::User)); " "
                    select name="role" aria-label="role" {
                        option value="viewer" { "viewer" }
                        option value="operator" { "operator" }
                        option value="admin" { "admin" }
                    } " "
                    input name="password" type="password" required minlength="10" maxlength="128" autocomplete="new-password" placeholder=(lang.t(Key::Password)) aria-label=(lang.t(Key::Password)); " "
                    button type="submit" { (lang.t(Key::AddUser)) }
                }
            }
            h2 { (lang.t(Key::ApiTokens)) }
            div.panel {
                table {
                    thead { tr { th scope="col" { "#" } th scope="col" { "Role" } th scope="col" { (lang.t(Key::Label)) } th scope="col" { (lang.t(Key::Created)) } th scope="col" { (lang.t(Key::Revoked)) } th {} } }
                    tbody {
                        @for t in &p.tokens {
                            tr {
                                td { code { (t.hash_prefix) } }
                                td { (t.role) }
                                td { (t.label) }
                                td { (crate::cli::output::local_time_of(zone, &t.created_at)) }
                                td { @if let Some(r) = &t.revoked_at { (crate::cli::output::local_time_of(zone, r)) } }
                                td {
                                    @if t.revoked_at.is_none() {
                                        form.inline method="post" action="/console/settings/tokens/revoke" {
                                            input type="hidden" name="csrf" value=(csrf);
                                            input type="hidden" name="prefix" value=(t.hash_prefix);
                                            button type="submit" { (lang.t(Key::Revoke)) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                form.add-tag method="post" action="/console/settings/tokens" {
                    input type="hidden" name="csrf" value=(csrf);
                    label for="token-label" { (lang.t(Key::AddToken)) } " "
                    select name="role" aria-label="role" {
                        option value="ingest" { "ingest" }
                        option value="viewer" { "viewer" }
                        option value="operator" { "operator" }
                        option value="admin" { "admin" }
                    } " "
                    input #token-label name="label" maxlength="100" placeholder=(lang.t(Key::Label)); " "
                    button type="submit" { (lang.t(Key::AddToken)) }
                }
            }
            h2 { (lang.t(Key::AuditLog)) }
            div.panel {
                table {
                    thead { tr { th scope="col" { (lang.t(Key::Time)) } th scope="col" { (lang.t(Key::Actor)) } th scope="col" { (lang.t(Key::Action)) } th scope="col" { (lang.t(Key::Detail)) } } }
                    tbody {
                        @for a in &p.audit {
                            tr { td { (local(zone, a.at)) } td { (a.actor) } td { (a.action.as_str()) } td { (a.detail) } }
                        }
                    }
                }
            }
        } @else {
            p.muted { (lang.t(Key::AdminsOnly)) }
        }
    };
    layout(op, "/console/settings", lang.t(Key::Settings), false, body)
}

pub fn channels(
    op: &Operator,
    r: &crate::service::reports::ChannelReport,
    problem: Option<&str>,
) -> Markup {
    let lang = op.lang;
    let money = |m: Option<siyu_core::money::Money>| m.map_or("–".to_owned(), |m| lang.money(m));
    let ratio = |x: Option<f64>| x.map_or("–".to_owned(), |x| format!("{x:.2}"));
    let names: Vec<String> = r
        .channels
        .iter()
        .map(|c| channel_name(lang, c.channel.as_ref()))
        .collect();
    let option = json!({
        "animation": false,
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 0},
        "grid": {"left": 60, "right": 16, "top": 36, "bottom": 60},
        "xAxis": {"type": "category", "data": names, "axisLabel": {"rotate": 30}},
        "yAxis": {"type": "value"},
        "series": [
            {"type": "bar", "name": lang.t(Key::Entrants), "data": r.channels.iter().map(|c| c.entrants).collect::<Vec<_>>()},
            {"type": "bar", "name": lang.t(Key::Buyers), "data": r.channels.iter().map(|c| c.buyers).collect::<Vec<_>>()},
        ],
    });
    let body = html! {
        p.muted { (lang.t(Key::Period)) ": " (r.period.from) " – " (r.period.to) }
        @if let Some(problem) = problem { p.problem role="alert" { (problem) } }
        div.panel {
            @if !r.channels.is_empty() {
                div.chart data-chart=(option.to_string()) role="img" aria-label=(lang.t(Key::Channels)) {}
            }
            table {
                thead { tr {
                    th scope="col" { (lang.t(Key::Channel)) }
                    th scope="col" { (lang.t(Key::Entrants)) }
                    th scope="col" { (lang.t(Key::Buyers)) }
                    th scope="col" { (lang.t(Key::Conversion)) }
                    th scope="col" { (lang.t(Key::Revenue)) }
                    th scope="col" { (lang.t(Key::ChannelSpend)) }
                    th scope="col" { (lang.t(Key::Cac)) }
                    th scope="col" { (lang.t(Key::FormulaClv)) }
                    th scope="col" { (lang.t(Key::ModelClvShort)) }
                    th scope="col" { (lang.t(Key::ClvToCac)) }
                    th scope="col" { (lang.t(Key::Payback)) }
                } }
                tbody {
                    @for (c, name) in r.channels.iter().zip(&names) {
                        tr {
                            td { (name) }
                            td { (lang.count(c.entrants)) }
                            td { (lang.count(c.buyers)) }
                            td { (lang.share(c.conversion)) }
                            td { (lang.money(c.revenue)) }
                            td { (lang.money(c.spend)) }
                            td { (money(c.cac)) }
                            td { (money(c.formula_clv.clv)) }
                            td { (money(c.model_clv)) }
                            td { (ratio(c.clv_to_cac)) }
                            td { (c.payback_months.map_or("–".to_owned(), |m| format!("{m:.1}"))) }
                        }
                    }
                }
            }
        }
        @if op.session.user.role.allows(Action::Manage) {
            h2 { (lang.t(Key::SetSpend)) }
            form.panel.add-tag method="post" action="/console/channels/spend" {
                input type="hidden" name="csrf" value=(op.session.csrf);
                label for="spend-channel" { (lang.t(Key::Channel)) } " "
                input #spend-channel name="channel" required maxlength="64"; " "
                label for="spend-month" { (lang.t(Key::SpendMonth)) } " "
                input #spend-month name="month" required pattern="[0-9]{4}-[0-9]{2}" size="8"; " "
                label for="spend-amount" { (lang.t(Key::SpendYuan)) } " "
                input #spend-amount name="amount" required inputmode="decimal" size="10"; " "
                button type="submit" { (lang.t(Key::Save)) }
            }
        }
    };
    layout(
        op,
        "/console/channels",
        lang.t(Key::Channels),
        !r.channels.is_empty(),
        body,
    )
}

pub fn referrals(op: &Operator, r: &siyu_core::metrics::referrals::Referrals) -> Markup {
    let lang = op.lang;
    let ratio = |x: Option<f64>| x.map_or("–".to_owned(), |x| format!("{x:.2}"));
    let body = html! {
        p.muted { (lang.t(Key::RfmAsOf)) " " (r.as_of) }
        div.cards {
            (card(lang.t(Key::Pool), &lang.count(r.customers)))
            (card(lang.t(Key::Sharers), &lang.count(r.sharers)))
            (card(lang.t(Key::ShareRate), &lang.share(r.share_rate)))
            (card(lang.t(Key::Referred), &lang.count(r.referred)))
            (card(lang.t(Key::ReferredBuyers), &lang.count(r.referred_buyers)))
            (card(lang.t(Key::InviteConversion), &lang.share(r.invite_conversion)))
            (card(lang.t(Key::KFactor), &ratio(r.k_factor)))
        }
        h2 { (lang.t(Key::Generations)) }
        div.panel {
            table {
                thead { tr { th scope="col" { (lang.t(Key::Generation)) } th scope="col" { (lang.t(Key::Customers)) } } }
                tbody {
                    @for (g, n) in r.generations.iter().enumerate() {
                        tr { td { (g) } td { (lang.count(*n)) } }
                    }
                }
            }
        }
        h2 { (lang.t(Key::TopReferrers)) }
        div.panel {
            table {
                thead { tr {
                    th scope="col" { (lang.t(Key::Customer)) }
                    th scope="col" { (lang.t(Key::Referred)) }
                    th scope="col" { (lang.t(Key::ReferredBuyers)) }
                    th scope="col" { (lang.t(Key::Revenue)) }
                } }
                tbody {
                    @for t in &r.top_referrers {
                        tr {
                            td { a href={ "/console/customers/" (path_part(t.customer_id.as_str())) } { (t.customer_id) } }
                            td { (lang.count(t.referrals)) }
                            td { (lang.count(t.buyers)) }
                            td { (lang.money(t.revenue)) }
                        }
                    }
                }
            }
        }
    };
    layout(
        op,
        "/console/referrals",
        lang.t(Key::Referrals),
        false,
        body,
    )
}

fn factor_name(lang: Lang, f: siyu_core::metrics::gmv::Factor) -> &'static str {
    use siyu_core::metrics::gmv::Factor;
    lang.t(match f {
        Factor::Users => Key::FUsers,
        Factor::Retention => Key::FRetention,
        Factor::Conversion => Key::FConversion,
        Factor::PurchasesPerBuyer => Key::FPurchases,
        Factor::Aov => Key::FAov,
    })
}

/// A factor's value as read: users a count, AOV money (the value is in fen), the rest
/// shares or ratios.
fn factor_value(lang: Lang, f: siyu_core::metrics::gmv::Factor, v: Option<f64>) -> String {
    use siyu_core::metrics::gmv::Factor;
    match (f, v) {
        (_, None) => "–".to_owned(),
        (Factor::Users, Some(v)) => lang.count(v as u64),
        (Factor::Aov, Some(v)) => lang.money(siyu_core::money::Money::from_fen(v.round() as i64)),
        (Factor::PurchasesPerBuyer, Some(v)) => format!("{v:.3}"),
        (_, Some(v)) => lang.share(Some(v)),
    }
}

/// The GMV page's periods and moves as asked.
pub struct GmvAsked {
    pub from: String,
    pub to: String,
    pub compare_from: String,
    pub compare_to: String,
    /// Each factor's move in percent.
    pub moves: Vec<(siyu_core::metrics::gmv::Factor, f64)>,
}

pub fn gmv(
    op: &Operator,
    asked: &GmvAsked,
    r: &crate::service::reports::GmvReport,
    problem: Option<&str>,
) -> Markup {
    use siyu_core::metrics::gmv::Factor;
    let lang = op.lang;
    let all = r.slices.first();
    let body = html! {
        @if let Some(problem) = problem { p.problem role="alert" { (problem) } }
        form.panel.periods method="get" action="/console/gmv" {
            label { (lang.t(Key::From)) " " input type="date" name="from" value=(asked.from); }
            label { (lang.t(Key::To)) " " input type="date" name="to" value=(asked.to); }
            label { (lang.t(Key::CompareFrom)) " " input type="date" name="compare_from" value=(asked.compare_from); }
            label { (lang.t(Key::CompareTo)) " " input type="date" name="compare_to" value=(asked.compare_to); }
            h2 { (lang.t(Key::WhatIf)) }
            div.sliders {
                @for f in Factor::ALL {
                    @let pct = asked.moves.iter().find(|(g, _)| *g == f).map_or(0.0, |m| m.1);
                    label {
                        span { (factor_name(lang, f)) }
                        input type="range" name=(f.name()) min="-50" max="50" step="1" value=(pct) data-move=(f.name());
                        output data-for=(f.name()) { (format!("{pct:+.0}%")) }
                    }
                }
            }
            @if let Some(s) = all {
                p.projection {
                    (lang.t(Key::Projected)) ": "
                    strong #projected data-gmv-fen=(s.factors.gmv.fen()) data-lang=(lang.code()) {
                        (lang.money(s.what_if.unwrap_or(s.factors.gmv)))
                    }
                }
            }
            button type="submit" { (lang.t(Key::Compute)) }
        }
        @if let Some(s) = all {
            div.tree {
                div.card.root {
                    div.label { (lang.t(Key::Gmv)) }
                    div.value { (lang.money(s.factors.gmv)) }
                    @if let Some(c) = &s.compared {
                        div.muted { (lang.t(Key::Before)) " " (lang.money(c.before.gmv)) " · " (lang.t(Key::Change)) " " (lang.money(c.change)) }
                    }
                }
                div.factors {
                    @for (i, f) in Factor::ALL.into_iter().enumerate() {
                        @if i > 0 { span.times aria-hidden="true" { "×" } }
                        div.card {
                            div.label { (factor_name(lang, f)) }
                            div.value { (factor_value(lang, f, s.factors.value(f))) }
                            @if let Some(c) = &s.compared {
                                @if let Some(part) = c.parts.iter().find(|p| p.factor == f) {
                                    div.muted { (lang.t(Key::LmdiShare)) " " (lang.money(part.share)) }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some(c) = &s.compared {
                div.panel {
                    table {
                        thead { tr {
                            th scope="col" { "" }
                            th scope="col" { (lang.t(Key::Before)) }
                            th scope="col" { (lang.t(Key::After)) }
                            th scope="col" { (lang.t(Key::LmdiShare)) }
                        } }
                        tbody {
                            @for part in &c.parts {
                                tr {
                                    td { (factor_name(lang, part.factor)) }
                                    td { (factor_value(lang, part.factor, part.before)) }
                                    td { (factor_value(lang, part.factor, part.after)) }
                                    td { (lang.money(part.share)) }
                                }
                            }
                            tr { td { strong { (lang.t(Key::Gmv)) } } td { (lang.money(c.before.gmv)) } td { (lang.money(c.after.gmv)) } td { strong { (lang.money(c.change)) } } }
                        }
                    }
                    @if let Some(note) = &c.note { p.muted { (note) } }
                }
            }
        }
    };
    layout(op, "/console/gmv", lang.t(Key::GmvTree), false, body)
}

/// What the lifetime value page shows.
pub struct ClvPage {
    pub model: Option<crate::service::clv::StoredModel>,
    /// The holdout check of a fit with the last 26 weeks held out, by frequency.
    pub holdout: Option<Vec<siyu_core::clv::value::HoldoutBucket>>,
    /// (customer, P(alive), predicted CLV in yuan), highest first.
    pub top: Vec<(String, Option<f64>, f64)>,
    pub problem: Option<String>,
}

pub fn clv(op: &Operator, p: &ClvPage) -> Markup {
    let lang = op.lang;
    let zone = &op.session.user.tenant.zone;
    let num = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.4}"));
    let chart = p.holdout.as_ref().map(|buckets| {
        let labels: Vec<String> = buckets
            .iter()
            .map(|b| format!("{}{}", b.frequency, if b.and_more { "+" } else { "" }))
            .collect();
        json!({
            "animation": false,
            "tooltip": {"trigger": "axis"},
            "legend": {"top": 0},
            "grid": {"left": 50, "right": 16, "top": 36, "bottom": 40},
            "xAxis": {"type": "category", "data": labels, "name": lang.t(Key::Frequency), "nameLocation": "middle", "nameGap": 26},
            "yAxis": {"type": "value"},
            "series": [
                {"type": "line", "name": lang.t(Key::Predicted), "data": buckets.iter().map(|b| b.predicted).collect::<Vec<_>>()},
                {"type": "line", "name": lang.t(Key::Actual), "data": buckets.iter().map(|b| b.actual).collect::<Vec<_>>()},
            ],
        })
    });
    let body = html! {
        @if let Some(problem) = &p.problem { p.problem role="alert" { (problem) } }
        @match &p.model {
            None => { p.muted { (lang.t(Key::NoModel)) } },
            Some(m) => {
                h2 { (lang.t(Key::Model)) }
                div.panel {
                    table.attributes {
                        tbody {
                            tr { th scope="row" { (lang.t(Key::CalibrationEnd)) } td { (m.calibration_end) } }
                            tr { th scope="row" { (lang.t(Key::FittedAt)) } td { (local(zone, m.fitted_at)) } }
                            tr { th scope="row" { "BG/NBD r, α, a, b" } td { (num(m.bgnbd.r)) ", " (num(m.bgnbd.alpha)) ", " (num(m.bgnbd.a)) ", " (num(m.bgnbd.b)) " (" (m.bgnbd.customers) ")" } }
                            @if let Some(g) = &m.gamma_gamma {
                                tr { th scope="row" { "Gamma-Gamma p, q, v" } td { (num(g.p)) ", " (num(g.q)) ", " (num(g.v)) " (" (g.customers) ")" } }
                            }
                        }
                    }
                }
            },
        }
        @if op.session.user.role.allows(Action::Manage) {
            form.panel method="post" action="/console/clv/fit" {
                input type="hidden" name="csrf" value=(op.session.csrf);
                button.primary type="submit" { (lang.t(Key::FitModel)) }
            }
        }
        @if let (Some(option), Some(buckets)) = (&chart, &p.holdout) {
            h2 { (lang.t(Key::HoldoutCheck)) }
            div.panel {
                div.chart data-chart=(option.to_string()) role="img" aria-label=(lang.t(Key::HoldoutCheck)) {}
                table {
                    thead { tr { th scope="col" { (lang.t(Key::Frequency)) } th scope="col" { (lang.t(Key::Customers)) } th scope="col" { (lang.t(Key::Predicted)) } th scope="col" { (lang.t(Key::Actual)) } } }
                    tbody {
                        @for b in buckets {
                            tr {
                                td { (b.frequency) @if b.and_more { "+" } }
                                td { (lang.count(b.customers as u64)) }
                                td { (num(b.predicted)) }
                                td { (num(b.actual)) }
                            }
                        }
                    }
                }
            }
        }
        @if !p.top.is_empty() {
            h2 { (lang.t(Key::TopClv)) }
            div.panel {
                table {
                    thead { tr { th scope="col" { (lang.t(Key::Customer)) } th scope="col" { (lang.t(Key::PAlive)) } th scope="col" { (lang.t(Key::ModelClv)) } } }
                    tbody {
                        @for (id, alive, clv) in &p.top {
                            tr {
                                td { a href={ "/console/customers/" (path_part(id)) } { (id) } }
                                td { (lang.share(*alive)) }
                                td { (lang.money(siyu_core::money::Money::from_fen((clv * 100.0).round() as i64))) }
                            }
                        }
                    }
                }
            }
        }
    };
    layout(op, "/console/clv", lang.t(Key::Clv), chart.is_some(), body)
}

/// A stage's name as stored (`at_risk`) in the page's language.
fn stage_text(lang: Lang, name: &str) -> String {
    siyu_core::lifecycle::Stage::ALL
        .into_iter()
        .find(|s| s.name() == name)
        .map_or_else(|| name.to_owned(), |s| stage_name(lang, s).to_owned())
}

/// The lifecycle flows of a period: customers moved from each stage (rows; first, those
/// new to the pool) to each stage (columns; last, those who left it), as a table and a
/// chart.
pub fn flows(op: &Operator, f: &crate::service::flows::Flows, problem: Option<&str>) -> Markup {
    use siyu_core::lifecycle::Stage;
    let lang = op.lang;
    let name = |s: Option<Stage>, from: bool| match (s, from) {
        (Some(s), _) => stage_name(lang, s).to_owned(),
        (None, true) => lang.t(Key::NewToPool).to_owned(),
        (None, false) => lang.t(Key::LeftPool).to_owned(),
    };
    let froms: Vec<Option<Stage>> = std::iter::once(None).chain(Stage::ALL.map(Some)).collect();
    let tos: Vec<Option<Stage>> = Stage::ALL
        .map(Some)
        .into_iter()
        .chain(std::iter::once(None))
        .collect();
    // A sankey of two columns (each stage on both sides, so a move back is no cycle).
    let mut nodes = Vec::new();
    let mut links = Vec::new();
    for (&(a, b), &n) in &f.moves {
        let source = format!("{} →", name(a, true));
        let target = format!("→ {}", name(b, false));
        for node in [&source, &target] {
            if !nodes.contains(node) {
                nodes.push(node.clone());
            }
        }
        links.push(json!({"source": source, "target": target, "value": n}));
    }
    let option = json!({
        "animation": false,
        "tooltip": {"trigger": "item"},
        "series": [{"type": "sankey", "left": 8, "right": 120, "nodeGap": 10,
                     "data": nodes.iter().map(|n| json!({"name": n})).collect::<Vec<_>>(),
                     "links": links, "label": {"fontSize": 12}}],
    });
    let body = html! {
        form.search method="get" action="/console/lifecycle/flows" {
            label for="flows-from" { (lang.t(Key::From)) }
            input #flows-from type="date" name="from" value=(f.from);
            label for="flows-to" { (lang.t(Key::To)) }
            input #flows-to type="date" name="to" value=(f.to);
            button type="submit" { (lang.t(Key::Compute)) }
        }
        @if let Some(problem) = problem {
            p.problem role="alert" { (problem) }
        }
        p.muted { (lang.t(Key::FlowsAbout)) " " (f.from) " – " (f.to) }
        @if f.moves.is_empty() {
            div.panel { p.muted { (lang.t(Key::NoFlows)) } }
        } @else {
            div.panel {
                div.chart data-chart=(option.to_string()) role="img" aria-label=(lang.t(Key::Flows)) {}
            }
        }
        div.panel {
            table.flows {
                thead { tr {
                    th scope="col" { (lang.t(Key::FromStage)) " \\ " (lang.t(Key::ToStage)) }
                    @for b in &tos { th scope="col" { (name(*b, false)) } }
                } }
                tbody {
                    @for a in &froms {
                        tr data-from=(a.map_or("none", Stage::name)) {
                            th scope="row" { (name(*a, true)) }
                            @for b in &tos {
                                td data-to=(b.map_or("none", Stage::name)) {
                                    @let n = f.between(*a, *b);
                                    @if n > 0 { (lang.count(n)) } @else { span.muted { "·" } }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    layout(op, "/console/lifecycle", lang.t(Key::Flows), true, body)
}

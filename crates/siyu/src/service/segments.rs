//! Segments and tags, always current: every saved rule and level tag is evaluated over the
//! pool as it is now, and whoever entered or exited since the last evaluation is recorded
//! with the occasion. Imports do this in their own transaction, after the profiles; the
//! commands that change rules or tags do it in theirs.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::{Context, anyhow, bail};
use jiff::civil::Date;
use serde::Serialize;

use siyu_core::lifecycle::LifecycleSettings;
use siyu_core::rule::Rule;
use siyu_core::segment::pool::{Attributes, Pool, PoolBuilder};
use siyu_core::segment::rules::{
    Change, Definition, EvaluationError, Purpose, RuleKind, Selection, TagFamily, check_name,
    evaluate, membership_changes, tag_rule_order,
};
use siyu_core::settings::{lifecycle_settings, vip_rule};
use siyu_core::{CustomerId, Money, TenantZone, Timestamp};
use siyu_store::{
    HistoryRecord, ManualTag, MemberChange, MemberFilter, PoolTx, Store, StoreError, StoredRule,
    Tenant,
};

/// The tenant settings rules and stages depend on, read before a transaction starts.
#[derive(Debug, Clone)]
pub struct RuleSettings {
    pub lifecycle: LifecycleSettings,
    pub vip_rule: Option<Rule>,
}

pub fn rule_settings(store: &mut dyn Store, tenant: &Tenant) -> anyhow::Result<RuleSettings> {
    let stored = store
        .settings(tenant)
        .context("reading the tenant's settings")?;
    let pairs = || stored.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    // As with a saved rule: a stored vip_rule that no longer reads is left out and named,
    // rather than stopping every evaluation of the tenant.
    let vip_rule = vip_rule(pairs()).unwrap_or_else(|e| {
        static WARNED: std::sync::Once = std::sync::Once::new();
        WARNED.call_once(|| {
            eprintln!("siyu: the tenant's vip_rule is left out (set it again): {e}");
        });
        None
    });
    Ok(RuleSettings {
        lifecycle: lifecycle_settings(pairs()),
        vip_rule,
    })
}

/// What the pool holds of customers beside their profiles.
#[derive(Debug, Default)]
pub struct Extras {
    pub attributes: HashMap<CustomerId, Attributes>,
    /// Manual and imported tags.
    pub tags: HashMap<CustomerId, Vec<String>>,
}

fn read_extras(tx: &mut dyn PoolTx) -> anyhow::Result<Extras> {
    let mut extras = Extras::default();
    tx.attributes(&mut |id, a| {
        extras.attributes.insert(id, a);
    })
    .context("reading customers")?;
    for t in tx.manual_tags(None).context("reading tags")? {
        extras.tags.entry(t.customer_id).or_default().push(t.tag);
    }
    Ok(extras)
}

/// Every customer's attributes and manual tags.
pub fn extras(store: &mut dyn Store, tenant: &Tenant) -> anyhow::Result<Extras> {
    let mut tx = store.begin_pool(tenant)?;
    read_extras(tx.as_mut())
}

/// The pool as of `as_of` from the stored profiles, attributes, tags and orders, streamed
/// from `tx` into the table (nothing is held per customer but the table's columns).
pub fn load_pool(
    tx: &mut dyn PoolTx,
    zone: &TenantZone,
    as_of: Date,
    settings: &RuleSettings,
) -> anyhow::Result<Pool> {
    // Paid over the 365 local days D − 365 < d ≤ D.
    let first_day = as_of
        .checked_sub(jiff::Span::new().days(364))
        .unwrap_or(Date::MIN);
    let (from, until) = (zone.start_of(first_day), zone.start_of(as_of.tomorrow()?));
    let mut builder = PoolBuilder::new(as_of, zone, settings.lifecycle);
    tx.pool_customers(from, until, &mut |c| {
        builder.push(&c.profile, &c.attributes, &c.tags, c.spend);
    })
    .context("reading the pool")?;
    builder
        .finish(settings.vip_rule.as_ref())
        .map_err(|e| anyhow!("the tenant's vip_rule: {e}"))
}

/// The saved rules of the tenant, read. A saved rule that no longer reads (one stored
/// before a limit of the rule language existed, say) is left out of every evaluation,
/// its members kept as they were, and named once on standard error: one bad rule must
/// not stop the tenant's imports, ingest and reads.
pub fn definitions(tx: &mut dyn PoolTx) -> anyhow::Result<Vec<(StoredRule, Definition)>> {
    Ok(tx
        .rules()
        .context("reading the saved rules")?
        .into_iter()
        .filter_map(|stored| match Rule::parse(&stored.rule) {
            Ok(rule) => {
                let def = Definition {
                    kind: stored.kind,
                    name: stored.name.clone(),
                    rule,
                    purpose: stored.purpose,
                };
                Some((stored, def))
            }
            Err(e) => {
                warn_unreadable(&stored, &e);
                None
            }
        })
        .collect())
}

/// Says once per process which saved rule does not read and why.
fn warn_unreadable(stored: &StoredRule, e: &siyu_core::rule::RuleError) {
    static WARNED: std::sync::Mutex<Vec<(RuleKind, String, String)>> =
        std::sync::Mutex::new(Vec::new());
    let key = (stored.kind, stored.name.clone(), stored.rule.clone());
    let Ok(mut warned) = WARNED.lock() else {
        return;
    };
    if !warned.contains(&key) {
        eprintln!(
            "siyu: the saved {} '{}' does not read and is left out of evaluation \
             (its members stay as they were; replace or delete it): {e}",
            stored.kind, stored.name
        );
        warned.push(key);
    }
}

/// One evaluation: the pool, what every rule and level tag selects, and the changes recorded.
pub struct Evaluation {
    pub pool: Pool,
    pub selections: Vec<Selection>,
    pub entered: u64,
    pub exited: u64,
    pub seconds: f64,
}

impl Evaluation {
    pub fn selection(&self, kind: RuleKind, name: &str) -> Option<&Selection> {
        self.selections
            .iter()
            .find(|s| s.kind == kind && s.name == name)
    }

    /// The customer ids a selection holds, in id order.
    pub fn member_ids(&self, selection: &Selection) -> Vec<&str> {
        let table = &self.pool.table;
        selection
            .members
            .rows()
            .map(|row| table.customer_id(row))
            .collect()
    }
}

/// Evaluates every saved rule and level tag now and records who entered and who exited
/// since the last evaluation, as caused by `cause`.
pub fn refresh(
    tx: &mut dyn PoolTx,
    zone: &TenantZone,
    settings: &RuleSettings,
    cause: &str,
) -> Result<Evaluation, RulesError> {
    let started = Instant::now();
    tx.lock_evaluation()
        .context("waiting for another evaluation")?;
    let defs: Vec<Definition> = definitions(tx)?.into_iter().map(|(_, d)| d).collect();
    let now = Timestamp::now();
    let as_of = zone.day_of(now);
    let mut pool = load_pool(tx, zone, as_of, settings)?;
    let selections = evaluate(&mut pool, &defs)?;
    let mut changes = Vec::new();
    for s in &selections {
        let before = tx
            .members(MemberFilter::Rule(s.kind, &s.name))
            .with_context(|| format!("reading the members of {} '{}'", s.kind, s.name))?;
        let mut before: Vec<&str> = before.iter().map(|m| m.customer_id.as_str()).collect();
        before.sort_unstable();
        let (entered, exited) = membership_changes(&before, pool.table.customer_ids(&s.members));
        for (ids, change) in [(entered, Change::Entered), (exited, Change::Exited)] {
            for id in ids {
                changes.push(MemberChange {
                    kind: s.kind,
                    name: s.name.clone(),
                    customer_id: CustomerId::parse(id).map_err(anyhow::Error::from)?,
                    change,
                });
            }
        }
    }
    let entered = changes
        .iter()
        .filter(|c| c.change == Change::Entered)
        .count() as u64;
    let exited = changes.len() as u64 - entered;
    tx.apply_changes(&changes, now, cause)
        .context("recording who entered and exited")?;
    Ok(Evaluation {
        pool,
        selections,
        entered,
        exited,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Whether an ingest should evaluate the rules: only when the tenant has saved some
/// (level tags alone are brought up to date whenever tags or segments are looked at).
pub fn has_rules(tx: &mut dyn PoolTx) -> anyhow::Result<bool> {
    Ok(!tx.rules().context("reading the saved rules")?.is_empty())
}

/// Who did something, for provenance: `--by`, else the login name, else `cli`.
pub fn actor(by: Option<&str>) -> String {
    by.map(str::to_owned)
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "cli".to_owned())
}

/// Checks a rule against the saved ones: it must read, and a tag rule must not close a
/// circle of tag rules. Returns its canonical text.
fn checked_rule(
    tx: &mut dyn PoolTx,
    kind: RuleKind,
    name: &str,
    text: &str,
) -> Result<String, RulesError> {
    match kind {
        RuleKind::Tag => check_tag_name(name),
        _ => check_name(name).map_err(TagNameError::from),
    }
    .map_err(|e| anyhow!("{kind} name: {e}"))?;
    let rule = Rule::parse(text).map_err(|e| anyhow!("{}", show_rule_error(text, &e)))?;
    let mut defs: Vec<Definition> = definitions(tx)?
        .into_iter()
        .map(|(_, d)| d)
        .filter(|d| !(d.kind == kind && d.name == name))
        .collect();
    defs.push(Definition {
        kind,
        name: name.to_owned(),
        rule: rule.clone(),
        purpose: Purpose::default(),
    });
    tag_rule_order(&defs)?;
    Ok(rule.to_string())
}

/// A rule error with the rule and a caret under the column (a column counts characters;
/// the caret goes as far as they are wide on a terminal: 户 takes two cells).
pub fn show_rule_error(text: &str, e: &siyu_core::rule::RuleError) -> String {
    let pad: String = text
        .chars()
        .take(e.column().saturating_sub(1))
        .map(|c| match c {
            '\t' => "\t".to_owned(),
            c => " ".repeat(unicode_width::UnicodeWidthChar::width(c).unwrap_or(0)),
        })
        .collect();
    format!("the rule does not read: {e}\n  {text}\n  {pad}^")
}

/// A segment or tag rule to save.
#[derive(Debug, Clone, Copy)]
pub struct NewRule<'a> {
    pub kind: RuleKind,
    pub name: &'a str,
    pub text: &'a str,
    /// A segment's: a marketing segment leaves out who opted out of marketing.
    pub purpose: Purpose,
    /// A rule tag's family, when given.
    pub family: Option<TagFamily>,
}

impl<'a> NewRule<'a> {
    pub fn segment(name: &'a str, text: &'a str, purpose: Purpose) -> NewRule<'a> {
        NewRule {
            kind: RuleKind::Segment,
            name,
            text,
            purpose,
            family: None,
        }
    }

    pub fn tag(name: &'a str, text: &'a str, family: Option<TagFamily>) -> NewRule<'a> {
        NewRule {
            kind: RuleKind::Tag,
            name,
            text,
            purpose: Purpose::default(),
            family,
        }
    }
}

/// Why the rules could not be evaluated, or a rule not saved.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// The rules do not hold together: a circle of tag rules, or a rule that fails on the
    /// pool. The request's fault, not the server's.
    #[error(transparent)]
    Refused(#[from] EvaluationError),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<StoreError> for RulesError {
    fn from(e: StoreError) -> RulesError {
        RulesError::Other(e.into())
    }
}

/// `siyu segment create` and `siyu tag rule` (and the API's): saves a rule, with the
/// family of a rule tag when given, and evaluates; all in one transaction. A rule tag that
/// would close a circle is refused with [`RulesError::Refused`].
pub fn save_rule(
    store: &mut dyn Store,
    tenant: &Tenant,
    new: NewRule<'_>,
    by: &str,
    replace: bool,
) -> Result<Evaluation, RulesError> {
    let NewRule {
        kind,
        name,
        text,
        purpose,
        family,
    } = new;
    let settings = rule_settings(store, tenant)?;
    let mut tx = store.begin_pool(tenant)?;
    let canonical = checked_rule(tx.as_mut(), kind, name, text)?;
    let exists = tx.rules()?.iter().any(|r| r.kind == kind && r.name == name);
    if exists && !replace {
        return Err(anyhow!(
            "there is a {kind} '{name}' already (delete it first, or choose another name)"
        )
        .into());
    }
    if let Some(family) = family {
        tx.set_tag_family(name, family)?;
    }
    tx.save_rule(&StoredRule {
        kind,
        name: name.to_owned(),
        rule: canonical,
        created_by: by.to_owned(),
        created_at: Timestamp::now(),
        purpose,
    })?;
    let cause = format!(
        "{kind} {} by {by}",
        if exists { "changed" } else { "created" }
    );
    let evaluation = refresh(tx.as_mut(), &tenant.zone, &settings, &cause)?;
    tx.commit()?;
    Ok(evaluation)
}

/// `siyu segment delete` and deleting a tag rule. False if there was no such rule.
pub fn delete_rule(
    store: &mut dyn Store,
    tenant: &Tenant,
    kind: RuleKind,
    name: &str,
) -> anyhow::Result<bool> {
    let settings = rule_settings(store, tenant)?;
    let mut tx = store.begin_pool(tenant)?;
    let deleted = tx.delete_rule(kind, name)?;
    if deleted {
        // Segments that asked for a deleted rule tag must still read.
        refresh(
            tx.as_mut(),
            &tenant.zone,
            &settings,
            &format!("{kind} deleted"),
        )?;
        tx.commit()?;
    }
    Ok(deleted)
}

/// Evaluates now (recording changes caused by `cause`) and commits.
pub fn evaluate_now(
    store: &mut dyn Store,
    tenant: &Tenant,
    cause: &str,
) -> anyhow::Result<(Evaluation, Vec<StoredRule>)> {
    let settings = rule_settings(store, tenant)?;
    let mut tx = store.begin_pool(tenant)?;
    let evaluation = refresh(tx.as_mut(), &tenant.zone, &settings, cause)?;
    let rules = tx.rules()?;
    tx.commit()?;
    Ok((evaluation, rules))
}

/// A tag on a customer, where from and since when.
#[derive(Debug, Clone, Serialize)]
pub struct TagOnCustomer {
    pub tag: String,
    pub family: TagFamily,
    /// `import`, `manual:<who>`, `rule:<name>` or `level`.
    pub source: String,
    pub since: Timestamp,
}

/// Why a tag's name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagNameError {
    #[error(transparent)]
    Name(#[from] siyu_core::segment::rules::NameError),
    #[error("'{0}': tags starting with stage: or rfm: are the built-in level tags")]
    LevelTag(String),
}

/// A name a manual tag or a tag rule may have: a name (see `check_name`) that does not
/// start with `stage:` or `rfm:`, the prefixes of the built-in level tags.
pub fn check_tag_name(tag: &str) -> Result<(), TagNameError> {
    check_name(tag)?;
    if tag.starts_with("stage:") || tag.starts_with("rfm:") {
        return Err(TagNameError::LevelTag(tag.to_owned()));
    }
    Ok(())
}

/// `siyu tag add`: tags a customer by hand. False if they had the tag already.
pub fn add_tag(
    store: &mut dyn Store,
    tenant: &Tenant,
    customer: &CustomerId,
    tag: &str,
    by: &str,
    family: Option<TagFamily>,
) -> anyhow::Result<bool> {
    check_tag_name(tag).map_err(|e| anyhow!("tag: {e}"))?;
    if customer.is_erased_remains() {
        bail!("{customer} is an erased customer's remains, which take no tags");
    }
    let settings = rule_settings(store, tenant)?;
    let mut tx = store.begin_pool(tenant)?;
    if !tx.has_customer(customer)? {
        bail!(
            "there is no customer '{customer}' in tenant '{}'",
            tenant.name
        );
    }
    let added = tx.add_tag(customer, tag, &format!("manual:{by}"), Timestamp::now())?;
    if let Some(family) = family {
        tx.set_tag_family(tag, family)?;
    }
    if added {
        refresh(
            tx.as_mut(),
            &tenant.zone,
            &settings,
            &format!("tag add by {by}"),
        )?;
    }
    tx.commit()?;
    Ok(added)
}

/// What taking a tag off a customer by hand came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagRemoval {
    Removed,
    NoCustomer,
    /// The customer has no tag of that name.
    NotTagged,
    /// The customer has the tag from a tag rule or as a level tag, which only a change of
    /// the rule (or of the figures) takes away.
    NotManual(RuleKind),
}

impl TagRemoval {
    /// Why the tag was not removed, in words; none when it was.
    pub fn refusal(self, customer: &CustomerId, tag: &str) -> Option<String> {
        match self {
            TagRemoval::Removed => None,
            TagRemoval::NoCustomer => Some(format!("there is no customer '{customer}'")),
            TagRemoval::NotTagged => Some(format!("customer '{customer}' has no tag '{tag}'")),
            TagRemoval::NotManual(RuleKind::Level) => Some(format!(
                "'{tag}' is a level tag of customer '{customer}', given by their figures; it cannot be taken off by hand"
            )),
            TagRemoval::NotManual(_) => Some(format!(
                "'{tag}' comes from a rule on customer '{customer}'; change the rule to take it away"
            )),
        }
    }
}

/// `siyu tag remove` and the API's: removes a manual or imported tag.
pub fn remove_tag(
    store: &mut dyn Store,
    tenant: &Tenant,
    customer: &CustomerId,
    tag: &str,
    by: &str,
) -> anyhow::Result<TagRemoval> {
    let settings = rule_settings(store, tenant)?;
    let mut tx = store.begin_pool(tenant)?;
    if !tx.has_customer(customer)? {
        return Ok(TagRemoval::NoCustomer);
    }
    if !tx.remove_tag(customer, tag)? {
        let from_rule = tx
            .members(MemberFilter::Customer(customer))?
            .into_iter()
            .find(|m| m.kind != RuleKind::Segment && m.name == tag);
        return Ok(from_rule.map_or(TagRemoval::NotTagged, |m| TagRemoval::NotManual(m.kind)));
    }
    refresh(
        tx.as_mut(),
        &tenant.zone,
        &settings,
        &format!("tag remove by {by}"),
    )?;
    tx.commit()?;
    Ok(TagRemoval::Removed)
}

fn family_of(families: &HashMap<String, TagFamily>, tag: &str, default: TagFamily) -> TagFamily {
    families.get(tag).copied().unwrap_or(default)
}

/// Every tag on a customer, brought up to date first.
pub fn customer_tags(
    store: &mut dyn Store,
    tenant: &Tenant,
    customer: &CustomerId,
) -> anyhow::Result<Vec<TagOnCustomer>> {
    let settings = rule_settings(store, tenant)?;
    let mut tx = store.begin_pool(tenant)?;
    if !tx.has_customer(customer)? {
        bail!(
            "there is no customer '{customer}' in tenant '{}'",
            tenant.name
        );
    }
    refresh(tx.as_mut(), &tenant.zone, &settings, "tags looked at")?;
    let families: HashMap<String, TagFamily> = tx.tag_families()?.into_iter().collect();
    let mut out: Vec<TagOnCustomer> = tx
        .manual_tags(Some(customer))?
        .into_iter()
        .map(|t: ManualTag| TagOnCustomer {
            family: family_of(&families, &t.tag, TagFamily::Static),
            tag: t.tag,
            source: t.source,
            since: t.since,
        })
        .collect();
    for m in tx.members(MemberFilter::Customer(customer))? {
        let (family, source) = match m.kind {
            RuleKind::Segment => continue,
            RuleKind::Tag => (
                family_of(&families, &m.name, TagFamily::Consumption),
                format!("rule:{}", m.name),
            ),
            RuleKind::Level => (TagFamily::Level, "level".to_owned()),
        };
        out.push(TagOnCustomer {
            tag: m.name,
            family,
            source,
            since: m.since,
        });
    }
    tx.commit()?;
    out.sort_by(|a, b| (a.family.as_str(), &a.tag).cmp(&(b.family.as_str(), &b.tag)));
    Ok(out)
}

/// One tag of the tenant: how many customers carry it, and from where.
#[derive(Debug, Clone, Serialize)]
pub struct TagSummary {
    pub tag: String,
    pub family: TagFamily,
    /// `manual` (by hand or the customers file), `rule`, or `level`.
    pub source: &'static str,
    pub rule: Option<String>,
    pub customers: u64,
}

/// Every tag of the tenant, brought up to date first.
pub fn tag_summary(store: &mut dyn Store, tenant: &Tenant) -> anyhow::Result<Vec<TagSummary>> {
    let settings = rule_settings(store, tenant)?;
    let mut tx = store.begin_pool(tenant)?;
    let evaluation = refresh(tx.as_mut(), &tenant.zone, &settings, "tags looked at")?;
    let families: HashMap<String, TagFamily> = tx.tag_families()?.into_iter().collect();
    let rules = tx.rules()?;
    let mut manual: HashMap<String, u64> = HashMap::new();
    for t in tx.manual_tags(None)? {
        *manual.entry(t.tag).or_default() += 1;
    }
    tx.commit()?;
    let mut out: Vec<TagSummary> = manual
        .into_iter()
        .map(|(tag, customers)| TagSummary {
            family: family_of(&families, &tag, TagFamily::Static),
            tag,
            source: "manual",
            rule: None,
            customers,
        })
        .collect();
    for s in &evaluation.selections {
        let (family, source, rule) = match s.kind {
            RuleKind::Segment => continue,
            RuleKind::Tag => (
                family_of(&families, &s.name, TagFamily::Consumption),
                "rule",
                rules
                    .iter()
                    .find(|r| r.kind == RuleKind::Tag && r.name == s.name)
                    .map(|r| r.rule.clone()),
            ),
            RuleKind::Level => (TagFamily::Level, "level", None),
        };
        out.push(TagSummary {
            tag: s.name.clone(),
            family,
            source,
            rule,
            customers: s.members.count() as u64,
        });
    }
    out.sort_by(|a, b| {
        (a.family.as_str(), a.tag.as_str(), a.source).cmp(&(
            b.family.as_str(),
            b.tag.as_str(),
            b.source,
        ))
    });
    Ok(out)
}

/// Sets the family of a tag.
pub fn set_tag_family(
    store: &mut dyn Store,
    tenant: &Tenant,
    tag: &str,
    family: TagFamily,
) -> anyhow::Result<()> {
    let mut tx = store.begin_pool(tenant)?;
    tx.set_tag_family(tag, family)?;
    tx.commit()?;
    Ok(())
}

/// Recorded changes, newest first.
pub fn history(
    store: &mut dyn Store,
    tenant: &Tenant,
    filter: MemberFilter<'_>,
    limit: usize,
) -> anyhow::Result<Vec<HistoryRecord>> {
    let mut tx = store.begin_pool(tenant)?;
    let records = tx.history(filter, limit)?;
    tx.commit()?;
    Ok(records)
}

/// A current member of a segment, with what operators look at first.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentMember {
    pub customer_id: String,
    /// In the segment since (first seen there by an evaluation).
    pub since: Option<Timestamp>,
    pub stage: siyu_core::lifecycle::Stage,
    pub rfm: Option<siyu_core::segment::rfm::RfmClass>,
    pub purchase_days: u32,
    pub days_since_order: Option<i64>,
    pub spend_365d: Money,
}

/// The columns of a segment's members as CSV, in order.
pub const MEMBER_COLUMNS: [&str; 7] = [
    "customer_id",
    "since",
    "stage",
    "rfm",
    "purchase_days",
    "days_since_order",
    "spend_365d",
];

/// Members as CSV (`siyu segment members --format csv`, and the API's export a run of
/// rows at a time): the header first when `header`.
pub fn write_members_csv(
    out: impl std::io::Write,
    members: &[SegmentMember],
    header: bool,
) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    if header {
        w.write_record(MEMBER_COLUMNS)?;
    }
    for m in members {
        w.write_record([
            m.customer_id.clone(),
            m.since.map(|t| t.to_string()).unwrap_or_default(),
            m.stage.name().to_owned(),
            m.rfm.map_or("", |c| c.name()).to_owned(),
            m.purchase_days.to_string(),
            m.days_since_order
                .map(|d| d.to_string())
                .unwrap_or_default(),
            m.spend_365d.to_string(),
        ])?;
    }
    w.flush()?;
    Ok(())
}

/// A saved segment and its members now (evaluated first, changes recorded).
pub struct SegmentNow {
    pub rule: StoredRule,
    pub members: Vec<SegmentMember>,
    pub as_of: Date,
    pub evaluation_seconds: f64,
}

/// `siyu segment members` and `show`.
pub fn segment_now(
    store: &mut dyn Store,
    tenant: &Tenant,
    name: &str,
) -> anyhow::Result<SegmentNow> {
    let settings = rule_settings(store, tenant)?;
    let mut tx = store.begin_pool(tenant)?;
    let rule = tx
        .rules()?
        .into_iter()
        .find(|r| r.kind == RuleKind::Segment && r.name == name)
        .ok_or_else(|| anyhow!("there is no segment '{name}' (siyu segment list shows them)"))?;
    let evaluation = refresh(tx.as_mut(), &tenant.zone, &settings, "segment looked at")?;
    let since: HashMap<CustomerId, Timestamp> = tx
        .members(MemberFilter::Rule(RuleKind::Segment, name))?
        .into_iter()
        .map(|m| (m.customer_id, m.since))
        .collect();
    tx.commit()?;
    let selection = evaluation
        .selection(RuleKind::Segment, name)
        .ok_or_else(|| anyhow!("segment '{name}' was not evaluated"))?;
    let pool = &evaluation.pool;
    let members = selection
        .members
        .rows()
        .map(|row| {
            let s = &pool.rows[row];
            SegmentMember {
                customer_id: pool.table.customer_id(row).to_owned(),
                since: since.get(pool.table.customer_id(row)).copied(),
                stage: s.stage,
                rfm: s.rfm,
                purchase_days: s.purchase_days,
                days_since_order: s.days_since_order,
                spend_365d: s.spend_365d,
            }
        })
        .collect();
    Ok(SegmentNow {
        rule,
        members,
        as_of: pool.table.as_of(),
        evaluation_seconds: evaluation.seconds,
    })
}

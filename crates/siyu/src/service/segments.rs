//! Segments and tags: the saved rules, tags by hand, and what reads them. Keeping every
//! membership current is [`super::evaluate`]'s: the writes here call it in their own
//! transaction, and the reads here read the kept members on a snapshot, never evaluating.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::{Context, anyhow, bail};
use jiff::civil::Date;
use serde::Serialize;

use siyu_core::lifecycle::LifecycleSettings;
use siyu_core::lifecycle::Stage;
use siyu_core::rule::Rule;
use siyu_core::segment::pool::Attributes;
use siyu_core::segment::rfm::RfmClass;
use siyu_core::segment::rules::{
    Definition, EvaluationError, Purpose, RuleKind, TagFamily, check_name, rfm_tag, stage_tag,
    tag_rule_order,
};
use siyu_core::settings::{lifecycle_settings, vip_rule};
use siyu_core::{CustomerId, Money, TenantZone, Timestamp};
use siyu_store::{
    HistoryRecord, ManualTag, MemberFilter, PoolTx, Store, StoreError, StoredRule, Tenant,
};

use super::evaluate::{self, Moved, Recompute, evaluate_all, evaluate_touched};

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
            tracing::warn!("the tenant's vip_rule is left out (set it again): {e}");
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
        tracing::warn!(
            "the saved {} '{}' does not read and is left out of evaluation \
             (its members stay as they were; replace or delete it): {e}",
            stored.kind,
            stored.name
        );
        warned.push(key);
    }
}

/// One evaluation: the changes it recorded, and every rule's members after it.
#[derive(Debug, Clone, Default)]
pub struct Evaluation {
    pub entered: u64,
    pub exited: u64,
    /// The customers judged.
    pub customers: u64,
    pub seconds: f64,
    /// How many members each segment and rule tag has (not the level tags: counting them is
    /// a pass over every customer).
    pub counts: Vec<(RuleKind, String, u64)>,
}

impl Evaluation {
    fn of(moved: Moved, tx: &mut dyn PoolTx) -> anyhow::Result<Evaluation> {
        Ok(Evaluation {
            entered: moved.entered,
            exited: moved.exited,
            customers: moved.customers,
            seconds: moved.seconds,
            counts: saved_rule_counts(tx)?,
        })
    }

    /// How many members a segment or rule tag has.
    pub fn members(&self, kind: RuleKind, name: &str) -> u64 {
        self.counts
            .iter()
            .find(|(k, n, _)| *k == kind && n == name)
            .map_or(0, |c| c.2)
    }
}

/// How many members each segment and rule tag has, from their rows alone.
fn saved_rule_counts(tx: &mut dyn PoolTx) -> anyhow::Result<Vec<(RuleKind, String, u64)>> {
    let mut counts = tx
        .member_counts(Some(RuleKind::Segment))
        .context("counting members")?;
    counts.extend(
        tx.member_counts(Some(RuleKind::Tag))
            .context("counting members")?,
    );
    Ok(counts)
}

/// Evaluates every customer (against today's thresholds, computed if not yet) and
/// records the changes, as caused by `cause`: for what changes every customer's rules.
pub fn refresh(
    tx: &mut dyn PoolTx,
    zone: &TenantZone,
    settings: &RuleSettings,
    cause: &str,
) -> Result<Evaluation, RulesError> {
    let moved = evaluate_all(tx, zone, settings, Recompute::IfStale, cause)?;
    Ok(Evaluation::of(moved, tx)?)
}

/// The saved rules and how many members each segment has, read on a snapshot: no
/// evaluation, no write.
pub fn current(
    store: &mut dyn Store,
    tenant: &Tenant,
) -> anyhow::Result<(Vec<StoredRule>, Evaluation)> {
    let mut tx = store.read_pool(tenant)?;
    let rules = tx.rules().context("reading the saved rules")?;
    // The segments' counts only: the level tags' are a pass over every customer.
    let evaluation = Evaluation {
        counts: tx
            .member_counts(Some(RuleKind::Segment))
            .context("counting members")?,
        ..Evaluation::default()
    };
    Ok((rules, evaluation))
}

/// The customer ids of a rule's members, in id order, read on a snapshot.
pub fn member_ids(
    store: &mut dyn Store,
    tenant: &Tenant,
    kind: RuleKind,
    name: &str,
) -> anyhow::Result<Vec<CustomerId>> {
    let mut tx = store.read_pool(tenant)?;
    let mut ids: Vec<CustomerId> = tx
        .members(MemberFilter::Rule(kind, name))?
        .into_iter()
        .map(|m| m.customer_id)
        .collect();
    ids.sort();
    Ok(ids)
}

/// Whether the tenant has saved rules (an import reports the changes of segments and tags
/// only then; level tags alone move at every import).
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

/// `siyu segment refresh` (and a config change): the thresholds computed again and every
/// customer evaluated, the changes recorded with `cause`, in one transaction. Gives the
/// evaluation and the saved rules.
pub fn evaluate_now(
    store: &mut dyn Store,
    tenant: &Tenant,
    cause: &str,
) -> Result<(Evaluation, Vec<StoredRule>), RulesError> {
    let settings = rule_settings(store, tenant)?;
    let mut tx = store.begin_pool(tenant)?;
    let moved = evaluate_all(
        tx.as_mut(),
        &tenant.zone,
        &settings,
        Recompute::Always,
        cause,
    )?;
    let evaluation = Evaluation::of(moved, tx.as_mut())?;
    let rules = tx.rules()?;
    tx.commit()?;
    Ok((evaluation, rules))
}

/// `siyu segment refresh`: the day's sweep (see [`evaluate::sweep`]), a slice of
/// customers per transaction so that a running server's ingest goes on meanwhile; on two
/// threads when given a `helper`, a second connection to the same database.
pub fn sweep(
    store: &mut dyn Store,
    helper: Option<&mut dyn Store>,
    tenant: &Tenant,
    cause: &str,
) -> Result<Evaluation, RulesError> {
    let moved = evaluate::sweep(store, helper, tenant, cause, evaluate::Writes::Own)?;
    // No counts: reading them is a pass over every membership, and the sweep reports
    // only what moved.
    Ok(Evaluation {
        entered: moved.entered,
        exited: moved.exited,
        customers: moved.customers,
        seconds: moved.seconds,
        counts: Vec::new(),
    })
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
        evaluate_touched(
            tx.as_mut(),
            &tenant.zone,
            &settings,
            std::slice::from_ref(customer),
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
    evaluate_touched(
        tx.as_mut(),
        &tenant.zone,
        &settings,
        std::slice::from_ref(customer),
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
    let mut tx = store.read_pool(tenant)?;
    if !tx.has_customer(customer)? {
        bail!(
            "there is no customer '{customer}' in tenant '{}'",
            tenant.name
        );
    }
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

/// Every tag of the tenant, as kept current by every write (read on a snapshot).
pub fn tag_summary(store: &mut dyn Store, tenant: &Tenant) -> anyhow::Result<Vec<TagSummary>> {
    let mut tx = store.read_pool(tenant)?;
    let counts = tx.member_counts(None).context("counting members")?;
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
    // Every rule tag and level tag, those with no members too.
    let mut tags: Vec<(RuleKind, String)> = rules
        .iter()
        .filter(|r| r.kind == RuleKind::Tag)
        .map(|r| (r.kind, r.name.clone()))
        .collect();
    tags.extend(Stage::ALL.map(|s| (RuleKind::Level, stage_tag(s))));
    tags.extend(RfmClass::ALL.map(|c| (RuleKind::Level, rfm_tag(c))));
    for (kind, name) in tags {
        let (family, source, rule) = match kind {
            RuleKind::Segment => continue,
            RuleKind::Tag => (
                family_of(&families, &name, TagFamily::Consumption),
                "rule",
                rules
                    .iter()
                    .find(|r| r.kind == RuleKind::Tag && r.name == name)
                    .map(|r| r.rule.clone()),
            ),
            RuleKind::Level => (TagFamily::Level, "level", None),
        };
        let customers = counts
            .iter()
            .find(|(k, n, _)| *k == kind && *n == name)
            .map_or(0, |c| c.2);
        out.push(TagSummary {
            tag: name,
            family,
            source,
            rule,
            customers,
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

/// A page of recorded changes, newest first, read on a snapshot: at most `limit` after the
/// first `offset`.
pub fn history_page(
    store: &mut dyn Store,
    tenant: &Tenant,
    filter: MemberFilter<'_>,
    offset: usize,
    limit: usize,
) -> anyhow::Result<Vec<HistoryRecord>> {
    let mut tx = store.read_pool(tenant)?;
    let records = tx.history_page(filter, offset, limit)?;
    tx.commit()?;
    Ok(records)
}

/// Days a rule's chart of members covers at most.
pub const SERIES_DAYS: usize = 90;

/// A rule's members at the end of each local day of the last [`SERIES_DAYS`], from the
/// first of them with a recorded change to today: its members now, less what entered and
/// plus what left after each day. Empty when nothing changed in those days.
pub fn member_series(
    store: &mut dyn Store,
    tenant: &Tenant,
    kind: RuleKind,
    name: &str,
) -> anyhow::Result<Vec<(Date, u64)>> {
    let mut tx = store.read_pool(tenant)?;
    let total = tx
        .member_counts(Some(kind))?
        .into_iter()
        .find(|(_, n, _)| n == name)
        .map_or(0, |c| c.2);
    let today = tenant.zone.day_of(Timestamp::now());
    let first = today
        .checked_sub(jiff::Span::new().days(SERIES_DAYS as i64 - 1))
        .unwrap_or(today);
    let buckets = tx.history_by_quarter_hour(kind, name, tenant.zone.start_of(first))?;
    tx.commit()?;
    Ok(series_from(
        &buckets,
        &tenant.zone,
        today,
        total,
        SERIES_DAYS,
    ))
}

/// The series of [`member_series`] from counted changes: (a quarter-hour's start,
/// entries, exits).
pub fn series_from(
    buckets: &[(Timestamp, u64, u64)],
    zone: &TenantZone,
    today: Date,
    total: u64,
    days: usize,
) -> Vec<(Date, u64)> {
    let mut net: std::collections::BTreeMap<Date, i64> = std::collections::BTreeMap::new();
    for &(at, entered, exited) in buckets {
        let n = i64::try_from(entered).unwrap_or(i64::MAX) - i64::try_from(exited).unwrap_or(0);
        *net.entry(zone.day_of(at)).or_default() += n;
    }
    let Some(&first) = net.keys().next() else {
        return Vec::new();
    };
    let mut members = i64::try_from(total).unwrap_or(i64::MAX);
    // Anything recorded after today (a clock moved back) is undone first.
    members -= net
        .range(today.tomorrow().unwrap_or(today)..)
        .map(|(_, n)| n)
        .sum::<i64>();
    let mut out = Vec::new();
    let mut day = today;
    while out.len() < days && day >= first {
        out.push((day, u64::try_from(members.max(0)).unwrap_or(0)));
        members -= net.get(&day).copied().unwrap_or(0);
        match day.yesterday() {
            Ok(d) => day = d,
            Err(_) => break,
        }
    }
    out.reverse();
    out
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

/// A page of members: up to `limit` after `after`, in customer-id order.
#[derive(Debug, Clone, Copy)]
pub struct Page<'a> {
    pub after: Option<&'a CustomerId>,
    pub limit: usize,
}

/// A saved segment and its members now, as kept current by every write.
pub struct SegmentNow {
    pub rule: StoredRule,
    /// The members asked for: all, or one page.
    pub members: Vec<SegmentMember>,
    /// How many members the segment has in all.
    pub total: u64,
    /// The day the members' figures are as of: the day of the last thresholds.
    pub as_of: Date,
    pub evaluation_seconds: f64,
}

/// `siyu segment members` and `show`: read on a snapshot, no evaluation, no write. The
/// members' figures are judged against the day's thresholds, as their membership was.
pub fn segment_now(
    store: &mut dyn Store,
    tenant: &Tenant,
    name: &str,
    page: Option<Page<'_>>,
) -> anyhow::Result<SegmentNow> {
    rule_now(store, tenant, RuleKind::Segment, name, page)
}

/// A saved segment or tag rule and its members now (as [`segment_now`]).
pub fn rule_now(
    store: &mut dyn Store,
    tenant: &Tenant,
    kind: RuleKind,
    name: &str,
    page: Option<Page<'_>>,
) -> anyhow::Result<SegmentNow> {
    let started = Instant::now();
    let settings = rule_settings(store, tenant)?;
    let mut tx = store.read_pool(tenant)?;
    let rule = tx
        .rules()?
        .into_iter()
        .find(|r| r.kind == kind && r.name == name)
        .ok_or_else(|| anyhow!("there is no {kind} '{name}' (siyu {kind} list shows them)"))?;
    let total = tx
        .member_counts(Some(kind))?
        .into_iter()
        .find(|(_, n, _)| n == name)
        .map_or(0, |c| c.2);
    let stored = match page {
        Some(Page { after, limit }) => tx.members_after(kind, name, after, limit)?,
        None => {
            let mut all = tx.members(MemberFilter::Rule(kind, name))?;
            all.sort_by(|a, b| a.customer_id.cmp(&b.customer_id));
            all
        }
    };
    let thresholds = match tx.thresholds()? {
        Some(t) => t,
        None => {
            let today = tenant.zone.day_of(Timestamp::now());
            evaluate::compute_thresholds(tx.as_mut(), &tenant.zone, today)?
        }
    };
    let ids: Vec<CustomerId> = stored.iter().map(|m| m.customer_id.clone()).collect();
    let pool = evaluate::pool_of(tx.as_mut(), &tenant.zone, &settings, &thresholds, &ids)?;
    tx.commit()?;
    let mut since = stored
        .iter()
        .map(|m| (m.customer_id.as_str(), m.since))
        .peekable();
    let mut members = Vec::with_capacity(pool.rows.len());
    for (row, s) in pool.rows.iter().enumerate() {
        let id = pool.table.customer_id(row);
        while since.next_if(|(m, _)| *m < id).is_some() {}
        members.push(SegmentMember {
            customer_id: id.to_owned(),
            since: since.next_if(|(m, _)| *m == id).map(|(_, at)| at),
            stage: s.stage,
            rfm: s.rfm,
            purchase_days: s.purchase_days,
            days_since_order: s.days_since_order,
            spend_365d: s.spend_365d,
        });
    }
    Ok(SegmentNow {
        rule,
        members,
        total,
        as_of: thresholds.day,
        evaluation_seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod series_tests {
    use super::*;

    #[test]
    fn members_by_day_are_counted_back_from_now_in_the_tenants_days() {
        let zone = TenantZone::named("Asia/Shanghai").expect("zone");
        let at = |text: &str| zone.parse_timestamp(text).expect("time");
        let day = |text: &str| TenantZone::parse_day(text).expect("day");
        // 3 entered on the 1st (one just before local midnight, 15:59 UTC), 1 left and 2
        // entered on the 3rd (the first just after midnight, the 2nd 16:00 UTC); 4 now.
        let buckets = [
            (at("2026-03-01 10:00"), 2, 0),
            (at("2026-03-01 23:59"), 1, 0),
            (at("2026-03-03 00:00"), 0, 1),
            (at("2026-03-03 12:00"), 2, 0),
        ];
        let series = series_from(&buckets, &zone, day("2026-03-04"), 4, 90);
        assert_eq!(
            series,
            [
                (day("2026-03-01"), 3),
                (day("2026-03-02"), 3),
                (day("2026-03-03"), 4),
                (day("2026-03-04"), 4),
            ]
        );
        assert_eq!(
            series_from(&buckets, &zone, day("2026-03-04"), 4, 2).len(),
            2
        );
        assert!(series_from(&[], &zone, day("2026-03-04"), 4, 90).is_empty());
    }
}

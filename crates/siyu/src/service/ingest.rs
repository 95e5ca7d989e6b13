//! Ingest of a batch of items (`identify`, `track`, `order`), in the shape merchants know
//! from Segment and PostHog: each item is checked on its own, a repeated message id is a
//! duplicate and never applied twice, and the accepted items are written in one
//! transaction with the profiles (and segments) of the customers they touch.

use std::collections::{BTreeMap, HashSet};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use siyu_core::customer::parse_phone;
use siyu_core::fasthash::FastHashSet;
use siyu_core::profile::{Interactions, Profile, referral_figures};
use siyu_core::{
    Channel, CustomerId, EventId, EventType, Gender, Money, NewCustomer, NewEvent, NewOrder,
    OrderId, OrderStatus, SeenCustomer, TenantZone, Timestamp,
};
use siyu_store::{ImportTx, Scope, Store, Tenant};

use super::evaluate::evaluate_touched;
use super::import::Sightings;
use super::merge::{Aliases, resolve};
use super::privacy::{SUPPRESSED, Suppressions};
use super::profiles::{Affected, refresh};
use super::segments::RuleSettings;

/// Items in one batch, at most.
pub const MAX_ITEMS: usize = 1_000;
/// Bytes of one item (as JSON), at most.
pub const MAX_ITEM_BYTES: usize = 32 * 1024;

/// What became of one item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ItemResult {
    Accepted {
        message_id: String,
    },
    Duplicate {
        message_id: String,
    },
    Rejected {
        message_id: Option<String>,
        reason: String,
    },
}

/// An item as checked: its message id and the item, or (its message id if any, why not).
pub type Checked = Result<(String, Item), (Option<String>, String)>;

/// A checked item.
#[derive(Debug, Clone)]
pub enum Item {
    /// A customer's attributes, and their ids in the merchant's sources (namespace, value).
    /// A customer, their ids in the merchant's sources, and the id they were known by
    /// before (`previous_id`: merged into them, as an alias item does).
    Identify(NewCustomer, Vec<(String, String)>, Option<CustomerId>),
    /// `previous` (an earlier id, e.g. an anonymous one) is the same person as `customer`,
    /// who survives.
    Alias {
        previous: CustomerId,
        customer: CustomerId,
    },
    Track(NewEvent),
    Order(NewOrder),
}

impl Item {
    fn customer(&self) -> &CustomerId {
        match self {
            Item::Identify(c, ..) => &c.id,
            Item::Alias { customer, .. } => customer,
            Item::Track(e) => &e.customer_id,
            Item::Order(o) => &o.customer_id,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Traits {
    name: Option<String>,
    phone: Option<String>,
    gender: Option<String>,
    birthday: Option<String>,
    region: Option<String>,
    channel: Option<String>,
    referrer_id: Option<String>,
    joined_at: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentifyDto {
    message_id: String,
    customer_id: String,
    timestamp: Option<String>,
    #[serde(default)]
    traits: Option<Traits>,
    /// The customer's ids in the merchant's sources: {"unionid": "…", "phone": "…", …}.
    #[serde(default)]
    ids: Option<serde_json::Map<String, Value>>,
    /// The id the customer was known by before (an anonymous visitor's): merged into them.
    #[serde(default)]
    previous_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AliasDto {
    message_id: String,
    previous_id: String,
    customer_id: String,
    timestamp: Option<String>,
}

/// The namespaces an identify's `ids` takes.
pub const ID_NAMESPACES: [&str; 10] = [
    "unionid", "wecom", "oa", "mp", "phone", "youzan", "taobao", "douyin", "pdd", "weimob",
];

/// The longest identity value taken, in characters.
pub const MAX_ID_CHARS: usize = 128;

/// An identify's `ids`, checked: known namespaces, values of at most [`MAX_ID_CHARS`]
/// without control characters, a phone normalised; a masked or placeholder value refused.
fn identities(ids: serde_json::Map<String, Value>) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::with_capacity(ids.len());
    for (namespace, value) in ids {
        if !ID_NAMESPACES.contains(&namespace.as_str()) {
            return Err(format!(
                "ids.{namespace}: not a namespace of identities (known: {})",
                ID_NAMESPACES.join(", ")
            ));
        }
        let value = match value {
            Value::String(s) => s.trim().to_owned(),
            Value::Number(n) => n.to_string(),
            _ => return Err(format!("ids.{namespace}: expected a string")),
        };
        if value.is_empty()
            || value.chars().count() > MAX_ID_CHARS
            || value.chars().any(char::is_control)
        {
            return Err(format!(
                "ids.{namespace}: 1 to {MAX_ID_CHARS} characters, no control characters"
            ));
        }
        if siyu_core::import::is_masked(&value) {
            return Err(format!(
                "ids.{namespace}: a masked value (with *) is not an identity"
            ));
        }
        if siyu_core::import::is_placeholder(&value) {
            return Err(format!("ids.{namespace}: a placeholder is not an identity"));
        }
        let value = if namespace == "phone" {
            parse_phone(&value).map_err(|e| format!("ids.phone: {e}"))?
        } else {
            value
        };
        out.push((namespace, value));
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrackDto {
    message_id: String,
    customer_id: String,
    timestamp: String,
    event: String,
    #[serde(default)]
    properties: Option<serde_json::Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderDto {
    message_id: String,
    customer_id: String,
    timestamp: String,
    order_id: String,
    amount: Value,
    #[serde(default)]
    discount: Option<Value>,
    coupon_code: Option<String>,
    channel: Option<String>,
    status: Option<String>,
}

/// A money field given as a string (`"128.50"`) or a number of yuan (`128.5`).
fn money(field: &str, v: &Value) -> Result<Money, String> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => {
            return Err(format!(
                "{field}: expected an amount in yuan, e.g. \"128.50\""
            ));
        }
    };
    Money::parse_yuan(&text).map_err(|e| format!("{field}: {e}"))
}

fn text(field: &str, v: Option<String>) -> Result<Option<String>, String> {
    match v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()) {
        Some(s) if s.chars().count() > 200 => Err(format!("{field}: longer than 200 characters")),
        other => Ok(other),
    }
}

/// The message id of an item, if it has a usable one (for the answer about a bad item).
pub fn message_id_of(item: &Value) -> Option<String> {
    item.get("message_id")?.as_str().map(str::to_owned)
}

/// Checks one item, in the tenant's zone.
pub fn parse_item(item: &Value, zone: &TenantZone) -> Result<(String, Item), String> {
    let Value::Object(map) = item else {
        return Err("an item is a JSON object".into());
    };
    let mut map = map.clone();
    let kind = match map.remove("type") {
        Some(Value::String(t)) => t,
        Some(_) => {
            return Err("type: expected \"identify\", \"track\", \"order\" or \"alias\"".into());
        }
        None => {
            return Err("type: missing (\"identify\", \"track\", \"order\" or \"alias\")".into());
        }
    };
    let body = Value::Object(map);
    let serde_error = |e: serde_json::Error| e.to_string();
    let customer = |id: &str| CustomerId::parse_input(id).map_err(|e| format!("customer_id: {e}"));
    let message = |id: &str| -> Result<String, String> {
        let id = id.trim();
        if id.is_empty() || id.len() > 128 || id.chars().any(char::is_control) {
            return Err("message_id: 1 to 128 characters, no control characters".into());
        }
        Ok(id.to_owned())
    };
    let at = |field: &str, t: &str| zone.parse_timestamp(t).map_err(|e| format!("{field}: {e}"));
    match kind.as_str() {
        "identify" => {
            let d: IdentifyDto = serde_json::from_value(body).map_err(serde_error)?;
            let message_id = message(&d.message_id)?;
            let id = customer(&d.customer_id)?;
            if let Some(t) = &d.timestamp {
                at("timestamp", t)?;
            }
            let t = d.traits.unwrap_or(Traits {
                name: None,
                phone: None,
                gender: None,
                birthday: None,
                region: None,
                channel: None,
                referrer_id: None,
                joined_at: None,
                tags: Vec::new(),
            });
            let referrer_id = text("referrer_id", t.referrer_id)?
                .map(|r| {
                    CustomerId::parse_input(&r).map_err(|e| format!("traits.referrer_id: {e}"))
                })
                .transpose()?;
            if referrer_id.as_ref() == Some(&id) {
                return Err("traits.referrer_id: a customer cannot refer themselves".into());
            }
            let mut tags: Vec<String> = Vec::new();
            for tag in t.tags {
                let tag = tag.trim().to_owned();
                siyu_core::segment::rules::check_name(&tag)
                    .map_err(|e| format!("traits.tags: {e}"))?;
                if !tags.contains(&tag) {
                    tags.push(tag);
                }
            }
            let customer = NewCustomer {
                id,
                name: text("traits.name", t.name)?,
                phone: text("traits.phone", t.phone)?
                    .map(|p| parse_phone(&p).map_err(|e| format!("traits.phone: {e}")))
                    .transpose()?,
                gender: text("traits.gender", t.gender)?
                    .map(|g| Gender::parse(&g).map_err(|e| format!("traits.gender: {e}")))
                    .transpose()?,
                birthday: text("traits.birthday", t.birthday)?
                    .map(|b| TenantZone::parse_day(&b).map_err(|e| format!("traits.birthday: {e}")))
                    .transpose()?,
                region: text("traits.region", t.region)?,
                channel: text("traits.channel", t.channel)?
                    .map(|c| Channel::parse(&c).map_err(|e| format!("traits.channel: {e}")))
                    .transpose()?,
                referrer_id,
                joined_at: text("traits.joined_at", t.joined_at)?
                    .map(|j| at("traits.joined_at", &j))
                    .transpose()?,
                tags,
            };
            let ids = d.ids.map(identities).transpose()?.unwrap_or_default();
            let previous = d
                .previous_id
                .as_deref()
                .map(|p| CustomerId::parse_input(p).map_err(|e| format!("previous_id: {e}")))
                .transpose()?
                .filter(|p| *p != customer.id);
            Ok((message_id, Item::Identify(customer, ids, previous)))
        }
        "track" => {
            let d: TrackDto = serde_json::from_value(body).map_err(serde_error)?;
            let message_id = message(&d.message_id)?;
            let event = NewEvent {
                id: EventId::parse(&message_id).map_err(|e| format!("message_id: {e}"))?,
                customer_id: customer(&d.customer_id)?,
                kind: EventType::parse(&d.event).map_err(|e| format!("event: {e}"))?,
                occurred_at: at("timestamp", &d.timestamp)?,
                properties: Value::Object(d.properties.unwrap_or_default()).to_string(),
            };
            Ok((message_id, Item::Track(event)))
        }
        "order" => {
            let d: OrderDto = serde_json::from_value(body).map_err(serde_error)?;
            let message_id = message(&d.message_id)?;
            let order = NewOrder {
                id: OrderId::parse(&d.order_id).map_err(|e| format!("order_id: {e}"))?,
                customer_id: customer(&d.customer_id)?,
                ordered_at: at("timestamp", &d.timestamp)?,
                amount: money("amount", &d.amount)?,
                discount: d
                    .discount
                    .as_ref()
                    .filter(|v| !v.is_null())
                    .map(|v| money("discount", v))
                    .transpose()?
                    .unwrap_or(Money::ZERO),
                coupon_code: text("coupon_code", d.coupon_code)?,
                channel: text("channel", d.channel)?
                    .map(|c| Channel::parse(&c).map_err(|e| format!("channel: {e}")))
                    .transpose()?,
                status: match text("status", d.status)? {
                    Some(s) => OrderStatus::parse(&s).map_err(|e| format!("status: {e}"))?,
                    None => OrderStatus::Paid,
                },
            };
            Ok((message_id, Item::Order(order)))
        }
        "alias" => {
            let d: AliasDto = serde_json::from_value(body).map_err(serde_error)?;
            let message_id = message(&d.message_id)?;
            if let Some(t) = &d.timestamp {
                at("timestamp", t)?;
            }
            let previous =
                CustomerId::parse_input(&d.previous_id).map_err(|e| format!("previous_id: {e}"))?;
            let customer = customer(&d.customer_id)?;
            if previous == customer {
                return Err("previous_id: the same as customer_id".into());
            }
            Ok((message_id, Item::Alias { previous, customer }))
        }
        other => Err(format!(
            "type: '{other}' is not \"identify\", \"track\", \"order\" or \"alias\""
        )),
    }
}

/// Splits rows into runs in which no key repeats, keeping their order (a store batch
/// must not hold a key twice).
fn runs<T>(rows: Vec<T>, key: impl Fn(&T) -> String) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = vec![Vec::new()];
    let mut seen: HashSet<String> = HashSet::new();
    for row in rows {
        let k = key(&row);
        if !seen.insert(k.clone()) {
            out.push(Vec::new());
            seen.clear();
            seen.insert(k);
        }
        if let Some(last) = out.last_mut() {
            last.push(row);
        }
    }
    out
}

/// Writes the checked items of a batch: claims their message ids, writes the new ones,
/// and brings the touched customers' profiles (and the segments) up to date, all in one
/// transaction. `checked[i]` is item i's message id and item, or why it was refused.
pub fn write_batch(
    store: &mut dyn Store,
    tenant: &Tenant,
    settings: &RuleSettings,
    checked: Vec<Checked>,
) -> anyhow::Result<Vec<ItemResult>> {
    let results = write_batches(store, tenant, settings, vec![checked])?;
    Ok(results.into_iter().next().unwrap_or_default())
}

/// How many times a group is written before a conflict with another server's
/// transaction (a deadlock on PostgreSQL) is given up as the batches' failure.
const CONFLICT_ATTEMPTS: u32 = 5;

/// Writes several batches of one tenant in one transaction (a group commit: the pages
/// they share are written once), each answered on its own as if alone. Two servers on one
/// PostgreSQL database can take the same customers' rows in opposite orders and one of
/// them is then stopped as a deadlock: nothing of it was written, so it is written again,
/// after a short pause, up to [`CONFLICT_ATTEMPTS`] times.
pub fn write_batches(
    store: &mut dyn Store,
    tenant: &Tenant,
    settings: &RuleSettings,
    mut batches: Vec<Vec<Checked>>,
) -> anyhow::Result<Vec<Vec<ItemResult>>> {
    let mut attempt = 1;
    loop {
        let last = attempt == CONFLICT_ATTEMPTS;
        let these = if last {
            std::mem::take(&mut batches)
        } else {
            batches.clone()
        };
        match write_group(store, tenant, settings, these) {
            Err(e) if !last && transient(&e) => {
                tracing::debug!(attempt, "ingest group met a concurrent transaction: {e:#}");
                std::thread::sleep(std::time::Duration::from_millis(5 << attempt));
                attempt += 1;
            }
            written => return written,
        }
    }
}

/// Whether `e` is a conflict with a concurrent transaction that writing again may not meet.
fn transient(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<siyu_store::StoreError>()
            .is_some_and(siyu_store::StoreError::is_transient)
    })
}

fn write_group(
    store: &mut dyn Store,
    tenant: &Tenant,
    settings: &RuleSettings,
    batches: Vec<Vec<Checked>>,
) -> anyhow::Result<Vec<Vec<ItemResult>>> {
    let now = Timestamp::now();
    // Identities and aliases may merge customers: whether phones do is the tenant's say.
    let joins = batches.iter().flatten().any(|c| {
        matches!(c, Ok((_, Item::Identify(_, ids, previous))) if !ids.is_empty() || previous.is_some())
            || matches!(c, Ok((_, Item::Alias { .. })))
    });
    let merge_phone = !joins || super::merge::merges_phones(store, tenant)?;
    let mut tx = store.begin_import(tenant).context("starting the batch")?;
    let suppressions = Suppressions::load(tx.as_mut(), tenant)?;
    let mut answers = Vec::with_capacity(batches.len());
    // The group's items are written together, in as few statements as one batch: the
    // track items' ids taken so far are kept here, as their events are not written yet.
    let mut tracked: HashSet<String> = HashSet::new();
    let mut items: Vec<Item> = Vec::new();
    let mut joinings: Vec<Joining> = Vec::new();
    for mut checked in batches {
        if !suppressions.is_empty() {
            for c in &mut checked {
                if let Ok((message_id, item)) = c {
                    if suppressions.contains(item.customer()) {
                        *c = Err((Some(std::mem::take(message_id)), SUPPRESSED.to_owned()));
                    } else if let Item::Identify(customer, ..) = item {
                        suppressions.forget_referrer(Some(&mut customer.referrer_id));
                    }
                }
            }
        }
        let (results, accepted) = claim(tx.as_mut(), checked, now, &mut tracked)?;
        joinings.push(joins_of(&accepted, now));
        items.extend(accepted);
        answers.push(results);
    }
    // The new events' starts of triggered campaigns, queued in this transaction.
    let mut started: Vec<(String, String)> = items
        .iter()
        .filter_map(|i| match i {
            Item::Track(e) => Some((
                e.customer_id.as_str().to_owned(),
                e.kind.as_str().to_owned(),
            )),
            _ => None,
        })
        .collect();
    started.sort();
    started.dedup();
    let touched = if items.is_empty() {
        Vec::new()
    } else {
        write_items(tx.as_mut(), &tenant.zone, items, now)?
    };
    if !started.is_empty() {
        let starts: Vec<(&str, &str)> = started
            .iter()
            .map(|(c, k)| (c.as_str(), k.as_str()))
            .collect();
        tx.queue_event_steps(&starts, now)
            .context("queueing the steps the events start")?;
    }
    // After the rows they name: each batch's aliases and identities, in order.
    for joining in joinings {
        if !joining.is_empty() {
            join(tx.as_mut(), tenant, settings, merge_phone, joining, now)?;
        }
    }
    if !touched.is_empty() {
        evaluate_touched(tx.as_mut(), &tenant.zone, settings, &touched, "batch")
            .context("bringing segments and tags up to date")?;
    }
    tx.commit().context("committing the batch")?;
    Ok(answers)
}

/// The identities and aliases of a batch's items, written after its rows.
#[derive(Default)]
struct Joining {
    ids: Vec<(CustomerId, siyu_store::Identity)>,
    aliases: Vec<(CustomerId, CustomerId)>,
}

impl Joining {
    fn is_empty(&self) -> bool {
        self.ids.is_empty() && self.aliases.is_empty()
    }
}

fn joins_of(items: &[Item], now: Timestamp) -> Joining {
    let mut joining = Joining::default();
    for item in items {
        match item {
            Item::Identify(c, ids, previous) => {
                joining.ids.extend(ids.iter().map(|(namespace, value)| {
                    let identity = siyu_store::Identity {
                        namespace: namespace.clone(),
                        value: value.clone(),
                        source: "batch identify".to_owned(),
                        at: now,
                    };
                    (c.id.clone(), identity)
                }));
                if let Some(previous) = previous {
                    joining.aliases.push((previous.clone(), c.id.clone()));
                }
            }
            Item::Alias { previous, customer } => {
                joining.aliases.push((previous.clone(), customer.clone()))
            }
            Item::Track(_) | Item::Order(_) => {}
        }
    }
    joining
}

/// Merges what a batch's aliases name (the customer survives; an unknown customer is
/// created, an unknown previous id has nothing to merge) and records its identities,
/// merging whom they join.
fn join(
    tx: &mut dyn ImportTx,
    tenant: &Tenant,
    settings: &RuleSettings,
    merge_phone: bool,
    joining: Joining,
    now: Timestamp,
) -> anyhow::Result<()> {
    for (previous, customer) in joining.aliases {
        if !tx.has_customer(&previous).context("reading the customer")? {
            continue;
        }
        if !tx.has_customer(&customer).context("reading the customer")? {
            tx.see_customers(&[SeenCustomer {
                id: customer.clone(),
                at: now,
                channel: None,
            }])
            .context("creating the aliased customer")?;
        }
        super::merge::alias_in(tx, tenant, settings, &previous, &customer)?;
    }
    if !joining.ids.is_empty() {
        super::merge::record_identities_in(tx, tenant, settings, merge_phone, joining.ids)?;
    }
    Ok(())
}

/// Claims the message ids of a batch: the answer per item, and the items to write. A
/// track item's message id is its event's id, which the event's row records; the others'
/// are recorded on their own. An id twice in a batch is a duplicate the second time,
/// whatever the items' types; so is an id in `tracked`, the track items' ids taken by the
/// group's batches before (their events are written after the last batch's claim), to
/// which this batch's are added.
fn claim(
    tx: &mut dyn ImportTx,
    checked: Vec<Checked>,
    now: Timestamp,
    tracked: &mut HashSet<String>,
) -> anyhow::Result<(Vec<ItemResult>, Vec<Item>)> {
    let mut seen: HashSet<&str> = HashSet::with_capacity(checked.len());
    let (mut events, mut messages): (Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new());
    for (id, item) in checked.iter().filter_map(|c| c.as_ref().ok()) {
        if !tracked.contains(id) && seen.insert(id.as_str()) {
            match item {
                Item::Track(_) => events.push(id.as_str()),
                _ => messages.push(id.as_str()),
            }
        }
    }
    let mut fresh: HashSet<String> = HashSet::with_capacity(seen.len());
    let claimed = tx
        .claim_messages(&messages, now)
        .context("claiming message ids")?;
    fresh.extend(
        messages
            .iter()
            .zip(claimed)
            .filter(|(_, new)| *new)
            .map(|(id, _)| (*id).to_owned()),
    );
    let claimed = tx
        .claim_event_ids(&events, now)
        .context("claiming track items' message ids")?;
    for (id, new) in events.iter().zip(claimed) {
        if new {
            fresh.insert((*id).to_owned());
            tracked.insert((*id).to_owned());
        }
    }
    let mut results = Vec::with_capacity(checked.len());
    let mut accepted: Vec<Item> = Vec::new();
    for c in checked {
        match c {
            Err((message_id, reason)) => results.push(ItemResult::Rejected { message_id, reason }),
            Ok((message_id, item)) => {
                // The first of an id taken; any repeat is a duplicate.
                if fresh.remove(&message_id) {
                    accepted.push(item);
                    results.push(ItemResult::Accepted { message_id });
                } else {
                    results.push(ItemResult::Duplicate { message_id });
                }
            }
        }
    }
    Ok((results, accepted))
}

/// Writes accepted items and rebuilds what they change; gives the customers whose
/// profiles or referral figures were written.
fn write_items(
    tx: &mut dyn ImportTx,
    zone: &TenantZone,
    mut items: Vec<Item>,
    now: Timestamp,
) -> anyhow::Result<Vec<CustomerId>> {
    land_on_survivors(tx, &mut items)?;
    // Whose profiles are rebuilt from the store: the customers of identifies and orders.
    // Those with events alone take them onto their stored profiles, if every event is new.
    let affected: HashSet<CustomerId> = items
        .iter()
        .filter(|i| !matches!(i, Item::Track(_) | Item::Alias { .. }))
        .map(|i| i.customer().clone())
        .collect();
    // Sightings through orders and events: each customer's earliest, with its channel.
    let mut seen = Sightings::default();
    for item in &items {
        match item {
            Item::Identify(..) | Item::Alias { .. } => {}
            Item::Track(e) => seen.see(&e.customer_id, e.occurred_at, None),
            Item::Order(o) => seen.see(&o.customer_id, o.ordered_at, o.channel.as_ref()),
        }
    }
    let sightings = seen.take();
    let (mut customers, mut orders, mut events) = (Vec::new(), Vec::new(), Vec::new());
    for item in items {
        match item {
            Item::Identify(c, ..) => customers.push(c),
            Item::Alias { .. } => {}
            Item::Track(e) => events.push(e),
            Item::Order(o) => orders.push(o),
        }
    }
    // A referrer replaced by this batch loses a referral: remember who it was.
    let named: Vec<CustomerId> = customers.iter().map(|c| c.id.clone()).collect();
    let old_referrers: HashSet<CustomerId> = if named.is_empty() {
        HashSet::new()
    } else {
        tx.customer_facts(Scope::Customers(&named))
            .context("reading the customers this batch updates")?
            .into_iter()
            .filter_map(|c| c.referrer_id)
            .collect()
    };
    if !sightings.is_empty() {
        tx.see_customers(&sightings)
            .context("creating customers first seen in this batch")?;
    }
    for run in runs(customers, |c| c.id.to_string()) {
        tx.upsert_customers(&run, now)
            .context("writing customers")?;
    }
    for run in runs(orders, |o| o.id.to_string()) {
        tx.upsert_orders(&run).context("writing orders")?;
    }
    let mut all_new = true;
    let mut written_events: Vec<NewEvent> = Vec::with_capacity(events.len());
    for run in runs(events, |e| e.id.to_string()) {
        let counts = tx.insert_events(&run).context("writing events")?;
        all_new &= counts.inserted == run.len() as u64;
        written_events.extend(run);
    }
    let mut affected: FastHashSet<CustomerId> = affected.into_iter().collect();
    affected.extend(tx.displaced_customers().context("reading moved orders")?);
    let mut touched = Vec::new();
    if all_new {
        // Events only, every one new: the stored profiles take them as they are.
        written_events.retain(|e| !affected.contains(&e.customer_id));
        touched = add_events(tx, zone, &written_events, &sightings)?;
    } else {
        // Some event was there already: everyone with events is rebuilt.
        affected.extend(written_events.iter().map(|e| e.customer_id.clone()));
        // Taken so that the next batch of a group commit sees only the customers it
        // creates; the refresh below rebuilds these from the store like any other.
        tx.created_customers()
            .context("reading created customers")?;
    }
    if affected.is_empty() {
        return Ok(touched);
    }
    let refreshed = refresh(
        tx,
        zone,
        Affected::Customers {
            ids: &affected,
            old_referrers: &old_referrers,
        },
        Vec::new(),
    )
    .context("updating profiles")?;
    touched.extend(refreshed.touched);
    touched.sort_unstable();
    touched.dedup();
    Ok(touched)
}

/// Items naming a merged customer land on its survivor, their rows noted under the
/// merged id (see [`Aliases`]).
fn land_on_survivors(tx: &mut dyn ImportTx, items: &mut [Item]) -> anyhow::Result<()> {
    let aliases = Aliases::load(tx)?;
    if aliases.is_empty() {
        return Ok(());
    }
    let mut named: Vec<CustomerId> = items.iter().map(|i| i.customer().clone()).collect();
    named.extend(items.iter().filter_map(|i| match i {
        Item::Identify(c, ..) => c.referrer_id.clone(),
        _ => None,
    }));
    let chains = aliases.chains(tx, &named)?;
    if chains.is_empty() {
        return Ok(());
    }
    let mut notes = Vec::new();
    for item in items.iter_mut() {
        match item {
            Item::Alias { .. } => {}
            Item::Identify(c, ..) => {
                resolve(&chains, &mut c.id, None, &mut notes);
                if let Some(referrer) = &mut c.referrer_id {
                    resolve(
                        &chains,
                        referrer,
                        Some(("referee", c.id.as_str())),
                        &mut notes,
                    );
                }
            }
            Item::Track(e) => resolve(
                &chains,
                &mut e.customer_id,
                Some(("event", e.id.as_str())),
                &mut notes,
            ),
            Item::Order(o) => resolve(
                &chains,
                &mut o.customer_id,
                Some(("order", o.id.as_str())),
                &mut notes,
            ),
        }
    }
    tx.note_merged_rows(&notes)
        .context("noting rows of merged customers")?;
    Ok(())
}

/// Adds new events to the stored profiles of their customers. A customer without a
/// stored profile was created by this batch (the store says so), so these events are all
/// their facts, and their earliest is the customer's sighting; any other is rebuilt from
/// the store as usual.
fn add_events(
    tx: &mut dyn ImportTx,
    zone: &TenantZone,
    events: &[NewEvent],
    sightings: &[SeenCustomer],
) -> anyhow::Result<Vec<CustomerId>> {
    let created: FastHashSet<CustomerId> = tx
        .created_customers()
        .context("reading created customers")?
        .into_iter()
        .collect();
    // Each customer's events summed, in id order (the store's rows are in that order too).
    let mut news: BTreeMap<&CustomerId, Interactions> = BTreeMap::new();
    for e in events {
        news.entry(&e.customer_id)
            .and_modify(|n| n.add(e.kind.as_str(), e.occurred_at))
            .or_insert_with(|| {
                Interactions::new(e.customer_id.clone(), e.kind.as_str(), e.occurred_at)
            });
    }
    let (fresh, stored): (Vec<Interactions>, Vec<Interactions>) = news
        .into_values()
        .partition(|n| created.contains(&n.customer_id));
    let found = tx
        .add_interactions(&stored)
        .context("adding events to profiles")?;
    let rebuild: FastHashSet<CustomerId> = stored
        .into_iter()
        .zip(found)
        .filter(|(_, found)| !found)
        .map(|(n, _)| n.customer_id)
        .collect();
    let profiles: Vec<Profile> = fresh
        .iter()
        .map(|n| {
            // Sightings are sorted by customer.
            let first = sightings
                .binary_search_by(|s| s.id.cmp(&n.customer_id))
                .map_or_else(|_| Timestamp::now(), |k| sightings[k].at);
            let mut p = Profile::new(n.customer_id.clone(), first, None);
            n.apply_to(&mut p);
            p
        })
        .collect();
    tx.save_new_profiles(&profiles).context("saving profiles")?;
    // A customer new to the pool may be named as referrer by customers imported before.
    // (Created customers with orders or an identify in the batch are rebuilt apart.)
    if !fresh.is_empty() {
        let mut created: Vec<CustomerId> = fresh.iter().map(|n| n.customer_id.clone()).collect();
        created.sort();
        let referees = tx
            .referees(Scope::Customers(&created))
            .context("reading referees")?;
        // Their profiles were saved just now with no referral figures: only those with
        // referrals need writing.
        let mut figures = referral_figures(&created, &referees);
        figures.retain(|(_, referrals, _)| *referrals > 0);
        tx.save_referrals(&figures)
            .context("saving referral figures")?;
    }
    let mut touched: Vec<CustomerId> = events.iter().map(|e| e.customer_id.clone()).collect();
    if !rebuild.is_empty() {
        let refreshed = refresh(
            tx,
            zone,
            Affected::Customers {
                ids: &rebuild,
                old_referrers: &HashSet::new(),
            },
            Vec::new(),
        )
        .context("updating profiles")?;
        touched.extend(refreshed.touched);
    }
    touched.sort_unstable();
    touched.dedup();
    Ok(touched)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn zone() -> TenantZone {
        TenantZone::default()
    }

    #[test]
    fn items_are_checked_field_by_field() {
        let ok = parse_item(
            &json!({"type": "order", "message_id": "m1", "customer_id": "c1",
                    "timestamp": "2025-05-01 10:00:00", "order_id": "1234567890123456789",
                    "amount": 128.5, "discount": "10", "status": "refunded"}),
            &zone(),
        )
        .expect("order");
        let Item::Order(o) = ok.1 else {
            panic!("an order")
        };
        assert_eq!(o.amount, Money::from_fen(12_850));
        assert_eq!(o.id.as_str(), "1234567890123456789");
        assert_eq!(o.status, OrderStatus::Refunded);

        let cases = [
            (
                json!({"type": "order", "message_id": "m", "customer_id": "c1", "timestamp": "2025-05-01", "order_id": "1", "amount": "12.345"}),
                "amount",
            ),
            (
                json!({"type": "order", "message_id": "m", "customer_id": "c1", "timestamp": "yesterday", "order_id": "1", "amount": "1"}),
                "timestamp",
            ),
            (
                json!({"type": "track", "message_id": "m", "customer_id": "c1", "timestamp": "2025-05-01", "event": "Post Like"}),
                "event",
            ),
            (
                json!({"type": "track", "message_id": "m", "customer_id": "", "timestamp": "2025-05-01", "event": "view"}),
                "customer_id",
            ),
            (
                json!({"type": "identify", "message_id": "m", "customer_id": "c1", "traits": {"nmae": "x"}}),
                "unknown field `nmae`",
            ),
            (
                json!({"type": "identify", "message_id": "m", "customer_id": "c1", "traits": {"gender": "robot"}}),
                "traits.gender",
            ),
            (
                json!({"type": "page", "message_id": "m", "customer_id": "c1"}),
                "type",
            ),
            (json!({"message_id": "m"}), "type: missing"),
            (json!([1, 2]), "JSON object"),
            (
                json!({"type": "identify", "message_id": "", "customer_id": "c1"}),
                "message_id",
            ),
            (
                json!({"type": "identify", "message_id": 7, "customer_id": "c1"}),
                "invalid type",
            ),
        ];
        for (item, field) in cases {
            let err = parse_item(&item, &zone()).expect_err(&item.to_string());
            assert!(err.contains(field), "{item}: {err}");
        }
    }

    #[test]
    fn runs_never_repeat_a_key() {
        let r = runs(vec![1, 2, 1, 3, 2], |n| n.to_string());
        assert_eq!(r, vec![vec![1, 2], vec![1, 3, 2]]);
    }
}

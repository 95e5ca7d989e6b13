//! Personal data on request (PIPL): everything held on a customer handed out, a customer
//! erased (orders kept de-linked, the id suppressed so that no import or batch brings it
//! back), the marketing opt-out, and the audit log of each, who and when.
//!
//! The suppression list and the audit log never hold a customer's id: they hold its
//! suppression key, a SHA-256 of the id salted with the tenant. Whoever has an id can ask
//! whether it was erased or exported; nobody can read the ids back from the lists (short
//! id spaces, such as phone numbers, can still be searched by someone with the database).

use std::collections::HashSet;

use anyhow::Context;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use siyu_core::fasthash::FastHashSet;
use siyu_core::privacy::{AuditAction, erased_id, is_erased};
use siyu_core::profile::Profile;
use siyu_core::segment::rules::{Change, RuleKind};
use siyu_core::{Customer, CustomerId, Money, NewEvent, NewOrder, Timestamp};
use siyu_store::{AuditEntry, MemberFilter, PrivacyWrites, Store, StoreError, Tenant};

use crate::wording::count;

use super::evaluate::evaluate_touched;
use super::profiles::{Affected, refresh};
use super::segments::rule_settings;
use super::tokens::{hex, random_hex};

/// The suppression key of a customer id in a tenant: hex SHA-256 of the id, salted.
pub fn suppression_key(tenant: &Tenant, id: &CustomerId) -> String {
    let mut hash = Sha256::new();
    hash.update(b"siyu suppression\0");
    hash.update(tenant.id.to_le_bytes());
    hash.update(id.as_str().as_bytes());
    hex(&hash.finalize())
}

/// The suppression key of an identity of an erased customer: hex SHA-256 of its namespace
/// and value, salted with the tenant (so that the person's unionid or phone is never
/// recorded, and so never merges, again).
pub fn identity_key(tenant: &Tenant, namespace: &str, value: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(b"siyu identity suppression\0");
    hash.update(tenant.id.to_le_bytes());
    hash.update(namespace.as_bytes());
    hash.update(b"\0");
    hash.update(value.as_bytes());
    hex(&hash.finalize())
}

/// The erased customers of a tenant, to keep their ids out of imports and batches.
pub struct Suppressions {
    tenant: Tenant,
    keys: HashSet<String>,
}

impl Suppressions {
    /// The tenant's suppression keys as `tx` sees them.
    pub fn load(tx: &mut dyn PrivacyWrites, tenant: &Tenant) -> anyhow::Result<Suppressions> {
        let keys = tx
            .suppression_keys()
            .context("reading the erased customers")?;
        Ok(Suppressions {
            tenant: tenant.clone(),
            keys: keys.into_iter().collect(),
        })
    }

    /// Whether data about this id must be refused: it was erased. (Free while nobody was.)
    pub fn contains(&self, id: &CustomerId) -> bool {
        !self.keys.is_empty() && self.keys.contains(&suppression_key(&self.tenant, id))
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether an identity was an erased customer's.
    pub fn contains_identity(&self, namespace: &str, value: &str) -> bool {
        !self.keys.is_empty()
            && self
                .keys
                .contains(&identity_key(&self.tenant, namespace, value))
    }

    /// Drops a referrer who was erased, as if not given: the stored one, which names the
    /// erased customer's remains, stays.
    pub fn forget_referrer(&self, referrer: Option<&mut Option<CustomerId>>) {
        if let Some(r) = referrer
            && r.as_ref().is_some_and(|id| self.contains(id))
        {
            *r = None;
        }
    }
}

/// Why an item or row about an erased customer is refused.
pub const SUPPRESSED: &str =
    "customer_id: this customer was erased at their request; nothing about them is taken in";

/// Why a privacy action could not be done.
#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    #[error("there is no customer '{0}'")]
    NotFound(CustomerId),
    #[error("customer '{0}' was erased at their request: nothing is held on them")]
    Erased(CustomerId),
    #[error("'{0}' is what is left of an erased customer; there is nothing personal to act on")]
    Remains(CustomerId),
    /// The store's or the system's failure, not the request's.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<StoreError> for PrivacyError {
    fn from(e: StoreError) -> PrivacyError {
        PrivacyError::Other(e.into())
    }
}

/// An order as handed out.
#[derive(Debug, Clone, Serialize)]
pub struct OrderLine {
    pub order_id: String,
    pub ordered_at: Timestamp,
    pub amount: Money,
    pub discount: Money,
    pub coupon_code: Option<String>,
    pub channel: Option<String>,
    pub status: &'static str,
}

impl From<NewOrder> for OrderLine {
    fn from(o: NewOrder) -> OrderLine {
        OrderLine {
            order_id: o.id.to_string(),
            ordered_at: o.ordered_at,
            amount: o.amount,
            discount: o.discount,
            coupon_code: o.coupon_code,
            channel: o.channel.map(|c| c.as_str().to_owned()),
            status: o.status.as_str(),
        }
    }
}

/// An event as handed out.
#[derive(Debug, Clone, Serialize)]
pub struct EventLine {
    pub event_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub occurred_at: Timestamp,
    pub properties: Value,
}

impl From<NewEvent> for EventLine {
    fn from(e: NewEvent) -> EventLine {
        EventLine {
            event_id: e.id.to_string(),
            kind: e.kind.as_str().to_owned(),
            occurred_at: e.occurred_at,
            properties: serde_json::from_str(&e.properties).unwrap_or(Value::Null),
        }
    }
}

/// A tag on the customer: `import`, `manual:<who>`, `rule:<name>` or `level`.
#[derive(Debug, Clone, Serialize)]
pub struct TagLine {
    pub tag: String,
    pub source: String,
    pub since: Timestamp,
}

/// A segment, rule tag or level tag the customer is in.
#[derive(Debug, Clone, Serialize)]
pub struct MembershipLine {
    pub kind: RuleKind,
    pub name: String,
    pub since: Timestamp,
}

/// A change of the customer's segments and tags.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryLine {
    pub kind: RuleKind,
    pub name: String,
    pub change: Change,
    pub at: Timestamp,
    pub cause: String,
}

/// An entry of the audit log.
#[derive(Debug, Clone, Serialize)]
pub struct AuditLine {
    pub at: Timestamp,
    pub actor: String,
    pub action: AuditAction,
    /// The customer's suppression key.
    pub subject: String,
    pub detail: String,
}

impl From<AuditEntry> for AuditLine {
    fn from(e: AuditEntry) -> AuditLine {
        AuditLine {
            at: e.at,
            actor: e.actor,
            action: e.action,
            subject: e.subject,
            detail: e.detail,
        }
    }
}

/// Everything held on a customer.
#[derive(Debug, Clone, Serialize)]
pub struct PersonalData {
    pub exported_at: Timestamp,
    pub tenant: String,
    pub customer: Customer,
    pub marketing_opt_out_at: Option<Timestamp>,
    pub profile: Option<Profile>,
    /// Oldest first.
    pub orders: Vec<OrderLine>,
    /// Oldest first.
    pub events: Vec<EventLine>,
    pub tags: Vec<TagLine>,
    /// Their ids in the merchant's sources (unionid, WeCom external_userid, openid, phone).
    pub identities: Vec<IdentityLine>,
    pub memberships: Vec<MembershipLine>,
    /// Oldest first.
    pub history: Vec<HistoryLine>,
    /// Earlier exports and opt-outs, oldest first (this export included).
    pub audit: Vec<AuditLine>,
}

/// One of the customer's identities, as exported.
#[derive(Debug, Clone, Serialize)]
pub struct IdentityLine {
    pub namespace: String,
    pub value: String,
    pub source: String,
    pub at: Timestamp,
}

/// `siyu customer export` and `GET /v1/customers/{id}/export`: everything held on the
/// customer, the export recorded in the audit log.
pub fn export(
    store: &mut dyn Store,
    tenant: &Tenant,
    id: &CustomerId,
    actor: &str,
) -> Result<PersonalData, PrivacyError> {
    if is_erased(id) {
        return Err(PrivacyError::Remains(id.clone()));
    }
    let view = store
        .customer_view(tenant, id, usize::MAX)
        .context("reading the customer")?;
    let Some(view) = view else {
        let mut tx = store.begin_privacy(tenant)?;
        return Err(missing(tx.as_mut(), tenant, id)?);
    };
    let key = suppression_key(tenant, id);
    let now = Timestamp::now();
    let entry = AuditEntry {
        at: now,
        actor: actor.to_owned(),
        action: AuditAction::Export,
        subject: key.clone(),
        detail: format!(
            "handed out {}, {}",
            count(view.recent_orders.len() as u64, "order"),
            count(view.recent_events.len() as u64, "event")
        ),
    };
    let mut tx = store.begin_privacy(tenant)?;
    // Erased since the view was read: hand out nothing, record nothing.
    if !tx.has_customer(id).context("reading the customer")? {
        return Err(missing(tx.as_mut(), tenant, id)?);
    }
    let history = tx
        .history(MemberFilter::Customer(id), usize::MAX)
        .context("reading the customer's history")?;
    tx.record_audit(&entry).context("writing the audit log")?;
    tx.commit()?;
    let mut audit: Vec<AuditLine> = store
        .audit_log(tenant, Some(&key), 1_000)
        .context("reading the audit log")?
        .into_iter()
        .map(AuditLine::from)
        .collect();
    audit.reverse();
    let mut orders: Vec<OrderLine> = view
        .recent_orders
        .into_iter()
        .map(OrderLine::from)
        .collect();
    orders.reverse();
    let mut events: Vec<EventLine> = view
        .recent_events
        .into_iter()
        .map(EventLine::from)
        .collect();
    events.reverse();
    let mut history: Vec<HistoryLine> = history
        .into_iter()
        .map(|h| HistoryLine {
            kind: h.kind,
            name: h.name,
            change: h.change,
            at: h.at,
            cause: h.cause,
        })
        .collect();
    history.sort_by_key(|h| h.at);
    let identities = store
        .identities_of(tenant, id)
        .context("reading the customer's identities")?
        .into_iter()
        .map(|i| IdentityLine {
            namespace: i.namespace,
            value: i.value,
            source: i.source,
            at: i.at,
        })
        .collect();
    Ok(PersonalData {
        identities,
        exported_at: now,
        tenant: tenant.name.clone(),
        customer: view.customer,
        marketing_opt_out_at: view.opted_out_at,
        profile: view.profile,
        orders,
        events,
        tags: view
            .manual_tags
            .into_iter()
            .map(|t| TagLine {
                tag: t.tag,
                source: t.source,
                since: t.since,
            })
            .collect(),
        memberships: view
            .memberships
            .into_iter()
            .map(|m| MembershipLine {
                kind: m.kind,
                name: m.name,
                since: m.since,
            })
            .collect(),
        history,
        audit,
    })
}

/// What an erasure did.
#[derive(Debug, Clone, Serialize)]
pub struct Erasure {
    /// The id the orders are kept under now.
    pub remains: String,
    pub orders_kept: u64,
    pub events_erased: u64,
    pub tags_erased: u64,
    /// Customers who named the erased customer as referrer, now naming the remains.
    pub referees: u64,
    /// The key that keeps the id out of later imports and batches.
    pub suppression_key: String,
}

/// `siyu customer erase` and `DELETE /v1/customers/{id}`: erases the customer's personal
/// data and events, keeps their orders under a random id (so every total stays right),
/// suppresses the id, and records it, in one transaction.
pub fn erase(
    store: &mut dyn Store,
    tenant: &Tenant,
    id: &CustomerId,
    actor: &str,
) -> Result<Erasure, PrivacyError> {
    if is_erased(id) {
        return Err(PrivacyError::Remains(id.clone()));
    }
    let settings = rule_settings(store, tenant)?;
    let key = suppression_key(tenant, id);
    let remains = erased_id(&random_hex(8)?);
    // The person's other ids: their identities, and the customers merged into them (whose
    // rows are theirs now; what would undo the merges holds their personal data).
    let identities = store
        .identities_of(tenant, id)
        .context("reading the customer's identities")?;
    let absorbed = absorbed(store, tenant, id)?;
    let now = Timestamp::now();
    let mut tx = store.begin_privacy(tenant)?;
    tx.lock_evaluation()
        .context("waiting for another evaluation")?;
    let erased = match tx.erase_customer(id, &remains, &key, now) {
        Err(StoreError::NotFound(_)) => return Err(missing(tx.as_mut(), tenant, id)?),
        other => other.context("erasing the customer")?,
    };
    for identity in &identities {
        tx.suppress(
            &identity_key(tenant, &identity.namespace, &identity.value),
            now,
        )
        .context("suppressing the customer's identities")?;
    }
    for other in &absorbed {
        tx.suppress(&suppression_key(tenant, other), now)
            .context("suppressing the customer's merged ids")?;
    }
    let mut forgotten = absorbed.clone();
    forgotten.push(id.clone());
    // What is waiting in the outbox for the person is not sent (and what was sent keeps
    // no payload naming them).
    for who in &forgotten {
        tx.cancel_deliveries_of(who)
            .context("cancelling the customer's pending sends")?;
    }
    tx.forget_merges(&forgotten)
        .context("forgetting the customer's merges")?;
    let ids: FastHashSet<CustomerId> = std::iter::once(remains.clone()).collect();
    let refreshed = refresh(
        tx.as_mut(),
        &tenant.zone,
        Affected::Customers {
            ids: &ids,
            old_referrers: &HashSet::new(),
        },
        Vec::new(),
    )
    .context("rebuilding the profile the orders keep")?;
    // The erased customer's own memberships went with them; the remains and whoever
    // they referred or were referred by are judged again.
    evaluate_touched(
        tx.as_mut(),
        &tenant.zone,
        &settings,
        &refreshed.touched,
        "erase",
    )
    .context("bringing segments and tags up to date")?;
    tx.record_audit(&AuditEntry {
        at: now,
        actor: actor.to_owned(),
        action: AuditAction::Erase,
        subject: key.clone(),
        detail: format!(
            "kept {} de-linked; erased {}, {}",
            count(erased.orders, "order"),
            count(erased.events, "event"),
            count(erased.tags, "tag")
        ),
    })
    .context("writing the audit log")?;
    // The store empties its log of the erased rows once this has committed (as far as
    // it can; see `PrivacyWrites::erase_customer`).
    tx.commit()?;
    Ok(Erasure {
        remains: remains.to_string(),
        orders_kept: erased.orders,
        events_erased: erased.events,
        tags_erased: erased.tags,
        referees: erased.referees,
        suppression_key: key,
    })
}

/// The customers merged into `id`, and into them, standing.
fn absorbed(
    store: &mut dyn Store,
    tenant: &Tenant,
    id: &CustomerId,
) -> anyhow::Result<Vec<CustomerId>> {
    let mut out: Vec<CustomerId> = Vec::new();
    let mut next = vec![id.clone()];
    while let Some(survivor) = next.pop() {
        for m in store
            .merges(tenant, &survivor)
            .context("reading the customer's merges")?
        {
            if m.survivor_id == survivor && m.unmerged_at.is_none() && !out.contains(&m.merged_id) {
                out.push(m.merged_id.clone());
                next.push(m.merged_id);
            }
        }
    }
    Ok(out)
}

/// `siyu customer opt-out` and `POST /v1/customers/{id}/opt-out`: the customer asks for
/// no marketing (`opted_out`), or withdraws that. Marketing segments are brought up to
/// date in the same transaction. Whether it changed anything: asked again, it records
/// nothing more.
pub fn set_opt_out(
    store: &mut dyn Store,
    tenant: &Tenant,
    id: &CustomerId,
    opted_out: bool,
    actor: &str,
) -> Result<bool, PrivacyError> {
    if is_erased(id) {
        return Err(PrivacyError::Remains(id.clone()));
    }
    // Asked twice, the second changes nothing: no new time, no second audit entry.
    if let Some(view) = store
        .customer_view(tenant, id, 0)
        .context("reading the customer")?
        && view.opted_out_at.is_some() == opted_out
    {
        return Ok(false);
    }
    let settings = rule_settings(store, tenant)?;
    let now = Timestamp::now();
    let mut tx = store.begin_privacy(tenant)?;
    tx.lock_evaluation()
        .context("waiting for another evaluation")?;
    if !tx
        .set_opt_out(id, opted_out.then_some(now))
        .context("setting the opt-out")?
    {
        return Err(missing(tx.as_mut(), tenant, id)?);
    }
    let (action, cause) = if opted_out {
        (AuditAction::OptOut, "opt-out")
    } else {
        (AuditAction::OptIn, "opt-in")
    };
    evaluate_touched(
        tx.as_mut(),
        &tenant.zone,
        &settings,
        std::slice::from_ref(id),
        cause,
    )
    .context("bringing segments and tags up to date")?;
    tx.record_audit(&AuditEntry {
        at: now,
        actor: actor.to_owned(),
        action,
        subject: suppression_key(tenant, id),
        detail: String::new(),
    })
    .context("writing the audit log")?;
    tx.commit()?;
    Ok(true)
}

/// Why a customer the tenant lacks is missing, as `tx` sees it: never there, or erased.
fn missing(
    tx: &mut dyn PrivacyWrites,
    tenant: &Tenant,
    id: &CustomerId,
) -> anyhow::Result<PrivacyError> {
    Ok(if Suppressions::load(tx, tenant)?.contains(id) {
        PrivacyError::Erased(id.clone())
    } else {
        PrivacyError::NotFound(id.clone())
    })
}

/// `siyu customer audit`: the audit log, newest first, of one customer or of all.
pub fn audit_log(
    store: &mut dyn Store,
    tenant: &Tenant,
    customer: Option<&CustomerId>,
    limit: usize,
) -> anyhow::Result<Vec<AuditLine>> {
    let key = customer.map(|id| suppression_key(tenant, id));
    Ok(store
        .audit_log(tenant, key.as_deref(), limit)
        .context("reading the audit log")?
        .into_iter()
        .map(AuditLine::from)
        .collect())
}

/// The console's reveal of a customer's phone (admins): recorded in the audit log as
/// `view_phone` before it is shown. False (nothing recorded) if the tenant has no such
/// customer.
pub fn record_phone_view(
    store: &mut dyn Store,
    tenant: &Tenant,
    id: &CustomerId,
    actor: &str,
) -> anyhow::Result<bool> {
    let mut tx = store.begin_privacy(tenant)?;
    if !tx.has_customer(id).context("reading the customer")? {
        return Ok(false);
    }
    tx.record_audit(&AuditEntry {
        at: Timestamp::now(),
        actor: actor.to_owned(),
        action: AuditAction::ViewPhone,
        subject: suppression_key(tenant, id),
        detail: "phone shown in the console".to_owned(),
    })
    .context("writing the audit log")?;
    tx.commit()?;
    Ok(true)
}

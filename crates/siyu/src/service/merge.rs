//! One person under many ids (DESIGN.md, "Identity"): two customers merged into one, the
//! merge undone, and pairs the merchant says are two persons.
//!
//! Survivor rule: the customer who joined earlier survives; on a tie, the smaller id (byte
//! order). An `alias` (the batch API's, Segment's) names its survivor instead.
//!
//! A merge moves the merged customer's rows to the survivor and its row out of the pool
//! (kept aside, with the survivor's as it was, until an unmerge); the survivor's profile is
//! rebuilt from its now larger history, the referral figures around both follow, and both
//! are judged again against the day's thresholds: the merged id leaves everything it was
//! in, with the occasion `merge`. All in one transaction.

use std::collections::HashSet;

use anyhow::Context;
use serde::Serialize;

use siyu_core::fasthash::FastHashSet;
use siyu_core::privacy::is_erased;
use siyu_core::{CustomerId, Timestamp};
use siyu_store::{MergeReason, MergeTx, MergeWrites, Moved, Scope, Store, StoreError, Tenant};

use super::evaluate::evaluate_touched;
use super::privacy::Suppressions;
use super::profiles::{Affected, refresh};
use super::segments::{RuleSettings, rule_settings};

/// Why a merge, unmerge or never-merge could not be done.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("there is no customer '{0}'")]
    NotFound(CustomerId),
    #[error("'{0}' and '{1}' are one customer already")]
    Same(CustomerId, CustomerId),
    #[error("'{0}' and '{1}' are recorded as two persons (never-merge): not merged")]
    Refused(CustomerId, CustomerId),
    #[error("customer '{0}' is not merged into anyone")]
    NotMerged(CustomerId),
    /// Merges stacked on the same survivor are undone last first.
    #[error("{0}")]
    OutOfOrder(String),
    #[error("'{0}' is what is left of an erased customer; it is never merged")]
    Remains(CustomerId),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<StoreError> for MergeError {
    fn from(e: StoreError) -> MergeError {
        MergeError::Other(e.into())
    }
}

/// What a merge did.
#[derive(Debug, Clone, Serialize)]
pub struct Merged {
    pub survivor: String,
    pub merged: String,
    pub reason: &'static str,
    pub orders: u64,
    pub events: u64,
    pub tags: u64,
    pub identities: u64,
    pub referees: u64,
}

/// What an unmerge did.
#[derive(Debug, Clone, Serialize)]
pub struct Unmerged {
    /// The customer restored.
    pub customer: String,
    /// Whom it had been merged into.
    pub survivor: String,
}

/// `siyu customer merge A B` and `POST /v1/customers/{a}/merge`: merges the two by the
/// survivor rule.
pub fn merge(
    store: &mut dyn Store,
    tenant: &Tenant,
    a: &CustomerId,
    b: &CustomerId,
    reason: MergeReason,
) -> Result<Merged, MergeError> {
    let settings = rule_settings(store, tenant)?;
    let mut tx = store.begin_privacy(tenant)?;
    tx.lock_evaluation()
        .context("waiting for another evaluation")?;
    let done = merge_in(tx.as_mut(), tenant, &settings, a, b, reason, false)?;
    tx.commit()?;
    Ok(done)
}

/// Merges `a` and `b` inside `tx`: by the survivor rule, or with `b` surviving when
/// `b_survives` (an alias). The caller holds the evaluation lock and commits.
pub(crate) fn merge_in(
    tx: &mut dyn MergeTx,
    tenant: &Tenant,
    settings: &RuleSettings,
    a: &CustomerId,
    b: &CustomerId,
    reason: MergeReason,
    b_survives: bool,
) -> Result<Merged, MergeError> {
    for id in [a, b] {
        if is_erased(id) {
            return Err(MergeError::Remains(id.clone()));
        }
    }
    if a == b {
        return Err(MergeError::Same(a.clone(), b.clone()));
    }
    let pair = [a.clone(), b.clone()];
    let facts = tx
        .customer_facts(Scope::Customers(&pair))
        .context("reading the two customers")?;
    let fact = |id: &CustomerId| facts.iter().find(|f| &f.id == id);
    let (Some(fa), Some(fb)) = (fact(a), fact(b)) else {
        let missing = if fact(a).is_none() { a } else { b };
        return Err(MergeError::NotFound(missing.clone()));
    };
    if tx.is_never_merge(a, b).context("reading never-merge")? {
        return Err(MergeError::Refused(a.clone(), b.clone()));
    }
    let a_survives = !b_survives
        && (fa.joined_at, a.as_str().as_bytes()) < (fb.joined_at, b.as_str().as_bytes());
    let (survivor, merged) = if a_survives { (fa, fb) } else { (fb, fa) };
    let moved = tx
        .merge_customers(&survivor.id, &merged.id, reason, Timestamp::now())
        .context("moving the merged customer's rows")?;
    let ids: FastHashSet<CustomerId> = std::iter::once(survivor.id.clone()).collect();
    let old_referrers: HashSet<CustomerId> = [&survivor.referrer_id, &merged.referrer_id]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    let cause = format!(
        "merge {} into {} ({})",
        merged.id,
        survivor.id,
        reason.as_str()
    );
    judge_again(
        tx,
        tenant,
        settings,
        &ids,
        &old_referrers,
        std::slice::from_ref(&merged.id),
        &cause,
    )?;
    Ok(report(&survivor.id, &merged.id, reason, moved))
}

/// Rebuilds the profiles of `ids` (and the referral figures around them) and judges them,
/// whoever their figures touched and `gone` (customers who left the pool) again.
fn judge_again(
    tx: &mut dyn MergeTx,
    tenant: &Tenant,
    settings: &RuleSettings,
    ids: &FastHashSet<CustomerId>,
    old_referrers: &HashSet<CustomerId>,
    gone: &[CustomerId],
    cause: &str,
) -> Result<(), MergeError> {
    let refreshed = refresh(
        tx,
        &tenant.zone,
        Affected::Customers { ids, old_referrers },
        Vec::new(),
    )
    .context("rebuilding the profiles")?;
    let mut touched = refreshed.touched;
    touched.extend(gone.iter().cloned());
    touched.extend(ids.iter().cloned());
    touched.sort_unstable();
    touched.dedup();
    evaluate_touched(tx, &tenant.zone, settings, &touched, cause)
        .context("bringing segments and tags up to date")?;
    Ok(())
}

fn report(survivor: &CustomerId, merged: &CustomerId, reason: MergeReason, m: Moved) -> Merged {
    Merged {
        survivor: survivor.to_string(),
        merged: merged.to_string(),
        reason: reason.as_str(),
        orders: m.orders,
        events: m.events,
        tags: m.tags,
        identities: m.identities,
        referees: m.referees,
    }
}

/// `siyu customer unmerge ID` and `POST /v1/customers/{id}/unmerge`: both customers as they
/// were before the merge of `id`, with what arrived since naming `id` going back to it.
pub fn unmerge(
    store: &mut dyn Store,
    tenant: &Tenant,
    id: &CustomerId,
) -> Result<Unmerged, MergeError> {
    let settings = rule_settings(store, tenant)?;
    let mut tx = store.begin_privacy(tenant)?;
    tx.lock_evaluation()
        .context("waiting for another evaluation")?;
    let standing = tx
        .merges_of(id)
        .context("reading the merges")?
        .into_iter()
        .find(|m| &m.merged_id == id && m.unmerged_at.is_none());
    let Some(standing) = standing else {
        return Err(MergeError::NotMerged(id.clone()));
    };
    // The survivor's referrer now may be one it took from the merged customer.
    let before = tx
        .customer_facts(Scope::Customers(std::slice::from_ref(
            &standing.survivor_id,
        )))
        .context("reading the survivor")?;
    let survivor = match tx.unmerge_customer(id, Timestamp::now()) {
        Ok(s) => s,
        Err(StoreError::NotFound(_)) => return Err(MergeError::NotMerged(id.clone())),
        Err(StoreError::Conflict(why)) => return Err(MergeError::OutOfOrder(why)),
        Err(e) => return Err(anyhow::Error::from(e).context("restoring the rows").into()),
    };
    let ids: FastHashSet<CustomerId> = [survivor.clone(), id.clone()].into_iter().collect();
    let old_referrers: HashSet<CustomerId> =
        before.into_iter().filter_map(|f| f.referrer_id).collect();
    let cause = format!("unmerge {id} from {survivor}");
    judge_again(
        tx.as_mut(),
        tenant,
        &settings,
        &ids,
        &old_referrers,
        &[],
        &cause,
    )?;
    tx.commit()?;
    Ok(Unmerged {
        customer: id.to_string(),
        survivor: survivor.to_string(),
    })
}

/// `siyu customer never-merge A B` and `POST /v1/customers/{a}/never-merge`: records that
/// the two are two persons. Whether it was new.
pub fn never_merge(
    store: &mut dyn Store,
    tenant: &Tenant,
    a: &CustomerId,
    b: &CustomerId,
) -> Result<bool, MergeError> {
    if a == b {
        return Err(MergeError::Same(a.clone(), b.clone()));
    }
    let mut tx = store.begin_privacy(tenant)?;
    for id in [a, b] {
        if !tx.has_customer(id).context("reading the customer")? {
            return Err(MergeError::NotFound(id.clone()));
        }
    }
    let new = tx
        .add_never_merge(a, b, Timestamp::now())
        .context("recording never-merge")?;
    tx.commit()?;
    Ok(new)
}

/// A merge into or of a customer, as `customer ids` and `GET /v1/customers/{id}/ids` list it.
#[derive(Debug, Clone, Serialize)]
pub struct MergeLine {
    pub merged: String,
    pub survivor: String,
    pub reason: &'static str,
    pub at: Timestamp,
    pub unmerged_at: Option<Timestamp>,
}

/// The merges into or of `id`, oldest first.
pub fn merges_of(
    store: &mut dyn Store,
    tenant: &Tenant,
    id: &CustomerId,
) -> anyhow::Result<Vec<MergeLine>> {
    Ok(store
        .merges(tenant, id)
        .context("reading the merges")?
        .into_iter()
        .map(|m| MergeLine {
            merged: m.merged_id.to_string(),
            survivor: m.survivor_id.to_string(),
            reason: m.reason.as_str(),
            at: m.merged_at,
            unmerged_at: m.unmerged_at,
        })
        .collect())
}

/// Customers merged into others, as the write paths see them: a row naming a merged id
/// lands on its standing survivor, its key noted under the merged id (and under each id
/// of the chain it went through) so that an unmerge takes it back. Free while the tenant
/// has no standing merge: one read when the transaction starts.
pub(crate) struct Aliases {
    on: bool,
}

/// For each merged id, the chain of customers it went into (the standing survivor last).
pub(crate) type Chains = std::collections::HashMap<CustomerId, Vec<CustomerId>>;

impl Aliases {
    pub(crate) fn load(tx: &mut dyn MergeWrites) -> anyhow::Result<Aliases> {
        Ok(Aliases {
            on: tx
                .has_merges()
                .context("reading whether any customer is merged")?,
        })
    }

    pub(crate) fn is_empty(&self) -> bool {
        !self.on
    }

    /// The chains of those of `ids` that are merged.
    pub(crate) fn chains<'a>(
        &self,
        tx: &mut dyn MergeWrites,
        ids: impl IntoIterator<Item = &'a CustomerId>,
    ) -> anyhow::Result<Chains> {
        if !self.on {
            return Ok(Chains::new());
        }
        let mut ids: Vec<CustomerId> = ids.into_iter().cloned().collect();
        ids.sort_unstable();
        ids.dedup();
        Ok(tx
            .merge_chains(&ids)
            .context("looking up merged customers")?
            .into_iter()
            .collect())
    }
}

/// Rewrites `id` to its survivor if it is merged; with `note`, the row's kind and key, noted
/// in `notes` under each merged id of the chain.
pub(crate) fn resolve(
    chains: &Chains,
    id: &mut CustomerId,
    note: Option<(&'static str, &str)>,
    notes: &mut Vec<(CustomerId, &'static str, String)>,
) {
    let Some(chain) = chains.get(id) else { return };
    let Some(survivor) = chain.last() else { return };
    if let Some((kind, key)) = note {
        notes.push((id.clone(), kind, key.to_owned()));
        for between in &chain[..chain.len() - 1] {
            notes.push((between.clone(), kind, key.to_owned()));
        }
    }
    *id = survivor.clone();
}

/// What recording identities did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Recorded {
    /// Identities new to the tenant.
    pub added: u64,
    /// The merges they caused.
    pub merged: Vec<Merged>,
    /// Merges refused because the pair is recorded as two persons.
    pub refused: u64,
}

/// Whether a value can be an identity at all: never empty, masked (`186******05`) or a
/// platform's placeholder (`##密文`, `-`).
pub fn recordable(value: &str) -> bool {
    let value = value.trim();
    !value.is_empty()
        && !siyu_core::import::is_masked(value)
        && !siyu_core::import::is_placeholder(value)
}

/// A phone identity in one form whatever the source wrote: a mainland mobile without its
/// country code (`+86 138-0000-0009` and `13800000009` are one phone).
pub fn canonical_phone(phone: &str) -> String {
    let digits = phone.trim_start_matches('+');
    match digits.strip_prefix("86") {
        Some(rest) if rest.len() == 11 && rest.starts_with('1') => rest.to_owned(),
        _ => phone.to_owned(),
    }
}

/// Whether the tenant merges customers who share a phone number (`identity.merge_phone`).
pub(crate) fn merges_phones(store: &mut dyn Store, tenant: &Tenant) -> anyhow::Result<bool> {
    Ok(!store
        .settings(tenant)
        .context("reading the tenant's settings")?
        .iter()
        .any(|(k, v)| k == "identity.merge_phone" && v == "off"))
}

/// Records identities, each of its customer (a merged customer's go to its survivor; a
/// value that cannot be an identity is left out), and merges the customers who turn out
/// to be one person: two who hold the same `unionid`, `wecom` external_userid or (unless
/// the tenant switched it off) `phone`, unless the pair is recorded as two persons. One
/// transaction.
pub fn record_identities(
    store: &mut dyn Store,
    tenant: &Tenant,
    ids: Vec<(CustomerId, siyu_store::Identity)>,
) -> anyhow::Result<Recorded> {
    let ids: Vec<(CustomerId, siyu_store::Identity)> = ids
        .into_iter()
        .filter(|(_, i)| recordable(&i.value))
        .collect();
    if ids.is_empty() {
        return Ok(Recorded::default());
    }
    let merge_phone = merges_phones(store, tenant)?;
    let settings = rule_settings(store, tenant)?;
    let mut tx = store.begin_privacy(tenant)?;
    let recorded = record_identities_in(tx.as_mut(), tenant, &settings, merge_phone, ids)?;
    tx.commit()?;
    Ok(recorded)
}

/// [`record_identities`] inside `tx`, which the caller commits.
pub(crate) fn record_identities_in(
    tx: &mut dyn MergeTx,
    tenant: &Tenant,
    settings: &RuleSettings,
    merge_phone: bool,
    ids: Vec<(CustomerId, siyu_store::Identity)>,
) -> anyhow::Result<Recorded> {
    let mut ids: Vec<(CustomerId, siyu_store::Identity)> = ids
        .into_iter()
        .filter(|(_, i)| recordable(&i.value))
        .collect();
    if ids.is_empty() {
        return Ok(Recorded::default());
    }
    for (_, identity) in &mut ids {
        if identity.namespace == "phone" {
            identity.value = canonical_phone(&identity.value);
        }
    }
    // An erased person's ids are never recorded again: nothing joins them back.
    let suppressions = Suppressions::load(tx, tenant)?;
    if !suppressions.is_empty() {
        ids.retain(|(c, i)| {
            !suppressions.contains(c) && !suppressions.contains_identity(&i.namespace, &i.value)
        });
        if ids.is_empty() {
            return Ok(Recorded::default());
        }
    }
    let aliases = Aliases::load(tx)?;
    if !aliases.is_empty() {
        let chains = aliases.chains(tx, ids.iter().map(|(c, _)| c))?;
        let mut notes = Vec::new();
        for (customer, identity) in &mut ids {
            let key = format!("{} {}", identity.namespace, identity.value);
            resolve(&chains, customer, Some(("identity", &key)), &mut notes);
        }
        tx.note_merged_rows(&notes)
            .context("noting identities of merged customers")?;
    }
    let added = tx.record_identities(&ids).context("recording identities")?;
    let mut recorded = Recorded {
        added,
        ..Recorded::default()
    };
    // Every one new: nobody else held any of them.
    if added == ids.len() as u64 {
        return Ok(recorded);
    }
    let mergeable: Vec<(&str, &str)> = ids
        .iter()
        .filter(|(_, i)| match MergeReason::of_namespace(&i.namespace) {
            Some(MergeReason::Phone) => merge_phone,
            Some(_) => true,
            None => false,
        })
        .map(|(_, i)| (i.namespace.as_str(), i.value.as_str()))
        .collect();
    let holders: std::collections::HashMap<(String, String), CustomerId> = tx
        .identity_holders(&mergeable)
        .context("reading who holds the identities")?
        .into_iter()
        .map(|(n, v, c)| ((n, v), c))
        .collect();
    let mut pairs: Vec<(CustomerId, CustomerId, MergeReason)> = Vec::new();
    for (customer, identity) in &ids {
        let Some(reason) = MergeReason::of_namespace(&identity.namespace) else {
            continue;
        };
        let held = holders.get(&(identity.namespace.clone(), identity.value.clone()));
        if let Some(holder) = held.filter(|h| *h != customer) {
            pairs.push((holder.clone(), customer.clone(), reason));
        }
    }
    if pairs.is_empty() {
        return Ok(recorded);
    }
    tx.lock_evaluation()
        .context("waiting for another evaluation")?;
    for (a, b, reason) in pairs {
        // Either may have been merged by an earlier pair of this same call.
        let chains: Chains = tx
            .merge_chains(&[a.clone(), b.clone()])
            .context("looking up merged customers")?
            .into_iter()
            .collect();
        let now = |id: CustomerId| {
            chains
                .get(&id)
                .and_then(|c| c.last().cloned())
                .unwrap_or(id)
        };
        let (a, b) = (now(a), now(b));
        if a == b {
            continue;
        }
        match merge_in(tx, tenant, settings, &a, &b, reason, false) {
            Ok(m) => recorded.merged.push(m),
            Err(MergeError::Refused(..)) => {
                recorded.refused += 1;
                tracing::info!(
                    reason = reason.as_str(),
                    "an automatic merge was refused: the two customers are recorded as two persons"
                );
            }
            // A customer gone meanwhile (erased) is merged with nobody.
            Err(MergeError::NotFound(_) | MergeError::Remains(_)) => {}
            Err(e) => return Err(anyhow::Error::from(e).context("merging customers")),
        }
    }
    Ok(recorded)
}

/// An alias (the batch API's, Segment's): `previous` merged into `customer`, who survives
/// whoever joined first (the app names the person by `customer` from now on; the survivor
/// still takes the earlier join). A never-merge pair is refused and logged without ids.
pub(crate) fn alias_in(
    tx: &mut dyn MergeTx,
    tenant: &Tenant,
    settings: &RuleSettings,
    previous: &CustomerId,
    customer: &CustomerId,
) -> anyhow::Result<()> {
    let chains: Chains = tx
        .merge_chains(&[previous.clone(), customer.clone()])
        .context("looking up merged customers")?
        .into_iter()
        .collect();
    let now = |id: &CustomerId| {
        chains
            .get(id)
            .and_then(|c| c.last().cloned())
            .unwrap_or_else(|| id.clone())
    };
    let (previous, customer) = (now(previous), now(customer));
    if previous == customer {
        return Ok(());
    }
    tx.lock_evaluation()
        .context("waiting for another evaluation")?;
    match merge_in(
        tx,
        tenant,
        settings,
        &previous,
        &customer,
        MergeReason::Alias,
        true,
    ) {
        Ok(_) | Err(MergeError::NotFound(_) | MergeError::Remains(_)) => Ok(()),
        Err(MergeError::Refused(..)) => {
            tracing::info!(
                "an alias was not merged: the two customers are recorded as two persons"
            );
            Ok(())
        }
        Err(e) => Err(anyhow::Error::from(e).context("merging an alias")),
    }
}

//! Keeping profiles current: after an import's rows are written, and in the same
//! transaction, the profiles of every customer the import touched are rebuilt from their
//! raw orders and events by the one computation in siyu-core, and the referral figures of
//! their referrers follow. A full rebuild is the same with every customer.

use std::collections::HashSet;

use anyhow::Context;

use siyu_core::CustomerFact;
use siyu_core::fasthash::FastHashSet;
use siyu_core::profile::{EventFact, Profile, ProfileBuilder, ProfileOrder, referral_figures};
use siyu_core::{CustomerId, OrderFact, TenantZone};
use siyu_store::{ProfileWrites, Scope, Store, Tenant};

/// Whose profiles to rebuild.
pub enum Affected<'a> {
    All,
    /// These customers; `old_referrers` are referrers some of them named before this
    /// transaction changed it.
    Customers {
        ids: &'a FastHashSet<CustomerId>,
        old_referrers: &'a HashSet<CustomerId>,
    },
}

/// The customers a refresh wrote: their profiles, or their referral figures.
#[derive(Debug, Default)]
pub struct Refreshed {
    /// Profiles written.
    pub profiles: usize,
    /// Whose profile or referral figures were written, sorted, no repeats: the customers
    /// whose segments and tags may have moved.
    pub touched: Vec<CustomerId>,
}

/// Rebuilds the affected profiles inside `tx`, and saves `prebuilt` ones (built from the
/// import's own rows, of customers it created) beside them.
pub fn refresh(
    tx: &mut dyn ProfileWrites,
    zone: &TenantZone,
    affected: Affected<'_>,
    prebuilt: Vec<Profile>,
) -> anyhow::Result<Refreshed> {
    let ids: Vec<CustomerId> = match &affected {
        Affected::All => Vec::new(),
        Affected::Customers { ids, .. } => {
            let mut ids: Vec<CustomerId> = ids.iter().cloned().collect();
            ids.sort();
            ids
        }
    };
    let scope = match affected {
        Affected::All => Scope::All,
        Affected::Customers { .. } => Scope::Customers(&ids),
    };
    // A customer created in this transaction had no profile: theirs is saved with no
    // referral figures, and only those that have some need writing.
    let fresh: FastHashSet<CustomerId> = prebuilt.iter().map(|p| p.customer_id.clone()).collect();
    tx.save_new_profiles(&prebuilt)
        .context("saving the profiles of new customers")?;
    let mut profiles = prebuilt;
    if matches!(scope, Scope::All) || !ids.is_empty() {
        let mut builder = ProfileBuilder::new(zone, None);
        tx.profile_facts(scope, &mut builder)
            .context("reading the facts profiles are built from")?;
        let rebuilt = builder.finish();
        tx.save_profiles(&rebuilt).context("saving profiles")?;
        profiles.extend(rebuilt);
    }

    // Referral figures: of the rebuilt customers themselves, of whoever they name as
    // referrer now, and of whoever they named before.
    let mut referrers: HashSet<CustomerId> = profiles
        .iter()
        .flat_map(|p| std::iter::once(p.customer_id.clone()).chain(p.referrer_id.clone()))
        .collect();
    if let Affected::Customers { old_referrers, .. } = affected {
        referrers.extend(old_referrers.iter().cloned());
    }
    let mut referrers: Vec<CustomerId> = referrers.into_iter().collect();
    referrers.sort();
    let referees = match scope {
        Scope::All => tx.referees(Scope::All),
        Scope::Customers(_) => tx.referees(Scope::Customers(&referrers)),
    }
    .context("reading referees")?;
    let mut figures = referral_figures(&referrers, &referees);
    figures.retain(|(id, referrals, _)| *referrals > 0 || !fresh.contains(id));
    tx.save_referrals(&figures)
        .context("saving referral figures")?;
    let mut touched: Vec<CustomerId> = profiles.iter().map(|p| p.customer_id.clone()).collect();
    touched.extend(figures.into_iter().map(|(id, _, _)| id));
    touched.sort_unstable();
    touched.dedup();
    Ok(Refreshed {
        profiles: profiles.len(),
        touched,
    })
}

/// Everything profiles are built from, read from the store in full.
pub struct RawFacts {
    pub customers: Vec<CustomerFact>,
    pub orders: Vec<ProfileOrder>,
    pub events: Vec<EventFact>,
}

/// Reads the tenant's customers, orders and events as the profile computation takes them.
pub fn raw_facts(store: &mut dyn Store, tenant: &Tenant) -> anyhow::Result<RawFacts> {
    let mut customers = Vec::new();
    store
        .scan_customers(tenant, &mut |c| customers.push(c))
        .context("reading customers")?;
    let mut orders = Vec::new();
    store
        .scan_orders(tenant, &mut |o| {
            orders.push(ProfileOrder {
                used_coupon: o.used_coupon(),
                fact: OrderFact {
                    customer_id: o.customer_id,
                    ordered_at: o.ordered_at,
                    amount: o.amount,
                    status: o.status,
                },
            })
        })
        .context("reading orders")?;
    let mut events = Vec::new();
    store
        .scan_events(tenant, &mut |e| {
            events.push(EventFact {
                customer_id: e.customer_id,
                kind: e.kind.as_str().to_owned(),
                occurred_at: e.occurred_at,
            })
        })
        .context("reading events")?;
    Ok(RawFacts {
        customers,
        orders,
        events,
    })
}

/// `siyu profiles rebuild`: every profile of the tenant from raw orders and events.
pub fn rebuild(store: &mut dyn Store, tenant: &Tenant) -> anyhow::Result<usize> {
    let mut tx = store.begin_import(tenant).context("starting the rebuild")?;
    let n = refresh(tx.as_mut(), &tenant.zone, Affected::All, Vec::new())?.profiles;
    tx.commit().context("committing the rebuild")?;
    Ok(n)
}

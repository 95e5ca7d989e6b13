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

/// Customers whose profiles are rebuilt, and whose referral figures are counted, at a
/// time. A profile being built holds about 430 bytes (more with many event types), so an
/// import that touches a million customers holds a seventh of them at once instead of
/// all (430 MB); each further group costs one more read of the orders and events past
/// `SCAN_ALL_ABOVE` customers (on SQLite, of the span of the group's ids).
const REBUILD_GROUP: usize = 150_000;

/// Rebuilds the affected profiles inside `tx`, and saves `prebuilt` ones (built from the
/// import's own rows, of customers it created) beside them.
pub fn refresh(
    tx: &mut dyn ProfileWrites,
    zone: &TenantZone,
    affected: Affected<'_>,
    prebuilt: Vec<Profile>,
) -> anyhow::Result<Refreshed> {
    refresh_in_groups(tx, zone, affected, prebuilt, REBUILD_GROUP)
}

/// [`refresh`], `group` customers at a time.
pub(crate) fn refresh_in_groups(
    tx: &mut dyn ProfileWrites,
    zone: &TenantZone,
    affected: Affected<'_>,
    prebuilt: Vec<Profile>,
    group: usize,
) -> anyhow::Result<Refreshed> {
    // A customer created in this transaction had no profile: theirs is saved with no
    // referral figures, and only those that have some need writing.
    let fresh: FastHashSet<CustomerId> = prebuilt.iter().map(|p| p.customer_id.clone()).collect();
    tx.save_new_profiles(&prebuilt)
        .context("saving the profiles of new customers")?;
    // Referral figures: of the rebuilt customers themselves, of whoever they name as
    // referrer now, and of whoever they named before.
    let mut referrers: Vec<CustomerId> = Vec::new();
    let mut touched: Vec<CustomerId> = Vec::new();
    let mut note_referrers = |profiles: &[Profile]| {
        touched.extend(profiles.iter().map(|p| p.customer_id.clone()));
        referrers.extend(
            profiles
                .iter()
                .flat_map(|p| std::iter::once(p.customer_id.clone()).chain(p.referrer_id.clone())),
        );
    };
    note_referrers(&prebuilt);
    let mut written = prebuilt.len();
    drop(prebuilt);
    match affected {
        Affected::All => {
            let mut builder = ProfileBuilder::new(zone, None);
            tx.profile_facts(Scope::All, &mut builder)
                .context("reading the facts profiles are built from")?;
            let rebuilt = builder.finish();
            tx.save_profiles(&rebuilt).context("saving profiles")?;
            written += rebuilt.len();
            note_referrers(&rebuilt);
        }
        Affected::Customers { ids, old_referrers } => {
            let mut ids: Vec<CustomerId> = ids.iter().cloned().collect();
            ids.sort_unstable();
            for group in ids.chunks(group) {
                let mut builder = ProfileBuilder::new(zone, None);
                tx.profile_facts(Scope::Customers(group), &mut builder)
                    .context("reading the facts profiles are built from")?;
                let rebuilt = builder.finish();
                tx.save_profiles(&rebuilt).context("saving profiles")?;
                written += rebuilt.len();
                note_referrers(&rebuilt);
            }
            referrers.extend(old_referrers.iter().cloned());
        }
    }
    referrers.sort_unstable();
    referrers.dedup();
    let all = matches!(affected, Affected::All);
    for group in referrers.chunks(group) {
        let referees = if all {
            tx.referees(Scope::All)
        } else {
            tx.referees(Scope::Customers(group))
        }
        .context("reading referees")?;
        let mut figures = referral_figures(group, &referees);
        figures.retain(|(id, referrals, _)| *referrals > 0 || !fresh.contains(id));
        tx.save_referrals(&figures)
            .context("saving referral figures")?;
        touched.extend(figures.into_iter().map(|(id, _, _)| id));
    }
    touched.sort_unstable();
    touched.dedup();
    Ok(Refreshed {
        profiles: written,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::import::{ImportOptions, import_file};
    use siyu_core::import::Kind;

    fn import_text(
        store: &mut dyn Store,
        tenant: &Tenant,
        dir: &std::path::Path,
        kind: Kind,
        text: &str,
    ) {
        let path = dir.join(format!("{}.csv", kind.name()));
        std::fs::write(&path, text).expect("written");
        import_file(store, tenant, kind, &path, ImportOptions::default()).expect("imported");
    }

    /// The profiles of `ids` after rebuilding them `group` customers at a time, left
    /// uncommitted: each rebuild starts from the same profiles.
    fn rebuilt_in_groups(
        store: &mut dyn Store,
        tenant: &Tenant,
        ids: &FastHashSet<CustomerId>,
        group: usize,
    ) -> Vec<Profile> {
        let mut sorted: Vec<CustomerId> = ids.iter().cloned().collect();
        sorted.sort();
        let no_one = HashSet::new();
        let mut tx = store.begin_import(tenant).expect("transaction");
        let affected = Affected::Customers {
            ids,
            old_referrers: &no_one,
        };
        refresh_in_groups(tx.as_mut(), &tenant.zone, affected, Vec::new(), group)
            .expect("refreshed");
        tx.profiles_of(&sorted).expect("profiles")
    }

    #[test]
    fn profiles_rebuilt_a_few_customers_at_a_time_are_those_rebuilt_all_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = siyu_store::open(":memory:").expect("sqlite");
        let tenant = store.tenant("shop").expect("tenant");
        // Referrers in other groups than their referees, orders of several days, events.
        let files = [
            (
                Kind::Customers,
                "customer_id,channel,referrer_id,joined_at\n\
                 a,store,,2026-01-01 10:00:00\nb,douyin,a,2026-01-02 10:00:00\n\
                 c,douyin,a,2026-01-03 10:00:00\nd,store,b,2026-01-04 10:00:00\n\
                 e,store,,2026-01-05 10:00:00\n",
            ),
            (
                Kind::Orders,
                "order_id,customer_id,ordered_at,amount,status\n\
                 o1,b,2026-02-01 10:00:00,100.00,paid\no2,b,2026-02-03 10:00:00,50.00,paid\n\
                 o3,c,2026-02-01 11:00:00,70.00,paid\no4,d,2026-02-05 10:00:00,30.00,refunded\n\
                 o5,d,2026-02-06 10:00:00,20.00,paid\no6,a,2026-02-07 10:00:00,10.00,paid\n",
            ),
            (
                Kind::Events,
                "event_id,customer_id,type,occurred_at\n\
                 e1,e,view,2026-03-01 10:00:00\ne2,a,left,2026-03-02 10:00:00\n",
            ),
        ];
        for (kind, text) in files {
            import_text(store.as_mut(), &tenant, dir.path(), kind, text);
        }
        let ids: FastHashSet<CustomerId> = ["a", "b", "c", "d", "e"]
            .into_iter()
            .map(|id| CustomerId::parse(id).expect("id"))
            .collect();
        let mut rebuilt = |group: usize| rebuilt_in_groups(store.as_mut(), &tenant, &ids, group);
        let whole = rebuilt(REBUILD_GROUP);
        assert_eq!(whole.len(), 5);
        assert_eq!(
            (whole[0].referrals, whole[0].referral_revenue.fen()),
            (2, 22_000)
        );
        for group in [1, 2, 3] {
            assert_eq!(rebuilt(group), whole, "in groups of {group}");
        }
    }

    /// The store's own threshold (private to it) above which it reads a group of
    /// customers by the span of their ids rather than one by one.
    const ONE_BY_ONE_UP_TO: usize = 10_000;

    #[test]
    fn groups_too_large_to_look_up_one_by_one_read_the_span_of_their_ids() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = siyu_store::open(":memory:").expect("sqlite");
        let tenant = store.tenant("shop").expect("tenant");
        let n = 2 * ONE_BY_ONE_UP_TO + 3_000;
        let id = |k: usize| format!("c{k:06}");
        let mut customers = String::from("customer_id,referrer_id\n");
        let mut orders = String::from("order_id,customer_id,ordered_at,amount\n");
        let mut events = String::from("event_id,customer_id,type,occurred_at\n");
        for k in 0..n {
            let referrer = if k % 7 == 3 { id(k / 2) } else { String::new() };
            customers.push_str(&format!("{},{referrer}\n", id(k)));
            for j in 0..k % 3 {
                let day = 1 + (k + j) % 28;
                orders.push_str(&format!(
                    "o{k}_{j},{},2026-02-{day:02} 10:00:00,{}.00\n",
                    id(k),
                    10 + k % 50
                ));
            }
            if k % 5 == 0 {
                events.push_str(&format!("e{k},{},view,2026-03-01 10:00:00\n", id(k)));
            }
        }
        for (kind, text) in [
            (Kind::Customers, customers),
            (Kind::Orders, orders),
            (Kind::Events, events),
        ] {
            import_text(store.as_mut(), &tenant, dir.path(), kind, &text);
        }
        let ids: FastHashSet<CustomerId> = (0..n)
            .map(|k| CustomerId::parse(&id(k)).expect("id"))
            .collect();
        let mut rebuilt = |group: usize| rebuilt_in_groups(store.as_mut(), &tenant, &ids, group);
        let whole = rebuilt(n);
        assert_eq!(whole.len(), n);
        assert!(whole.iter().any(|p| p.referrals > 0 && p.orders > 0));
        // Two groups read by the span of their ids, the last through the scope table.
        assert_eq!(rebuilt(ONE_BY_ONE_UP_TO + 1), whole);
    }
}

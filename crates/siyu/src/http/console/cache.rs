//! The console's figure cache: a page's report figures kept per tenant, page, parameters
//! and day, and used while the tenant's change counter has not moved.
//!
//! Every write of a tenant's rows, settings, channel costs or identities moves the
//! counter ([`siyu_store::TenantStore::changes`]), in its own transaction (last) or right
//! after a write of its own, whoever writes: this server's ingest and forms, the API,
//! another server on the same PostgreSQL, a `siyu import` beside the server. A figure is
//! kept with the counter read *before* it was computed, so it holds at least every write
//! up to that count; it is used again only while the counter reads the same and the
//! tenant's day is the same. Checking costs one read of one row per page.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::civil::Date;
use siyu_store::{Store, Tenant};

/// Figures kept at most, over all tenants (a GMV page per period asked is one): past it
/// the oldest half goes.
const MAX_FIGURES: usize = 64;

#[derive(Default)]
pub struct FigureCache {
    kept: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    figures: HashMap<Key, Figure>,
    /// Taken from a counter at each insert, to find the oldest.
    next: u64,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    tenant: i64,
    page: &'static str,
    params: String,
}

struct Figure {
    changes: i64,
    day: Date,
    born: u64,
    /// When it was computed.
    at: Instant,
    value: Arc<dyn Any + Send + Sync>,
}

/// A kept figure with its age, and whether the tenant is as it was when it was computed.
pub struct Recent<T> {
    pub value: Arc<T>,
    pub age: Duration,
    pub current: bool,
}

impl FigureCache {
    /// The figure of `page` with `params` for the tenant on `day`: kept, if the tenant has
    /// not changed since it was computed, else computed by `compute` now and kept.
    pub fn figure<T: Send + Sync + 'static>(
        &self,
        store: &mut dyn Store,
        tenant: &Tenant,
        page: &'static str,
        params: String,
        day: Date,
        compute: impl FnOnce(&mut dyn Store) -> anyhow::Result<T>,
    ) -> anyhow::Result<Arc<T>> {
        let changes = store.changes(tenant)?;
        let key = Key {
            tenant: tenant.id,
            page,
            params,
        };
        if let Some(found) = self.lock().figures.get(&key)
            && found.changes == changes
            && found.day == day
            && let Ok(value) = Arc::clone(&found.value).downcast::<T>()
        {
            return Ok(value);
        }
        let value = Arc::new(compute(store)?);
        let at = Instant::now();
        let mut kept = self.lock();
        if kept.figures.len() >= MAX_FIGURES {
            let mut born: Vec<u64> = kept.figures.values().map(|f| f.born).collect();
            born.sort_unstable();
            let cut = born[born.len() / 2];
            kept.figures.retain(|_, f| f.born >= cut);
        }
        kept.next += 1;
        let born = kept.next;
        let shared: Arc<dyn Any + Send + Sync> = value.clone();
        // A figure computed from an older count than the one kept is not kept over it.
        match kept.figures.get(&key) {
            Some(f) if f.day == day && f.changes > changes => {}
            _ => {
                kept.figures.insert(
                    key,
                    Figure {
                        changes,
                        day,
                        born,
                        at,
                        value: shared,
                    },
                );
            }
        }
        Ok(value)
    }

    /// The figure kept of `page` with `params` for the tenant on `day` if it was computed
    /// at most `within` ago, whether the tenant has changed since or not: with its age and
    /// whether it is current (the counter has not moved). For a figure worth showing a
    /// moment old, labelled so, while a fresh one is computed beside.
    pub fn recent<T: Send + Sync + 'static>(
        &self,
        store: &mut dyn Store,
        tenant: &Tenant,
        page: &'static str,
        params: String,
        day: Date,
        within: Duration,
    ) -> anyhow::Result<Option<Recent<T>>> {
        let changes = store.changes(tenant)?;
        let key = Key {
            tenant: tenant.id,
            page,
            params,
        };
        let kept = self.lock();
        let Some(found) = kept.figures.get(&key) else {
            return Ok(None);
        };
        let age = found.at.elapsed();
        if found.day != day || age > within {
            return Ok(None);
        }
        Ok(Arc::clone(&found.value)
            .downcast::<T>()
            .ok()
            .map(|value| Recent {
                value,
                age,
                current: found.changes == changes,
            }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        // A panic while holding the lock leaves only whole entries behind.
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day() -> Date {
        jiff::civil::date(2026, 3, 1)
    }

    #[test]
    fn a_figure_is_kept_until_the_tenant_changes_or_the_day_turns() {
        let mut store = siyu_store::open(":memory:").expect("store");
        let tenant = store.tenant("shop").expect("tenant");
        let cache = FigureCache::default();
        let mut computed = 0;
        let mut ask = |store: &mut dyn Store, day: Date| {
            cache
                .figure(store, &tenant, "page", String::new(), day, |_| {
                    computed += 1;
                    Ok(computed)
                })
                .expect("figure")
        };
        assert_eq!(*ask(store.as_mut(), day()), 1);
        assert_eq!(*ask(store.as_mut(), day()), 1);
        store
            .set_setting(&tenant, "repurchase_cycle_days", "30")
            .expect("setting");
        assert_eq!(*ask(store.as_mut(), day()), 2);
        assert_eq!(*ask(store.as_mut(), day()), 2);
        let next = day().tomorrow().expect("tomorrow");
        assert_eq!(*ask(store.as_mut(), next), 3);
    }

    #[test]
    fn pages_and_parameters_are_kept_apart() {
        let mut store = siyu_store::open(":memory:").expect("store");
        let tenant = store.tenant("shop").expect("tenant");
        let cache = FigureCache::default();
        let a = cache
            .figure(store.as_mut(), &tenant, "a", "x".into(), day(), |_| Ok(1))
            .expect("a");
        let b = cache
            .figure(store.as_mut(), &tenant, "a", "y".into(), day(), |_| Ok(2))
            .expect("b");
        let c = cache
            .figure(store.as_mut(), &tenant, "c", "x".into(), day(), |_| Ok(3))
            .expect("c");
        assert_eq!((*a, *b, *c), (1, 2, 3));
    }
}

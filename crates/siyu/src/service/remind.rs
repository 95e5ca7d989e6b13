//! Reminders: customers whose next purchase is due (their last purchase day plus their
//! repurchase cycle), as a contact list for the operator and an audience list for a
//! campaign. A customer's cycle is their own mean interval between purchase days once they
//! have 3 or more, else the tenant's `repurchase_cycle_days`.

use anyhow::Context;
use jiff::civil::Date;
use serde::Serialize;

use siyu_core::customer::hide_phone as masked_phone;
use siyu_core::lifecycle::{Stage, repurchase_cycle};
use siyu_core::privacy::is_erased;
use siyu_core::profile::Profile;
use siyu_core::segment::rules::{RuleKind, stage_tag};
use siyu_core::{CustomerId, Money, Timestamp};
use siyu_store::{MemberFilter, Store, Tenant};

use super::segments::rule_settings;

/// Whose cycle a reminder used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CycleSource {
    /// Their own mean interval between purchase days.
    Own,
    /// The tenant's `repurchase_cycle_days`.
    Tenant,
}

/// A customer's repurchase cycle in days, and whose it is: the mean interval between their
/// first and last purchase days over the intervals between (rounded, at least 1) with 3+
/// purchase days; the tenant's otherwise. `None` without a purchase.
pub fn cycle_of(profile: &Profile, tenant_cycle: u32) -> Option<(u32, CycleSource)> {
    profile.last_purchase_day?;
    let (span, gaps, own) = repurchase_cycle(
        profile.first_purchase_day,
        profile.last_purchase_day,
        profile.purchase_days,
        tenant_cycle,
    );
    if !own {
        return Some((tenant_cycle, CycleSource::Tenant));
    }
    // The mean rounded half up, at least a day: within u32 (a span of days over 2+ gaps).
    let days = ((2 * span.max(0) + gaps) / (2 * gaps)).max(1);
    Some((u32::try_from(days).unwrap_or(u32::MAX), CycleSource::Own))
}

/// A customer whose next purchase is due.
#[derive(Debug, Clone, Serialize)]
pub struct Due {
    pub customer_id: CustomerId,
    pub name: Option<String>,
    /// Masked (`138****5678`).
    pub phone: Option<String>,
    pub last_purchase_day: Date,
    pub cycle_days: u32,
    pub cycle: CycleSource,
    pub due_day: Date,
    /// From `today` (0: due today).
    pub days_until_due: i64,
    pub orders: u32,
    pub net_spend: Money,
}

/// `siyu remind due`: customers whose due day (last purchase day + cycle) falls from
/// `today` to `days` days after it, soonest first; left, opted-out and erased customers
/// are left out.
pub fn due(
    store: &mut dyn Store,
    tenant: &Tenant,
    today: Date,
    days: u32,
) -> anyhow::Result<Vec<Due>> {
    let tenant_cycle = rule_settings(store, tenant)?
        .lifecycle
        .repurchase_cycle_days;
    let until = today
        .checked_add(jiff::Span::new().days(i64::from(days)))
        .context("--days reaches past the calendar")?;
    let mut found: Vec<(Profile, u32, CycleSource, Date)> = Vec::new();
    store
        .scan_profiles(tenant, &mut |p| {
            if p.left_at.is_some() || is_erased(&p.customer_id) {
                return;
            }
            let (Some(last), Some((cycle, source))) =
                (p.last_purchase_day, cycle_of(&p, tenant_cycle))
            else {
                return;
            };
            let Ok(due_day) = last.checked_add(jiff::Span::new().days(i64::from(cycle))) else {
                return;
            };
            if due_day >= today && due_day <= until {
                found.push((p, cycle, source, due_day));
            }
        })
        .context("reading the profiles")?;
    found.sort_by(|a, b| (a.3, &a.0.customer_id).cmp(&(b.3, &b.0.customer_id)));
    let mut out = Vec::with_capacity(found.len());
    for (p, cycle_days, cycle, due_day) in found {
        let Some(view) = store
            .customer_view(tenant, &p.customer_id, 0)
            .context("reading a customer")?
        else {
            continue;
        };
        if view.opted_out_at.is_some() {
            continue;
        }
        let Some(last_purchase_day) = p.last_purchase_day else {
            continue;
        };
        out.push(Due {
            customer_id: p.customer_id,
            name: view.customer.name,
            phone: view.customer.phone.as_deref().map(masked_phone),
            last_purchase_day,
            cycle_days,
            cycle,
            due_day,
            days_until_due: (due_day - today).get_days().into(),
            orders: p.orders,
            net_spend: p.net_spend,
        });
    }
    Ok(out)
}

/// A customer who entered the at-risk stage recently.
#[derive(Debug, Clone, Serialize)]
pub struct AtRisk {
    pub customer_id: CustomerId,
    pub name: Option<String>,
    /// Masked (`138****5678`).
    pub phone: Option<String>,
    /// When they entered `at_risk` (as of the last evaluation).
    pub since: Timestamp,
    pub last_purchase_day: Option<Date>,
    pub orders: u32,
    pub net_spend: Money,
}

/// `siyu remind at-risk`: customers in the `at_risk` stage now who entered it at or after
/// `entered_from`, newest entry first; opted-out customers are left out.
pub fn at_risk(
    store: &mut dyn Store,
    tenant: &Tenant,
    entered_from: Timestamp,
) -> anyhow::Result<Vec<AtRisk>> {
    let tag = stage_tag(Stage::AtRisk);
    let mut members = {
        let mut read = store.read_pool(tenant).context("reading the stages")?;
        read.members(MemberFilter::Rule(RuleKind::Level, &tag))
            .context("reading the at-risk stage")?
    };
    members.retain(|m| m.since >= entered_from && !is_erased(&m.customer_id));
    members.sort_by(|a, b| (b.since, &a.customer_id).cmp(&(a.since, &b.customer_id)));
    let mut out = Vec::with_capacity(members.len());
    for m in members {
        let Some(view) = store
            .customer_view(tenant, &m.customer_id, 0)
            .context("reading a customer")?
        else {
            continue;
        };
        if view.opted_out_at.is_some() {
            continue;
        }
        let profile = view.profile.as_ref();
        out.push(AtRisk {
            customer_id: m.customer_id,
            name: view.customer.name,
            phone: view.customer.phone.as_deref().map(masked_phone),
            since: m.since,
            last_purchase_day: profile.and_then(|p| p.last_purchase_day),
            orders: profile.map_or(0, |p| p.orders),
            net_spend: profile.map_or(Money::ZERO, |p| p.net_spend),
        });
    }
    Ok(out)
}

/// A customer whose birthday comes within the days asked.
#[derive(Debug, Clone, Serialize)]
pub struct Birthday {
    pub customer_id: CustomerId,
    pub name: Option<String>,
    /// Masked (`138****5678`).
    pub phone: Option<String>,
    pub birthday: Date,
    /// The day it falls on (a 29 February one on the 28th in other years).
    pub day: Date,
    /// From `today` (0: today).
    pub days_until: i64,
    pub orders: u32,
    pub net_spend: Money,
}

/// The day `birthday` falls on in `year`: 29 February on the 28th outside leap years.
pub fn birthday_in(birthday: Date, year: i16) -> Option<Date> {
    Date::new(year, birthday.month(), birthday.day())
        .or_else(|_| Date::new(year, 2, 28))
        .ok()
}

/// `siyu remind birthdays`: customers whose birthday falls from `today` to `days` days after
/// it, soonest first; left, opted-out and erased customers are left out.
pub fn birthdays(
    store: &mut dyn Store,
    tenant: &Tenant,
    today: Date,
    days: u32,
) -> anyhow::Result<Vec<Birthday>> {
    let until = today
        .checked_add(jiff::Span::new().days(i64::from(days)))
        .context("--days reaches past the calendar")?;
    let mut found: Vec<(CustomerId, Date, Date)> = Vec::new();
    store
        .scan_birthdays(tenant, &mut |id, birthday| {
            if is_erased(&id) {
                return;
            }
            // This year's, or next year's when this year's has passed.
            let next = [today.year(), today.year().saturating_add(1)]
                .into_iter()
                .filter_map(|y| birthday_in(birthday, y))
                .find(|d| *d >= today);
            if let Some(day) = next.filter(|d| *d <= until) {
                found.push((id, birthday, day));
            }
        })
        .context("reading the birthdays")?;
    found.sort_by(|a, b| (a.2, &a.0).cmp(&(b.2, &b.0)));
    let mut out = Vec::with_capacity(found.len());
    for (id, birthday, day) in found {
        let Some(view) = store
            .customer_view(tenant, &id, 0)
            .context("reading a customer")?
        else {
            continue;
        };
        let profile = view.profile.as_ref();
        if view.opted_out_at.is_some() || profile.is_some_and(|p| p.left_at.is_some()) {
            continue;
        }
        out.push(Birthday {
            customer_id: id,
            name: view.customer.name,
            phone: view.customer.phone.as_deref().map(masked_phone),
            birthday,
            day,
            days_until: (day - today).get_days().into(),
            orders: profile.map_or(0, |p| p.orders),
            net_spend: profile.map_or(Money::ZERO, |p| p.net_spend),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use siyu_core::Timestamp;

    fn bought(days: &[&str]) -> Profile {
        let mut p = Profile::new(
            CustomerId::parse("c1").expect("id"),
            Timestamp::UNIX_EPOCH,
            None,
        );
        p.purchase_days = u32::try_from(days.len()).expect("few");
        p.first_purchase_day = days.first().map(|d| d.parse().expect("day"));
        p.last_purchase_day = days.last().map(|d| d.parse().expect("day"));
        p
    }

    #[test]
    fn the_own_cycle_is_the_mean_interval_from_three_purchase_days() {
        assert_eq!(cycle_of(&bought(&[]), 30), None);
        assert_eq!(
            cycle_of(&bought(&["2025-01-01", "2025-01-11"]), 30),
            Some((30, CycleSource::Tenant))
        );
        // Three purchase days over 20 days: two intervals of 10 on average.
        assert_eq!(
            cycle_of(&bought(&["2025-01-01", "2025-01-05", "2025-01-21"]), 30),
            Some((10, CycleSource::Own))
        );
        // 25 days over 2 intervals: 12.5, rounded.
        assert_eq!(
            cycle_of(&bought(&["2025-01-01", "2025-01-02", "2025-01-26"]), 30),
            Some((13, CycleSource::Own))
        );
    }

    #[test]
    fn a_leap_day_birthday_falls_on_the_28th_in_other_years() {
        let leap: Date = "2000-02-29".parse().expect("day");
        assert_eq!(
            birthday_in(leap, 2027),
            Some("2027-02-28".parse().expect("day"))
        );
        assert_eq!(
            birthday_in(leap, 2028),
            Some("2028-02-29".parse().expect("day"))
        );
        let plain: Date = "1990-12-31".parse().expect("day");
        assert_eq!(
            birthday_in(plain, 2026),
            Some("2026-12-31".parse().expect("day"))
        );
    }

    #[test]
    fn phones_are_masked_but_for_three_and_four_digits() {
        assert_eq!(masked_phone("13800001234"), "138****1234");
        assert_eq!(masked_phone("+8613800001234"), "+86*******1234");
        assert_eq!(masked_phone("123456"), "12**56");
        assert_eq!(masked_phone("1234"), "****");
        assert_eq!(masked_phone("186******05"), "186******05");
    }
}

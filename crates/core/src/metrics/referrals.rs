//! Referral figures as of a day: who shares, who invites, how invitations convert, the
//! K-factor, the generations of the referral tree, and the top referrers with the revenue
//! of the customers they brought.
//!
//! An invitation is a `share` event; a referred customer is one who joined naming a
//! referrer. Share rate = customers who shared / pool; invites per customer = shares /
//! pool; invite conversion = referred customers / shares; K = invites per customer ×
//! invite conversion (= referred customers / pool). Generation 0 is a customer nobody
//! referred; a customer referred by one of generation g is of generation g + 1.

use crate::fasthash::{FastHashMap, FastHashSet};

use jiff::civil::Date;
use serde::Serialize;

use super::ratio;
use super::shop::Shop;
use crate::ids::CustomerId;
use crate::money::Money;
use crate::order::OrderStatus;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Referrals {
    pub as_of: Date,
    /// Customers who joined by the end of the as-of day.
    pub customers: u64,
    /// Of them, those with a `share` event.
    pub sharers: u64,
    pub share_rate: Option<f64>,
    /// `share` events.
    pub shares: u64,
    pub invites_per_customer: Option<f64>,
    /// Customers who joined naming a referrer.
    pub referred: u64,
    /// Referred customers with a paid order.
    pub referred_buyers: u64,
    pub invite_conversion: Option<f64>,
    pub k_factor: Option<f64>,
    /// Customers per generation, from generation 0.
    pub generations: Vec<u64>,
    pub top_referrers: Vec<Referrer>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Referrer {
    pub customer_id: CustomerId,
    /// Customers naming them as referrer.
    pub referrals: u64,
    /// Of those, the ones who bought.
    pub buyers: u64,
    /// Paid by those customers.
    pub revenue: Money,
}

/// Referral figures as of the end of `as_of`; `top` referrers listed.
pub fn referrals(shop: &Shop, as_of: Date, top: usize) -> Referrals {
    let zone = &shop.zone;
    let end = zone.start_of(as_of.tomorrow().unwrap_or(as_of));
    let pool: Vec<_> = shop
        .customers
        .iter()
        .filter(|c| c.joined_at < end)
        .collect();
    let members: FastHashSet<&CustomerId> = pool.iter().map(|c| &c.id).collect();
    let mut shares = 0u64;
    let mut sharers: FastHashSet<&CustomerId> = FastHashSet::default();
    for e in &shop.events {
        if e.kind == "share" && e.occurred_at < end && members.contains(&e.customer_id) {
            shares += 1;
            sharers.insert(&e.customer_id);
        }
    }
    let mut spend: FastHashMap<&CustomerId, i64> = FastHashMap::default();
    for o in &shop.orders {
        if o.status == OrderStatus::Paid && o.ordered_at < end {
            *spend.entry(&o.customer_id).or_default() += o.amount.fen();
        }
    }
    let referrer_of: FastHashMap<&CustomerId, &CustomerId> = pool
        .iter()
        .filter_map(|c| Some((&c.id, c.referrer_id.as_ref()?)))
        .collect();
    let mut by_referrer: FastHashMap<&CustomerId, Referrer> = FastHashMap::default();
    let mut referred_buyers = 0u64;
    for (id, referrer) in &referrer_of {
        let bought = spend.get(id).copied().unwrap_or(0);
        referred_buyers += u64::from(bought > 0);
        let r = by_referrer.entry(referrer).or_insert_with(|| Referrer {
            customer_id: (*referrer).clone(),
            referrals: 0,
            buyers: 0,
            revenue: Money::ZERO,
        });
        r.referrals += 1;
        r.buyers += u64::from(bought > 0);
        r.revenue += Money::from_fen(bought);
    }
    // Generations, following referrers up until a customer of known generation or a
    // root (a circle of referrers is cut where it closes: its last customer is a root).
    let mut generation: FastHashMap<&CustomerId, usize> = FastHashMap::default();
    for c in &pool {
        let mut chain: Vec<&CustomerId> = Vec::new();
        let mut at = &c.id;
        let base = loop {
            if let Some(&g) = generation.get(at) {
                break g + 1;
            }
            if chain.contains(&at) {
                break 0;
            }
            chain.push(at);
            match referrer_of.get(at) {
                Some(r) if members.contains(r) => at = r,
                _ => break 0,
            }
        };
        let last = chain.len().saturating_sub(1);
        for (i, id) in chain.into_iter().enumerate() {
            generation.insert(id, base + last - i);
        }
    }
    let deepest = generation.values().copied().max().unwrap_or(0);
    let mut generations = vec![0u64; if pool.is_empty() { 0 } else { deepest + 1 }];
    for g in generation.values() {
        generations[*g] += 1;
    }
    let mut top_referrers: Vec<Referrer> = by_referrer.into_values().collect();
    top_referrers.sort_by(|a, b| {
        b.referrals
            .cmp(&a.referrals)
            .then(b.revenue.cmp(&a.revenue))
            .then(a.customer_id.cmp(&b.customer_id))
    });
    top_referrers.truncate(top);
    let customers = pool.len() as u64;
    let referred = referrer_of.len() as u64;
    let invites_per_customer = ratio(shares, customers);
    let invite_conversion = ratio(referred, shares);
    Referrals {
        as_of,
        customers,
        sharers: sharers.len() as u64,
        share_rate: ratio(sharers.len() as u64, customers),
        shares,
        invites_per_customer,
        referred,
        referred_buyers,
        invite_conversion,
        k_factor: invites_per_customer
            .zip(invite_conversion)
            .map(|(i, c)| i * c),
        generations,
        top_referrers,
    }
}

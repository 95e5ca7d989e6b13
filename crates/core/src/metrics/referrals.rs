//! Referral figures as of a day: who shares, who invites, how invitations convert, the
//! K-factor, the generations of the referral tree, and the top referrers with the revenue
//! of the customers they brought.
//!
//! An invitation is a `share` event; a referred customer is one who joined naming a
//! referrer. Share rate = customers who shared / pool; invites per customer = shares /
//! pool; invite conversion = referred customers / shares; K = invites per customer ×
//! invite conversion (= referred customers / pool). Generation 0 is a customer nobody
//! referred; a customer referred by one of generation g is of generation g + 1.

use crate::fasthash::FastHashMap;

use jiff::civil::Date;
use serde::Serialize;

use super::columns::{NONE, ShopColumns};
use super::ratio;
use super::shop::Shop;
use crate::ids::CustomerId;
use crate::money::Money;

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
    referrals_of(&ShopColumns::of(shop), as_of, top)
}

/// [`referrals`] over columns (which hold at least the `share` events).
pub fn referrals_of(columns: &ShopColumns, as_of: Date, top: usize) -> Referrals {
    let zone = &columns.zone;
    let end = zone.start_of(as_of.tomorrow().unwrap_or(as_of));
    let mut member = vec![false; columns.numbers()];
    let mut pool: Vec<u32> = Vec::new();
    for &n in &columns.pool {
        if columns.joined_at[n as usize] < end {
            member[n as usize] = true;
            pool.push(n);
        }
    }
    let mut shares = 0u64;
    let mut shared = vec![false; columns.numbers()];
    let mut sharers = 0u64;
    for (n, at) in columns.events.of_kind("share") {
        if at < end && member[n as usize] {
            shares += 1;
            sharers += u64::from(!std::mem::replace(&mut shared[n as usize], true));
        }
    }
    let mut spend = vec![0i64; columns.numbers()];
    let o = &columns.orders;
    for i in 0..o.len() {
        if o.paid[i] && o.at[i] < end {
            spend[o.customer[i] as usize] += o.fen[i];
        }
    }
    // The referrer of each member who names one.
    let referrer_of = |n: u32| -> Option<u32> {
        let r = columns.referrer[n as usize];
        (member[n as usize] && r != NONE).then_some(r)
    };
    // Per referrer number: (referrals, buyers, revenue).
    let mut by_referrer: FastHashMap<u32, (u64, u64, i64)> = FastHashMap::default();
    let (mut referred, mut referred_buyers) = (0u64, 0u64);
    for &n in &pool {
        let Some(r) = referrer_of(n) else { continue };
        referred += 1;
        let bought = spend[n as usize];
        referred_buyers += u64::from(bought > 0);
        let t = by_referrer.entry(r).or_default();
        t.0 += 1;
        t.1 += u64::from(bought > 0);
        t.2 += bought;
    }
    // Generations, following referrers up until a customer of known generation or a
    // root (a circle of referrers is cut where it closes: its last customer is a root).
    const UNKNOWN: u32 = u32::MAX;
    let mut generation = vec![UNKNOWN; columns.numbers()];
    let mut chain: Vec<u32> = Vec::new();
    for &c in &pool {
        chain.clear();
        let mut at = c;
        let base = loop {
            let g = generation[at as usize];
            if g != UNKNOWN {
                break g as usize + 1;
            }
            if chain.contains(&at) {
                break 0;
            }
            chain.push(at);
            match referrer_of(at) {
                Some(r) if member[r as usize] => at = r,
                _ => break 0,
            }
        };
        let last = chain.len().saturating_sub(1);
        for (i, &n) in chain.iter().enumerate() {
            generation[n as usize] = (base + last - i) as u32;
        }
    }
    let known = || generation.iter().filter(|&&g| g != UNKNOWN);
    let deepest = known().copied().max().unwrap_or(0) as usize;
    let mut generations = vec![0u64; if pool.is_empty() { 0 } else { deepest + 1 }];
    for &g in known() {
        generations[g as usize] += 1;
    }
    let mut top_referrers: Vec<Referrer> = by_referrer
        .into_iter()
        .filter_map(|(r, (referrals, buyers, revenue))| {
            Some(Referrer {
                customer_id: columns.ids.customer_id(r)?,
                referrals,
                buyers,
                revenue: Money::from_fen(revenue),
            })
        })
        .collect();
    top_referrers.sort_by(|a, b| {
        b.referrals
            .cmp(&a.referrals)
            .then(b.revenue.cmp(&a.revenue))
            .then(a.customer_id.cmp(&b.customer_id))
    });
    top_referrers.truncate(top);
    let customers = pool.len() as u64;
    let invites_per_customer = ratio(shares, customers);
    let invite_conversion = ratio(referred, shares);
    Referrals {
        as_of,
        customers,
        sharers,
        share_rate: ratio(sharers, customers),
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

//! The journey funnel: how many customers reached each journey stage (stranger → engaged
//! → intent → customer → repeat → advocate) and the conversion from each step to the next.

use serde::Serialize;

use super::ratio;
use crate::lifecycle::{Journey, journey};
use crate::profile::Profile;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunnelStep {
    pub stage: Journey,
    /// Customers whose furthest stage is this one or later.
    pub reached: u64,
    /// Customers whose furthest stage is this one.
    pub at: u64,
    /// `reached` of this step over `reached` of the one before (none for the first).
    pub step_conversion: Option<f64>,
    /// `reached` over the pool.
    pub share_of_pool: Option<f64>,
}

/// The funnel of `profiles` (built as of the day the funnel is for).
pub fn funnel(profiles: &[Profile]) -> Vec<FunnelStep> {
    funnel_of(profiles.iter().map(journey))
}

/// The funnel of a pool given each customer's furthest journey stage.
pub fn funnel_of(journeys: impl IntoIterator<Item = Journey>) -> Vec<FunnelStep> {
    let mut at = [0u64; 6];
    let mut pool = 0u64;
    for j in journeys {
        at[j as usize] += 1;
        pool += 1;
    }
    let mut steps = Vec::with_capacity(6);
    let mut previous: Option<u64> = None;
    for (i, stage) in Journey::ALL.into_iter().enumerate() {
        let reached: u64 = at[i..].iter().sum();
        steps.push(FunnelStep {
            stage,
            reached,
            at: at[i],
            step_conversion: previous.and_then(|p| ratio(reached, p)),
            share_of_pool: ratio(reached, pool),
        });
        previous = Some(reached);
    }
    steps
}

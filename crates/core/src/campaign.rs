//! Campaigns: offers (coupon templates), the tiers that give each customer an offer or a
//! message, the policy applied per customer with its reason, the reproducible holdout,
//! coupon codes, and the results' statistics. Pure: the store keeps the rows, the service
//! reads them in and writes the decisions back.

pub mod stats;

use jiff::civil::{Date, Time};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::money::Money;
use crate::rng::Rng;
use crate::time::{TenantZone, Timestamp};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CampaignError {
    #[error("a name is 1 to 64 letters, digits, '_' or '-': '{0}'")]
    BadName(String),
    #[error("an offer gives off an amount above zero")]
    NothingOff,
    #[error("a threshold coupon's threshold ({min}) must be above what it takes off ({off})")]
    ThresholdNotAboveOff { min: Money, off: Money },
    #[error("a percentage off is 1 to 99, not {0}")]
    BadPercent(u32),
    #[error("a percentage off needs a cap above zero (the most it takes off)")]
    NoCap,
    #[error("a free item needs a name and a face value above zero")]
    BadFreeItem,
    #[error("an offer is valid for 1 to 366 days from issue, not {0}")]
    BadValidityDays(u32),
    #[error("an offer's fixed dates run from {from} to {until}, an empty period")]
    BadValidityDates { from: Date, until: Date },
    #[error("an offer's budget must be above zero")]
    EmptyBudget,
    #[error("the holdout share is 0 to 50%, not {0}%")]
    BadHoldout(String),
    #[error("the frequency cap's window is 1 to 90 days, not {0}")]
    BadWindow(u32),
    #[error("the attribution window is 1 to 90 days, not {0}")]
    BadAttribution(u32),
    #[error("a channel is `export` or `webhook:NAME`, not '{0}'")]
    BadChannel(String),
    #[error("a campaign has at least one tier")]
    NoTiers,
    #[error("a campaign has at most {MAX_TIERS} tiers, not {0}")]
    TooManyTiers(usize),
    #[error("a campaign's list of customers holds 1 to {MAX_LIST} ids, not {0}")]
    ListSize(usize),
    #[error("the list of customers' id number {line} is not a customer id: {why}")]
    BadListId { line: usize, why: String },
    #[error("a campaign's message is 1 to 1000 characters")]
    BadMessage,
    #[error("a tier is NAME=OFFER or NAME=message (with its rule in --tier-rule), not '{0}'")]
    BadTier(String),
    #[error(
        "a step is DELAY or DELAY:TIER with DELAY like 0, 30m, 2h or 3d (up to 365 days), not '{0}'"
    )]
    BadStep(String),
    #[error("a triggered campaign has 1 to 10 steps")]
    BadSteps,
    #[error(
        "a lifecycle stage is one of prospect, first_purchase, repeat, vip, at_risk, lost, not '{0}'"
    )]
    BadStage(String),
    #[error(
        "an event type is 1 to 64 lowercase letters, digits or '_', starting with a letter, not '{0}'"
    )]
    BadEvent(String),
    #[error("step {0} names tier '{1}', which the campaign does not have")]
    StepTier(u32, String),
}

/// Names of offers, campaigns and tiers: what CLI arguments and URLs can carry as is.
pub fn check_name(name: &str) -> Result<(), CampaignError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(CampaignError::BadName(name.to_owned()))
    }
}

// ---- offers --------------------------------------------------------------------------

/// What a coupon gives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Benefit {
    /// 满X减Y: `off` off an order of at least `min`.
    Threshold { min: Money, off: Money },
    /// 无门槛减Y: `off` off any order.
    NoThreshold { off: Money },
    /// `percent` % off, at most `cap`.
    Percent { percent: u32, cap: Money },
    /// A named benefit (a free item) worth `value`.
    FreeItem { item: String, value: Money },
}

impl Benefit {
    pub fn check(&self) -> Result<(), CampaignError> {
        match self {
            Benefit::Threshold { min, off } => {
                if *off <= Money::ZERO {
                    return Err(CampaignError::NothingOff);
                }
                if min <= off {
                    return Err(CampaignError::ThresholdNotAboveOff {
                        min: *min,
                        off: *off,
                    });
                }
            }
            Benefit::NoThreshold { off } if *off <= Money::ZERO => {
                return Err(CampaignError::NothingOff);
            }
            Benefit::NoThreshold { .. } => {}
            Benefit::Percent { percent, cap } => {
                if !(1..=99).contains(percent) {
                    return Err(CampaignError::BadPercent(*percent));
                }
                if *cap <= Money::ZERO {
                    return Err(CampaignError::NoCap);
                }
            }
            Benefit::FreeItem { item, value } => {
                if item.trim().is_empty() || *value <= Money::ZERO {
                    return Err(CampaignError::BadFreeItem);
                }
            }
        }
        Ok(())
    }

    /// The most a coupon can cost the merchant: what the budget's face value counts.
    pub fn face_value(&self) -> Money {
        match self {
            Benefit::Threshold { off, .. } | Benefit::NoThreshold { off } => *off,
            Benefit::Percent { cap, .. } => *cap,
            Benefit::FreeItem { value, .. } => *value,
        }
    }

    /// As merchants write it: 满300减50, 无门槛减10, 8折 (20% off) 最多减50, 赠 tote bag.
    pub fn label(&self) -> String {
        match self {
            Benefit::Threshold { min, off } => format!("满{}减{}", yuan(*min), yuan(*off)),
            Benefit::NoThreshold { off } => format!("无门槛减{}", yuan(*off)),
            Benefit::Percent { percent, cap } => {
                format!("{percent}% off, at most {}", yuan(*cap))
            }
            Benefit::FreeItem { item, value } => format!("free {item} (worth {})", yuan(*value)),
        }
    }
}

/// Yuan without trailing zero decimals: 300, 12.5.
fn yuan(m: Money) -> String {
    let s = m.to_string();
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// How long an issued coupon is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Validity {
    /// From issue, for this many days (to the end of the last local day).
    Days { days: u32 },
    /// The local days `from` to `until`, both included.
    Dates { from: Date, until: Date },
}

impl Validity {
    pub fn check(&self) -> Result<(), CampaignError> {
        match *self {
            Validity::Days { days } if !(1..=366).contains(&days) => {
                Err(CampaignError::BadValidityDays(days))
            }
            Validity::Dates { from, until } if until < from => {
                Err(CampaignError::BadValidityDates { from, until })
            }
            _ => Ok(()),
        }
    }

    /// When a coupon issued at `at` stops being valid (exclusive).
    pub fn valid_until(&self, at: Timestamp, zone: &TenantZone) -> Timestamp {
        let last_day = match *self {
            Validity::Days { days } => zone
                .day_of(at)
                .checked_add(jiff::Span::new().days(i64::from(days) - 1))
                .unwrap_or(Date::MAX),
            Validity::Dates { until, .. } => until,
        };
        last_day
            .tomorrow()
            .map_or(Timestamp::MAX, |d| zone.start_of(d))
    }

    pub fn label(&self) -> String {
        match self {
            Validity::Days { days } => format!("{days} days from issue"),
            Validity::Dates { from, until } => format!("{from} to {until}"),
        }
    }
}

/// A coupon template with its budget.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    pub benefit: Benefit,
    pub validity: Validity,
    /// At most this many coupons issued, over every campaign.
    pub max_coupons: Option<u64>,
    /// At most this much face value issued, over every campaign.
    pub max_face: Option<Money>,
}

impl Offer {
    pub fn check(&self) -> Result<(), CampaignError> {
        self.benefit.check()?;
        self.validity.check()?;
        if self.max_coupons == Some(0) || self.max_face.is_some_and(|m| m <= Money::ZERO) {
            return Err(CampaignError::EmptyBudget);
        }
        Ok(())
    }
}

/// What an offer has left to give: issued so far against its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub face: Money,
    pub max_coupons: Option<u64>,
    pub max_face: Option<Money>,
    pub issued: u64,
    pub issued_face: Money,
}

impl Budget {
    pub fn of(offer: &Offer, issued: u64, issued_face: Money) -> Budget {
        Budget {
            face: offer.benefit.face_value(),
            max_coupons: offer.max_coupons,
            max_face: offer.max_face,
            issued,
            issued_face,
        }
    }

    /// Takes one coupon if the budget allows it.
    pub fn take(&mut self) -> bool {
        let coupons_ok = self.max_coupons.is_none_or(|m| self.issued < m);
        let face_ok = self
            .max_face
            .is_none_or(|m| self.issued_face + self.face <= m);
        if coupons_ok && face_ok {
            self.issued += 1;
            self.issued_face += self.face;
            true
        } else {
            false
        }
    }
}

/// The alphabet of coupon codes: no 0/O, 1/I/L, so that a code read aloud or typed from
/// a screenshot is unambiguous.
pub const CODE_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
/// 31^12 ≈ 7.9·10^17 codes: a million drawn among a million issued collide with a
/// chance of about one in a million (and the run is refused then, nothing written).
pub const CODE_LENGTH: usize = 12;

/// A random coupon code from `rng` (seeded by the caller from the system's randomness).
pub fn coupon_code(rng: &mut Rng) -> String {
    (0..CODE_LENGTH)
        .map(|_| CODE_ALPHABET[rng.below(CODE_ALPHABET.len() as u64) as usize] as char)
        .collect()
}

// ---- campaigns -----------------------------------------------------------------------

/// Who a campaign is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Audience {
    /// The members of a saved segment when it runs.
    Segment { name: String },
    /// These customer ids (from a file).
    List { ids: Vec<String> },
}

/// How a campaign's sends reach customers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SendChannel {
    /// The operator downloads a CSV and sends by hand in WeCom.
    Export,
    /// The dispatcher delivers to a webhook endpoint of that name.
    Webhook { endpoint: String },
}

impl SendChannel {
    pub fn parse(text: &str) -> Result<SendChannel, CampaignError> {
        match text.split_once(':') {
            None if text == "export" => Ok(SendChannel::Export),
            Some(("webhook", name)) if check_name(name).is_ok() => Ok(SendChannel::Webhook {
                endpoint: name.to_owned(),
            }),
            _ => Err(CampaignError::BadChannel(text.to_owned())),
        }
    }

    pub fn name(&self) -> String {
        match self {
            SendChannel::Export => "export".to_owned(),
            SendChannel::Webhook { endpoint } => format!("webhook:{endpoint}"),
        }
    }
}

/// A value tier: who it is for (a segment rule over the pool, e.g. `rfm = "important_value"`
/// or `stage = "at_risk"`; empty: everyone left) and what they get (an offer, or the
/// message alone). The first tier a customer matches is theirs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tier {
    pub name: String,
    pub rule: String,
    pub offer: Option<String>,
}

/// The seeds' tiers: important value customers a high-threshold coupon that protects
/// margin, lapsed important ones (RFM 重要保持 and 重要挽留: high money, low recency) a
/// small no-threshold coupon, everyone else the message alone.
pub fn default_tiers(high_threshold: Option<&str>, no_threshold: Option<&str>) -> Vec<Tier> {
    vec![
        Tier {
            name: "value".to_owned(),
            rule: r#"rfm = "important_value""#.to_owned(),
            offer: high_threshold.map(str::to_owned),
        },
        Tier {
            name: "lapsed".to_owned(),
            rule: r#"rfm in ("important_retention", "important_winback")"#.to_owned(),
            offer: no_threshold.map(str::to_owned),
        },
        Tier {
            name: "general".to_owned(),
            rule: String::new(),
            offer: None,
        },
    ]
}

/// What is applied to each customer besides their tier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// The share held out, in basis points (1000 = 10%).
    pub holdout_bp: u32,
    /// At most this many campaign touches per customer…
    pub frequency_cap: u32,
    /// …in this many days, across campaigns.
    pub frequency_days: u32,
    /// At most this many sends per customer on this campaign's channel in `.1` days,
    /// across campaigns (WeCom limits mass messages per customer); none: no cap.
    pub platform_cap: Option<(u32, u32)>,
    /// Local quiet hours (start, end): a send decided in them waits until the end.
    pub quiet_hours: Option<(Time, Time)>,
    /// A customer held back from a discount by their cycle still gets the message.
    pub message_in_cycle: bool,
    /// Orders within this many days of a decision count for the campaign.
    pub attribution_days: u32,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            holdout_bp: 1000,
            frequency_cap: 2,
            frequency_days: 7,
            platform_cap: None,
            quiet_hours: Some((Time::constant(21, 0, 0, 0), Time::constant(8, 0, 0, 0))),
            message_in_cycle: false,
            attribution_days: 14,
        }
    }
}

impl Policy {
    pub fn check(&self) -> Result<(), CampaignError> {
        if self.holdout_bp > 5000 {
            return Err(CampaignError::BadHoldout(format!(
                "{}",
                f64::from(self.holdout_bp) / 100.0
            )));
        }
        if !(1..=90).contains(&self.frequency_days) {
            return Err(CampaignError::BadWindow(self.frequency_days));
        }
        if let Some((_, days)) = self.platform_cap
            && !(1..=90).contains(&days)
        {
            return Err(CampaignError::BadWindow(days));
        }
        if !(1..=90).contains(&self.attribution_days) {
            return Err(CampaignError::BadAttribution(self.attribution_days));
        }
        Ok(())
    }
}

/// What starts a triggered campaign's steps for a customer: entering a saved segment or
/// a lifecycle stage, or an event of a type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Trigger {
    Enter {
        segment: String,
    },
    Stage {
        stage: String,
    },
    /// An event of this type arriving (through ingest; imported history starts nothing).
    Event {
        event: String,
    },
}

impl Trigger {
    /// The stage trigger, its stage checked.
    pub fn stage(name: &str) -> Result<Trigger, CampaignError> {
        crate::lifecycle::Stage::ALL
            .iter()
            .find(|s| s.name() == name)
            .map(|s| Trigger::Stage {
                stage: s.name().to_owned(),
            })
            .ok_or_else(|| CampaignError::BadStage(name.to_owned()))
    }

    /// The event trigger, its type checked.
    pub fn event(name: &str) -> Result<Trigger, CampaignError> {
        crate::event::EventType::parse(name)
            .map(|e| Trigger::Event {
                event: e.as_str().to_owned(),
            })
            .map_err(|_| CampaignError::BadEvent(name.to_owned()))
    }

    /// Whether a customer can stop qualifying before a step is due (not for an event).
    pub fn can_leave(&self) -> bool {
        !matches!(self, Trigger::Event { .. })
    }

    /// The membership whose entry starts the steps: (kind, name) as the history records it.
    pub fn membership(&self) -> (&'static str, String) {
        match self {
            Trigger::Enter { segment } => ("segment", segment.clone()),
            Trigger::Stage { stage } => ("level", format!("stage:{stage}")),
            Trigger::Event { event } => ("event", event.clone()),
        }
    }
}

/// The longest delay of a step.
pub const MAX_STEP_DELAY_SECS: i64 = 365 * 86_400;
/// The most steps a triggered campaign has.
pub const MAX_STEPS: usize = 10;

/// A step of a triggered campaign: `delay_secs` after the customer's entry, with the tier
/// named (none: the first tier whose rule they match, as for a run).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub delay_secs: i64,
    pub tier: Option<String>,
}

impl Step {
    /// `3d`, `2h`, `30m`, `45s` or `0`, then optionally `:TIER`.
    pub fn parse(text: &str) -> Result<Step, CampaignError> {
        let bad = || CampaignError::BadStep(text.to_owned());
        let (delay, tier) = match text.split_once(':') {
            Some((d, t)) => (d, Some(t)),
            None => (text, None),
        };
        let delay = delay.trim();
        let secs = if delay == "0" {
            0
        } else {
            let (n, unit) = delay.split_at(delay.len().saturating_sub(1));
            let n: i64 = n.parse().map_err(|_| bad())?;
            let per = match unit {
                "d" => 86_400,
                "h" => 3_600,
                "m" => 60,
                "s" => 1,
                _ => return Err(bad()),
            };
            n.checked_mul(per).ok_or_else(bad)?
        };
        if !(0..=MAX_STEP_DELAY_SECS).contains(&secs) {
            return Err(bad());
        }
        let tier = match tier {
            Some(t) => {
                check_name(t)?;
                Some(t.to_owned())
            }
            None => None,
        };
        Ok(Step {
            delay_secs: secs,
            tier,
        })
    }
}

/// A campaign as created: everything `campaign run` needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignSpec {
    pub audience: Audience,
    pub tiers: Vec<Tier>,
    pub message: String,
    pub channel: SendChannel,
    pub policy: Policy,
    /// Not before this instant (none: whenever it is run).
    pub start_at: Option<Timestamp>,
    /// Triggered: each step decided per customer when due after their entry, instead of
    /// a run over the audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
}

/// The most customer ids a campaign's list audience may hold (a segment has no bound).
pub const MAX_LIST: usize = 1_000_000;

/// The most tiers a campaign may have: each is a rule judged over the audience.
pub const MAX_TIERS: usize = 20;

impl CampaignSpec {
    pub fn check(&self) -> Result<(), CampaignError> {
        if self.tiers.is_empty() {
            return Err(CampaignError::NoTiers);
        }
        if self.tiers.len() > MAX_TIERS {
            return Err(CampaignError::TooManyTiers(self.tiers.len()));
        }
        // A triggered campaign's audience is whoever its trigger brings (its list empty).
        if let Audience::List { ids } = &self.audience
            && self.trigger.is_none()
        {
            if !(1..=MAX_LIST).contains(&ids.len()) {
                return Err(CampaignError::ListSize(ids.len()));
            }
            for (i, id) in ids.iter().enumerate() {
                crate::ids::CustomerId::parse(id).map_err(|e| CampaignError::BadListId {
                    line: i + 1,
                    why: e.to_string(),
                })?;
            }
        }
        for t in &self.tiers {
            check_name(&t.name)?;
            if let Some(o) = &t.offer {
                check_name(o)?;
            }
        }
        let chars = self.message.chars().count();
        if !(1..=1000).contains(&chars) {
            return Err(CampaignError::BadMessage);
        }
        if self.trigger.is_some() == self.steps.is_empty() || self.steps.len() > MAX_STEPS {
            return Err(CampaignError::BadSteps);
        }
        for (i, step) in self.steps.iter().enumerate() {
            if let Some(t) = &step.tier
                && !self.tiers.iter().any(|k| k.name == *t)
            {
                return Err(CampaignError::StepTier(i as u32 + 1, t.clone()));
            }
        }
        self.policy.check()
    }
}

/// Whether a customer is in a campaign's holdout: a keyed hash (SHA-256 of the campaign's
/// secret key, the tenant, the campaign and the customer) below the share. The same
/// customer is in or out on every run; without the key nobody can predict who is.
pub fn in_holdout(key: &str, tenant: i64, campaign: &str, customer: &str, bp: u32) -> bool {
    let mut h = Sha256::new();
    for part in [key.as_bytes(), &tenant.to_be_bytes(), campaign.as_bytes()] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.update(customer.as_bytes());
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // Uniform on [0, 10000) without modulo bias worth speaking of (2^64 / 10^4).
    let x = ((u128::from(u64::from_be_bytes(first)) * 10_000) >> 64) as u32;
    x < bp
}

// ---- deciding ------------------------------------------------------------------------

/// A customer's repurchase cycle as an exact fraction `span / gaps` days: their own mean
/// interval with 3+ purchase days, else the tenant's cycle (`own` false).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cycle {
    pub span: i64,
    pub gaps: i64,
    pub own: bool,
}

impl Cycle {
    /// Whether `days` since the last purchase are still within the cycle (d < span/gaps).
    pub fn holds(&self, days: i64) -> bool {
        days * self.gaps < self.span
    }

    /// The cycle in whole days, rounded, for people.
    pub fn days(&self) -> i64 {
        (2 * self.span + self.gaps) / (2 * self.gaps).max(1)
    }
}

/// What a decision reads of one customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CustomerFacts {
    /// Not a customer of the tenant (an id of a list), or an erased one's remains.
    pub unknown: bool,
    pub erased: bool,
    pub opted_out: bool,
    /// The keyed hash puts them in the holdout.
    pub holdout: bool,
    /// Their tier, the first that matched; none matched: none.
    pub tier: Option<usize>,
    /// Local days since their last purchase; never bought: none.
    pub days_since_purchase: Option<i64>,
    pub cycle: Cycle,
    /// Campaign sends to them in the frequency window, across campaigns.
    pub touches: u32,
    /// Sends to them on this channel in the platform cap's window.
    pub channel_touches: u32,
}

/// The outcome of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// Sent: a message, with a coupon when the tier's offer was issued.
    Send,
    /// In the holdout: recorded, never sent, compared against.
    Holdout,
    /// Held back by the policy this time.
    Held,
    /// Never to be sent to: erased, unknown or opted out.
    Never,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Send => "send",
            Outcome::Holdout => "holdout",
            Outcome::Held => "held",
            Outcome::Never => "never",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        Some(match s {
            "send" => Outcome::Send,
            "holdout" => Outcome::Holdout,
            "held" => Outcome::Held,
            "never" => Outcome::Never,
            _ => return None,
        })
    }
}

/// Why: a stable code and the figures behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Unknown,
    Erased,
    OptedOut,
    Holdout,
    NoTier,
    /// Bought `days` ago, within their cycle of `cycle` days: no discount.
    InCycle {
        days: i64,
        cycle: i64,
        own: bool,
    },
    FrequencyCap {
        touches: u32,
        cap: u32,
        days: u32,
    },
    PlatformCap {
        touches: u32,
        cap: u32,
        days: u32,
    },
    /// The tier's offer has no budget left.
    Budget,
    /// Sent with the tier's offer.
    Offer,
    /// Sent the message alone (the tier's way).
    Message,
    /// Sent the message alone: within their cycle, the discount held back.
    MessageInCycle {
        days: i64,
        cycle: i64,
        own: bool,
    },
    /// A triggered step come due for a customer no longer in its segment or stage.
    Left,
}

impl Reason {
    pub fn code(self) -> &'static str {
        match self {
            Reason::Unknown => "unknown",
            Reason::Erased => "erased",
            Reason::OptedOut => "opted_out",
            Reason::Holdout => "holdout",
            Reason::NoTier => "no_tier",
            Reason::InCycle { .. } => "in_cycle",
            Reason::FrequencyCap { .. } => "frequency_cap",
            Reason::PlatformCap { .. } => "platform_cap",
            Reason::Budget => "budget",
            Reason::Offer => "offer",
            Reason::Message => "message",
            Reason::MessageInCycle { .. } => "message_in_cycle",
            Reason::Left => "left",
        }
    }

    /// For people: "bought 3 days ago, cycle 30 days".
    pub fn detail(self) -> String {
        let cycle_text = |days: i64, cycle: i64, own: bool| {
            let whose = if own { "their own" } else { "the shop's" };
            let ago = match days {
                0 => "today".to_owned(),
                1 => "1 day ago".to_owned(),
                d => format!("{d} days ago"),
            };
            format!("bought {ago}, cycle {cycle} days ({whose})")
        };
        match self {
            Reason::Unknown => "not a customer of the shop".to_owned(),
            Reason::Erased => "erased".to_owned(),
            Reason::OptedOut => "opted out of marketing".to_owned(),
            Reason::Holdout => "in the holdout (never sent, compared against)".to_owned(),
            Reason::NoTier => "in no tier".to_owned(),
            Reason::InCycle { days, cycle, own } => cycle_text(days, cycle, own),
            Reason::FrequencyCap { touches, cap, days } => {
                format!("{touches} touches in {days} days, cap {cap}")
            }
            Reason::PlatformCap { touches, cap, days } => {
                format!("{touches} sends on the channel in {days} days, platform cap {cap}")
            }
            Reason::Budget => "the offer's budget is spent".to_owned(),
            Reason::Offer => "sent with the tier's offer".to_owned(),
            Reason::Message => "sent the message".to_owned(),
            Reason::MessageInCycle { days, cycle, own } => {
                format!("message only: {}", cycle_text(days, cycle, own))
            }
            Reason::Left => "no longer in the trigger's segment or stage when due".to_owned(),
        }
    }
}

/// A decision: its outcome and reason, the tier, and whether a coupon of the tier's offer
/// is issued (taken from its budget).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub outcome: Outcome,
    pub reason: Reason,
    pub tier: Option<usize>,
    pub coupon: bool,
}

/// Decides one customer. `offer` is the budget of their tier's offer (none: the message
/// alone); a coupon issued is taken from it. The order of the checks: never (unknown,
/// erased, opted out), the holdout (before anything that depends on the run, so that
/// treated and holdout are alike), no tier, the cycle (discounts only), the caps, the
/// budget.
pub fn decide(f: &CustomerFacts, policy: &Policy, offer: Option<&mut Budget>) -> Decision {
    let done = |outcome, reason, coupon| Decision {
        outcome,
        reason,
        tier: f.tier,
        coupon,
    };
    if f.unknown {
        return done(Outcome::Never, Reason::Unknown, false);
    }
    if f.erased {
        return done(Outcome::Never, Reason::Erased, false);
    }
    if f.opted_out {
        return done(Outcome::Never, Reason::OptedOut, false);
    }
    if f.holdout {
        return done(Outcome::Holdout, Reason::Holdout, false);
    }
    if f.tier.is_none() {
        return done(Outcome::Held, Reason::NoTier, false);
    }
    let mut discount = offer.is_some();
    let mut in_cycle = None;
    if discount
        && let Some(days) = f.days_since_purchase
        && f.cycle.holds(days)
    {
        let (cycle, own) = (f.cycle.days(), f.cycle.own);
        if !policy.message_in_cycle {
            return done(Outcome::Held, Reason::InCycle { days, cycle, own }, false);
        }
        discount = false;
        in_cycle = Some(Reason::MessageInCycle { days, cycle, own });
    }
    if f.touches >= policy.frequency_cap {
        let reason = Reason::FrequencyCap {
            touches: f.touches,
            cap: policy.frequency_cap,
            days: policy.frequency_days,
        };
        return done(Outcome::Held, reason, false);
    }
    if let Some((cap, days)) = policy.platform_cap
        && f.channel_touches >= cap
    {
        let reason = Reason::PlatformCap {
            touches: f.channel_touches,
            cap,
            days,
        };
        return done(Outcome::Held, reason, false);
    }
    if discount && let Some(budget) = offer {
        if !budget.take() {
            return done(Outcome::Held, Reason::Budget, false);
        }
        return done(Outcome::Send, Reason::Offer, true);
    }
    done(Outcome::Send, in_cycle.unwrap_or(Reason::Message), false)
}

/// When a send decided at `now` may go out: now, or the end of the quiet hours in the
/// tenant's zone when `now` falls in them (`start > end` spans midnight).
pub fn not_before(now: Timestamp, zone: &TenantZone, quiet: Option<(Time, Time)>) -> Timestamp {
    let Some((start, end)) = quiet else {
        return now;
    };
    if start == end {
        return now;
    }
    let local = zone.datetime_of(now);
    let t = local.time();
    let day = local.date();
    let quiet_now = if start < end {
        t >= start && t < end
    } else {
        t >= start || t < end
    };
    if !quiet_now {
        return now;
    }
    // The end is today when it is still ahead, else tomorrow.
    let end_day = if t < end {
        day
    } else {
        day.tomorrow().unwrap_or(day)
    };
    zone.instant_of(end_day.to_datetime(end))
}

#[cfg(test)]
mod tests;

//! `siyu coupon …` and `siyu campaign …`.

use std::path::PathBuf;

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use serde::Serialize;

use siyu_core::campaign::{
    Audience, Benefit, CampaignSpec, Offer, Policy, SendChannel, Step, Tier, Trigger, Validity,
    default_tiers,
};
use siyu_core::{Money, TenantZone};
use siyu_store::{Store, Tenant};

use super::output::{Format, Table, local_time, print_lines, thousands, yuan};
use crate::service::campaigns::{self, Comparison, Results};
use crate::service::segments::actor;

#[derive(Debug, Subcommand)]
pub enum CouponCommand {
    /// Create an offer (a coupon template): 满X减Y (--off Y --min X), 无门槛减Y (--off Y),
    /// a percentage off with a cap (--percent P --cap C), or a free item (--free-item
    /// NAME --value V); valid --days N from issue, or --from/--until fixed days.
    Create(Box<OfferArgs>),
    /// Every offer, with what it has issued against its budget.
    List {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// An offer and the coupons it issued.
    Show {
        name: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

#[derive(Debug, Args)]
pub struct OfferArgs {
    pub name: String,
    /// Yuan off (with --min: a threshold coupon, 满X减Y; alone: 无门槛减Y).
    #[arg(long)]
    pub off: Option<String>,
    /// The threshold in yuan: the order must come to at least this.
    #[arg(long, requires = "off")]
    pub min: Option<String>,
    /// Percent off (1-99), with --cap.
    #[arg(long, conflicts_with_all = ["off", "free_item"], requires = "cap")]
    pub percent: Option<u32>,
    /// The most a percentage coupon takes off, in yuan.
    #[arg(long)]
    pub cap: Option<String>,
    /// A named benefit (a free item), with --value.
    #[arg(long, conflicts_with = "off", requires = "value")]
    pub free_item: Option<String>,
    /// The free item's face value in yuan.
    #[arg(long)]
    pub value: Option<String>,
    /// Valid this many days from issue (default 14).
    #[arg(long, conflicts_with_all = ["from", "until"])]
    pub days: Option<u32>,
    /// Valid from this local day (YYYY-MM-DD)…
    #[arg(long, requires = "until")]
    pub from: Option<String>,
    /// …to this one, included.
    #[arg(long, requires = "from")]
    pub until: Option<String>,
    /// At most this many coupons, over every campaign.
    #[arg(long)]
    pub max_coupons: Option<u64>,
    /// At most this face value in yuan, over every campaign.
    #[arg(long)]
    pub max_face: Option<String>,
    #[arg(long)]
    pub by: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum CampaignCommand {
    /// Create a campaign: its audience, tiers, message, channel and policy.
    Create(Box<CampaignArgs>),
    /// Every campaign, its status and runs.
    List {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// A campaign's definition and runs.
    Show { name: String },
    /// Decide every customer of the audience now: sends, coupons, holdout, held back
    /// and why, in one transaction.
    Run { name: String },
    /// Pause a campaign: it does not run until resumed.
    Pause { name: String },
    /// Let a paused campaign run again.
    Resume { name: String },
    /// A triggered campaign's queued steps, the first due first.
    Pending {
        name: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Decide the triggered campaigns' steps due now (for cron, without `siyu serve`,
    /// which does this every half second).
    Tick,
    /// Each decision and its reason.
    Decisions {
        name: String,
        /// One customer's decisions.
        #[arg(long)]
        customer: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// The sends not yet exported, as CSV for manual sending in WeCom (customer, name,
    /// phone, coupon code, message), marked sent.
    Export {
        name: String,
        /// Full phone numbers instead of masked ones (recorded in the audit log).
        #[arg(long)]
        full_phones: bool,
        /// Write to FILE instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long)]
        by: Option<String>,
    },
    /// Treated against holdout, overall and per tier: redemption, buyers, revenue per
    /// customer, incremental GMV, coupon cost, ROI, lift with 95% intervals.
    Results {
        name: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

#[derive(Debug, Args)]
pub struct CampaignArgs {
    pub name: String,
    /// The audience: a saved segment's members when it runs.
    #[arg(
        long,
        required_unless_present_any = ["customers", "on_enter", "on_stage", "on_event"],
        conflicts_with_all = ["customers", "on_enter", "on_stage", "on_event"]
    )]
    pub segment: Option<String>,
    /// Triggered: each --step decided for a customer that long after they enter this
    /// segment (instead of runs over an audience).
    #[arg(long, conflicts_with_all = ["customers", "on_stage"], requires = "steps")]
    pub on_enter: Option<String>,
    /// Triggered: each --step decided for a customer that long after they enter this
    /// lifecycle stage (prospect, first_purchase, repeat, vip, at_risk, lost).
    #[arg(long, conflicts_with = "customers", requires = "steps")]
    pub on_stage: Option<String>,
    /// Triggered: each --step decided for a customer that long after an event of this
    /// type arrives for them (through ingest; imported events start nothing).
    #[arg(long, conflicts_with = "customers", requires = "steps")]
    pub on_event: Option<String>,
    /// A step of a triggered campaign: DELAY (0, 30m, 2h, 3d) after the entry, then
    /// optionally :TIER (the tier it sends; none: by the tiers' rules). Repeat for a
    /// sequence, e.g. --step 0:welcome --step 3d:care.
    #[arg(long = "step")]
    pub steps: Vec<String>,
    /// The audience: customer ids, one a line (a header `customer_id` is skipped).
    #[arg(long)]
    pub customers: Option<PathBuf>,
    /// The message sent (with the coupon code, if any).
    #[arg(long)]
    pub message: String,
    /// `export` (a CSV for manual sending) or `webhook:NAME`.
    #[arg(long, default_value = "export")]
    pub channel: String,
    /// The default tiers' offer for important value customers (a high threshold).
    #[arg(long)]
    pub value_offer: Option<String>,
    /// The default tiers' offer for lapsed important customers (small, no threshold).
    #[arg(long)]
    pub lapsed_offer: Option<String>,
    /// A tier instead of the defaults, in order, first match wins: NAME:OFFER:RULE, OFFER
    /// `message` for the message alone, RULE a segment rule (empty: everyone left), e.g.
    /// 'vip:big:stage = "vip"'.
    #[arg(long = "tier")]
    pub tiers: Vec<String>,
    /// The share held out, in percent (0-50).
    #[arg(long, default_value_t = 10.0)]
    pub holdout: f64,
    /// At most N touches in D days per customer, across campaigns: N/D.
    #[arg(long, default_value = "2/7")]
    pub frequency_cap: String,
    /// At most N sends in D days per customer on this channel, across campaigns: N/D.
    #[arg(long)]
    pub platform_cap: Option<String>,
    /// Local quiet hours, HH:MM-HH:MM: sends wait until their end. `none`: no quiet hours.
    #[arg(long, default_value = "21:00-08:00")]
    pub quiet_hours: String,
    /// Customers held back from a discount by their cycle still get the message.
    #[arg(long)]
    pub message_in_cycle: bool,
    /// Orders within this many days of a decision count for the campaign.
    #[arg(long, default_value_t = 14)]
    pub attribution_days: u32,
    /// Not before this time (local, or RFC 3339).
    #[arg(long)]
    pub at: Option<String>,
    #[arg(long)]
    pub by: Option<String>,
}

fn money(text: &str, what: &str) -> anyhow::Result<Money> {
    Money::parse_yuan(text).map_err(|e| anyhow!("{what}: {e}"))
}

fn offer_of(a: &OfferArgs) -> anyhow::Result<Offer> {
    let benefit = match (&a.off, &a.percent, &a.free_item) {
        (Some(off), None, None) => {
            let off = money(off, "--off")?;
            match &a.min {
                Some(min) => Benefit::Threshold {
                    min: money(min, "--min")?,
                    off,
                },
                None => Benefit::NoThreshold { off },
            }
        }
        (None, Some(percent), None) => Benefit::Percent {
            percent: *percent,
            cap: money(a.cap.as_deref().unwrap_or(""), "--cap")?,
        },
        (None, None, Some(item)) => Benefit::FreeItem {
            item: item.clone(),
            value: money(a.value.as_deref().unwrap_or(""), "--value")?,
        },
        _ => bail!("an offer is one of --off (with or without --min), --percent, --free-item"),
    };
    let validity = match (&a.from, &a.until) {
        (Some(from), Some(until)) => Validity::Dates {
            from: TenantZone::parse_day(from).map_err(|e| anyhow!("--from: {e}"))?,
            until: TenantZone::parse_day(until).map_err(|e| anyhow!("--until: {e}"))?,
        },
        _ => Validity::Days {
            days: a.days.unwrap_or(14),
        },
    };
    Ok(Offer {
        benefit,
        validity,
        max_coupons: a.max_coupons,
        max_face: a
            .max_face
            .as_deref()
            .map(|m| money(m, "--max-face"))
            .transpose()?,
    })
}

/// `N/D`.
fn per_days(text: &str, what: &str) -> anyhow::Result<(u32, u32)> {
    text.split_once('/')
        .and_then(|(n, d)| Some((n.trim().parse().ok()?, d.trim().parse().ok()?)))
        .ok_or_else(|| anyhow!("{what}: '{text}' is not N/DAYS, e.g. 2/7"))
}

fn quiet_hours(text: &str) -> anyhow::Result<Option<(jiff::civil::Time, jiff::civil::Time)>> {
    if text == "none" {
        return Ok(None);
    }
    let bad = || anyhow!("--quiet-hours: '{text}' is not HH:MM-HH:MM (or none)");
    let (a, b) = text.split_once('-').ok_or_else(bad)?;
    let time = |s: &str| jiff::civil::Time::strptime("%H:%M", s.trim()).map_err(|_| bad());
    Ok(Some((time(a)?, time(b)?)))
}

fn delay_text(secs: i64) -> String {
    match secs {
        0 => "0".to_owned(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

fn spec_of(a: &CampaignArgs, zone: &TenantZone) -> anyhow::Result<CampaignSpec> {
    let trigger = match (&a.on_enter, &a.on_stage, &a.on_event) {
        (Some(segment), None, None) => Some(Trigger::Enter {
            segment: segment.clone(),
        }),
        (None, Some(stage), None) => Some(Trigger::stage(stage)?),
        (None, None, Some(event)) => Some(Trigger::event(event)?),
        (None, None, None) => None,
        _ => bail!("a campaign is triggered by one of --on-enter, --on-stage or --on-event"),
    };
    if trigger.is_none() && !a.steps.is_empty() {
        bail!("--step needs --on-enter SEGMENT, --on-stage STAGE or --on-event TYPE");
    }
    let steps = a
        .steps
        .iter()
        .map(|s| Step::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let audience = match (&a.segment, &a.customers) {
        _ if trigger.is_some() => match &trigger {
            Some(Trigger::Enter { segment }) => Audience::Segment {
                name: segment.clone(),
            },
            _ => Audience::List { ids: Vec::new() },
        },
        (Some(s), None) => Audience::Segment { name: s.clone() },
        (None, Some(file)) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            let ids: Vec<String> = text
                .lines()
                .map(|l| l.trim().trim_end_matches(',').to_owned())
                .filter(|l| !l.is_empty() && l != "customer_id")
                .collect();
            if ids.is_empty() {
                bail!("{} holds no customer ids", file.display());
            }
            Audience::List { ids }
        }
        _ => bail!("the audience is --segment NAME or --customers FILE"),
    };
    let tiers = if a.tiers.is_empty() {
        default_tiers(a.value_offer.as_deref(), a.lapsed_offer.as_deref())
    } else {
        if a.value_offer.is_some() || a.lapsed_offer.is_some() {
            bail!(
                "--value-offer and --lapsed-offer set the default tiers; with --tier, name each tier's offer there"
            );
        }
        a.tiers
            .iter()
            .map(|t| {
                let mut parts = t.splitn(3, ':');
                let (Some(name), Some(offer)) = (parts.next(), parts.next()) else {
                    bail!("--tier '{t}' is not NAME:OFFER:RULE");
                };
                Ok(Tier {
                    name: name.trim().to_owned(),
                    offer: (offer.trim() != "message").then(|| offer.trim().to_owned()),
                    rule: parts.next().unwrap_or("").trim().to_owned(),
                })
            })
            .collect::<anyhow::Result<_>>()?
    };
    if !(0.0..=50.0).contains(&a.holdout) {
        bail!("--holdout: {}% is not 0 to 50", a.holdout);
    }
    let (frequency_cap, frequency_days) = per_days(&a.frequency_cap, "--frequency-cap")?;
    let policy = Policy {
        holdout_bp: (a.holdout * 100.0).round() as u32,
        frequency_cap,
        frequency_days,
        platform_cap: a
            .platform_cap
            .as_deref()
            .map(|p| per_days(p, "--platform-cap"))
            .transpose()?,
        quiet_hours: quiet_hours(&a.quiet_hours)?,
        message_in_cycle: a.message_in_cycle,
        attribution_days: a.attribution_days,
    };
    Ok(CampaignSpec {
        audience,
        tiers,
        message: a.message.clone(),
        channel: SendChannel::parse(&a.channel)?,
        policy,
        start_at: a
            .at
            .as_deref()
            .map(|t| zone.parse_timestamp(t).map_err(|e| anyhow!("--at: {e}")))
            .transpose()?,
        trigger,
        steps,
    })
}

#[derive(Serialize)]
struct OfferLine {
    name: String,
    benefit: String,
    validity: String,
    face_value: Money,
    max_coupons: Option<u64>,
    max_face: Option<Money>,
    issued: u64,
    issued_face: Money,
}

pub fn run_coupon(
    store: &mut dyn Store,
    tenant: &Tenant,
    command: &CouponCommand,
) -> anyhow::Result<()> {
    match command {
        CouponCommand::Create(a) => {
            let offer = offer_of(a)?;
            campaigns::create_offer(store, tenant, &a.name, &offer, &actor(a.by.as_deref()))?;
            println!(
                "offer '{}' created: {}, valid {}",
                a.name,
                offer.benefit.label(),
                offer.validity.label()
            );
            Ok(())
        }
        CouponCommand::List { format } => {
            let lines: Vec<OfferLine> = campaigns::offers(store, tenant)?
                .into_iter()
                .map(|(s, o)| OfferLine {
                    benefit: o.benefit.label(),
                    validity: o.validity.label(),
                    face_value: o.benefit.face_value(),
                    max_coupons: o.max_coupons,
                    max_face: o.max_face,
                    issued: s.issued,
                    issued_face: s.issued_face,
                    name: s.name,
                })
                .collect();
            print_lines(
                *format,
                &lines,
                &[
                    "offer",
                    "benefit",
                    "valid",
                    "budget",
                    "issued",
                    "face value issued",
                ],
                |l| {
                    let budget = match (l.max_coupons, l.max_face) {
                        (None, None) => "none".to_owned(),
                        (n, f) => [n.map(|n| format!("{} coupons", thousands(n))), f.map(yuan)]
                            .into_iter()
                            .flatten()
                            .collect::<Vec<_>>()
                            .join(", "),
                    };
                    vec![
                        l.name.clone(),
                        l.benefit.clone(),
                        l.validity.clone(),
                        budget,
                        thousands(l.issued),
                        yuan(l.issued_face),
                    ]
                },
            )
        }
        CouponCommand::Show { name, format } => {
            let (stored, offer) = campaigns::offer(store, tenant, name)?;
            let coupons = store.coupons(tenant, Some(name))?;
            if *format == Format::Table {
                println!("offer {name}: {}", offer.benefit.label());
                println!("valid: {}", offer.validity.label());
                println!(
                    "issued: {} coupons, {} of face value (budget: {}, {})",
                    thousands(stored.issued),
                    yuan(stored.issued_face),
                    offer.max_coupons.map_or("no count".to_owned(), |n| format!(
                        "{} coupons",
                        thousands(n)
                    )),
                    offer.max_face.map_or("no face value".to_owned(), yuan)
                );
            }
            #[derive(Serialize)]
            struct CouponLine {
                code: String,
                customer_id: String,
                face: Money,
                issued_at: String,
                valid_until: String,
            }
            let lines: Vec<CouponLine> = coupons
                .into_iter()
                .map(|c| CouponLine {
                    code: c.code,
                    customer_id: c.customer_id,
                    face: c.face,
                    issued_at: c.issued_at.to_string(),
                    valid_until: c.valid_until.to_string(),
                })
                .collect();
            let zone = tenant.zone.clone();
            print_lines(
                *format,
                &lines,
                &["code", "customer", "face", "issued", "valid until"],
                |c| {
                    vec![
                        c.code.clone(),
                        c.customer_id.clone(),
                        yuan(c.face),
                        super::output::local_time_of(&zone, &c.issued_at),
                        super::output::local_time_of(&zone, &c.valid_until),
                    ]
                },
            )
        }
    }
}

pub fn run_campaign(
    store: &mut dyn Store,
    tenant: &Tenant,
    command: &CampaignCommand,
) -> anyhow::Result<()> {
    match command {
        CampaignCommand::Create(a) => {
            let spec = spec_of(a, &tenant.zone)?;
            campaigns::create_campaign(store, tenant, &a.name, &spec, &actor(a.by.as_deref()))?;
            println!("campaign '{}' created", a.name);
            print_tiers(&spec);
            Ok(())
        }
        CampaignCommand::List { format } => {
            #[derive(Serialize)]
            struct Line {
                name: String,
                status: String,
                audience: String,
                channel: String,
                runs: usize,
                last_run: Option<String>,
            }
            let lines: Vec<Line> = campaigns::campaigns(store, tenant)?
                .into_iter()
                .map(|c| Line {
                    audience: audience_text(&c.spec),
                    channel: c.spec.channel.name(),
                    runs: c.stored.runs.len(),
                    last_run: c.stored.runs.last().map(ToString::to_string),
                    status: c.stored.status,
                    name: c.stored.name,
                })
                .collect();
            let zone = tenant.zone.clone();
            print_lines(
                *format,
                &lines,
                &[
                    "campaign", "status", "audience", "channel", "runs", "last run",
                ],
                |l| {
                    vec![
                        l.name.clone(),
                        l.status.clone(),
                        l.audience.clone(),
                        l.channel.clone(),
                        l.runs.to_string(),
                        l.last_run
                            .as_deref()
                            .map_or(String::new(), |t| super::output::local_time_of(&zone, t)),
                    ]
                },
            )
        }
        CampaignCommand::Show { name } => {
            let c = campaigns::campaign(store, tenant, name)?;
            let p = &c.spec.policy;
            println!("campaign {name} ({})", c.stored.status);
            println!("audience: {}", audience_text(&c.spec));
            println!("channel: {}", c.spec.channel.name());
            println!("message: {}", c.spec.message);
            print_tiers(&c.spec);
            println!(
                "policy: holdout {:.1}%, at most {} touches in {} days{}{}{}, attribution {} days",
                f64::from(p.holdout_bp) / 100.0,
                p.frequency_cap,
                p.frequency_days,
                p.platform_cap.map_or(String::new(), |(n, d)| format!(
                    ", platform cap {n} in {d} days"
                )),
                p.quiet_hours.map_or(String::new(), |(a, b)| format!(
                    ", quiet {}-{}",
                    a.strftime("%H:%M"),
                    b.strftime("%H:%M")
                )),
                if p.message_in_cycle {
                    ", the message to those within their cycle"
                } else {
                    ""
                },
                p.attribution_days
            );
            if let Some(at) = c.spec.start_at {
                println!("not before: {}", local_time(&tenant.zone, at));
            }
            if let Some(t) = &c.spec.trigger {
                match t {
                    Trigger::Enter { segment } => {
                        println!("triggered: on entering segment {segment}")
                    }
                    Trigger::Stage { stage } => println!("triggered: on entering stage {stage}"),
                    Trigger::Event { event } => println!("triggered: on an event {event}"),
                }
                for (i, s) in c.spec.steps.iter().enumerate() {
                    println!(
                        "step {}: {} after, tier {}",
                        i + 1,
                        delay_text(s.delay_secs),
                        s.tier.as_deref().unwrap_or("by the tiers' rules")
                    );
                }
                let queued = campaigns::pending(store, tenant, name, campaigns::TICK_LIMIT)?;
                println!("queued steps: {}", thousands(queued.len() as u64));
            }
            for (i, at) in c.stored.runs.iter().enumerate() {
                println!("run {}: {}", i + 1, local_time(&tenant.zone, *at));
            }
            Ok(())
        }
        CampaignCommand::Run { name } => {
            let s = campaigns::run(store, tenant, name)?;
            println!(
                "run {} of '{name}': {} customers decided in {:.2} s; {} coupons issued ({} of face value)",
                s.run,
                thousands(s.audience),
                s.seconds,
                thousands(s.coupons),
                yuan(s.face_value)
            );
            let mut t = Table::new(["outcome", "reason", "customers"]);
            for (o, r, n) in &s.counts {
                t.row([o.clone(), r.clone(), thousands(*n)]);
            }
            print!("{}", t.render());
            if let Some(at) = s.not_before {
                println!("sends go out from {}", local_time(&tenant.zone, at));
            }
            if s.deliveries > 0 {
                println!("{} webhook deliveries queued", thousands(s.deliveries));
            }
            Ok(())
        }
        CampaignCommand::Pending { name, format } => {
            let rows = campaigns::pending(store, tenant, name, campaigns::TICK_LIMIT)?;
            let zone = tenant.zone.clone();
            #[derive(Serialize)]
            struct Line {
                step: u32,
                customer_id: String,
                entered_at: String,
                due_at: String,
            }
            let lines: Vec<Line> = rows
                .into_iter()
                .map(|d| Line {
                    step: d.step,
                    customer_id: d.customer_id,
                    entered_at: d.entered_at.to_string(),
                    due_at: d.due_at.to_string(),
                })
                .collect();
            print_lines(
                *format,
                &lines,
                &["step", "customer", "entered", "due"],
                |l| {
                    vec![
                        l.step.to_string(),
                        l.customer_id.clone(),
                        super::output::local_time_of(&zone, &l.entered_at),
                        super::output::local_time_of(&zone, &l.due_at),
                    ]
                },
            )
        }
        CampaignCommand::Tick => {
            let s = campaigns::tick(store, tenant, siyu_core::Timestamp::now())?;
            println!("{} queued steps decided", thousands(s.steps));
            for r in &s.runs {
                let sent: u64 = r
                    .run
                    .counts
                    .iter()
                    .filter(|(o, _, _)| o == "send")
                    .map(|(_, _, n)| n)
                    .sum();
                println!(
                    "'{}' step {} (run {}): {} customers, {} sends, {} webhook deliveries queued",
                    r.campaign,
                    r.step,
                    r.run.run,
                    thousands(r.run.audience),
                    thousands(sent),
                    thousands(r.run.deliveries)
                );
            }
            Ok(())
        }
        CampaignCommand::Pause { name } => {
            campaigns::set_status(store, tenant, name, "paused")?;
            println!("campaign '{name}' paused");
            Ok(())
        }
        CampaignCommand::Resume { name } => {
            campaigns::set_status(store, tenant, name, "active")?;
            println!("campaign '{name}' active");
            Ok(())
        }
        CampaignCommand::Decisions {
            name,
            customer,
            format,
        } => {
            let rows = campaigns::decisions(store, tenant, name, customer.as_deref())?;
            if rows.is_empty() && customer.is_some() {
                bail!(
                    "campaign '{name}' decided nothing about customer {}",
                    customer.as_deref().unwrap_or("")
                );
            }
            #[derive(Serialize)]
            struct Line {
                run: u32,
                customer_id: String,
                tier: Option<String>,
                outcome: String,
                reason: String,
                detail: Option<String>,
                coupon_code: Option<String>,
                decided_at: String,
                not_before: Option<String>,
                sent_at: Option<String>,
            }
            let lines: Vec<Line> = rows
                .into_iter()
                .map(|d| Line {
                    run: d.run,
                    customer_id: d.customer_id,
                    tier: d.tier,
                    outcome: d.outcome,
                    reason: d.reason,
                    detail: d.detail,
                    coupon_code: d.coupon_code,
                    decided_at: d.decided_at.to_string(),
                    not_before: d.not_before.map(|t| t.to_string()),
                    sent_at: d.sent_at.map(|t| t.to_string()),
                })
                .collect();
            print_lines(
                *format,
                &lines,
                &["run", "customer", "tier", "outcome", "why", "coupon"],
                |l| {
                    vec![
                        l.run.to_string(),
                        l.customer_id.clone(),
                        l.tier.clone().unwrap_or_default(),
                        l.outcome.clone(),
                        l.detail.clone().unwrap_or_else(|| l.reason.clone()),
                        l.coupon_code.clone().unwrap_or_default(),
                    ]
                },
            )
        }
        CampaignCommand::Export {
            name,
            full_phones,
            out,
            by,
        } => {
            let lines =
                campaigns::export(store, tenant, name, *full_phones, &actor(by.as_deref()))?;
            let write = |w: &mut dyn std::io::Write| -> anyhow::Result<()> {
                let mut csv = csv::Writer::from_writer(w);
                if lines.is_empty() {
                    csv.write_record([
                        "customer_id",
                        "name",
                        "phone",
                        "tier",
                        "coupon_code",
                        "message",
                        "not_before",
                    ])?;
                }
                for l in &lines {
                    csv.serialize(l)?;
                }
                csv.flush()?;
                Ok(())
            };
            match out {
                Some(path) => {
                    let mut f = std::fs::File::create(path)
                        .with_context(|| format!("creating {}", path.display()))?;
                    write(&mut f)?;
                    eprintln!(
                        "{} sends exported to {} and marked sent",
                        thousands(lines.len() as u64),
                        path.display()
                    );
                }
                None => write(&mut std::io::stdout())?,
            }
            Ok(())
        }
        CampaignCommand::Results { name, format } => {
            let r = campaigns::results(store, tenant, name)?;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&r)?),
                Format::Csv => {
                    let mut w = csv::Writer::from_writer(std::io::stdout());
                    for c in std::iter::once(&r.overall).chain(&r.tiers) {
                        w.serialize(ResultLine::of(c))?;
                    }
                    w.flush()?;
                }
                Format::Table => print_results(&r),
            }
            Ok(())
        }
    }
}

fn audience_text(spec: &CampaignSpec) -> String {
    match &spec.trigger {
        Some(Trigger::Enter { segment }) => return format!("on entering segment {segment}"),
        Some(Trigger::Stage { stage }) => return format!("on entering stage {stage}"),
        Some(Trigger::Event { event }) => return format!("on an event {event}"),
        None => {}
    }
    match &spec.audience {
        Audience::Segment { name } => format!("segment {name}"),
        Audience::List { ids } => format!("{} listed customers", thousands(ids.len() as u64)),
    }
}

fn print_tiers(spec: &CampaignSpec) {
    for t in &spec.tiers {
        println!(
            "tier {}: {} → {}",
            t.name,
            if t.rule.is_empty() {
                "everyone else"
            } else {
                &t.rule
            },
            t.offer.as_deref().unwrap_or("the message alone")
        );
    }
}

#[derive(Serialize)]
struct ResultLine {
    tier: String,
    treated: u64,
    holdout: u64,
    sent: u64,
    coupons: u64,
    redeemed: u64,
    treated_buyers: u64,
    holdout_buyers: u64,
    treated_revenue_per_customer: f64,
    holdout_revenue_per_customer: f64,
    incremental_gmv: f64,
    coupon_cost: Money,
    roi: Option<f64>,
    conversion_lift: Option<f64>,
    conversion_low: Option<f64>,
    conversion_high: Option<f64>,
    revenue_lift: Option<f64>,
    revenue_low: Option<f64>,
    revenue_high: Option<f64>,
}

impl ResultLine {
    fn of(c: &Comparison) -> ResultLine {
        ResultLine {
            tier: c.tier.clone().unwrap_or_else(|| "all".to_owned()),
            treated: c.treated.customers,
            holdout: c.holdout.customers,
            sent: c.sent,
            coupons: c.coupons,
            redeemed: c.redeemed,
            treated_buyers: c.treated.buyers,
            holdout_buyers: c.holdout.buyers,
            treated_revenue_per_customer: c.treated.revenue_per_customer,
            holdout_revenue_per_customer: c.holdout.revenue_per_customer,
            incremental_gmv: c.incremental_gmv,
            coupon_cost: c.coupon_cost,
            roi: c.roi,
            conversion_lift: c.conversion_lift.map(|l| l.diff),
            conversion_low: c.conversion_lift.map(|l| l.low),
            conversion_high: c.conversion_lift.map(|l| l.high),
            revenue_lift: c.revenue_lift.map(|l| l.diff),
            revenue_low: c.revenue_lift.map(|l| l.low),
            revenue_high: c.revenue_lift.map(|l| l.high),
        }
    }
}

/// Fen as a float (a mean, a difference) in yuan: `¥1,601.97`, `-¥3.20`.
fn fen_as_yuan(f: f64) -> String {
    yuan(Money::from_fen(f.round() as i64))
}

fn print_results(r: &Results) {
    println!(
        "campaign {}: treated (sent or held back) against the holdout, orders within {} days of the decision",
        r.campaign, r.attribution_days
    );
    let mut t = Table::new([
        "tier",
        "treated",
        "holdout",
        "sent",
        "coupons",
        "redeemed",
        "conversion t/h",
        "revenue/customer t/h",
        "incremental GMV",
        "coupon cost",
        "ROI",
    ]);
    for c in std::iter::once(&r.overall).chain(&r.tiers) {
        t.row([
            c.tier.clone().unwrap_or_else(|| "all".to_owned()),
            thousands(c.treated.customers),
            thousands(c.holdout.customers),
            thousands(c.sent),
            thousands(c.coupons),
            format!(
                "{} ({:.1}%)",
                thousands(c.redeemed),
                c.redemption_rate * 100.0
            ),
            format!(
                "{:.1}% / {:.1}%",
                c.treated.conversion * 100.0,
                c.holdout.conversion * 100.0
            ),
            format!(
                "{} / {}",
                fen_as_yuan(c.treated.revenue_per_customer),
                fen_as_yuan(c.holdout.revenue_per_customer)
            ),
            fen_as_yuan(c.incremental_gmv),
            yuan(c.coupon_cost),
            c.roi.map_or("n/a".to_owned(), |x| format!("{x:.2}")),
        ]);
    }
    print!("{}", t.render());
    for c in std::iter::once(&r.overall).chain(&r.tiers) {
        let tier = c.tier.clone().unwrap_or_else(|| "all".to_owned());
        if let Some(why) = &c.too_small {
            println!("{tier}: {why}");
            continue;
        }
        if let Some(l) = c.conversion_lift {
            println!(
                "{tier}: conversion lift {:+.2} points (95% CI {:+.2} to {:+.2}){}",
                l.diff * 100.0,
                l.low * 100.0,
                l.high * 100.0,
                if l.significant {
                    ""
                } else {
                    ", not distinguishable from none"
                }
            );
        }
        if let Some(l) = c.revenue_lift {
            println!(
                "{tier}: revenue per customer lift {} (95% CI {} to {}){}",
                fen_as_yuan(l.diff),
                fen_as_yuan(l.low),
                fen_as_yuan(l.high),
                if l.significant {
                    ""
                } else {
                    ", not distinguishable from none"
                }
            );
        }
    }
}

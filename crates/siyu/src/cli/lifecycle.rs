//! `siyu lifecycle` and `siyu config`.

use anyhow::Context;
use clap::{Args, Subcommand};

use siyu_core::TenantZone;
use siyu_core::settings::Setting;
use siyu_store::{Store, Tenant};

use super::lang;
use super::output::{Format, Table, percent, thousands};
use crate::service::lifecycle::{LifecycleReport, lifecycle};

#[derive(Debug, Args)]
pub struct LifecycleArgs {
    /// The day to judge stages on (default: today, tenant time).
    #[arg(long)]
    pub as_of: Option<String>,
    /// table: counts per stage; csv and json: every customer too.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Show every setting with its value (default or set).
    List,
    /// Show one setting.
    Get { key: String },
    /// Change a setting: time_zone (IANA name), repurchase_cycle_days (1–3650), vip_rule
    /// (a segment rule that makes a customer vip too, e.g. 'net_spend >= 5000'; '' for none),
    /// lang (en or zh: the language of tables and messages), identity.merge_phone (on or off:
    /// whether customers who share a phone are merged).
    Set { key: String, value: String },
}

/// The as-of day: the one given, or today in the tenant's zone.
pub fn as_of_day(given: Option<&str>, tenant: &Tenant) -> anyhow::Result<jiff::civil::Date> {
    match given {
        Some(day) => TenantZone::parse_day(day).context("--as-of"),
        None => Ok(tenant.zone.day_of(siyu_core::Timestamp::now())),
    }
}

pub fn run_lifecycle(
    store: &mut dyn Store,
    tenant: &Tenant,
    args: &LifecycleArgs,
) -> anyhow::Result<()> {
    let as_of = as_of_day(args.as_of.as_deref(), tenant)?;
    let report = lifecycle(store, tenant, as_of)?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Csv => print_csv(&report)?,
        Format::Table => print_table(&report),
    }
    Ok(())
}

fn print_table(r: &LifecycleReport) {
    let total: u64 = r.stages.iter().map(|s| s.customers).sum();
    let zh = lang::zh();
    println!(
        "{}",
        lang::pick(
            format!(
                "Lifecycle as of {} ({}) — repurchase cycle {} days (a customer with 3+ purchase days: their own mean interval); VIP: top 20% by spend over the 365 days{}",
                r.as_of,
                r.time_zone,
                r.settings.repurchase_cycle_days,
                r.vip_rule.as_ref().map_or_else(String::new, |rule| format!(
                    ", or the tenant's rule: {rule}"
                ))
            ),
            format!(
                "生命周期，截至 {}（{}）— 复购周期 {} 天（有 3 个及以上购买日的客户：按其自身平均间隔）；超级用户：近 365 天消费前 20%{}",
                r.as_of,
                r.time_zone,
                r.settings.repurchase_cycle_days,
                r.vip_rule
                    .as_ref()
                    .map_or_else(String::new, |rule| format!("，或租户规则：{rule}"))
            )
        )
    );
    let mut t = if zh {
        Table::new(["阶段", "code", "customers", "share"])
    } else {
        Table::new(["stage", "阶段", "customers", "share"])
    };
    for s in &r.stages {
        let (first, second) = if zh {
            (s.stage.chinese(), s.stage.name())
        } else {
            (s.stage.name(), s.stage.chinese())
        };
        t.row([
            first.to_owned(),
            second.to_owned(),
            thousands(s.customers),
            percent(siyu_core::metrics::ratio(s.customers, total)),
        ]);
    }
    print!("{}", t.render());
    println!();
    println!("{}", lang::tr("Journey"));
    let mut t = Table::new(["stage", "customers", "share"]);
    for s in &r.journey {
        t.row([
            lang::tr(s.stage.name()),
            thousands(s.customers),
            percent(siyu_core::metrics::ratio(s.customers, total)),
        ]);
    }
    print!("{}", t.render());
}

fn print_csv(r: &LifecycleReport) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(std::io::stdout());
    w.write_record([
        "customer_id",
        "stage",
        "journey",
        "days_since_order",
        "purchase_days",
        "cycle_days",
        "spend_365d",
    ])?;
    for c in &r.customers {
        w.write_record([
            c.customer_id.to_string(),
            c.stage.name().to_owned(),
            c.journey.name().to_owned(),
            c.days_since_order
                .map(|d| d.to_string())
                .unwrap_or_default(),
            c.purchase_days.to_string(),
            format!("{:.1}", c.cycle_days),
            c.spend_365d.to_string(),
        ])?;
    }
    w.flush()?;
    Ok(())
}

pub fn run_config(
    store: &mut dyn Store,
    tenant: &Tenant,
    command: &ConfigCommand,
) -> anyhow::Result<()> {
    use crate::service::config;
    let values = config::values(store, tenant)?;
    let value_of = |setting: Setting| {
        values
            .iter()
            .find(|(s, _)| *s == setting)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    match command {
        ConfigCommand::List => {
            let mut t = Table::new(["setting", "value"]);
            for s in Setting::ALL {
                t.row([s.key().to_owned(), value_of(s)]);
            }
            print!("{}", t.render());
        }
        ConfigCommand::Get { key } => println!("{}", value_of(Setting::parse(key)?)),
        ConfigCommand::Set { key, value } => {
            let setting = Setting::parse(key)?;
            // The zone, the cycle and the VIP rule decide stages (and what rules on days
            // read): the segments and tags are brought up to date now, under the occasion
            // of the change, rather than at the next write or look.
            let (value, evaluation) = config::set(store, tenant, setting, value)?;
            println!(
                "{}",
                lang::pick(
                    format!("{} = {value} (tenant '{}')", setting.key(), tenant.name),
                    format!("{} = {value}（租户 '{}'）", setting.key(), tenant.name)
                )
            );
            if let Some(evaluation) = evaluation {
                println!("{}", super::segment::changed(&evaluation));
            }
        }
    }
    Ok(())
}

//! `siyu remind due`: customers whose next purchase is due, as a contact list and as an
//! audience list for a campaign.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use siyu_core::TenantZone;
use siyu_store::{Store, Tenant};

use super::output::{Format, Table, yuan};
use crate::service::remind;

#[derive(Debug, Subcommand)]
pub enum RemindCommand {
    /// Customers whose next purchase is due within --days days: last purchase day + their
    /// cycle (their own mean interval with 3+ purchase days, else the tenant's
    /// repurchase_cycle_days). Phones masked; opted-out and left customers left out.
    Due {
        #[arg(long, default_value_t = 7)]
        days: u32,
        /// The day to count from (default: today in the tenant's zone).
        #[arg(long)]
        as_of: Option<String>,
        /// Also write their customer ids, one a line: a campaign's audience list.
        #[arg(long)]
        ids_out: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Customers who entered the at_risk stage within the last --days days (as of the last
    /// evaluation), newest first. Phones masked; opted-out customers left out.
    AtRisk {
        #[arg(long, default_value_t = 7)]
        days: u32,
        /// Also write their customer ids, one a line: a campaign's audience list.
        #[arg(long)]
        ids_out: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Customers whose birthday (the customers file's `birthday`) falls within the next
    /// --days days, today included, soonest first; a 29 February one on the 28th in other
    /// years. Phones masked; opted-out, left and erased customers left out.
    Birthdays {
        #[arg(long, default_value_t = 7)]
        days: u32,
        /// The day to count from (default: today in the tenant's zone).
        #[arg(long)]
        as_of: Option<String>,
        /// Also write their customer ids, one a line: a campaign's audience list.
        #[arg(long)]
        ids_out: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

pub fn run(store: &mut dyn Store, tenant: &Tenant, command: &RemindCommand) -> anyhow::Result<()> {
    match command {
        RemindCommand::Due {
            days,
            as_of,
            ids_out,
            format,
        } => {
            anyhow::ensure!(*days <= 366, "--days must be 0 to 366");
            let today = match as_of {
                Some(day) => TenantZone::parse_day(day).context("--as-of")?,
                None => tenant.zone.day_of(siyu_core::Timestamp::now()),
            };
            let due = remind::due(store, tenant, today, *days)?;
            if let Some(path) = ids_out {
                write_ids(path, due.iter().map(|d| &d.customer_id))?;
            }
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&due)?),
                Format::Csv => {
                    let mut w = csv::Writer::from_writer(std::io::stdout());
                    w.write_record([
                        "customer_id",
                        "name",
                        "phone",
                        "last_purchase_day",
                        "cycle_days",
                        "cycle",
                        "due_day",
                        "days_until_due",
                        "orders",
                        "net_spend",
                    ])?;
                    for d in &due {
                        w.write_record([
                            d.customer_id.to_string(),
                            d.name.clone().unwrap_or_default(),
                            d.phone.clone().unwrap_or_default(),
                            d.last_purchase_day.to_string(),
                            d.cycle_days.to_string(),
                            cycle_name(d.cycle).to_owned(),
                            d.due_day.to_string(),
                            d.days_until_due.to_string(),
                            d.orders.to_string(),
                            d.net_spend.to_string(),
                        ])?;
                    }
                    w.flush()?;
                }
                Format::Table => {
                    let mut t = Table::new([
                        "customer",
                        "name",
                        "phone",
                        "last purchase",
                        "cycle",
                        "due",
                        "in days",
                        "orders",
                        "spent",
                    ]);
                    for d in &due {
                        t.row([
                            d.customer_id.to_string(),
                            d.name.clone().unwrap_or_default(),
                            d.phone.clone().unwrap_or_default(),
                            d.last_purchase_day.to_string(),
                            format!("{} d ({})", d.cycle_days, cycle_name(d.cycle)),
                            d.due_day.to_string(),
                            d.days_until_due.to_string(),
                            d.orders.to_string(),
                            yuan(d.net_spend),
                        ]);
                    }
                    print!("{}", t.render());
                }
            }
        }
        RemindCommand::AtRisk {
            days,
            ids_out,
            format,
        } => {
            anyhow::ensure!(*days <= 366, "--days must be 0 to 366");
            let from = siyu_core::Timestamp::now()
                .checked_sub(jiff::SignedDuration::from_hours(24 * i64::from(*days)))
                .context("--days")?;
            let list = remind::at_risk(store, tenant, from)?;
            if let Some(path) = ids_out {
                write_ids(path, list.iter().map(|r| &r.customer_id))?;
            }
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&list)?),
                Format::Csv => {
                    let mut w = csv::Writer::from_writer(std::io::stdout());
                    w.write_record([
                        "customer_id",
                        "name",
                        "phone",
                        "entered_at_risk",
                        "last_purchase_day",
                        "orders",
                        "net_spend",
                    ])?;
                    for r in &list {
                        w.write_record([
                            r.customer_id.to_string(),
                            r.name.clone().unwrap_or_default(),
                            r.phone.clone().unwrap_or_default(),
                            r.since.to_string(),
                            r.last_purchase_day
                                .map(|d| d.to_string())
                                .unwrap_or_default(),
                            r.orders.to_string(),
                            r.net_spend.to_string(),
                        ])?;
                    }
                    w.flush()?;
                }
                Format::Table => {
                    let mut t = Table::new([
                        "customer",
                        "name",
                        "phone",
                        "entered",
                        "last purchase",
                        "orders",
                        "spent",
                    ]);
                    for r in &list {
                        t.row([
                            r.customer_id.to_string(),
                            r.name.clone().unwrap_or_default(),
                            r.phone.clone().unwrap_or_default(),
                            super::output::local_time(&tenant.zone, r.since),
                            r.last_purchase_day
                                .map(|d| d.to_string())
                                .unwrap_or_default(),
                            r.orders.to_string(),
                            yuan(r.net_spend),
                        ]);
                    }
                    print!("{}", t.render());
                }
            }
        }
        RemindCommand::Birthdays {
            days,
            as_of,
            ids_out,
            format,
        } => {
            anyhow::ensure!(*days <= 366, "--days must be 0 to 366");
            let today = match as_of {
                Some(day) => TenantZone::parse_day(day).context("--as-of")?,
                None => tenant.zone.day_of(siyu_core::Timestamp::now()),
            };
            let list = remind::birthdays(store, tenant, today, *days)?;
            if let Some(path) = ids_out {
                write_ids(path, list.iter().map(|b| &b.customer_id))?;
            }
            let line = |b: &remind::Birthday, spent: String| {
                [
                    b.customer_id.to_string(),
                    b.name.clone().unwrap_or_default(),
                    b.phone.clone().unwrap_or_default(),
                    b.birthday.to_string(),
                    b.day.to_string(),
                    b.days_until.to_string(),
                    b.orders.to_string(),
                    spent,
                ]
            };
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&list)?),
                Format::Csv => {
                    let mut w = csv::Writer::from_writer(std::io::stdout());
                    w.write_record([
                        "customer_id",
                        "name",
                        "phone",
                        "birthday",
                        "day",
                        "days_until",
                        "orders",
                        "net_spend",
                    ])?;
                    for b in &list {
                        w.write_record(line(b, b.net_spend.to_string()))?;
                    }
                    w.flush()?;
                }
                Format::Table => {
                    let mut t = Table::new([
                        "customer", "name", "phone", "birthday", "on", "in days", "orders", "spent",
                    ]);
                    for b in &list {
                        t.row(line(b, yuan(b.net_spend)));
                    }
                    print!("{}", t.render());
                }
            }
        }
    }
    Ok(())
}

fn write_ids<'a>(
    path: &std::path::Path,
    ids: impl Iterator<Item = &'a siyu_core::CustomerId>,
) -> anyhow::Result<()> {
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
    );
    for id in ids {
        writeln!(file, "{id}")?;
    }
    file.flush()
        .with_context(|| format!("writing {}", path.display()))
}

fn cycle_name(c: remind::CycleSource) -> &'static str {
    match c {
        remind::CycleSource::Own => "own",
        remind::CycleSource::Tenant => "tenant",
    }
}

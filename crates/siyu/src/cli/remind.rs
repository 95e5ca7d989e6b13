//! `siyu remind due|at-risk|birthdays`: customers to remind, as a contact list and as an
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
            let today = day_and_days(tenant, as_of.as_deref(), *days)?;
            let due = remind::due(store, tenant, today, *days)?;
            write_ids(ids_out.as_deref(), due.iter().map(|d| &d.customer_id))?;
            print_list(
                *format,
                &due,
                &[
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
                ],
                &[
                    "customer",
                    "name",
                    "phone",
                    "last purchase",
                    "cycle",
                    "due",
                    "in days",
                    "orders",
                    "spent",
                ],
                |d, people| {
                    let cycle = if people {
                        vec![format!("{} d ({})", d.cycle_days, cycle_name(d.cycle))]
                    } else {
                        vec![d.cycle_days.to_string(), cycle_name(d.cycle).to_owned()]
                    };
                    let mut line = contact(&d.customer_id, d.name.as_ref(), d.phone.as_ref());
                    line.push(d.last_purchase_day.to_string());
                    line.extend(cycle);
                    line.extend([
                        d.due_day.to_string(),
                        d.days_until_due.to_string(),
                        d.orders.to_string(),
                        money(d.net_spend, people),
                    ]);
                    line
                },
            )
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
            write_ids(ids_out.as_deref(), list.iter().map(|r| &r.customer_id))?;
            print_list(
                *format,
                &list,
                &[
                    "customer_id",
                    "name",
                    "phone",
                    "entered_at_risk",
                    "last_purchase_day",
                    "orders",
                    "net_spend",
                ],
                &[
                    "customer",
                    "name",
                    "phone",
                    "entered",
                    "last purchase",
                    "orders",
                    "spent",
                ],
                |r, people| {
                    let mut line = contact(&r.customer_id, r.name.as_ref(), r.phone.as_ref());
                    line.extend([
                        if people {
                            super::output::local_time(&tenant.zone, r.since)
                        } else {
                            r.since.to_string()
                        },
                        r.last_purchase_day
                            .map(|d| d.to_string())
                            .unwrap_or_default(),
                        r.orders.to_string(),
                        money(r.net_spend, people),
                    ]);
                    line
                },
            )
        }
        RemindCommand::Birthdays {
            days,
            as_of,
            ids_out,
            format,
        } => {
            let today = day_and_days(tenant, as_of.as_deref(), *days)?;
            let list = remind::birthdays(store, tenant, today, *days)?;
            write_ids(ids_out.as_deref(), list.iter().map(|b| &b.customer_id))?;
            print_list(
                *format,
                &list,
                &[
                    "customer_id",
                    "name",
                    "phone",
                    "birthday",
                    "day",
                    "days_until",
                    "orders",
                    "net_spend",
                ],
                &[
                    "customer", "name", "phone", "birthday", "on", "in days", "orders", "spent",
                ],
                |b, people| {
                    let mut line = contact(&b.customer_id, b.name.as_ref(), b.phone.as_ref());
                    line.extend([
                        b.birthday.to_string(),
                        b.day.to_string(),
                        b.days_until.to_string(),
                        b.orders.to_string(),
                        money(b.net_spend, people),
                    ]);
                    line
                },
            )
        }
    }
}

/// The day a reminder counts from (`--as-of`, else today in the tenant's zone), with
/// `--days` checked.
fn day_and_days(
    tenant: &Tenant,
    as_of: Option<&str>,
    days: u32,
) -> anyhow::Result<jiff::civil::Date> {
    anyhow::ensure!(days <= 366, "--days must be 0 to 366");
    Ok(match as_of {
        Some(day) => TenantZone::parse_day(day).context("--as-of")?,
        None => tenant.zone.day_of(siyu_core::Timestamp::now()),
    })
}

/// A reminder's first three cells: the customer, their name and their (masked) phone.
fn contact(
    id: &siyu_core::CustomerId,
    name: Option<&String>,
    phone: Option<&String>,
) -> Vec<String> {
    vec![
        id.to_string(),
        name.cloned().unwrap_or_default(),
        phone.cloned().unwrap_or_default(),
    ]
}

/// Money as a table shows it to people (yuan with separators), or as CSV has it.
fn money(m: siyu_core::Money, people: bool) -> String {
    if people { yuan(m) } else { m.to_string() }
}

/// A reminder list as JSON, CSV (`csv_head`) or a table for people (`table_head`); `line`
/// gives an item's cells, for people or not.
fn print_list<T: serde::Serialize>(
    format: Format,
    items: &[T],
    csv_head: &[&str],
    table_head: &[&str],
    line: impl Fn(&T, bool) -> Vec<String>,
) -> anyhow::Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(items)?),
        Format::Csv => {
            let mut w = csv::Writer::from_writer(std::io::stdout());
            w.write_record(csv_head)?;
            for item in items {
                w.write_record(line(item, false))?;
            }
            w.flush()?;
        }
        Format::Table => {
            let mut t = Table::new(table_head.iter().copied());
            for item in items {
                t.row(line(item, true));
            }
            print!("{}", t.render());
        }
    }
    Ok(())
}

/// With `--ids-out`, writes the ids one a line: a campaign's list audience.
fn write_ids<'a>(
    path: Option<&std::path::Path>,
    ids: impl Iterator<Item = &'a siyu_core::CustomerId>,
) -> anyhow::Result<()> {
    let Some(path) = path else {
        return Ok(());
    };
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

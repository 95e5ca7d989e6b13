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
                let mut file = std::io::BufWriter::new(
                    std::fs::File::create(path)
                        .with_context(|| format!("creating {}", path.display()))?,
                );
                for d in &due {
                    writeln!(file, "{}", d.customer_id)?;
                }
                file.flush()
                    .with_context(|| format!("writing {}", path.display()))?;
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
    }
    Ok(())
}

fn cycle_name(c: remind::CycleSource) -> &'static str {
    match c {
        remind::CycleSource::Own => "own",
        remind::CycleSource::Tenant => "tenant",
    }
}

//! `siyu customer`: a person's data on request (PIPL): export, erase, marketing opt-out,
//! and the audit log of those.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use siyu_store::{Store, Tenant};

use super::output::{Format, local_time, print_lines, thousands};
use super::segment::customer_id;
use crate::service::privacy;
use crate::service::segments::actor;

#[derive(Debug, Subcommand)]
pub enum CustomerCommand {
    /// Everything held on a customer, as JSON (recorded in the audit log).
    Export {
        id: String,
        /// Write to FILE instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Who asks (default: the login name).
        #[arg(long)]
        by: Option<String>,
    },
    /// Erase a customer's personal data and events; their orders stay, under a random
    /// id, so every total stays right; the id is refused by later imports and batches.
    Erase {
        id: String,
        #[arg(long)]
        by: Option<String>,
    },
    /// Mark a customer as opted out of marketing (never in a marketing segment), or with
    /// --undo opted in again.
    OptOut {
        id: String,
        #[arg(long)]
        undo: bool,
        #[arg(long)]
        by: Option<String>,
    },
    /// The audit log of exports, erasures and opt-outs, newest first: of one customer
    /// (found by their id even after an erasure) or of all.
    Audit {
        id: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

pub fn run_customer(
    store: &mut dyn Store,
    tenant: &Tenant,
    command: &CustomerCommand,
) -> anyhow::Result<()> {
    match command {
        CustomerCommand::Export { id, out, by } => {
            let data = privacy::export(store, tenant, &customer_id(id)?, &actor(by.as_deref()))?;
            let json = serde_json::to_string_pretty(&data)?;
            match out {
                Some(path) => {
                    std::fs::write(path, json + "\n")
                        .with_context(|| format!("writing {}", path.display()))?;
                    eprintln!(
                        "exported {} orders, {} events, {} tags to {}",
                        thousands(data.orders.len() as u64),
                        thousands(data.events.len() as u64),
                        thousands(data.tags.len() as u64),
                        path.display()
                    );
                }
                None => writeln!(std::io::stdout(), "{json}")?,
            }
        }
        CustomerCommand::Erase { id, by } => {
            let e = privacy::erase(store, tenant, &customer_id(id)?, &actor(by.as_deref()))?;
            println!(
                "erased: {} events and {} tags deleted with the personal attributes; {} orders \
                 kept under {}; {} referees now name that id; the id is refused from now on",
                thousands(e.events_erased),
                thousands(e.tags_erased),
                thousands(e.orders_kept),
                e.remains,
                thousands(e.referees)
            );
        }
        CustomerCommand::OptOut { id, undo, by } => {
            let id = customer_id(id)?;
            privacy::set_opt_out(store, tenant, &id, !undo, &actor(by.as_deref()))?;
            if *undo {
                println!("{id} is opted in to marketing again");
            } else {
                println!("{id} is opted out of marketing: no marketing segment holds them");
            }
        }
        CustomerCommand::Audit { id, limit, format } => {
            let id = id.as_deref().map(customer_id).transpose()?;
            let lines = privacy::audit_log(store, tenant, id.as_ref(), *limit)?;
            if *format == Format::Table && lines.is_empty() {
                println!("the audit log holds nothing yet");
            }
            print_lines(
                *format,
                &lines,
                &["at", "action", "by", "subject", "detail"],
                |l| {
                    vec![
                        local_time(&tenant.zone, l.at),
                        l.action.to_string(),
                        l.actor.clone(),
                        l.subject[..12].to_owned(),
                        l.detail.clone(),
                    ]
                },
            )?;
        }
    }
    Ok(())
}

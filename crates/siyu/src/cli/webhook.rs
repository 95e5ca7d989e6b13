//! `siyu webhook add|list|test|outbox`: the tenant's webhook endpoints and their sends.

use anyhow::Context;
use clap::Subcommand;

use siyu_store::{SendState, Store, Tenant};

use super::output::{Format, local_time, print_lines};
use crate::service::delivery::{self, Limits};
use crate::service::dispatch;

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Add an endpoint the dispatcher of `siyu serve` posts sends to. Its signing secret
    /// is generated (and printed, once) unless given.
    Add {
        /// 1 to 64 letters, digits, '-', '_' or '.'.
        name: String,
        /// Where to POST: http://host[:port]/path.
        #[arg(long)]
        url: String,
        /// The HMAC-SHA256 key of the signature header (16 to 256 characters).
        #[arg(long, env = "SIYU_WEBHOOK_SECRET")]
        secret: Option<String>,
        /// Attempts before a send is dead (default 8).
        #[arg(long)]
        max_attempts: Option<u32>,
        /// Requests under way at once (default 16).
        #[arg(long)]
        max_in_flight: Option<u32>,
        /// Requests begun per second (default 0: no limit).
        #[arg(long)]
        max_per_second: Option<u32>,
        /// How long an attempt may take, connecting included (default 10000).
        #[arg(long)]
        timeout_ms: Option<u64>,
        /// The first retry's delay, doubled for each further one up to an hour, less a
        /// random part of up to half (default 5000).
        #[arg(long)]
        backoff_ms: Option<u64>,
    },
    /// The tenant's endpoints, their limits and their sends by state (never the secret).
    List {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Enqueue test sends to an endpoint, as any send is: a running `siyu serve` delivers
    /// them; with --now this command does, and says what came of them.
    Test {
        name: String,
        #[arg(long, default_value_t = 1)]
        count: usize,
        /// Deliver the tenant's due sends now, in this process.
        #[arg(long)]
        now: bool,
    },
    /// Sends in the outbox, by send id: all, or those of one state (e.g. the dead letters).
    Outbox {
        /// pending, delivered, dead or cancelled.
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

pub fn run(store: &mut dyn Store, tenant: &Tenant, command: &WebhookCommand) -> anyhow::Result<()> {
    match command {
        WebhookCommand::Add {
            name,
            url,
            secret,
            max_attempts,
            max_in_flight,
            max_per_second,
            timeout_ms,
            backoff_ms,
        } => {
            let limits = Limits {
                max_attempts: *max_attempts,
                max_in_flight: *max_in_flight,
                max_per_second: *max_per_second,
                timeout_ms: *timeout_ms,
                backoff_ms: *backoff_ms,
            };
            let e = delivery::add_webhook(store, tenant, name, url, secret.as_deref(), &limits)
                .with_context(|| format!("adding webhook endpoint '{name}'"))?;
            println!("added webhook endpoint '{}' → {}", e.name, e.url);
            if secret.is_none() {
                println!("signing secret (shown once, keep it with the receiver):");
                println!("{}", e.secret);
            }
        }
        WebhookCommand::List { format } => {
            #[derive(serde::Serialize)]
            struct Line {
                name: String,
                url: String,
                max_attempts: u32,
                max_in_flight: u32,
                max_per_second: u32,
                timeout_ms: u64,
                backoff_ms: u64,
                pending: u64,
                delivered: u64,
                dead: u64,
                cancelled: u64,
            }
            let counts = store.outbox_counts(tenant).context("counting the outbox")?;
            let lines: Vec<Line> = store
                .webhooks(tenant)
                .context("reading the webhook endpoints")?
                .into_iter()
                .map(|e| {
                    let of = |state: SendState| {
                        counts
                            .iter()
                            .filter(|c| c.endpoint == e.name && c.state == state)
                            .map(|c| c.sends)
                            .sum()
                    };
                    Line {
                        pending: of(SendState::Pending),
                        delivered: of(SendState::Delivered),
                        dead: of(SendState::Dead),
                        cancelled: of(SendState::Cancelled),
                        name: e.name,
                        url: e.url,
                        max_attempts: e.max_attempts,
                        max_in_flight: e.max_in_flight,
                        max_per_second: e.max_per_second,
                        timeout_ms: e.timeout_ms,
                        backoff_ms: e.backoff_ms,
                    }
                })
                .collect();
            print_lines(
                *format,
                &lines,
                &[
                    "name",
                    "url",
                    "attempts",
                    "in_flight",
                    "per_second",
                    "timeout_ms",
                    "backoff_ms",
                    "pending",
                    "delivered",
                    "dead",
                    "cancelled",
                ],
                |l| {
                    vec![
                        l.name.clone(),
                        l.url.clone(),
                        l.max_attempts.to_string(),
                        l.max_in_flight.to_string(),
                        l.max_per_second.to_string(),
                        l.timeout_ms.to_string(),
                        l.backoff_ms.to_string(),
                        l.pending.to_string(),
                        l.delivered.to_string(),
                        l.dead.to_string(),
                        l.cancelled.to_string(),
                    ]
                },
            )?;
        }
        WebhookCommand::Test { name, count, now } => {
            let ids = delivery::enqueue_tests(store, tenant, name, *count)
                .with_context(|| format!("testing webhook endpoint '{name}'"))?;
            println!("enqueued {} test send(s) to '{name}'", ids.len());
            if *now {
                let tally = dispatch::deliver_now(store, tenant)?;
                println!(
                    "attempts {}: delivered {}, to be retried {}, dead {}",
                    tally.attempts, tally.delivered, tally.retried, tally.dead
                );
                let failed = store
                    .outbox_rows(tenant, Some(SendState::Pending), 5)?
                    .into_iter()
                    .chain(store.outbox_rows(tenant, Some(SendState::Dead), 5)?)
                    .filter_map(|r| r.last_error.map(|e| format!("{}: {e}", r.send_id)))
                    .collect::<Vec<_>>();
                for line in failed {
                    println!("  {line}");
                }
            } else {
                println!("a running `siyu serve` delivers them (or run again with --now)");
            }
        }
        WebhookCommand::Outbox {
            state,
            limit,
            format,
        } => {
            let state = match state {
                None => None,
                Some(s) => Some(SendState::parse(s).with_context(|| {
                    format!("--state: '{s}' is not pending, delivered, dead or cancelled")
                })?),
            };
            let rows = store.outbox_rows(tenant, state, *limit)?;
            #[derive(serde::Serialize)]
            struct Line {
                send_id: String,
                endpoint: String,
                state: &'static str,
                attempts: u32,
                next_attempt_at: String,
                last_error: Option<String>,
                created_at: String,
                delivered_at: Option<String>,
            }
            let lines: Vec<Line> = rows
                .into_iter()
                .map(|r| Line {
                    send_id: r.send_id,
                    endpoint: r.endpoint,
                    state: r.state.as_str(),
                    attempts: r.attempts,
                    next_attempt_at: r.next_attempt_at.to_string(),
                    last_error: r.last_error,
                    created_at: r.created_at.to_string(),
                    delivered_at: r.delivered_at.map(|t| t.to_string()),
                })
                .collect();
            print_lines(
                *format,
                &lines,
                &[
                    "send_id",
                    "endpoint",
                    "state",
                    "attempts",
                    "next_attempt",
                    "last_error",
                    "delivered",
                ],
                |l| {
                    let local = |t: &str| {
                        t.parse()
                            .map_or_else(|_| t.to_owned(), |at| local_time(&tenant.zone, at))
                    };
                    vec![
                        l.send_id.clone(),
                        l.endpoint.clone(),
                        l.state.to_owned(),
                        l.attempts.to_string(),
                        local(&l.next_attempt_at),
                        l.last_error.clone().unwrap_or_default(),
                        l.delivered_at.as_deref().map(local).unwrap_or_default(),
                    ]
                },
            )?;
        }
    }
    Ok(())
}

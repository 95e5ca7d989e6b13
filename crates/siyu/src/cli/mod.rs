//! The command line: parsing, and printing what the services return.

pub mod campaign;
pub mod clv;
pub mod customer;
pub mod lang;
pub mod lifecycle;
pub mod output;
pub mod remind;
pub mod report;
pub mod rfm;
pub mod segment;
pub mod server;
pub mod webhook;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};

use siyu_core::TenantZone;
use siyu_core::demo::DemoConfig;
use siyu_core::import::Kind;
use siyu_core::metrics::overview::Overview;
use siyu_store::{Store, Tenant};

use crate::service;
use output::{Format, Table, percent, thousands, yuan};

/// siyu (私域): the customer-operations engine for merchants' owned channels.
#[derive(Debug, Parser)]
#[command(name = "siyu", version, about)]
pub struct Cli {
    /// The database: a SQLite file path, or a postgres:// URL.
    #[arg(long, global = true, env = "SIYU_DB", default_value = "siyu.db")]
    pub db: String,
    /// The merchant whose data to work on.
    #[arg(long, global = true, env = "SIYU_TENANT", default_value = "default")]
    pub tenant: String,
    /// The language of tables and messages for people (default: the tenant's setting
    /// `lang`, else en). CSV and JSON are the same in every language.
    #[arg(long, global = true, env = "SIYU_LANG", value_enum)]
    pub lang: Option<lang::Lang>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or migrate the database.
    Init,
    /// Import customers, orders or events from a CSV (events: also JSON Lines) file.
    Import(ImportArgs),
    /// Build a realistic demo shop (pool, orders, events) and print its overview.
    Demo(DemoArgs),
    /// Lifecycle stage (prospect … lost) and journey stage of every customer, and counts.
    Lifecycle(lifecycle::LifecycleArgs),
    /// Per-customer profiles (kept current by every import).
    #[command(subcommand)]
    Profiles(ProfilesCommand),
    /// The tenant's settings: time zone, repurchase cycle, VIP rule.
    #[command(subcommand)]
    Config(lifecycle::ConfigCommand),
    /// Reports over the tenant's data: overview, gmv, cohorts, funnel, pareto, channels,
    /// referrals, clv.
    #[command(subcommand)]
    Report(report::Report),
    /// Acquisition spend per source channel and month (for CAC in `report channels`).
    #[command(subcommand, name = "channel-cost")]
    ChannelCost(report::ChannelCostCommand),
    /// The channels the codes (`state`) of WeCom's 联系我 QR codes stand for.
    #[command(subcommand, name = "channel-code")]
    ChannelCode(ChannelCodeCommand),
    /// WeCom's callbacks to `siyu serve` (/v1/wecom/callback/TENANT).
    #[command(subcommand)]
    Wecom(WecomCommand),
    /// RFM classes and quintile scores as of a day, from the database or an orders CSV.
    Rfm(rfm::RfmArgs),
    /// Lifetime value by model: BG/NBD and Gamma-Gamma, fitted, predicted, checked.
    #[command(subcommand)]
    Clv(clv::ClvCommand),
    /// Saved segment rules: members always current, entries and exits recorded.
    #[command(subcommand)]
    Segment(segment::SegmentCommand),
    /// Manual tags, rule tags and the built-in level tags, with where each came from.
    #[command(subcommand)]
    Tag(segment::TagCommand),
    /// Offers (coupon templates) and the coupons they issued.
    #[command(subcommand)]
    Coupon(campaign::CouponCommand),
    /// Campaigns: tiers of offers by value, a holdout, decisions with reasons, results.
    #[command(subcommand)]
    Campaign(campaign::CampaignCommand),
    /// A customer's personal data on request (PIPL): export, erase, opt-out, audit log.
    #[command(subcommand)]
    Customer(customer::CustomerCommand),
    /// The HTTP API (see /v1/docs once it runs).
    Serve(server::ServeArgs),
    /// API tokens of the tenant: create (printed once), list, revoke.
    #[command(subcommand)]
    Token(server::TokenCommand),
    /// Users of the web console (`siyu serve`, /console): create, list, passwd, delete.
    #[command(subcommand)]
    User(server::UserCommand),
    /// Reminders: customers whose next purchase is due (a contact list, an audience list).
    #[command(subcommand)]
    Remind(remind::RemindCommand),
    /// Webhook endpoints and the outbox of sends to them: add, list, test, outbox.
    #[command(subcommand)]
    Webhook(webhook::WebhookCommand),
    /// The benchmarks behind the speed figures.
    #[command(subcommand)]
    Bench(Bench),
}

#[derive(Debug, Subcommand)]
pub enum ChannelCodeCommand {
    /// The channel customers added through the code CODE come from.
    Set { code: String, channel: String },
    /// Every code and its channel.
    List {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

#[derive(Debug, Subcommand)]
pub enum WecomCommand {
    /// The secrets of the app's callback, as set in WeCom's admin console (接收事件服务器).
    SetCallback {
        /// The callback's Token.
        #[arg(long)]
        token: String,
        /// The callback's EncodingAESKey (43 characters).
        #[arg(long)]
        aes_key: String,
        /// The corp id (企业ID, `ww…`).
        #[arg(long)]
        corp_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProfilesCommand {
    /// Recompute every profile from the raw orders and events.
    Rebuild,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ImportKind {
    /// WeCom external contacts as the API returns them (JSON, or JSON Lines).
    Contacts,
    /// WeCom customer groups (`groupchat/get` answers).
    Groups,
    /// Official-account users (`user/info` answers, `user/info/batchget` pages).
    Followers,
    Customers,
    Orders,
    Events,
}

impl ImportKind {
    /// The canonical file kind, for the kinds that are one.
    fn canonical(self) -> Option<Kind> {
        match self {
            ImportKind::Contacts | ImportKind::Groups | ImportKind::Followers => None,
            ImportKind::Customers => Some(Kind::Customers),
            ImportKind::Orders => Some(Kind::Orders),
            ImportKind::Events => Some(Kind::Events),
        }
    }
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    pub kind: ImportKind,
    pub file: PathBuf,
    /// Import the valid rows; write the others with their reasons to FILE.rejects.csv.
    #[arg(long)]
    pub skip_invalid: bool,
    /// Skip columns that are not part of the format instead of refusing the file.
    #[arg(long)]
    pub ignore_unknown: bool,
    /// The file's own column names for siyu's columns, e.g. `单据=order_id,收款=amount`
    /// (Chinese names such as 订单号, 下单时间 and 实付金额 are read without it).
    #[arg(long, value_name = "NAME=COLUMN,...")]
    pub map: Option<String>,
    /// A file of NAME=COLUMN lines, as --map.
    #[arg(long, value_name = "FILE", conflicts_with = "map")]
    pub map_file: Option<PathBuf>,
    /// The platform whose export the file is: youzan, taobao, douyin, pdd (recognised from
    /// the header when left out), or weimob (its order API's pages as JSON; a .json or
    /// .jsonl file of orders is read so).
    #[arg(long)]
    pub preset: Option<String>,
    /// The sheet of an xlsx/xls workbook to read (default: the first).
    #[arg(long)]
    pub sheet: Option<String>,
    /// The report of the import: table (a line) or json. (The file's own format is found
    /// from its contents.)
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Customers in the pool.
    #[arg(long, default_value_t = 20_000)]
    pub customers: usize,
    /// The same seed (and --until) gives the same shop.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Last day of the shop's 13 months of history (default: today, tenant time).
    #[arg(long)]
    pub until: Option<String>,
    /// Also keep the generated CSVs in this directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Subcommand)]
pub enum Bench {
    /// A triggered campaign's zero-delay step under the ticker of `siyu serve`: from the
    /// write that makes a customer enter its segment until the send is in the outbox.
    Triggers {
        #[arg(long, default_value_t = 50)]
        entries: u64,
        /// Measure PostgreSQL at this URL (in a scratch schema, dropped afterwards)
        /// instead of a fresh SQLite file.
        #[arg(long)]
        postgres: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Import generated orders into a fresh database; prints orders/s and peak memory.
    Import {
        #[arg(long, default_value_t = 1_000_000)]
        orders: u64,
        /// Distinct customers the orders belong to (default: orders / 10).
        #[arg(long)]
        customers: Option<u64>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The file's shape: siyu's canonical columns, or a platform's export of the same
        /// orders read by its preset.
        #[arg(long, value_enum, default_value_t)]
        shape: service::bench::OrdersShape,
        /// Measure PostgreSQL at this URL (in a scratch schema, dropped afterwards)
        /// instead of a fresh SQLite file.
        #[arg(long)]
        postgres: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Every report and `lifecycle` on a demo pool, each run as a user runs it: wall time
    /// and peak memory. The pool is built once into --pool-db (default: a file in the
    /// temporary directory named for the size and seed) and reused by later runs.
    Reports {
        #[arg(long, default_value_t = 100_000)]
        customers: u64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// The SQLite file of the pool (built when it holds no customers).
        #[arg(long)]
        pool_db: Option<std::path::PathBuf>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Evaluate typical segment rules over a synthetic table of profiles; prints the
    /// time per rule and the table's memory.
    Segment {
        #[arg(long, default_value_t = 1_000_000)]
        customers: usize,
        #[arg(long, default_value_t = 20)]
        runs: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// The HTTP API under load on loopback, with the server and its client in this process:
    /// batches of mixed events and orders posted as fast as the server takes them, single
    /// customers read meanwhile, and a probe timing how soon a segment entry shows; on a
    /// demo pool with typical rules if asked. Events/s (over the run and per 10 s),
    /// latencies and peak memory.
    Http {
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        #[arg(long, default_value_t = 4)]
        writers: usize,
        #[arg(long, default_value_t = 500)]
        batch: usize,
        /// Without --pool: how many customer ids the traffic names (all new to the pool).
        #[arg(long, default_value_t = 100_000)]
        customers: u64,
        /// Build a demo shop of this many customers first (through the import path).
        #[arg(long)]
        pool: Option<u64>,
        /// Typical segments to define before the load (with a probe segment besides).
        #[arg(long, default_value_t = 0)]
        segments: usize,
        /// Typical tag rules to define before the load.
        #[arg(long, default_value_t = 0)]
        tag_rules: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The first benchmark's easy traffic (`view` events only, ids counting up, one
        /// fixed time, no retries), to compare builds with figures measured by it.
        #[arg(long)]
        simple: bool,
        /// Servers on the one database (at most 8), each with its own connections and
        /// writer, as separate `siyu serve` processes; the writers take turns among them.
        #[arg(long, default_value_t = 1)]
        servers: usize,
        /// Start the tenant's day's sweep (as `siyu serve` runs it at midnight) this many
        /// seconds into the load, and print its time, its memory and the ingest it overlapped.
        #[arg(long)]
        sweep_after: Option<f64>,
        /// Measure PostgreSQL at this URL (in a scratch schema, dropped afterwards).
        #[arg(long)]
        postgres: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// The webhook dispatcher: sends enqueued and delivered to a receiver on loopback in
    /// this process (answering 204 at once); sends/s from the first claim to the last
    /// outcome recorded.
    Webhooks {
        #[arg(long, default_value_t = 20_000)]
        count: u64,
        /// The endpoint's requests under way at once.
        #[arg(long, default_value_t = 64)]
        max_in_flight: u32,
        /// Measure PostgreSQL at this URL (in a scratch schema, dropped afterwards)
        /// instead of a fresh SQLite file.
        #[arg(long)]
        postgres: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Write generated orders as a canonical orders CSV (the data of the benchmarks).
    GenOrders {
        #[arg(long, default_value_t = 10_000_000)]
        orders: u64,
        /// Distinct customers the orders belong to (default: orders / 10).
        #[arg(long)]
        customers: Option<u64>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
    },
}

struct Context_ {
    store: Box<dyn Store>,
    tenant: Tenant,
}

fn connect(cli: &Cli) -> anyhow::Result<Context_> {
    let mut store =
        siyu_store::open(&cli.db).with_context(|| format!("opening {}", redact(&cli.db)))?;
    let tenant = store
        .tenant(&cli.tenant)
        .with_context(|| format!("opening tenant '{}'", cli.tenant))?;
    if cli.lang.is_none() {
        let settings = store
            .settings(&tenant)
            .context("reading the tenant's settings")?;
        if let Some((_, value)) = settings.iter().find(|(k, _)| k == "lang") {
            lang::choose(lang::Lang::parse(value).unwrap_or_default());
        }
    }
    Ok(Context_ { store, tenant })
}

/// A database location without its password, for messages.
fn redact(location: &str) -> String {
    match (location.find("://"), location.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &location[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => {
                    format!("{}{user}:***{}", &location[..scheme + 3], &location[at..])
                }
                None => location.to_owned(),
            }
        }
        _ => location.to_owned(),
    }
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    if let Some(l) = cli.lang {
        lang::choose(l);
    }
    if !matches!(cli.command, Command::Serve(_)) {
        crate::log::init_command()?;
    }
    match &cli.command {
        Command::Init => {
            let mut store = siyu_store::open(&cli.db)
                .with_context(|| format!("opening {}", redact(&cli.db)))?;
            let tenant = store.tenant(&cli.tenant)?;
            println!(
                "{} database {} is ready (tenant '{}', time zone {})",
                store.backend(),
                redact(&cli.db),
                tenant.name,
                tenant.zone.name()
            );
            Ok(())
        }
        Command::Import(args) => {
            if args.format == Format::Csv {
                anyhow::bail!(
                    "--format is how the import reports (a line, or json), not the file's format: \
                     CSV, UTF-8 or GBK, and for events JSON Lines, are found from the file itself"
                );
            }
            let mut ctx = connect(&cli)?;
            let options = service::import::ImportOptions {
                skip_invalid: args.skip_invalid,
                ignore_unknown: args.ignore_unknown,
                progress: true,
                ..Default::default()
            };
            let Some(kind) = args.kind.canonical() else {
                if args.preset.is_some()
                    || args.map.is_some()
                    || args.map_file.is_some()
                    || args.sheet.is_some()
                {
                    anyhow::bail!(
                        "--preset, --map and --sheet are for files of customers, orders or events"
                    );
                }
                let source = match args.kind {
                    ImportKind::Groups => service::wecom::Source::Groups,
                    ImportKind::Followers => service::wecom::Source::Followers,
                    _ => service::wecom::Source::Contacts,
                };
                let report = service::wecom::import_source(
                    ctx.store.as_mut(),
                    &ctx.tenant,
                    &args.file,
                    options,
                    source,
                )
                .with_context(|| format!("importing from {}", args.file.display()))?;
                match args.format {
                    Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
                    _ => println!("{report}"),
                }
                return Ok(());
            };
            // Weimob's orders come as its API's pages (JSON), not as a file of columns.
            let json = args
                .file
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "json" | "jsonl"));
            if kind == Kind::Orders && (args.preset.as_deref() == Some("weimob") || json) {
                let report = service::weimob::import_orders(
                    ctx.store.as_mut(),
                    &ctx.tenant,
                    &args.file,
                    options,
                )
                .with_context(|| format!("importing orders from {}", args.file.display()))?;
                match args.format {
                    Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
                    _ => println!("{report}"),
                }
                return Ok(());
            }
            let read_as = service::import::ReadAs {
                mapping: mapping_of(args.map.as_deref(), args.map_file.as_deref())?,
                preset: match &args.preset {
                    None => None,
                    Some(name) => Some(siyu_core::import::preset::named(name, kind).with_context(
                        || {
                            format!(
                                "--preset: '{name}' is not a preset (known: {}, weimob)",
                                siyu_core::import::preset::names()
                            )
                        },
                    )?),
                },
                sheet: args.sheet.clone(),
            };
            let report = service::import::import_export(
                ctx.store.as_mut(),
                &ctx.tenant,
                kind,
                &args.file,
                options,
                &read_as,
            )
            .with_context(|| format!("importing {kind} from {}", args.file.display()))?;
            match args.format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
                _ => println!("{report}"),
            }
            Ok(())
        }
        Command::Demo(args) => {
            let mut ctx = connect(&cli)?;
            let until = match &args.until {
                Some(day) => TenantZone::parse_day(day).context("--until")?,
                None => ctx.tenant.zone.day_of(siyu_core::Timestamp::now()),
            };
            let config = DemoConfig {
                customers: args.customers,
                seed: args.seed,
                until,
                months: 13,
            };
            let run = service::demo::build(
                ctx.store.as_mut(),
                &ctx.tenant,
                &config,
                args.out.as_deref(),
                true,
            )?;
            let made = service::campaigns::demo_campaigns(
                ctx.store.as_mut(),
                &ctx.tenant,
                args.seed,
                until,
            )
            .context("the demo's campaigns")?;
            let overview = service::overview::overview(ctx.store.as_mut(), &ctx.tenant)?;
            if args.format == Format::Table {
                for report in &run.imports {
                    println!("{report}");
                }
                println!(
                    "profiles built once after the three imports in {:.2} s",
                    run.profiles_seconds
                );
                if let Some(dir) = &run.kept_in {
                    println!("the demo's CSV files are in {}", dir.display());
                }
                if !made.is_empty() {
                    println!(
                        "two finished campaigns with redemptions: siyu campaign results {}",
                        made.join(", ")
                    );
                }
                println!();
            }
            print_overview(&ctx.tenant, &overview, args.format)?;
            if args.format == Format::Table {
                // The demo shop's console user, with a fresh password each time.
                let password = service::tokens::random_hex(8)?;
                let known = ctx.store.console_user(&ctx.tenant, "demo")?.is_some();
                if known {
                    service::users::set_password(
                        ctx.store.as_mut(),
                        &ctx.tenant,
                        "demo",
                        &password,
                    )?;
                } else {
                    service::users::create_user(
                        ctx.store.as_mut(),
                        &ctx.tenant,
                        "demo",
                        siyu_core::access::Role::Admin,
                        &password,
                    )?;
                }
                println!(
                    "\nconsole: run `siyu serve{db}` (or `cargo run --release -- serve{db}`), open http://127.0.0.1:8080 and sign in as demo, password {password}",
                    db = if cli.db == "siyu.db" {
                        String::new()
                    } else {
                        format!(" --db {}", cli.db)
                    }
                );
            }
            Ok(())
        }
        Command::Lifecycle(args) => {
            let mut ctx = connect(&cli)?;
            lifecycle::run_lifecycle(ctx.store.as_mut(), &ctx.tenant, args)
        }
        Command::Profiles(ProfilesCommand::Rebuild) => {
            let mut ctx = connect(&cli)?;
            let started = std::time::Instant::now();
            let n = service::profiles::rebuild(ctx.store.as_mut(), &ctx.tenant)?;
            println!(
                "rebuilt {} in {:.2} s",
                output::count(n as u64, "profile"),
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::Config(command) => {
            let mut ctx = connect(&cli)?;
            lifecycle::run_config(ctx.store.as_mut(), &ctx.tenant, command)
        }
        Command::Rfm(args) => rfm::run(&cli, args),
        Command::Clv(command) => clv::run(&cli, command),
        Command::Serve(args) => server::serve(&cli.db, args),
        Command::Token(command) => {
            let mut ctx = connect(&cli)?;
            server::run_token(ctx.store.as_mut(), &ctx.tenant, command)
        }
        Command::User(command) => {
            let mut ctx = connect(&cli)?;
            server::run_user(ctx.store.as_mut(), &ctx.tenant, command)
        }
        Command::Segment(command) => {
            let mut ctx = connect(&cli)?;
            segment::run_segment(ctx.store.as_mut(), &ctx.tenant, command, &cli.db)
        }
        Command::Tag(command) => {
            let mut ctx = connect(&cli)?;
            segment::run_tag(ctx.store.as_mut(), &ctx.tenant, command)
        }
        Command::Coupon(command) => {
            let mut ctx = connect(&cli)?;
            campaign::run_coupon(ctx.store.as_mut(), &ctx.tenant, command)
        }
        Command::Campaign(command) => {
            let mut ctx = connect(&cli)?;
            campaign::run_campaign(ctx.store.as_mut(), &ctx.tenant, command)
        }
        Command::Customer(command) => {
            let mut ctx = connect(&cli)?;
            customer::run_customer(ctx.store.as_mut(), &ctx.tenant, command)
        }
        Command::Remind(command) => {
            let mut ctx = connect(&cli)?;
            remind::run(ctx.store.as_mut(), &ctx.tenant, command)
        }
        Command::Webhook(command) => {
            let mut ctx = connect(&cli)?;
            webhook::run(ctx.store.as_mut(), &ctx.tenant, command)
        }
        Command::Bench(Bench::Triggers {
            entries,
            postgres,
            format,
        }) => {
            if *entries == 0 {
                anyhow::bail!("--entries: at least 1");
            }
            let result = match postgres {
                Some(url) => {
                    let schema = format!("siyu_bench_triggers_{}", std::process::id());
                    let scoped = siyu_store::PgStore::schema_url(url, &schema)?;
                    let result = service::trigger_bench::bench(&scoped, *entries);
                    siyu_store::PgStore::drop_schema(url, &schema)?;
                    result?
                }
                None => {
                    let dir = tempfile::tempdir()?;
                    let db = dir.path().join("bench.db");
                    service::trigger_bench::bench(&db.to_string_lossy(), *entries)?
                }
            };
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&result)?),
                _ => println!(
                    "{} entries on {}: each send in the outbox {:.0} ms after its write (median), {:.0} ms at the 95th percentile, {:.0} ms at most",
                    result.entries, result.backend, result.median_ms, result.p95_ms, result.max_ms
                ),
            }
            Ok(())
        }
        Command::Bench(Bench::Webhooks {
            count,
            max_in_flight,
            postgres,
            format,
        }) => {
            let result = match postgres {
                Some(url) => {
                    let schema = format!("siyu_bench_webhooks_{}", std::process::id());
                    let scoped = siyu_store::PgStore::schema_url(url, &schema)?;
                    let result = service::dispatch::bench(&scoped, *count, *max_in_flight);
                    siyu_store::PgStore::drop_schema(url, &schema)?;
                    result?
                }
                None => {
                    let dir = tempfile::tempdir()?;
                    let db = dir.path().join("bench.db");
                    service::dispatch::bench(&db.to_string_lossy(), *count, *max_in_flight)?
                }
            };
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&result)?),
                _ => println!(
                    "{} webhooks on {} ({} in flight): enqueued in {:.2} s, delivered in {:.2} s: {:.0}/s ({} received)",
                    thousands(result.sends),
                    result.backend,
                    result.max_in_flight,
                    result.enqueue_seconds,
                    result.deliver_seconds,
                    result.per_second,
                    thousands(result.received),
                ),
            }
            Ok(())
        }
        Command::Bench(Bench::Segment {
            customers,
            runs,
            seed,
        }) => {
            let b = siyu_core::rule::bench_segments(*customers, *seed, *runs);
            println!(
                "{} customers: table built in {:.2} s, {:.1} MiB",
                thousands(b.customers as u64),
                b.build.as_secs_f64(),
                b.heap_bytes as f64 / (1024.0 * 1024.0)
            );
            let mut t = Table::new(["rule", "members", "median ms", "best ms"]);
            for r in &b.rules {
                t.row([
                    r.rule.clone(),
                    thousands(r.members as u64),
                    format!("{:.2}", r.median.as_secs_f64() * 1e3),
                    format!("{:.2}", r.best.as_secs_f64() * 1e3),
                ]);
            }
            print!("{}", t.render());
            Ok(())
        }
        Command::Bench(Bench::Http {
            seconds,
            writers,
            batch,
            customers,
            pool,
            segments,
            tag_rules,
            seed,
            simple,
            servers,
            sweep_after,
            postgres,
            format,
        }) => {
            let options = crate::http::bench::HttpBenchOptions {
                simple: *simple,
                servers: *servers,
                sweep_after: *sweep_after,
                seconds: *seconds,
                writers: *writers,
                batch: *batch,
                customers: *customers,
                pool: *pool,
                segments: *segments,
                tag_rules: *tag_rules,
                seed: *seed,
            };
            let dir = tempfile::tempdir()?;
            let result = match postgres {
                Some(url) => {
                    let schema = format!("siyu_bench_http_{}", std::process::id());
                    let scoped = siyu_store::PgStore::schema_url(url, &schema)?;
                    let result = crate::http::bench::run(&scoped, &options);
                    siyu_store::PgStore::drop_schema(url, &schema)?;
                    result?
                }
                None => {
                    let db = dir.path().join("http.db");
                    crate::http::bench::run(&db.to_string_lossy(), &options)?
                }
            };
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&result)?),
                _ => {
                    let ms =
                        |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.2}"));
                    let mut t = Table::new([
                        "backend",
                        "pool",
                        "segments + tag rules",
                        "seconds",
                        "events",
                        "events/s",
                        "slowest 10 s",
                        "writers × batch",
                        "retried",
                        "read p50 ms",
                        "read p99 ms",
                        "read max ms",
                        "probe p50 ms",
                        "probe max ms",
                        "peak RSS",
                    ]);
                    t.row([
                        result.backend.to_owned(),
                        thousands(result.pool),
                        format!("{} + {}", result.segments, result.tag_rules),
                        format!("{:.1}", result.seconds),
                        thousands(result.events),
                        thousands(result.events_per_second as u64),
                        result
                            .slowest_slice
                            .map_or_else(|| "n/a".to_owned(), |v| thousands(v as u64)),
                        match result.servers {
                            1 => format!("{} × {}", result.writers, result.batch_size),
                            n => {
                                format!("{} × {} on {n} servers", result.writers, result.batch_size)
                            }
                        },
                        thousands(result.retried_batches),
                        format!("{:.2}", result.read_p50_ms),
                        format!("{:.2}", result.read_p99_ms),
                        format!("{:.2}", result.read_max_ms),
                        ms(result.probe_p50_ms),
                        ms(result.probe_max_ms),
                        result
                            .peak_rss_mib
                            .map_or_else(|| "n/a".to_owned(), |m| format!("{m:.0} MiB")),
                    ]);
                    print!("{}", t.render());
                    eprintln!(
                        "pool and rules set up in {:.1} s; events/s per 10 s: {}",
                        result.setup_seconds,
                        result
                            .slices
                            .iter()
                            .map(|v| thousands(*v as u64))
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    if let Some(s) = &result.sweep {
                        eprintln!(
                            "sweep: {:.2} s from {:.1} to {:.1} s into the load ({} customers, {} entries, {} exits), resident memory +{}; events/s in the 10 s slices it overlapped: {}",
                            s.seconds,
                            s.started_at,
                            s.ended_at,
                            thousands(s.customers),
                            thousands(s.entered),
                            thousands(s.exited),
                            s.rss_growth_mib
                                .map_or_else(|| "n/a".to_owned(), |m| format!("{m:.0} MiB")),
                            s.overlapped_slices
                                .iter()
                                .map(|v| thousands(*v as u64))
                                .collect::<Vec<_>>()
                                .join(", ")
                        );
                    }
                }
            }
            Ok(())
        }
        Command::Bench(Bench::GenOrders {
            orders,
            customers,
            seed,
            out,
        }) => {
            let customers = customers.unwrap_or((orders / 10).max(1));
            service::bench::write_orders_csv(out, *orders, customers, *seed)
        }
        Command::Report(report::Report::Overview { format }) => {
            let mut ctx = connect(&cli)?;
            let overview = service::overview::overview(ctx.store.as_mut(), &ctx.tenant)?;
            print_overview(&ctx.tenant, &overview, *format)
        }
        Command::Report(r) => {
            let mut ctx = connect(&cli)?;
            report::run_report(ctx.store.as_mut(), &ctx.tenant, r)
        }
        Command::ChannelCost(command) => {
            let mut ctx = connect(&cli)?;
            report::run_channel_cost(ctx.store.as_mut(), &ctx.tenant, command)
        }
        Command::Wecom(WecomCommand::SetCallback {
            token,
            aes_key,
            corp_id,
        }) => {
            let mut ctx = connect(&cli)?;
            service::wecom::set_callback(ctx.store.as_mut(), &ctx.tenant, token, aes_key, corp_id)?;
            println!(
                "WeCom's callbacks for tenant {} are taken at /v1/wecom/callback/{}",
                ctx.tenant.name, ctx.tenant.name
            );
            Ok(())
        }
        Command::ChannelCode(command) => {
            let mut ctx = connect(&cli)?;
            match command {
                ChannelCodeCommand::Set { code, channel } => {
                    let channel = service::wecom::set_channel_code(
                        ctx.store.as_mut(),
                        &ctx.tenant,
                        code,
                        channel,
                    )?;
                    println!(
                        "customers added through the code {} come from {channel}",
                        code.trim()
                    );
                }
                ChannelCodeCommand::List { format } => {
                    let codes = service::wecom::channel_codes(ctx.store.as_mut(), &ctx.tenant)?;
                    match format {
                        Format::Json => println!("{}", serde_json::to_string_pretty(&codes)?),
                        Format::Csv => {
                            println!("code,channel");
                            for (code, channel) in &codes {
                                println!("{code},{channel}");
                            }
                        }
                        Format::Table => {
                            let mut t = Table::new(["code", "channel"]);
                            for (code, channel) in &codes {
                                t.row([code.clone(), channel.clone()]);
                            }
                            print!("{}", t.render());
                        }
                    }
                }
            }
            Ok(())
        }
        Command::Bench(Bench::Reports {
            customers,
            seed,
            pool_db,
            format,
        }) => {
            let db = pool_db.clone().unwrap_or_else(|| {
                std::env::temp_dir().join(format!("siyu-bench-reports-{customers}-{seed}.db"))
            });
            if let Some(secs) = service::bench::demo_pool(&db, *customers, *seed)? {
                eprintln!(
                    "built a demo pool of {} customers into {} in {secs:.1} s",
                    thousands(*customers),
                    db.display()
                );
            }
            let runs = service::bench::REPORT_COMMANDS
                .iter()
                .map(|args| service::bench::run_command(&db, args))
                .collect::<anyhow::Result<Vec<_>>>()?;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&runs)?),
                _ => {
                    let mut t = Table::new(["command", "seconds", "peak RSS"]);
                    for r in &runs {
                        t.row([
                            r.command.clone(),
                            format!("{:.2}", r.seconds),
                            r.peak_rss_mib
                                .map_or_else(|| "n/a".to_owned(), |m| format!("{m:.0} MiB")),
                        ]);
                    }
                    print!("{}", t.render());
                }
            }
            Ok(())
        }
        Command::Bench(Bench::Import {
            orders,
            customers,
            seed,
            shape,
            postgres,
            format,
        }) => {
            let customers = customers.unwrap_or((orders / 10).max(1));
            let result = match postgres {
                Some(url) => {
                    let schema = format!("siyu_bench_{}", std::process::id());
                    let mut store = siyu_store::PgStore::connect_in_schema(url, &schema)
                        .with_context(|| format!("opening {}", redact(url)))?;
                    store.migrate()?;
                    let result =
                        service::bench::import(&mut store, *shape, *orders, customers, *seed);
                    drop(store);
                    siyu_store::PgStore::drop_schema(url, &schema)
                        .with_context(|| format!("dropping the scratch schema {schema}"))?;
                    result?
                }
                None => {
                    let dir = tempfile::tempdir()?;
                    let path = dir.path().join("bench.db");
                    let mut store = siyu_store::open(&path.to_string_lossy())?;
                    service::bench::import(store.as_mut(), *shape, *orders, customers, *seed)?
                }
            };
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&result)?),
                _ => {
                    let mut t = Table::new([
                        "backend",
                        "orders",
                        "seconds",
                        "orders/s",
                        "of which profiles",
                        "profiles µs/order",
                        "orders/s without profiles",
                        "peak RSS",
                    ]);
                    t.row([
                        result.backend.to_owned(),
                        thousands(result.orders),
                        format!("{:.2}", result.seconds),
                        thousands(result.orders_per_second as u64),
                        format!("{:.2} s", result.phases.profiles),
                        format!("{:.2}", result.profile_us_per_order),
                        thousands(result.raw_orders_per_second as u64),
                        result
                            .peak_rss_mib
                            .map_or_else(|| "n/a".to_owned(), |m| format!("{m:.0} MiB")),
                    ]);
                    print!("{}", t.render());
                    let p = &result.phases;
                    println!(
                        "rows read and written {:.2} s, profiles {:.2} s, segments {:.2} s, commit {:.2} s",
                        p.rows, p.profiles, p.segments, p.commit
                    );
                }
            }
            Ok(())
        }
    }
}

fn print_overview(tenant: &Tenant, o: &Overview, format: Format) -> anyhow::Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(o)?),
        Format::Csv => {
            let mut f = report::Figures::default();
            let h = "overview";
            f.push(h, "", "customers", o.customers);
            f.push(h, "", "buyers", o.buyers);
            f.share(
                h,
                "",
                "buyer_share",
                siyu_core::metrics::ratio(o.buyers, o.customers),
            );
            f.push(h, "", "paid_orders", o.paid_orders);
            f.push(h, "", "refunded_orders", o.refunded_orders);
            f.push(h, "", "gmv", o.gmv);
            f.push(
                h,
                "",
                "aov",
                o.aov.map_or_else(|| "n/a".to_owned(), |m| m.to_string()),
            );
            f.share(h, "", "repurchase_rate", o.repurchase_rate);
            let day = |d: Option<jiff::civil::Date>| d.map(|d| d.to_string()).unwrap_or_default();
            f.push(h, "", "first_order_day", day(o.first_order_day));
            f.push(h, "", "last_order_day", day(o.last_order_day));
            for c in &o.channels {
                let channel = c.channel.as_ref().map_or("unknown", |c| c.as_str());
                f.push("channel", channel, "customers", c.customers);
                f.push("channel", channel, "buyers", c.buyers);
                f.share(
                    "channel",
                    channel,
                    "conversion",
                    siyu_core::metrics::ratio(c.buyers, c.customers),
                );
                f.push("channel", channel, "gmv", c.gmv);
            }
            f.print()?;
        }
        Format::Table => {
            println!(
                "{}",
                lang::pick(
                    format!(
                        "Shop overview — tenant '{}' ({})",
                        tenant.name,
                        tenant.zone.name()
                    ),
                    format!(
                        "店铺概览 — 租户 '{}'（{}）",
                        tenant.name,
                        tenant.zone.name()
                    )
                )
            );
            let mut t = Table::new(["figure", "value"]);
            t.row([lang::tr("customers in the pool"), thousands(o.customers)]);
            t.row([lang::tr("buyers"), thousands(o.buyers)]);
            t.row([
                lang::tr("buyers / pool"),
                percent(siyu_core::metrics::ratio(o.buyers, o.customers)),
            ]);
            t.row([lang::tr("paid orders"), thousands(o.paid_orders)]);
            t.row([lang::tr("refunded orders"), thousands(o.refunded_orders)]);
            t.row([lang::tr("GMV"), yuan(o.gmv)]);
            t.row([lang::tr("AOV"), o.aov.map_or_else(|| lang::tr("n/a"), yuan)]);
            t.row([lang::tr("repurchase rate"), percent(o.repurchase_rate)]);
            if let (Some(first), Some(last)) = (o.first_order_day, o.last_order_day) {
                t.row([lang::tr("first order day"), first.to_string()]);
                t.row([lang::tr("last order day"), last.to_string()]);
            }
            print!("{}", t.render());
            println!();
            println!("{}", lang::tr("By source channel"));
            let mut t = Table::new(["channel", "customers", "buyers", "conversion", "GMV"]);
            for c in &o.channels {
                t.row([
                    lang::tr(c.channel.as_ref().map_or("unknown", |c| c.as_str())),
                    thousands(c.customers),
                    thousands(c.buyers),
                    percent(siyu_core::metrics::ratio(c.buyers, c.customers)),
                    yuan(c.gmv),
                ]);
            }
            print!("{}", t.render());
        }
    }
    Ok(())
}

/// The most a mapping file may hold.
const MAX_MAP_FILE: u64 = 64 * 1024;

/// The merchant's column mapping of `--map` or `--map-file`.
fn mapping_of(
    pairs: Option<&str>,
    file: Option<&std::path::Path>,
) -> anyhow::Result<siyu_core::import::Mapping> {
    use siyu_core::import::Mapping;
    match (pairs, file) {
        (Some(pairs), _) => Mapping::parse(pairs).context("--map"),
        (None, Some(path)) => {
            let size = std::fs::metadata(path)
                .with_context(|| format!("--map-file {}", path.display()))?
                .len();
            if size > MAX_MAP_FILE {
                anyhow::bail!(
                    "--map-file {}: {size} bytes, more than a mapping holds ({MAX_MAP_FILE})",
                    path.display()
                );
            }
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("--map-file {}", path.display()))?;
            Mapping::parse(&text).with_context(|| format!("--map-file {}", path.display()))
        }
        (None, None) => Ok(Mapping::default()),
    }
}

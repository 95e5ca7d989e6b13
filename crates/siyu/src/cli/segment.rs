//! `siyu segment …` and `siyu tag …`.

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use serde::Serialize;

use siyu_core::CustomerId;
use siyu_core::segment::rules::{Purpose, RuleKind, TagFamily};
use siyu_store::{HistoryRecord, MemberFilter, Store, Tenant};

use super::lang::{pick, tr};
use super::output::{Format, Table, count, local_time, print_lines, thousands, yuan};
use crate::service::segments::{self, Evaluation, NewRule, actor};

#[derive(Debug, Subcommand)]
pub enum SegmentCommand {
    /// Save a rule as a segment, e.g. 'rfm = "important_value" and days_since_order > 20'.
    Create {
        name: String,
        rule: String,
        /// Who creates it (default: the login name).
        #[arg(long)]
        by: Option<String>,
        /// `marketing` (default): never holds a customer who opted out of marketing;
        /// `analysis`: counts everyone the rule selects, and is not for sending to.
        #[arg(long, default_value = "marketing", value_parser = parse_purpose)]
        purpose: Purpose,
    },
    /// Every segment with its rule and members now.
    List {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// A segment's rule, members now, and latest entries and exits.
    Show { name: String },
    /// The members now: csv or json to export.
    Members {
        name: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Delete a segment (its history stays).
    Delete { name: String },
    /// Who entered and exited, newest first: of one segment, or of one customer.
    History {
        /// A segment (default: every segment and tag).
        name: Option<String>,
        /// Only this customer's changes.
        #[arg(long)]
        customer: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Evaluate every segment and tag rule now and record the changes (for time-driven
    /// ones, e.g. `days_since_order > 20`, run it daily from cron).
    Refresh,
}

#[derive(Debug, Subcommand)]
pub enum TagCommand {
    /// Tag a customer by hand.
    Add {
        customer: String,
        tag: String,
        /// Who tags (default: the login name).
        #[arg(long)]
        by: Option<String>,
        /// static (default), consumption, behaviour or level.
        #[arg(long)]
        family: Option<String>,
    },
    /// Take a manual or imported tag off a customer.
    Remove {
        customer: String,
        tag: String,
        #[arg(long)]
        by: Option<String>,
    },
    /// Define (or redefine) a tag by a rule; it stays current like a segment.
    Rule(TagRuleArgs),
    /// Every tag with its family, source and customers; with --customer, that customer's
    /// tags, where from and since when.
    List {
        #[arg(long)]
        customer: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Set a tag's family: static, consumption, behaviour or level.
    Family { tag: String, family: String },
}

#[derive(Debug, Args)]
pub struct TagRuleArgs {
    pub name: String,
    /// The rule (omit with --delete).
    pub rule: Option<String>,
    /// consumption (default), static, behaviour or level.
    #[arg(long)]
    pub family: Option<String>,
    /// Delete the tag rule instead.
    #[arg(long)]
    pub delete: bool,
    #[arg(long)]
    pub by: Option<String>,
}

fn parse_purpose(text: &str) -> Result<Purpose, String> {
    Purpose::parse(text).ok_or_else(|| format!("'{text}' is not a purpose (marketing, analysis)"))
}

fn family(text: Option<&str>) -> anyhow::Result<Option<TagFamily>> {
    text.map(|f| {
        TagFamily::parse(f).ok_or_else(|| {
            anyhow!("unknown tag family '{f}' (static, consumption, behaviour, level)")
        })
    })
    .transpose()
}

pub(super) fn customer_id(text: &str) -> anyhow::Result<CustomerId> {
    CustomerId::parse(text).map_err(|e| anyhow!("customer id: {e}"))
}

pub(crate) fn changed(e: &Evaluation) -> String {
    pick(
        format!(
            "{} and {} recorded across segments and tags (evaluated in {:.0} ms)",
            count(e.entered, "entry"),
            count(e.exited, "exit"),
            e.seconds * 1e3
        ),
        format!(
            "分群和标签共记录 {} 次进入、{} 次退出（计算用时 {:.0} 毫秒）",
            thousands(e.entered),
            thousands(e.exited),
            e.seconds * 1e3
        ),
    )
}

/// Runs a segment command; `db` is where `store` was opened, for the refresh's second
/// connection.
pub fn run_segment(
    store: &mut dyn Store,
    tenant: &Tenant,
    command: &SegmentCommand,
    db: &str,
) -> anyhow::Result<()> {
    match command {
        SegmentCommand::Create {
            name,
            rule,
            by,
            purpose,
        } => {
            let by = actor(by.as_deref());
            let new = NewRule::segment(name, rule, *purpose);
            let e = segments::save_rule(store, tenant, new, &by, false)?;
            let members = e.members(RuleKind::Segment, name);
            println!(
                "{}",
                pick(
                    format!(
                        "segment '{name}' created: {} now; {}",
                        count(members, "member"),
                        changed(&e)
                    ),
                    format!(
                        "已创建分群 '{name}'：当前 {} 位成员；{}",
                        thousands(members),
                        changed(&e)
                    )
                )
            );
        }
        SegmentCommand::List { format } => {
            let (rules, e) = segments::current(store, tenant)?;
            #[derive(Serialize)]
            struct Line<'a> {
                name: &'a str,
                rule: &'a str,
                purpose: Purpose,
                members: u64,
                created_by: &'a str,
                created_at: String,
            }
            let lines: Vec<Line> = rules
                .iter()
                .filter(|r| r.kind == RuleKind::Segment)
                .map(|r| Line {
                    name: &r.name,
                    rule: &r.rule,
                    purpose: r.purpose,
                    members: e.members(RuleKind::Segment, &r.name),
                    created_by: &r.created_by,
                    created_at: r.created_at.to_string(),
                })
                .collect();
            if *format == Format::Table && lines.is_empty() {
                println!(
                    "{}",
                    pick(
                        "no segments yet: siyu segment create NAME 'RULE'".into(),
                        "还没有分群：siyu segment create 名称 '规则'".into()
                    )
                );
            }
            print_lines(
                *format,
                &lines,
                &["segment", "purpose", "members", "rule", "created by"],
                |l| {
                    vec![
                        l.name.to_owned(),
                        l.purpose.to_string(),
                        thousands(l.members),
                        l.rule.to_owned(),
                        l.created_by.to_owned(),
                    ]
                },
            )?;
        }
        SegmentCommand::Show { name } => {
            let now = segments::segment_now(store, tenant, name, None)?;
            let created = local_time(&tenant.zone, now.rule.created_at);
            let members = thousands(now.members.len() as u64);
            let zone = tenant.zone.name();
            if super::lang::zh() {
                println!("分群 '{}'", now.rule.name);
                println!("  规则：    {}", now.rule.rule);
                println!("  用途：    {}", now.rule.purpose);
                println!("  创建：    {created}，{}", now.rule.created_by);
                println!("  成员：    {members}，截至 {}（{zone}）", now.as_of);
            } else {
                println!("segment '{}'", now.rule.name);
                println!("  rule:     {}", now.rule.rule);
                println!("  purpose:  {}", now.rule.purpose);
                println!("  created:  {created} by {}", now.rule.created_by);
                println!("  members:  {members} as of {} ({zone})", now.as_of);
            }
            let recent = segments::history(
                store,
                tenant,
                MemberFilter::Rule(RuleKind::Segment, name),
                10,
            )?;
            if !recent.is_empty() {
                println!("  {}", tr("latest changes:"));
                print!("{}", history_table(tenant, &recent).render());
            }
        }
        SegmentCommand::Members { name, format } => {
            let now = segments::segment_now(store, tenant, name, None)?;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&now.members)?),
                Format::Csv => {
                    segments::write_members_csv(std::io::stdout().lock(), &now.members, true)?
                }
                Format::Table => {
                    println!(
                        "{}",
                        pick(
                            format!(
                                "segment '{}': {} as of {}",
                                name,
                                count(now.members.len() as u64, "member"),
                                now.as_of
                            ),
                            format!(
                                "分群 '{}'：{} 位成员，截至 {}",
                                name,
                                thousands(now.members.len() as u64),
                                now.as_of
                            )
                        )
                    );
                    let mut t = Table::new([
                        "customer",
                        "since",
                        "stage",
                        "rfm",
                        "days since order",
                        "spend 365d",
                    ]);
                    for m in &now.members {
                        t.row([
                            m.customer_id.clone(),
                            m.since
                                .map(|t| local_time(&tenant.zone, t))
                                .unwrap_or_default(),
                            m.stage.name().to_owned(),
                            m.rfm.map_or("", |c| c.name()).to_owned(),
                            m.days_since_order
                                .map_or_else(|| "n/a".to_owned(), |d| d.to_string()),
                            yuan(m.spend_365d),
                        ]);
                    }
                    print!("{}", t.render());
                }
            }
        }
        SegmentCommand::Delete { name } => {
            if !segments::delete_rule(store, tenant, RuleKind::Segment, name)? {
                bail!("there is no segment '{name}'");
            }
            println!(
                "{}",
                pick(
                    format!("segment '{name}' deleted (its history stays)"),
                    format!("已删除分群 '{name}'（历史记录保留）")
                )
            );
        }
        SegmentCommand::History {
            name,
            customer,
            limit,
            format,
        } => {
            let id = customer.as_deref().map(customer_id).transpose()?;
            let filter = match (name, &id) {
                (Some(_), Some(_)) => bail!("give a segment or --customer, not both"),
                (Some(n), None) => MemberFilter::Rule(RuleKind::Segment, n),
                (None, Some(id)) => MemberFilter::Customer(id),
                (None, None) => MemberFilter::All,
            };
            let records = segments::history(store, tenant, filter, *limit)?;
            print_history(tenant, &records, *format)?;
        }
        SegmentCommand::Refresh => {
            // A second connection reads and judges half of the slices on a thread of its
            // own (a throwaway database in memory has none to share).
            let mut helper = match db {
                ":memory:" | "" => None,
                _ => Some(siyu_store::open(db).context("opening a second connection")?),
            };
            let helper = helper.as_mut().map(|h| h.as_mut() as &mut dyn Store);
            let e = segments::sweep(store, helper, tenant, "refresh")?;
            println!(
                "{}",
                pick(
                    format!("segments and tags are current: {}", changed(&e)),
                    format!("分群和标签已是最新：{}", changed(&e))
                )
            );
        }
    }
    Ok(())
}

fn history_table(tenant: &Tenant, records: &[HistoryRecord]) -> Table {
    let mut t = Table::new(["at", "customer", "change", "of", "cause"]);
    for r in records {
        t.row([
            local_time(&tenant.zone, r.at),
            r.customer_id.to_string(),
            r.change.as_str().to_owned(),
            format!("{} {}", r.kind, r.name),
            r.cause.clone(),
        ]);
    }
    t
}

fn print_history(tenant: &Tenant, records: &[HistoryRecord], format: Format) -> anyhow::Result<()> {
    #[derive(Serialize)]
    struct Line<'a> {
        at: String,
        customer_id: &'a str,
        change: &'a str,
        kind: &'a str,
        name: &'a str,
        cause: &'a str,
    }
    let lines = records.iter().map(|r| Line {
        at: r.at.to_string(),
        customer_id: r.customer_id.as_str(),
        change: r.change.as_str(),
        kind: r.kind.as_str(),
        name: &r.name,
        cause: &r.cause,
    });
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&lines.collect::<Vec<_>>())?
        ),
        Format::Csv => {
            let mut w = csv::Writer::from_writer(std::io::stdout());
            for l in lines {
                w.serialize(l)?;
            }
            w.flush()?;
        }
        Format::Table => {
            if records.is_empty() {
                println!("{}", tr("no changes recorded"));
            } else {
                print!("{}", history_table(tenant, records).render());
            }
        }
    }
    Ok(())
}

pub fn run_tag(store: &mut dyn Store, tenant: &Tenant, command: &TagCommand) -> anyhow::Result<()> {
    match command {
        TagCommand::Add {
            customer,
            tag,
            by,
            family: f,
        } => {
            let by = actor(by.as_deref());
            let id = customer_id(customer)?;
            let added = segments::add_tag(store, tenant, &id, tag, &by, family(f.as_deref())?)?;
            if added {
                println!(
                    "{}",
                    pick(
                        format!("tagged '{id}' with '{tag}' (manual:{by})"),
                        format!("已给 '{id}' 打上标签 '{tag}'（manual:{by}）")
                    )
                );
            } else {
                println!(
                    "{}",
                    pick(
                        format!("'{id}' had the tag '{tag}' already; it keeps its first source"),
                        format!("'{id}' 已有标签 '{tag}'，保留其最初来源")
                    )
                );
            }
        }
        TagCommand::Remove { customer, tag, by } => {
            let by = actor(by.as_deref());
            let id = customer_id(customer)?;
            let removal = segments::remove_tag(store, tenant, &id, tag, &by)?;
            if let Some(refusal) = removal.refusal(&id, tag) {
                bail!("{refusal}");
            }
            println!(
                "{}",
                pick(
                    format!("took '{tag}' off '{id}'"),
                    format!("已移除 '{id}' 的标签 '{tag}'")
                )
            );
        }
        TagCommand::Rule(args) => {
            if args.delete {
                if args.rule.is_some() {
                    bail!("--delete takes the tag name alone");
                }
                if !segments::delete_rule(store, tenant, RuleKind::Tag, &args.name)? {
                    bail!("there is no tag rule '{}'", args.name);
                }
                println!("tag rule '{}' deleted", args.name);
                return Ok(());
            }
            let rule = args
                .rule
                .as_deref()
                .context("give the rule, e.g. siyu tag rule big_spender 'spend_365d >= 2000'")?;
            let by = actor(args.by.as_deref());
            let new = NewRule::tag(&args.name, rule, family(args.family.as_deref())?);
            let e = segments::save_rule(store, tenant, new, &by, true)?;
            let members = e.members(RuleKind::Tag, &args.name);
            println!(
                "{}",
                pick(
                    format!(
                        "tag '{}' is given by its rule to {}; {}",
                        args.name,
                        count(members as u64, "customer"),
                        changed(&e)
                    ),
                    format!(
                        "标签 '{}' 按规则给了 {} 位客户；{}",
                        args.name,
                        thousands(members),
                        changed(&e)
                    )
                )
            );
        }
        TagCommand::List { customer, format } => match customer {
            Some(c) => {
                let id = customer_id(c)?;
                let tags = segments::customer_tags(store, tenant, &id)?;
                match format {
                    Format::Json => println!("{}", serde_json::to_string_pretty(&tags)?),
                    Format::Csv => {
                        let mut w = csv::Writer::from_writer(std::io::stdout());
                        w.write_record(["tag", "family", "source", "since"])?;
                        for t in &tags {
                            w.write_record([
                                t.tag.clone(),
                                t.family.to_string(),
                                t.source.clone(),
                                t.since.to_string(),
                            ])?;
                        }
                        w.flush()?;
                    }
                    Format::Table => {
                        let mut t = Table::new(["tag", "family", "source", "since"]);
                        for tag in &tags {
                            t.row([
                                tag.tag.clone(),
                                tag.family.to_string(),
                                tag.source.clone(),
                                local_time(&tenant.zone, tag.since),
                            ]);
                        }
                        print!("{}", t.render());
                    }
                }
            }
            None => {
                let tags = segments::tag_summary(store, tenant)?;
                print_lines(
                    *format,
                    &tags,
                    &["tag", "family", "source", "customers", "rule"],
                    |tag| {
                        vec![
                            tag.tag.clone(),
                            tag.family.to_string(),
                            tag.source.to_owned(),
                            thousands(tag.customers),
                            tag.rule.clone().unwrap_or_default(),
                        ]
                    },
                )?;
            }
        },
        TagCommand::Family { tag, family: f } => {
            let f = family(Some(f))?.context("family")?;
            segments::set_tag_family(store, tenant, tag, f)?;
            println!("tag '{tag}' is in the {f} family");
        }
    }
    Ok(())
}

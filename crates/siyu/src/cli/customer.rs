//! `siyu customer`: a person's data on request (PIPL): export, erase, marketing opt-out,
//! and the audit log of those.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use siyu_store::{MergeReason, Store, Tenant};

use super::lang::pick;
use super::output::{
    Format, Table, count, local_time, local_time_of, percent, print_lines, thousands, yuan,
};
use super::segment::customer_id;
use crate::service::customers::{self, CustomerAnswer};
use crate::service::segments::actor;
use crate::service::{merge, privacy};

#[derive(Debug, Subcommand)]
pub enum CustomerCommand {
    /// The 360 view of a customer: who they are, figures, stage, segments, tags, latest
    /// orders and events, model CLV (money in yuan; JSON as GET /v1/customers/ID, in fen).
    /// A read for work: not recorded in the audit log (an export for the person is).
    Show {
        id: String,
        /// table or json.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// A customer's identities: their ids in the merchant's sources (WeCom external_userid,
    /// unionid, official-account openid, phone), with where each came from.
    Ids {
        id: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Merge two customers who are one person: the one who joined earlier survives (a
    /// tie: the smaller id) and takes the other's orders, events, tags, identities and
    /// referees; the other leaves the pool until an unmerge.
    Merge { a: String, b: String },
    /// Undo the merge of ID: both customers exactly as they were before it, with what
    /// arrived since going to whichever id it named.
    Unmerge { id: String },
    /// Record that A and B are two persons: never merged, automatically or by hand.
    NeverMerge { a: String, b: String },
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
        CustomerCommand::Show { id, format } => {
            let id = customer_id(id)?;
            let answer = customers::view(store, tenant, &id)?
                .ok_or_else(|| anyhow::anyhow!("there is no customer '{id}'"))?;
            match format {
                Format::Json => writeln!(
                    std::io::stdout(),
                    "{}",
                    serde_json::to_string_pretty(&answer)?
                )?,
                Format::Csv => anyhow::bail!(
                    "customer show prints a table or JSON (--format json); for a CSV of many \
                     customers, see segment members"
                ),
                Format::Table => print!("{}", show(tenant, &answer)),
            }
        }
        CustomerCommand::Ids { id, format } => {
            let id = customer_id(id)?;
            if store.customer(tenant, &id).is_err() {
                let into = merge::merges_of(store, tenant, &id)?
                    .into_iter()
                    .find(|m| m.merged == id.as_str() && m.unmerged_at.is_none());
                match into {
                    Some(m) => anyhow::bail!(
                        "customer '{id}' was merged into {} at {}: see siyu customer ids {}",
                        m.survivor,
                        local_time(&tenant.zone, m.at),
                        m.survivor
                    ),
                    None => anyhow::bail!("there is no customer '{id}'"),
                }
            }
            let ids = store.identities_of(tenant, &id)?;
            let merges: Vec<merge::MergeLine> = merge::merges_of(store, tenant, &id)?
                .into_iter()
                .filter(|m| m.survivor == id.as_str() && m.unmerged_at.is_none())
                .collect();
            let rows: Vec<[String; 4]> = ids
                .iter()
                .map(|i| {
                    [
                        i.namespace.clone(),
                        i.value.clone(),
                        i.source.clone(),
                        i.at.to_string(),
                    ]
                })
                .collect();
            match format {
                Format::Json => {
                    let list: Vec<serde_json::Value> = rows
                        .iter()
                        .map(|[n, v, s, a]| {
                            serde_json::json!({"namespace": n, "value": v, "source": s, "at": a})
                        })
                        .collect();
                    writeln!(
                        std::io::stdout(),
                        "{}",
                        serde_json::to_string_pretty(&list)?
                    )?;
                }
                Format::Csv => {
                    let mut w = csv::Writer::from_writer(std::io::stdout());
                    w.write_record(["namespace", "value", "source", "at"])?;
                    for r in &rows {
                        w.write_record(r)?;
                    }
                    w.flush()?;
                }
                Format::Table => {
                    let mut t = Table::new(["namespace", "value", "source", "at"]);
                    for [n, v, s, a] in rows {
                        t.row([n, v, s, local_time_of(&tenant.zone, &a)]);
                    }
                    print!("{}", t.render());
                    for m in &merges {
                        println!(
                            "merged from {} at {} ({})",
                            m.merged,
                            local_time(&tenant.zone, m.at),
                            m.reason
                        );
                    }
                }
            }
        }
        CustomerCommand::Merge { a, b } => {
            let (a, b) = (customer_id(a)?, customer_id(b)?);
            let m = merge::merge(store, tenant, &a, &b, MergeReason::Manual)?;
            println!(
                "{}",
                pick(
                    format!(
                        "merged {} into {}: moved {}, {}, {}, {}, {}",
                        m.merged,
                        m.survivor,
                        count(m.orders, "order"),
                        count(m.events, "event"),
                        count(m.tags, "tag"),
                        count(m.identities, "identity"),
                        count(m.referees, "referee"),
                    ),
                    format!(
                        "已将 {} 合并到 {}：移动了 {} 笔订单、{} 个事件、{} 个标签、{} 个身份、{} 位被推荐人",
                        m.merged,
                        m.survivor,
                        thousands(m.orders),
                        thousands(m.events),
                        thousands(m.tags),
                        thousands(m.identities),
                        thousands(m.referees),
                    )
                )
            );
        }
        CustomerCommand::Unmerge { id } => {
            let u = merge::unmerge(store, tenant, &customer_id(id)?)?;
            println!(
                "{}",
                pick(
                    format!(
                        "unmerged {} from {}: both are as they were before the merge",
                        u.customer, u.survivor
                    ),
                    format!(
                        "已将 {} 从 {} 拆分：两位客户恢复到合并前",
                        u.customer, u.survivor
                    )
                )
            );
        }
        CustomerCommand::NeverMerge { a, b } => {
            let (a, b) = (customer_id(a)?, customer_id(b)?);
            let new = merge::never_merge(store, tenant, &a, &b)?;
            println!(
                "{}",
                pick(
                    format!(
                        "{a} and {b} are two persons: never merged{}",
                        if new { "" } else { " (recorded already)" }
                    ),
                    format!("{a} 与 {b} 是两个人：永不合并")
                )
            );
        }
        CustomerCommand::Export { id, out, by } => {
            let data = privacy::export(store, tenant, &customer_id(id)?, &actor(by.as_deref()))?;
            let json = serde_json::to_string_pretty(&data)?;
            match out {
                Some(path) => {
                    std::fs::write(path, json + "\n")
                        .with_context(|| format!("writing {}", path.display()))?;
                    eprintln!(
                        "exported {}, {}, {} to {}",
                        count(data.orders.len() as u64, "order"),
                        count(data.events.len() as u64, "event"),
                        count(data.tags.len() as u64, "tag"),
                        path.display()
                    );
                }
                None => writeln!(std::io::stdout(), "{json}")?,
            }
        }
        CustomerCommand::Erase { id, by } => {
            let e = privacy::erase(store, tenant, &customer_id(id)?, &actor(by.as_deref()))?;
            println!(
                "{}",
                pick(
                    format!(
                        "erased: {} and {} deleted with the personal attributes; {} \
                         kept under {}; {} now {} that id; the id is refused from now on",
                        count(e.events_erased, "event"),
                        count(e.tags_erased, "tag"),
                        count(e.orders_kept, "order"),
                        e.remains,
                        count(e.referees, "referee"),
                        if e.referees == 1 { "names" } else { "name" }
                    ),
                    format!(
                        "已删除：{} 个事件和 {} 个标签随个人信息一并删除；{} 笔订单保留在 {} 名下；\
                         {} 位被推荐人现在指向该 id；此 id 此后将被拒绝",
                        thousands(e.events_erased),
                        thousands(e.tags_erased),
                        thousands(e.orders_kept),
                        e.remains,
                        thousands(e.referees)
                    )
                )
            );
        }
        CustomerCommand::OptOut { id, undo, by } => {
            let id = customer_id(id)?;
            let changed = privacy::set_opt_out(store, tenant, &id, !undo, &actor(by.as_deref()))?;
            if !changed {
                let state = if *undo { "in to" } else { "out of" };
                let zh_state = if *undo {
                    "已恢复接收"
                } else {
                    "已退订"
                };
                println!(
                    "{}",
                    pick(
                        format!("{id} was opted {state} marketing already: nothing changed"),
                        format!("{id} 之前就{zh_state}营销：没有变化")
                    )
                );
            } else if *undo {
                println!(
                    "{}",
                    pick(
                        format!("{id} is opted in to marketing again"),
                        format!("{id} 已重新接收营销")
                    )
                );
            } else {
                println!(
                    "{}",
                    pick(
                        format!("{id} is opted out of marketing: no marketing segment holds them"),
                        format!("{id} 已退订营销：任何营销分群都不再包含此客户")
                    )
                );
            }
        }
        CustomerCommand::Audit { id, limit, format } => {
            let id = id.as_deref().map(customer_id).transpose()?;
            let lines = privacy::audit_log(store, tenant, id.as_ref(), *limit)?;
            if *format == Format::Table && lines.is_empty() {
                println!("{}", super::lang::tr("the audit log holds nothing yet"));
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

/// The 360 view for people: money in yuan, times in the tenant's zone.
fn show(tenant: &Tenant, a: &CustomerAnswer) -> String {
    use std::fmt::Write as _;
    let at = |t: siyu_core::Timestamp| local_time(&tenant.zone, t);
    let c = &a.customer;
    let mut out = String::new();
    let mut t = Table::new(["customer", c.id.as_str()]).flush_left();
    let mut line = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            t.row([super::lang::tr(k), v]);
        }
    };
    line("name", c.name.clone());
    line("phone", c.phone.clone());
    line("gender", c.gender.map(|g| super::lang::tr(g.as_str())));
    line("birthday", c.birthday.map(|d| d.to_string()));
    line("region", c.region.clone());
    line(
        "channel",
        c.channel.as_ref().map(|ch| ch.as_str().to_owned()),
    );
    line("referrer", c.referrer_id.as_ref().map(ToString::to_string));
    line("joined", Some(at(c.joined_at)));
    line("stage", a.stage.as_deref().map(super::lang::tr));
    line(
        "RFM class",
        a.rfm
            .as_deref()
            .map(|r| match siyu_core::segment::rfm::RfmClass::parse(r) {
                Some(class) if super::lang::zh() => class.chinese().to_owned(),
                _ => r.to_owned(),
            }),
    );
    line(
        "opted out of marketing",
        a.marketing_opt_out_at.map(|t| format!("since {}", at(t))),
    );
    if let Some(f) = &a.profile {
        let p = &f.profile;
        line("orders", Some(thousands(u64::from(p.orders))));
        line("purchase days", Some(thousands(u64::from(p.purchase_days))));
        line("net spend", Some(yuan(p.net_spend)));
        line("AOV", f.aov.map(yuan));
        line("first order", p.first_order_at.map(at));
        line("last order", p.last_order_at.map(at));
        line(
            "mean days between purchases",
            f.mean_interval_days.map(|d| format!("{d:.1}")),
        );
        line("orders with a coupon", Some(percent(f.coupon_share)));
        line("last interaction", p.last_interaction_at.map(at));
        line("left", p.left_at.map(at));
        line("referred", Some(thousands(u64::from(p.referrals))));
        line("revenue of the referred", Some(yuan(p.referral_revenue)));
    }
    if let Some(m) = a.model_clv.as_ref().and_then(|m| m.as_object()) {
        let fen = |k: &str| {
            m.get(k)
                .and_then(serde_json::Value::as_f64)
                .map(|x| yuan(siyu_core::Money::from_fen(x.round() as i64)))
        };
        let number = |k: &str, digits: usize| {
            m.get(k)
                .and_then(serde_json::Value::as_f64)
                .map(|x| format!("{x:.digits$}"))
        };
        line(
            "model CLV",
            fen("clv").map(|v| {
                format!(
                    "{v} over {} weeks from {}",
                    number("horizon_weeks", 0).unwrap_or_default(),
                    m.get("calibration_end")
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or("")
                )
            }),
        );
        line("model: mean order value", fen("monetary_value"));
        line("model: expected spend", fen("expected_spend"));
        line("model: expected purchases", number("expected_purchases", 2));
        line("model: P(alive)", number("p_alive", 3));
    }
    out.push_str(&t.render());
    if !a.segments.is_empty() {
        let _ = writeln!(out, "\nsegments: {}", a.segments.join(", "));
    }
    if !a.tags.is_empty() {
        let mut t = Table::new(["tag", "source", "since"]);
        for tag in &a.tags {
            t.row([tag.tag.clone(), tag.source.clone(), at(tag.since)]);
        }
        let _ = write!(out, "\n{}", t.render());
    }
    if !a.recent_orders.is_empty() {
        let mut t = Table::new(["order", "at", "amount", "discount", "status", "channel"]);
        for o in &a.recent_orders {
            t.row([
                o.order_id.clone(),
                at(o.ordered_at),
                yuan(o.amount),
                yuan(o.discount),
                o.status.to_owned(),
                o.channel.clone().unwrap_or_default(),
            ]);
        }
        let _ = write!(
            out,
            "\n{}\n{}",
            super::lang::tr("latest orders"),
            t.render()
        );
    }
    if !a.recent_events.is_empty() {
        let mut t = Table::new(["event", "at", "type"]);
        for e in &a.recent_events {
            t.row([e.event_id.clone(), at(e.occurred_at), e.kind.clone()]);
        }
        let _ = write!(
            out,
            "\n{}\n{}",
            super::lang::tr("latest events"),
            t.render()
        );
    }
    out
}

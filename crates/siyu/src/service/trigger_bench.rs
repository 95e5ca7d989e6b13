//! `siyu bench triggers`: how long after the write that makes a customer enter a segment
//! the send of a zero-delay step is in the outbox, with the ticker of `siyu serve` running
//! beside the writes on a connection of its own (the target: within 2 s).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use serde_json::json;

use siyu_core::campaign::{Audience, CampaignSpec, Policy, SendChannel, Step, Tier, Trigger};
use siyu_core::segment::rules::Purpose;

use super::{campaigns, delivery, ingest, segments};

#[derive(Debug, Clone, Serialize)]
pub struct TriggerBench {
    pub backend: String,
    pub entries: u64,
    /// From each batch's commit until its send was in the outbox, in milliseconds.
    pub median_ms: f64,
    pub p95_ms: f64,
    pub max_ms: f64,
}

/// Writes `entries` batches one after another, each making one new customer enter the
/// segment, and times each until its send is in the outbox.
pub fn bench(db: &str, entries: u64) -> anyhow::Result<TriggerBench> {
    let mut store = siyu_store::open(db).context("opening the database")?;
    let tenant = store.tenant(&format!("bench-triggers-{}", std::process::id()))?;
    segments::save_rule(
        store.as_mut(),
        &tenant,
        segments::NewRule::segment("club", r#"has_tag("club")"#, Purpose::Analysis),
        "bench",
        false,
    )?;
    delivery::add_webhook(
        store.as_mut(),
        &tenant,
        "bridge",
        "http://127.0.0.1:9/hook",
        None,
        &delivery::Limits::default(),
    )?;
    let spec = CampaignSpec {
        audience: Audience::Segment {
            name: "club".to_owned(),
        },
        tiers: vec![Tier {
            name: "all".to_owned(),
            rule: String::new(),
            offer: None,
        }],
        message: "欢迎".to_owned(),
        channel: SendChannel::Webhook {
            endpoint: "bridge".to_owned(),
        },
        policy: Policy {
            holdout_bp: 0,
            quiet_hours: None,
            ..Policy::default()
        },
        start_at: None,
        trigger: Some(Trigger::Enter {
            segment: "club".to_owned(),
        }),
        steps: vec![Step {
            delay_secs: 0,
            tier: None,
        }],
    };
    campaigns::create_campaign(store.as_mut(), &tenant, "welcome", &spec, "bench")?;
    let stop = Arc::new(AtomicBool::new(false));
    let ticker = campaigns::start_ticker(db, Arc::clone(&stop))?;
    let settings = segments::rule_settings(store.as_mut(), &tenant)?;
    let mut took = Vec::with_capacity(entries as usize);
    let outcome = (|| -> anyhow::Result<()> {
        for i in 0..entries {
            let item = json!({"type": "identify", "message_id": format!("m{i}"),
                              "customer_id": format!("c{i}"), "traits": {"tags": ["club"]}});
            let checked = ingest::parse_item(&item, &tenant.zone).map_err(|e| (None, e));
            ingest::write_batch(store.as_mut(), &tenant, &settings, vec![checked])?;
            let written = Instant::now();
            let want = i as usize + 1;
            loop {
                let sent = store.outbox_rows(&tenant, None, want + 1)?.len();
                if sent >= want {
                    break;
                }
                if written.elapsed() > Duration::from_secs(60) {
                    anyhow::bail!("entry {i}: no send in the outbox after 60 s");
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            took.push(written.elapsed().as_secs_f64() * 1000.0);
        }
        Ok(())
    })();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = ticker.join();
    outcome?;
    took.sort_by(f64::total_cmp);
    let at = |q: f64| took[((took.len() - 1) as f64 * q).round() as usize];
    Ok(TriggerBench {
        backend: if db.starts_with("postgres") {
            "PostgreSQL".to_owned()
        } else {
            "SQLite".to_owned()
        },
        entries,
        median_ms: at(0.5),
        p95_ms: at(0.95),
        max_ms: at(1.0),
    })
}

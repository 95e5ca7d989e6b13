//! WeCom (企业微信) external contacts as the API returns them, imported: each contact a
//! customer (nickname, gender, the phones staff noted, the tags staff gave, when they were
//! first added, and where from), each staff member's adding of them a `wecom_add` event.
//! The source is the `state` of the 联系我 QR code the customer scanned, mapped to a
//! channel through the merchant's table of channel codes.
//!
//! The file is read whole before anything is written and turned into the canonical
//! customers and events rows, which the import path then writes with everything it
//! guarantees (profiles, segments, erasure). Re-importing a file changes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::Value;

use siyu_core::channel::Channel;
use siyu_core::customer::normalise_phone;
use siyu_core::import::Kind;
use siyu_core::{CustomerId, Timestamp};
use siyu_store::{Store, Tenant};

use super::import::{ImportOptions, ImportReport, MAX_LISTED, import_file};

/// The settings key prefix under which a tenant's channel codes are kept.
const CODE_PREFIX: &str = "channel_code.";
/// WeCom limits a 联系我 `state` to 30 characters.
pub const MAX_CODE_CHARS: usize = 30;
/// The most channel codes a tenant keeps.
pub const MAX_CODES: usize = 1_000;
/// The largest line (one contact, or one page of 100) read.
const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// Sets the channel a 联系我 code (`state`) stands for.
pub fn set_channel_code(
    store: &mut dyn Store,
    tenant: &Tenant,
    code: &str,
    channel: &str,
) -> anyhow::Result<Channel> {
    let code = code.trim();
    let valid = !code.is_empty()
        && code.chars().count() <= MAX_CODE_CHARS
        && code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !valid {
        bail!(
            "'{code}' is not a channel code (letters, digits, '_', '-' or '.', up to {MAX_CODE_CHARS}, as WeCom's state)"
        );
    }
    let channel = Channel::parse(channel)?;
    let codes = channel_codes(store, tenant)?;
    if codes.len() >= MAX_CODES && !codes.contains_key(code) {
        bail!("the tenant keeps {MAX_CODES} channel codes already: remove one first");
    }
    store.set_setting(tenant, &format!("{CODE_PREFIX}{code}"), channel.as_str())?;
    Ok(channel)
}

/// The tenant's channel codes: code → channel.
pub fn channel_codes(
    store: &mut dyn Store,
    tenant: &Tenant,
) -> anyhow::Result<BTreeMap<String, String>> {
    Ok(store
        .settings(tenant)
        .context("reading the tenant's settings")?
        .into_iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(CODE_PREFIX)?.to_owned(), v)))
        .collect())
}

/// What importing a contacts file did.
#[derive(Debug, Serialize)]
pub struct ContactsReport {
    pub file: PathBuf,
    pub contacts: u64,
    pub rejected: u64,
    /// Codes (`state`) the tenant has no channel for, with how many contacts carried each.
    pub unmapped_codes: BTreeMap<String, u64>,
    pub customers: ImportReport,
    pub events: ImportReport,
}

impl fmt::Display for ContactsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::wording::thousands as n;
        write!(
            f,
            "imported contacts from {}: {} contacts: customers {} inserted, {} updated, {} unchanged; {} adds by staff recorded ({} already known)",
            self.file.display(),
            n(self.contacts),
            n(self.customers.inserted),
            n(self.customers.updated),
            n(self.customers.unchanged),
            n(self.events.inserted),
            n(self.events.unchanged),
        )?;
        if self.rejected > 0 {
            write!(f, "; {} contacts rejected", n(self.rejected))?;
        }
        if !self.unmapped_codes.is_empty() {
            let codes: Vec<String> = self
                .unmapped_codes
                .iter()
                .map(|(code, count)| format!("{code} ({count})"))
                .collect();
            write!(
                f,
                "; channel codes with no channel (set with `siyu channel-code set CODE CHANNEL`): {}",
                codes.join(", ")
            )?;
        }
        Ok(())
    }
}

/// One contact as the canonical rows it becomes.
struct Contact {
    id: CustomerId,
    name: Option<String>,
    gender: Option<&'static str>,
    phone: Option<String>,
    joined_at: Option<Timestamp>,
    channel: Option<String>,
    tags: BTreeSet<String>,
    /// (staff userid, when, add_way, state).
    adds: Vec<(String, Timestamp, Option<i64>, Option<String>)>,
}

/// Imports a file of WeCom external contacts: `externalcontact/get` answers
/// (`{external_contact, follow_user}`) or `batch/get_by_user` pages
/// (`{external_contact_list: [{external_contact, follow_info}]}`), one JSON value per line
/// or one value (an object or an array of them) in the whole file.
pub fn import_contacts(
    store: &mut dyn Store,
    tenant: &Tenant,
    path: &Path,
    options: ImportOptions,
) -> anyhow::Result<ContactsReport> {
    let codes = channel_codes(store, tenant)?;
    let values = read_values(path)?;
    let (mut contacts, mut problems) = (Vec::new(), Vec::new());
    for (line, value) in values {
        for item in items(&value) {
            match contact(item, &codes) {
                Ok(c) => contacts.push(c),
                Err(reason) => problems.push(format!("{}:{line}: {reason}", path.display())),
            }
        }
    }
    if !problems.is_empty() && !options.skip_invalid {
        let listed: Vec<&str> = problems
            .iter()
            .take(MAX_LISTED)
            .map(String::as_str)
            .collect();
        bail!(
            "{} has {} invalid contacts; nothing was imported (pass --skip-invalid to import the others)\n  {}",
            path.display(),
            problems.len(),
            listed.join("\n  ")
        );
    }
    for p in problems.iter().take(MAX_LISTED) {
        tracing::warn!("left out: {p}");
    }
    // Contacts named twice (a page overlapping another): the later one wins.
    let mut by_id: BTreeMap<String, Contact> = BTreeMap::new();
    for c in contacts {
        by_id.insert(c.id.to_string(), c);
    }
    let mut unmapped: BTreeMap<String, u64> = BTreeMap::new();
    for c in by_id.values() {
        if c.channel.is_none()
            && let Some(code) = c.adds.iter().find_map(|a| a.3.as_ref())
        {
            *unmapped.entry(code.clone()).or_default() += 1;
        }
    }
    let dir = tempfile::tempdir().context("creating a scratch directory")?;
    let customers_path = dir.path().join("contacts.customers.csv");
    let events_path = dir.path().join("contacts.events.csv");
    write_rows(&customers_path, &events_path, by_id.values())?;
    let options = ImportOptions {
        skip_invalid: false,
        ..options
    };
    let customers = import_file(store, tenant, Kind::Customers, &customers_path, options)
        .context("writing the contacts as customers")?;
    let events = import_file(store, tenant, Kind::Events, &events_path, options)
        .context("writing the staff's adds as events")?;
    Ok(ContactsReport {
        file: path.to_owned(),
        contacts: by_id.len() as u64,
        rejected: problems.len() as u64,
        unmapped_codes: unmapped,
        customers,
        events,
    })
}

/// The JSON values of the file with the line each starts on: one per line, or the whole
/// file as one value.
fn read_values(path: &Path) -> anyhow::Result<Vec<(u64, Value)>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut reader = BufReader::new(file);
    let mut values = Vec::new();
    let mut buf = String::new();
    let mut line = 0u64;
    let mut whole = String::new();
    loop {
        buf.clear();
        let n = reader
            .read_line(&mut buf)
            .with_context(|| format!("{}:{}: reading", path.display(), line + 1))?;
        if n == 0 {
            break;
        }
        line += 1;
        if buf.len() > MAX_LINE_BYTES {
            bail!(
                "{}:{line}: a line of more than {MAX_LINE_BYTES} bytes",
                path.display()
            );
        }
        whole.push_str(&buf);
        if whole.len() > 4 * MAX_LINE_BYTES {
            bail!(
                "{}: more than {} bytes in one JSON value",
                path.display(),
                4 * MAX_LINE_BYTES
            );
        }
        let text = buf.trim().trim_start_matches('\u{feff}');
        if text.is_empty() {
            continue;
        }
        if let Ok(value) = serde_json::from_str::<Value>(text) {
            values.push((line, value));
            whole.clear();
        }
    }
    let rest = whole.trim().trim_start_matches('\u{feff}');
    if !rest.is_empty() {
        if !values.is_empty() {
            bail!(
                "{}: a line after line {} is not JSON (expected one JSON value per line)",
                path.display(),
                values.last().map_or(0, |(l, _)| *l)
            );
        }
        // The whole file is one value (pretty-printed).
        let value: Value = serde_json::from_str(rest)
            .map_err(|e| anyhow::anyhow!("{}:{}: not JSON: {e}", path.display(), e.line()))?;
        values.push((1, value));
    }
    if values.is_empty() {
        bail!("{}: the file is empty", path.display());
    }
    Ok(values)
}

/// The contacts a value holds: `{external_contact, follow_user}`, a page
/// (`external_contact_list`), or an array of either.
fn items(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(values) => values.iter().flat_map(items).collect(),
        Value::Object(o) => match o.get("external_contact_list") {
            Some(Value::Array(list)) => list.iter().collect(),
            _ => vec![value],
        },
        _ => vec![value],
    }
}

fn contact(item: &Value, codes: &BTreeMap<String, String>) -> Result<Contact, String> {
    let Some(ext) = item.get("external_contact") else {
        return Err("external_contact: is missing".to_owned());
    };
    let id_text = ext
        .get("external_userid")
        .and_then(Value::as_str)
        .ok_or("external_contact.external_userid: is missing")?;
    let id = CustomerId::parse_input(id_text)
        .map_err(|e| format!("external_contact.external_userid: {e}"))?;
    let name = ext
        .get("name")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| n.chars().take(100).collect::<String>());
    let gender = match ext.get("gender").and_then(Value::as_i64) {
        Some(1) => Some("male"),
        Some(2) => Some("female"),
        _ => None,
    };
    // `follow_user` (externalcontact/get) or `follow_info` (batch/get_by_user).
    let follows: Vec<&Value> = match (item.get("follow_user"), item.get("follow_info")) {
        (Some(Value::Array(list)), _) => list.iter().collect(),
        (_, Some(info @ Value::Object(_))) => vec![info],
        _ => Vec::new(),
    };
    let mut adds = Vec::new();
    let mut tags = BTreeSet::new();
    let mut phone = None;
    for (i, f) in follows.iter().enumerate() {
        let staff = f
            .get("userid")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("follow_user[{i}].userid: is missing"))?;
        let at = f
            .get("createtime")
            .and_then(Value::as_i64)
            .and_then(|s| Timestamp::from_second(s).ok())
            .filter(|t| (siyu_core::time::EARLIEST..siyu_core::time::END_OF_TIMES).contains(t))
            .ok_or_else(|| format!("follow_user[{i}].createtime: is not a time in seconds"))?;
        let state = f
            .get("state")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        adds.push((
            staff.to_owned(),
            at,
            f.get("add_way").and_then(Value::as_i64),
            state,
        ));
        for tag in f
            .get("tags")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(name) = tag.get("tag_name").and_then(Value::as_str) {
                let name = name.trim();
                if !name.is_empty() && name.chars().count() <= 64 && !name.contains([';', '；']) {
                    tags.insert(name.to_owned());
                }
            }
        }
        if phone.is_none() {
            phone = f
                .get("remark_mobiles")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .find_map(normalise_phone);
        }
    }
    adds.sort_by_key(|a| a.1);
    let joined_at = adds.first().map(|a| a.1);
    // The source: the first add's code, through the merchant's table; added from a group
    // chat, the group; otherwise WeCom itself.
    let channel = match adds.first() {
        Some((_, _, _, Some(code))) => codes.get(code).cloned(),
        Some((_, _, Some(4), None)) => Some("wechat_group".to_owned()),
        Some(_) => Some("wecom".to_owned()),
        None => None,
    };
    Ok(Contact {
        id,
        name,
        gender,
        phone,
        joined_at,
        channel,
        tags,
        adds,
    })
}

/// The contacts as a canonical customers file and an events file.
fn write_rows<'c>(
    customers: &Path,
    events: &Path,
    contacts: impl Iterator<Item = &'c Contact>,
) -> anyhow::Result<()> {
    let mut c = csv::Writer::from_path(customers)?;
    c.write_record([
        "customer_id",
        "name",
        "phone",
        "gender",
        "channel",
        "joined_at",
        "tags",
    ])?;
    let mut e = csv::Writer::from_path(events)?;
    e.write_record([
        "event_id",
        "customer_id",
        "type",
        "occurred_at",
        "properties",
    ])?;
    for contact in contacts {
        let tags: Vec<&str> = contact.tags.iter().map(String::as_str).collect();
        c.write_record([
            contact.id.as_str(),
            contact.name.as_deref().unwrap_or(""),
            contact.phone.as_deref().unwrap_or(""),
            contact.gender.unwrap_or(""),
            contact.channel.as_deref().unwrap_or(""),
            &contact.joined_at.map(|t| t.to_string()).unwrap_or_default(),
            &tags.join(";"),
        ])?;
        for (staff, at, add_way, state) in &contact.adds {
            let mut properties = serde_json::Map::new();
            properties.insert("staff".into(), Value::from(staff.as_str()));
            if let Some(way) = add_way {
                properties.insert("add_way".into(), Value::from(*way));
            }
            if let Some(state) = state {
                properties.insert("state".into(), Value::from(state.as_str()));
            }
            e.write_record([
                format!("wecom_add:{}:{staff}", contact.id).as_str(),
                contact.id.as_str(),
                "wecom_add",
                &at.to_string(),
                &Value::Object(properties).to_string(),
            ])?;
        }
    }
    c.flush()?;
    e.flush()?;
    Ok(())
}

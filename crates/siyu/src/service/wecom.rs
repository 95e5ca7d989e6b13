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
use siyu_store::{Identity, Store, Tenant};

use super::import::{ImportOptions, ImportReport, MAX_LISTED, import_file};

/// The settings key prefix under which a tenant's channel codes are kept.
const CODE_PREFIX: &str = "channel_code.";
/// WeCom limits a 联系我 `state` to 30 characters.
pub const MAX_CODE_CHARS: usize = 30;
/// The most channel codes a tenant keeps.
pub const MAX_CODES: usize = 1_000;
/// The longest staff userid taken (WeCom's own limit).
const MAX_STAFF_ID: usize = 64;
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

/// Keeps the secrets of the tenant's WeCom callback (see `http::wecom`), checked first.
pub fn set_callback(
    store: &mut dyn Store,
    tenant: &Tenant,
    token: &str,
    aes_key: &str,
    corp_id: &str,
) -> anyhow::Result<()> {
    let token = token.trim();
    if !(3..=32).contains(&token.len()) || !token.chars().all(|c| c.is_ascii_alphanumeric()) {
        bail!("--token: WeCom's tokens are 3 to 32 letters or digits");
    }
    crate::http::wecom_aes_key(aes_key).map_err(|e| anyhow::anyhow!("--aes-key: {e}"))?;
    let corp_id = corp_id.trim();
    if corp_id.is_empty()
        || corp_id.len() > 64
        || !corp_id.chars().all(|c| c.is_ascii_alphanumeric())
    {
        bail!("--corp-id: a corp id is letters and digits (ww…), up to 64");
    }
    store.set_setting(tenant, "wecom.token", token)?;
    store.set_setting(tenant, "wecom.aes_key", aes_key.trim())?;
    store.set_setting(tenant, "wecom.corp_id", corp_id)?;
    Ok(())
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
    /// contacts, groups or followers.
    pub what: &'static str,
    pub file: PathBuf,
    /// The people the file names.
    pub contacts: u64,
    pub rejected: u64,
    /// Where the rejected records were written with their reasons (`--skip-invalid`).
    pub rejects_file: Option<PathBuf>,
    /// Codes (`state`) the tenant has no channel for, with how many contacts carried each.
    pub unmapped_codes: BTreeMap<String, u64>,
    /// Identities recorded new (an id, unionid or phone another customer holds stays
    /// theirs: one person across ids is joined by the merge, to come).
    pub identities: u64,
    pub customers: ImportReport,
    pub events: ImportReport,
}

impl fmt::Display for ContactsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::wording::thousands as n;
        write!(
            f,
            "imported {} from {}: {} people: customers {} inserted, {} updated, {} unchanged; {} events recorded ({} already known)",
            self.what,
            self.file.display(),
            n(self.contacts),
            n(self.customers.inserted),
            n(self.customers.updated),
            n(self.customers.unchanged),
            n(self.events.inserted),
            n(self.events.unchanged),
        )?;
        if self.rejected > 0 {
            write!(f, "; {} {} rejected", n(self.rejected), self.what)?;
            if let Some(path) = &self.rejects_file {
                write!(f, " (written with their reasons to {})", path.display())?;
            }
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

/// One person of a WeCom or WeChat source as the canonical rows they become.
struct Contact {
    id: CustomerId,
    /// Whether the source says who they are (a customers row); group members only
    /// appear through their events.
    attributes: bool,
    name: Option<String>,
    gender: Option<&'static str>,
    phone: Option<String>,
    joined_at: Option<Timestamp>,
    channel: Option<String>,
    /// The channel code (a 联系我 `state`, a QR code's scene) their source names, kept when
    /// the tenant maps it to no channel.
    code: Option<String>,
    tags: BTreeSet<String>,
    events: Vec<SourceEvent>,
    /// Their ids in the sources: (namespace, value), see DESIGN.md "Identity".
    ids: Vec<(&'static str, String)>,
}

/// An event a source records about a person: its id makes a re-import change nothing.
struct SourceEvent {
    id: String,
    kind: &'static str,
    at: Timestamp,
    properties: serde_json::Map<String, Value>,
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
    import_source(store, tenant, path, options, Source::Contacts)
}

/// The WeCom and WeChat sources `siyu import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// WeCom external contacts (`externalcontact/get`, `batch/get_by_user`).
    Contacts,
    /// WeCom customer groups (`groupchat/get`).
    Groups,
    /// Official-account users (`user/info`, `user/info/batchget`).
    Followers,
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Source::Contacts => "contacts",
            Source::Groups => "groups",
            Source::Followers => "followers",
        }
    }
}

/// Imports a file of one of the sources (see [`Source`]).
pub fn import_source(
    store: &mut dyn Store,
    tenant: &Tenant,
    path: &Path,
    options: ImportOptions,
    source: Source,
) -> anyhow::Result<ContactsReport> {
    let codes = channel_codes(store, tenant)?;
    let (mut contacts, mut rejects) = (Vec::new(), JsonRejects::new(path));
    // A groups file is a snapshot: each chat it holds, with its external members.
    let mut snapshot: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for_each_value(path, &mut |line, value| {
        let (list, one) = match source {
            Source::Contacts => ("external_contact_list", ""),
            Source::Groups => ("", "group_chat"),
            Source::Followers => ("user_info_list", ""),
        };
        for item in records(&value, list, one) {
            let found = match source {
                Source::Contacts => contact(item, &codes).map(|c| vec![c]),
                Source::Groups => group(item),
                Source::Followers => follower(item, &codes).map(|c| c.into_iter().collect()),
            };
            match found {
                Ok(c) => {
                    if source == Source::Groups
                        && let Some(chat) = item.get("chat_id").and_then(Value::as_str)
                    {
                        snapshot
                            .entry(chat.to_owned())
                            .or_default()
                            .extend(c.iter().map(|p| p.id.to_string()));
                    }
                    contacts.extend(c);
                }
                Err(reason) => rejects.push(line, reason, item),
            }
        }
        Ok(())
    })?;
    let what = source.name();
    rejects.refuse_unless(options.skip_invalid, what)?;
    if source == Source::Groups {
        contacts.extend(leavers(store, tenant, &snapshot)?);
    }
    // People named twice (a page overlapping another, a member of two groups): the
    // later attributes win, and every event is kept.
    let mut by_id: BTreeMap<String, Contact> = BTreeMap::new();
    for c in contacts {
        match by_id.get_mut(c.id.as_str()) {
            Some(known) if !c.attributes => known.events.extend(c.events),
            Some(known) => {
                let mut c = c;
                if !known.attributes {
                    c.events.append(&mut known.events);
                }
                *known = c;
            }
            None => {
                by_id.insert(c.id.to_string(), c);
            }
        }
    }
    if source == Source::Followers {
        // An unsubscribed user the pool never knew is nobody to record.
        let mut unknown = Vec::new();
        for (id, c) in &by_id {
            if !c.attributes && store.customer(tenant, &c.id).is_err() {
                unknown.push(id.clone());
            }
        }
        for id in unknown {
            by_id.remove(&id);
        }
    }
    let mut unmapped: BTreeMap<String, u64> = BTreeMap::new();
    for c in by_id.values() {
        if c.channel.is_none()
            && let Some(code) = &c.code
        {
            *unmapped.entry(code.clone()).or_default() += 1;
        }
    }
    let dir = tempfile::tempdir().context("creating a scratch directory")?;
    let customers_path = dir.path().join(format!("{what}.customers.csv"));
    let events_path = dir.path().join(format!("{what}.events.csv"));
    write_rows(&customers_path, &events_path, by_id.values())?;
    let options = ImportOptions {
        skip_invalid: false,
        ..options
    };
    let customers = import_file(store, tenant, Kind::Customers, &customers_path, options)
        .with_context(|| format!("writing the {what} as customers"))?;
    let events = import_file(store, tenant, Kind::Events, &events_path, options)
        .with_context(|| format!("writing the {what}' events"))?;
    let source = format!("{what} {}", path.display());
    let at = Timestamp::now();
    let ids: Vec<(CustomerId, Identity)> = by_id
        .values()
        .flat_map(|c| {
            c.ids.iter().map(|(namespace, value)| {
                let identity = Identity {
                    namespace: (*namespace).to_owned(),
                    value: value.clone(),
                    source: source.clone(),
                    at,
                };
                (c.id.clone(), identity)
            })
        })
        .collect();
    let identities = super::merge::record_identities(store, tenant, ids)
        .context("recording the identities")?
        .added;
    Ok(ContactsReport {
        what,
        file: path.to_owned(),
        contacts: by_id.len() as u64,
        rejected: rejects.len(),
        rejects_file: rejects.write()?,
        unmapped_codes: unmapped,
        identities,
        customers,
        events,
    })
}

/// Hands over the JSON values of the file, each with the line it starts on, one at a time
/// (a file of a million contacts is never held whole): one value per line, or the whole
/// file as one value (pretty-printed), of at most 64 MiB. A line is at most 16 MiB.
pub(crate) fn for_each_value(
    path: &Path,
    each: &mut dyn FnMut(u64, Value) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut reader = BufReader::new(file);
    let mut buf = String::new();
    let (mut line, mut values, mut last) = (0u64, 0u64, 0u64);
    let mut whole = String::new();
    loop {
        buf.clear();
        let n = (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
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
        let text = buf.trim().trim_start_matches('\u{feff}');
        if whole.is_empty()
            && !text.is_empty()
            && let Ok(value) = serde_json::from_str::<Value>(text)
        {
            values += 1;
            last = line;
            each(line, value)?;
            continue;
        }
        if values > 0 && !text.is_empty() {
            bail!(
                "{}:{line}: not JSON (after line {last}, which was: one JSON value per line)",
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
    }
    let rest = whole.trim().trim_start_matches('\u{feff}');
    if !rest.is_empty() {
        // The whole file is one value (pretty-printed).
        let value: Value = serde_json::from_str(rest)
            .map_err(|e| anyhow::anyhow!("{}:{}: not JSON: {e}", path.display(), e.line()))?;
        values += 1;
        each(1, value)?;
    }
    if values == 0 {
        bail!("{}: the file is empty", path.display());
    }
    Ok(())
}

/// The records a value holds: one, a page of them under `list` (`external_contact_list`,
/// `user_info_list`) or one under `one` (`group_chat`), or an array of any of these.
fn records<'v>(value: &'v Value, list: &str, one: &str) -> Vec<&'v Value> {
    match value {
        Value::Array(values) => values.iter().flat_map(|v| records(v, list, one)).collect(),
        Value::Object(o) => match (o.get(list), o.get(one)) {
            (Some(Value::Array(items)), _) => items.iter().collect(),
            (_, Some(record)) => vec![record],
            _ => vec![value],
        },
        _ => vec![value],
    }
}

/// The records of a JSON source that were not valid, each with the line its value starts
/// on and the reason. A strict import refuses the file for them; with `--skip-invalid`
/// they are written, whole and with their reasons, to `FILE.rejects.jsonl` beside it.
pub(crate) struct JsonRejects<'p> {
    path: &'p Path,
    rejected: Vec<(u64, String, Value)>,
}

impl<'p> JsonRejects<'p> {
    pub(crate) fn new(path: &'p Path) -> JsonRejects<'p> {
        JsonRejects {
            path,
            rejected: Vec::new(),
        }
    }

    /// Notes `record` of the value on `line` as invalid for `reason`.
    pub(crate) fn push(&mut self, line: u64, reason: String, record: &Value) {
        self.rejected.push((line, reason, record.clone()));
    }

    pub(crate) fn len(&self) -> u64 {
        self.rejected.len() as u64
    }

    /// With rejected records and no `skip_invalid`: the error that refuses the file (its
    /// `what`: contacts, orders, …), naming the first problems. Nothing was imported.
    pub(crate) fn refuse_unless(&self, skip_invalid: bool, what: &str) -> anyhow::Result<()> {
        if self.rejected.is_empty() || skip_invalid {
            return Ok(());
        }
        let listed: Vec<String> = self
            .rejected
            .iter()
            .take(MAX_LISTED)
            .map(|(line, reason, _)| format!("{}:{line}: {reason}", self.path.display()))
            .collect();
        bail!(
            "{} has {} invalid {what}; nothing was imported (pass --skip-invalid to import the others)\n  {}",
            self.path.display(),
            self.rejected.len(),
            listed.join("\n  ")
        )
    }

    /// Writes the rejected records to `FILE.rejects.jsonl` (one `{"line", "reason",
    /// "record"}` per line) and says where; with none, removes a stale one from an
    /// earlier run.
    pub(crate) fn write(&self) -> anyhow::Result<Option<PathBuf>> {
        use std::io::Write as _;
        let path = json_rejects_path(self.path);
        if self.rejected.is_empty() {
            if path.exists() {
                std::fs::remove_file(&path)
                    .with_context(|| format!("removing the stale {}", path.display()))?;
            }
            return Ok(None);
        }
        let file =
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut out = std::io::BufWriter::new(file);
        for (line, reason, record) in &self.rejected {
            let row = serde_json::json!({"line": line, "reason": reason, "record": record});
            serde_json::to_writer(&mut out, &row)?;
            out.write_all(b"\n")?;
        }
        out.flush()
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(Some(path))
    }
}

/// Where the rejected records of the JSON source `file` are written.
pub fn json_rejects_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".rejects.jsonl");
    PathBuf::from(name)
}

/// A field's trimmed text, when not empty.
fn trimmed(value: &Value, field: &str) -> Option<String> {
    value
        .get(field)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// A field's text, when it is a usable id (not empty, not masked or a placeholder, at most
/// 128 characters).
fn text_of(value: &Value, field: &str) -> Option<String> {
    trimmed(value, field).filter(|s| s.len() <= 128 && !siyu_core::import::is_placeholder(s))
}

/// A time in seconds since the epoch, as the APIs give them.
fn seconds(value: Option<&Value>, field: &str) -> Result<Timestamp, String> {
    value
        .and_then(Value::as_i64)
        .and_then(|s| Timestamp::from_second(s).ok())
        .filter(|t| (siyu_core::time::EARLIEST..siyu_core::time::END_OF_TIMES).contains(t))
        .ok_or_else(|| format!("{field}: is not a time in seconds"))
}

/// A person the source shows only through an event (a group's member, an unfollow).
fn seen(id: CustomerId, event: SourceEvent, ids: Vec<(&'static str, String)>) -> Contact {
    Contact {
        ids,
        id,
        attributes: false,
        name: None,
        gender: None,
        phone: None,
        joined_at: None,
        channel: None,
        code: None,
        tags: BTreeSet::new(),
        events: vec![event],
    }
}

/// The members a snapshot of groups no longer holds: a customer whose latest event in a
/// chat of the snapshot is a `group_join` and who is not among its members now has left
/// it, a `group_leave` event at the import. Its id names the join it ends, so importing
/// the same snapshot again adds nothing, and a later join and leave are events of their
/// own. (WeCom's callbacks say when a member leaves; a snapshot only says that they did.)
fn leavers(
    store: &mut dyn Store,
    tenant: &Tenant,
    snapshot: &BTreeMap<String, BTreeSet<String>>,
) -> anyhow::Result<Vec<Contact>> {
    if snapshot.is_empty() {
        return Ok(Vec::new());
    }
    // (chat, customer) → the latest group event: (when, whether a join).
    let mut latest: BTreeMap<(String, String), (Timestamp, bool)> = BTreeMap::new();
    store
        .scan_events(tenant, &mut |e| {
            let join = match e.kind.as_str() {
                "group_join" => true,
                "group_leave" => false,
                _ => return,
            };
            let Ok(Value::Object(p)) = serde_json::from_str::<Value>(&e.properties) else {
                return;
            };
            let Some(chat) = p.get("chat_id").and_then(Value::as_str) else {
                return;
            };
            if !snapshot.contains_key(chat) {
                return;
            }
            let key = (chat.to_owned(), e.customer_id.to_string());
            // Later wins; at one instant a leave ends the join.
            let newer = latest
                .get(&key)
                .is_none_or(|&(at, was_join)| (e.occurred_at, !join) > (at, !was_join));
            if newer {
                latest.insert(key, (e.occurred_at, join));
            }
        })
        .context("reading the group events")?;
    let now = Timestamp::now();
    let mut out = Vec::new();
    for ((chat, customer), (joined, is_join)) in latest {
        if !is_join || snapshot[&chat].contains(&customer) {
            continue;
        }
        let id = CustomerId::parse(&customer)?;
        let mut properties = serde_json::Map::new();
        properties.insert("chat_id".into(), Value::from(chat.as_str()));
        properties.insert("seen".into(), Value::from("snapshot"));
        let event = SourceEvent {
            id: format!("group_leave:{chat}:{id}:{}", joined.as_second()),
            kind: "group_leave",
            at: now,
            properties,
        };
        out.push(seen(id, event, Vec::new()));
    }
    Ok(out)
}

/// A customer group: each external member (`type` 2) joined it at `join_time`, a
/// `group_join` event of theirs. Staff members are not customers.
fn group(chat: &Value) -> Result<Vec<Contact>, String> {
    let chat_id = chat
        .get("chat_id")
        .and_then(Value::as_str)
        .filter(|c| !c.trim().is_empty() && c.len() <= 64)
        .ok_or("group_chat.chat_id: is missing")?;
    let name = chat.get("name").and_then(Value::as_str).unwrap_or("");
    let members = chat
        .get("member_list")
        .and_then(Value::as_array)
        .ok_or("group_chat.member_list: is missing")?;
    let mut people = Vec::new();
    for (i, m) in members.iter().enumerate() {
        if m.get("type").and_then(Value::as_i64) != Some(2) {
            continue;
        }
        let user = m
            .get("userid")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("member_list[{i}].userid: is missing"))?;
        let id =
            CustomerId::parse_input(user).map_err(|e| format!("member_list[{i}].userid: {e}"))?;
        let at = seconds(m.get("join_time"), &format!("member_list[{i}].join_time"))?;
        let mut properties = serde_json::Map::new();
        properties.insert("chat_id".into(), Value::from(chat_id));
        if !name.is_empty() {
            properties.insert(
                "chat_name".into(),
                Value::from(name.chars().take(100).collect::<String>()),
            );
        }
        if let Some(scene) = m.get("join_scene").and_then(Value::as_i64) {
            properties.insert("join_scene".into(), Value::from(scene));
        }
        let event = SourceEvent {
            id: format!("group_join:{chat_id}:{id}:{}", at.as_second()),
            kind: "group_join",
            at,
            properties,
        };
        let mut ids = vec![("wecom", id.to_string())];
        if let Some(union) = text_of(m, "unionid") {
            ids.push(("unionid", union));
        }
        people.push(seen(id, event, ids));
    }
    Ok(people)
}

/// The channel a follower's `subscribe_scene` names, when it names one without a code.
fn scene_channel(scene: &str) -> Option<&'static str> {
    Some(match scene {
        "ADD_SCENE_SEARCH"
        | "ADD_SCENE_PROFILE_CARD"
        | "ADD_SCENE_PROFILE_LINK"
        | "ADD_SCENE_PROFILE_ITEM"
        | "ADD_SCENE_ACCOUNT_MIGRATION" => "official_account",
        "ADD_SCENE_PAID" | "ADD_SCENE_WECHAT_ADVERTISEMENT" => "wechat_ads",
        "ADD_SCENE_QR_CODE" => "official_account_qr",
        _ => return None,
    })
}

/// An official-account user: subscribed, a customer who joined at `subscribe_time`
/// (their latest subscription) from the scene's channel (a QR code's `qr_scene_str`
/// through the channel codes), tagged with their tag ids, and an `oa_follow` event then;
/// unsubscribed (`subscribe` 0, nothing else returned), an `unfollow` event of a
/// customer the pool knows.
fn follower(user: &Value, codes: &BTreeMap<String, String>) -> Result<Option<Contact>, String> {
    let openid = user
        .get("openid")
        .and_then(Value::as_str)
        .ok_or("openid: is missing")?;
    let id = CustomerId::parse_input(openid).map_err(|e| format!("openid: {e}"))?;
    match user.get("subscribe").and_then(Value::as_i64) {
        Some(1) => {}
        Some(0) => {
            // WeChat tells no time: the unfollow is dated when it is first seen.
            let event = SourceEvent {
                id: format!("oa_unfollow:{id}"),
                kind: "unfollow",
                at: Timestamp::now(),
                properties: serde_json::Map::new(),
            };
            let ids = vec![("oa", id.to_string())];
            return Ok(Some(seen(id, event, ids)));
        }
        _ => return Err("subscribe: is not 0 or 1".to_owned()),
    }
    let at = seconds(user.get("subscribe_time"), "subscribe_time")?;
    let scene = user
        .get("subscribe_scene")
        .and_then(Value::as_str)
        .unwrap_or("");
    let code = trimmed(user, "qr_scene_str");
    let channel = match &code {
        Some(code) => codes.get(code).cloned(),
        None => scene_channel(scene).map(str::to_owned),
    };
    let tags = user
        .get("tagid_list")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_i64)
        .map(|t| format!("oa_tag_{t}"))
        .collect();
    let mut properties = serde_json::Map::new();
    if !scene.is_empty() {
        properties.insert("scene".into(), Value::from(scene));
    }
    if let Some(code) = &code {
        properties.insert("qr_scene_str".into(), Value::from(code.as_str()));
    }
    let mut ids = vec![("oa", id.to_string())];
    if let Some(union) = text_of(user, "unionid") {
        ids.push(("unionid", union));
    }
    Ok(Some(Contact {
        ids,
        id: id.clone(),
        attributes: true,
        name: None,
        gender: None,
        phone: None,
        joined_at: Some(at),
        channel,
        code,
        tags,
        events: vec![SourceEvent {
            id: format!("oa_follow:{id}:{}", at.as_second()),
            kind: "oa_follow",
            at,
            properties,
        }],
    }))
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
        // WeCom's userids are at most 64 characters; the add's event id holds it.
        if staff.len() > MAX_STAFF_ID {
            return Err(format!(
                "follow_user[{i}].userid: longer than {MAX_STAFF_ID} characters"
            ));
        }
        let at = seconds(f.get("createtime"), &format!("follow_user[{i}].createtime"))?;
        let state = trimmed(f, "state");
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
    let code = adds.first().and_then(|a| a.3.clone());
    let channel = match adds.first() {
        Some((_, _, _, Some(code))) => codes.get(code).cloned(),
        Some((_, _, Some(4), None)) => Some("wechat_group".to_owned()),
        Some(_) => Some("wecom".to_owned()),
        None => None,
    };
    let events = adds
        .into_iter()
        .map(|(staff, at, add_way, state)| {
            let mut properties = serde_json::Map::new();
            properties.insert("staff".into(), Value::from(staff.as_str()));
            if let Some(way) = add_way {
                properties.insert("add_way".into(), Value::from(way));
            }
            if let Some(state) = state {
                properties.insert("state".into(), Value::from(state));
            }
            SourceEvent {
                id: format!("wecom_add:{id}:{staff}"),
                kind: "wecom_add",
                at,
                properties,
            }
        })
        .collect();
    let mut ids = vec![("wecom", id.to_string())];
    if let Some(union) = text_of(ext, "unionid") {
        ids.push(("unionid", union));
    }
    if let Some(phone) = &phone {
        ids.push(("phone", phone.clone()));
    }
    Ok(Contact {
        ids,
        id,
        attributes: true,
        name,
        gender,
        phone,
        joined_at,
        channel,
        code,
        tags,
        events,
    })
}

/// The people as a canonical customers file and an events file.
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
        if contact.attributes {
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
        }
        for event in &contact.events {
            e.write_record([
                event.id.as_str(),
                contact.id.as_str(),
                event.kind,
                &event.at.to_string(),
                &Value::Object(event.properties.clone()).to_string(),
            ])?;
        }
    }
    c.flush()?;
    e.flush()?;
    Ok(())
}

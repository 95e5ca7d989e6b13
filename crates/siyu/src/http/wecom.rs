//! WeCom's callbacks (`/v1/wecom/callback/{tenant}`): the URL check WeCom makes when the
//! merchant sets the callback (GET with `echostr`), and the events it posts (POST), each
//! checked by its `msg_signature` (SHA-1 over the token, timestamp, nonce and the encrypted
//! text), decrypted with the app's EncodingAESKey (AES-256-CBC, the key's first 16 bytes
//! as the IV, WeCom's padding to 32 bytes) and checked to be for the merchant's corp.
//!
//! `change_external_contact` becomes the writes the contacts import makes: a customer
//! adding a staff member (`add_external_contact`, with the 联系我 code as `State`) a
//! `wecom_add` event and, for a customer new to the pool, their source; a customer deleting
//! the staff (`del_follow_user`) a `left` event; the staff deleting the customer a
//! `wecom_removed` one. `change_external_chat` with the members that changed becomes
//! `group_join` and `group_leave` events. The message id of each is made from the
//! callback's content, so WeCom's retries (and replays) are written once. The writes go
//! through the batch path's group commit; the answer goes back at once, within WeCom's
//! five seconds, whatever the write's wait.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aes::cipher::{BlockDecryptMut, KeyIvInit, block_padding::NoPadding};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use serde_json::{Value, json};
use sha1::{Digest, Sha1};

use siyu_store::Tenant;

use super::AppState;
use super::batch::body_bytes;
use super::error::{ApiError, Code};
use crate::service::ingest::parse_item;

/// A callback's body, at most (WeCom's are a few hundred bytes).
const MAX_CALLBACK_BYTES: usize = 64 * 1024;
/// How long the answer waits for the write before answering anyway.
const ANSWER_WITHIN: Duration = Duration::from_secs(2);

/// The settings keys of a tenant's callback.
pub const TOKEN_KEY: &str = "wecom.token";
pub const AES_KEY_KEY: &str = "wecom.aes_key";
pub const CORP_KEY: &str = "wecom.corp_id";

/// How long a tenant's secrets (or their absence) are kept before being read again, and
/// how many tenants' at most: a flood of forged callbacks costs no store reads.
const SECRETS_FOR: Duration = Duration::from_secs(10);
const SECRETS_KEPT: usize = 1_024;

/// What a read of a tenant's secrets found, and when.
type Read = (std::time::Instant, Option<Arc<Secrets>>);

/// The secrets read lately, by the tenant name a callback's path gives.
#[derive(Default)]
pub struct SecretsCache {
    read: std::sync::Mutex<HashMap<String, Read>>,
}

/// A tenant's callback secrets.
pub(super) struct Secrets {
    tenant: Tenant,
    token: String,
    key: [u8; 32],
    corp_id: String,
    /// The tenant's channel codes (see `siyu channel-code`): a 联系我 `State` → channel.
    codes: HashMap<String, String>,
}

type Params = Query<HashMap<String, String>>;

/// GET: WeCom checks the URL: the decrypted `echostr` is the answer.
pub async fn verify(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
    Query(params): Params,
) -> Result<String, ApiError> {
    let secrets = secrets(&state, tenant).await?;
    let echo = param(&params, "echostr")?;
    check_signature(&secrets, &params, echo)?;
    decrypt(&secrets, echo)
}

/// POST: an event. Answered `success` once checked, decrypted and handed to the writer.
pub async fn event(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
    Query(params): Params,
    body: Body,
) -> Result<String, ApiError> {
    let secrets = secrets(&state, tenant).await?;
    let bytes = body_bytes(body, MAX_CALLBACK_BYTES).await?;
    let xml = std::str::from_utf8(&bytes)
        .map_err(|_| ApiError::new(Code::InvalidCallback, "the body is not UTF-8 XML"))?;
    let encrypted = tag(xml, "Encrypt")
        .ok_or_else(|| ApiError::new(Code::InvalidCallback, "the body has no <Encrypt>"))?;
    check_signature(&secrets, &params, &encrypted)?;
    let message = decrypt(&secrets, &encrypted)?;
    let items = items_of(&message, &secrets.codes);
    if items.is_empty() {
        return Ok("success".to_owned());
    }
    let zone = secrets.tenant.zone.clone();
    let tenant = secrets.tenant.clone();
    let new_customer = items
        .iter()
        .find(|i| i["type"] == "identify")
        .and_then(|i| i["customer_id"].as_str())
        .map(str::to_owned);
    let write = {
        let state = state.clone();
        async move {
            // A source is given only to a customer new to the pool.
            let known = match new_customer {
                Some(id) => {
                    let tenant = tenant.clone();
                    state
                        .with_store(move |store| {
                            let id = siyu_core::CustomerId::parse_input(&id)
                                .map_err(|e| ApiError::new(Code::InvalidCallback, e.to_string()))?;
                            Ok(store.customer(&tenant, &id).is_ok())
                        })
                        .await?
                }
                None => false,
            };
            let checked: Vec<_> = items
                .iter()
                .filter(|i| !(known && i["type"] == "identify"))
                .map(|item| {
                    let id = item["message_id"].as_str().map(str::to_owned);
                    parse_item(item, &zone).map_err(|reason| (id, reason))
                })
                .collect();
            let written: Result<_, ApiError> = state
                .ingester
                .write(tenant, checked)
                .await
                .map_err(ApiError::from);
            written
        }
    };
    let task = tokio::spawn(write);
    match tokio::time::timeout(ANSWER_WITHIN, task).await {
        Ok(Ok(Ok(results))) => {
            for r in &results {
                if let crate::service::ingest::ItemResult::Rejected { reason, .. } = r {
                    tracing::warn!("a WeCom callback's write was refused: {reason}");
                }
            }
        }
        Ok(Ok(Err(e))) => return Err(e),
        Ok(Err(_)) => return Err(ApiError::new(Code::Internal, "internal error")),
        Err(_) => tracing::warn!("a WeCom callback's write goes on after its answer"),
    }
    Ok("success".to_owned())
}

/// The tenant's secrets, from the cache when read lately.
async fn secrets(state: &Arc<AppState>, name: String) -> Result<Arc<Secrets>, ApiError> {
    let not_set = |name: &str| {
        ApiError::new(
            Code::WecomNotConfigured,
            format!("no WeCom callback is set for tenant '{name}' (siyu wecom set-callback)"),
        )
    };
    let kept = state
        .wecom
        .read
        .lock()
        .ok()
        .and_then(|read| read.get(&name).cloned())
        .filter(|(at, _)| at.elapsed() < SECRETS_FOR);
    if let Some((_, found)) = kept {
        return found.ok_or_else(|| not_set(&name));
    }
    let key = name.clone();
    let found = read_secrets(state, name).await?.map(Arc::new);
    if let Ok(mut read) = state.wecom.read.lock() {
        if read.len() >= SECRETS_KEPT {
            read.clear();
        }
        read.insert(key.clone(), (std::time::Instant::now(), found.clone()));
    }
    found.ok_or_else(|| not_set(&key))
}

/// The tenant's secrets from the store; `None` when it has none (or no such tenant).
async fn read_secrets(state: &Arc<AppState>, name: String) -> Result<Option<Secrets>, ApiError> {
    state
        .with_store(move |store| {
            let Some(tenant) = store
                .tenants()
                .map_err(anyhow::Error::from)?
                .into_iter()
                .find(|t| t.name == name)
            else {
                return Ok(None);
            };
            let settings = store.settings(&tenant).map_err(anyhow::Error::from)?;
            let get = |key: &str| {
                settings
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.clone())
            };
            let (Some(token), Some(aes), Some(corp_id)) =
                (get(TOKEN_KEY), get(AES_KEY_KEY), get(CORP_KEY))
            else {
                return Ok(None);
            };
            let Ok(key) = aes_key(&aes) else {
                return Ok(None);
            };
            let codes = settings
                .iter()
                .filter_map(|(k, v)| Some((k.strip_prefix("channel_code.")?.to_owned(), v.clone())))
                .collect();
            Ok(Some(Secrets {
                tenant,
                token,
                key,
                corp_id,
                codes,
            }))
        })
        .await
}

/// The 32 bytes of an EncodingAESKey (43 characters of base64 without its `=`).
pub fn aes_key(text: &str) -> Result<[u8; 32], String> {
    let text = text.trim();
    if text.len() != 43 {
        return Err("an EncodingAESKey has 43 characters".to_owned());
    }
    // WeCom's keys are 43 random characters: the last one's low bits may be set, which a
    // strict decoder refuses (WeCom's own code and wechatpy ignore them).
    let lenient = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    let bytes = base64::Engine::decode(&lenient, format!("{text}="))
        .map_err(|e| format!("the EncodingAESKey is not base64: {e}"))?;
    bytes
        .try_into()
        .map_err(|_| "the EncodingAESKey is not 32 bytes".to_owned())
}

fn param<'p>(params: &'p HashMap<String, String>, name: &str) -> Result<&'p str, ApiError> {
    params
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty() && v.len() <= 4096)
        .ok_or_else(|| ApiError::new(Code::InvalidCallback, format!("the query has no {name}")))
}

/// `msg_signature` is SHA-1 over the token, timestamp, nonce and the encrypted text,
/// sorted and joined.
fn check_signature(
    secrets: &Secrets,
    params: &HashMap<String, String>,
    encrypted: &str,
) -> Result<(), ApiError> {
    let given = param(params, "msg_signature")?;
    let mut parts = [
        secrets.token.as_str(),
        param(params, "timestamp")?,
        param(params, "nonce")?,
        encrypted,
    ];
    parts.sort_unstable();
    let digest = Sha1::digest(parts.concat().as_bytes());
    let expected: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    if expected != given.to_ascii_lowercase() {
        return Err(ApiError::new(
            Code::BadSignature,
            "msg_signature does not match",
        ));
    }
    Ok(())
}

/// The plain text of WeCom's encrypted text: 16 random bytes, the message's length
/// (4 bytes, big-endian), the message, and the corp id it is for.
fn decrypt(secrets: &Secrets, encrypted: &str) -> Result<String, ApiError> {
    let bad = |why: &str| ApiError::new(Code::InvalidCallback, format!("the encrypted text {why}"));
    let mut buf =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, encrypted.trim())
            .map_err(|_| bad("is not base64"))?;
    if buf.is_empty() || buf.len() % 16 != 0 {
        return Err(bad("is not whole AES blocks"));
    }
    let iv: [u8; 16] = secrets.key[..16].try_into().map_err(|_| bad("has no IV"))?;
    let plain = cbc::Decryptor::<aes::Aes256>::new(&secrets.key.into(), &iv.into())
        .decrypt_padded_mut::<NoPadding>(&mut buf)
        .map_err(|_| bad("does not decrypt"))?;
    let pad = usize::from(*plain.last().ok_or_else(|| bad("is empty"))?);
    if !(1..=32).contains(&pad) || plain.len() < 20 + pad {
        return Err(bad("has a bad padding"));
    }
    let content = &plain[16..plain.len() - pad];
    let len = u32::from_be_bytes([content[0], content[1], content[2], content[3]]) as usize;
    if content.len() < 4 + len {
        return Err(bad("is shorter than it says"));
    }
    let message = std::str::from_utf8(&content[4..4 + len]).map_err(|_| bad("is not UTF-8"))?;
    let corp = std::str::from_utf8(&content[4 + len..]).map_err(|_| bad("is not UTF-8"))?;
    if corp != secrets.corp_id {
        return Err(ApiError::new(
            Code::BadSignature,
            "the message is for another corp",
        ));
    }
    Ok(message.to_owned())
}

/// The text of `<name>` in a flat XML message (CDATA or plain).
fn tag(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    let inner = xml[start..end].trim();
    let inner = inner
        .strip_prefix("<![CDATA[")
        .and_then(|s| s.strip_suffix("]]>"))
        .unwrap_or(inner);
    Some(inner.to_owned())
}

/// The `<Item>`s of a list tag (`<MemChangeList><Item>…</Item></MemChangeList>`).
fn list(xml: &str, name: &str) -> Vec<String> {
    let Some(inner) = tag(xml, name) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut rest = inner.as_str();
    while let Some(item) = tag(rest, "Item") {
        out.push(item);
        let Some(end) = rest.find("</Item>") else {
            break;
        };
        rest = &rest[end + "</Item>".len()..];
    }
    out
}

/// The siyu items a decrypted event becomes (none for events siyu does not keep).
fn items_of(message: &str, codes: &HashMap<String, String>) -> Vec<Value> {
    let get = |name: &str| tag(message, name).unwrap_or_default();
    if get("MsgType") != "event" {
        return Vec::new();
    }
    let at = get("CreateTime");
    let Ok(seconds) = at.parse::<i64>() else {
        return Vec::new();
    };
    let Ok(time) = jiff::Timestamp::from_second(seconds) else {
        return Vec::new();
    };
    let time = time.to_string();
    let change = get("ChangeType");
    match get("Event").as_str() {
        "change_external_contact" => {
            let (customer, staff) = (get("ExternalUserID"), get("UserID"));
            if customer.is_empty() {
                return Vec::new();
            }
            let id = format!("wecom:{change}:{customer}:{staff}:{seconds}");
            let track = |event: &str, properties: Value| {
                json!({"type": "track", "message_id": id, "customer_id": customer,
                       "timestamp": time, "event": event, "properties": properties})
            };
            match change.as_str() {
                "add_external_contact" | "add_half_external_contact" => {
                    let state = get("State");
                    let mut props = json!({"staff": staff});
                    if !state.is_empty() {
                        props["state"] = Value::from(state.as_str());
                    }
                    // A customer new to the pool comes from the code's channel (none when
                    // the tenant has not set one for it), or from WeCom itself.
                    let mut traits = json!({"joined_at": time});
                    let channel = if state.is_empty() {
                        Some("wecom")
                    } else {
                        codes.get(&state).map(String::as_str)
                    };
                    if let Some(channel) = channel {
                        traits["channel"] = Value::from(channel);
                    }
                    vec![
                        json!({"type": "identify", "message_id": format!("{id}:source"),
                               "customer_id": customer, "timestamp": time, "traits": traits}),
                        track("wecom_add", props),
                    ]
                }
                "del_follow_user" => vec![track("left", json!({"staff": staff, "via": "wecom"}))],
                "del_external_contact" => vec![track("wecom_removed", json!({"staff": staff}))],
                _ => Vec::new(),
            }
        }
        "change_external_chat" => {
            let chat = get("ChatId");
            let event = match get("UpdateDetail").as_str() {
                "add_member" => "group_join",
                "del_member" => "group_leave",
                _ => return Vec::new(),
            };
            list(message, "MemChangeList")
                .into_iter()
                .filter(|m| m.starts_with("wm") || m.starts_with("wo"))
                .map(|member| {
                    json!({"type": "track",
                           "message_id": format!("wecom:{event}:{chat}:{member}:{seconds}"),
                           "customer_id": member, "timestamp": time, "event": event,
                           "properties": {"chat_id": chat}})
                })
                .collect()
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_add_becomes_a_source_and_an_event_and_a_chat_change_its_members_events() {
        let add = "<xml><ToUserName><![CDATA[ww1]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>\
            <CreateTime>1777599000</CreateTime><MsgType><![CDATA[event]]></MsgType>\
            <Event><![CDATA[change_external_contact]]></Event><ChangeType><![CDATA[add_external_contact]]></ChangeType>\
            <UserID><![CDATA[zhangsan]]></UserID><ExternalUserID><![CDATA[wmABC]]></ExternalUserID>\
            <State><![CDATA[dy_live]]></State><WelcomeCode><![CDATA[x]]></WelcomeCode></xml>";
        let codes = HashMap::from([("dy_live".to_owned(), "douyin_live".to_owned())]);
        let items = items_of(add, &codes);
        assert_eq!(items[0]["traits"]["channel"], "douyin_live");
        assert_eq!(items.len(), 2);
        assert_eq!(items[1]["event"], "wecom_add");
        assert_eq!(items[1]["properties"]["state"], "dy_live");
        assert_eq!(
            items[1]["message_id"],
            "wecom:add_external_contact:wmABC:zhangsan:1777599000"
        );
        let chat = "<xml><CreateTime>1777599000</CreateTime><MsgType>event</MsgType>\
            <Event>change_external_chat</Event><ChatId>wrX</ChatId><ChangeType>update</ChangeType>\
            <UpdateDetail>add_member</UpdateDetail><JoinScene>1</JoinScene><MemChangeCnt>2</MemChangeCnt>\
            <MemChangeList><Item>wmA</Item><Item>zhangsan</Item></MemChangeList></xml>";
        let items = items_of(chat, &codes);
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["customer_id"], "wmA");
        assert_eq!(items[0]["event"], "group_join");
        assert!(items_of("<xml><MsgType>text</MsgType></xml>", &codes).is_empty());
        assert!(aes_key("short").is_err());
    }
}

//! Segment's shape on siyu's ingest, so that the analytics SDKs merchants' apps and
//! mini-program back ends already use can send here unchanged (host set to siyu, a siyu
//! token as the write key, which the SDKs send as HTTP Basic's user name):
//! `POST /v1/batch` with Segment's camelCase items, and the single-call paths
//! `/v1/identify`, `/v1/track`, `/v1/page`, `/v1/screen`, `/v1/alias`.
//!
//! Each Segment item is translated into siyu's own item, then checked and written exactly as
//! siyu's are; `messageId` is the message id, so a batch the SDK sends again is answered
//! all duplicate. `userId` names the customer, else `anonymousId`.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use serde_json::{Map, Value};

use siyu_core::access::Action;

use super::AppState;
use super::auth::Caller;
use super::batch::{BatchAnswer, MAX_BODY_BYTES, json_body, write_items};
use super::error::{ApiError, Code};

/// Keys Segment's libraries put beside `batch` in a body (ignored).
pub const ENVELOPE_KEYS: &[&str] = &["sentAt", "writeKey", "context", "integrations", "_metadata"];

/// Whether an item is in Segment's shape rather than siyu's.
pub fn is_segment_item(item: &Value) -> bool {
    item.get("messageId").is_some()
        || item.get("userId").is_some()
        || item.get("anonymousId").is_some()
}

/// A Segment item as siyu's item; the reason when it cannot be one.
pub fn translate(item: &Value) -> Result<Value, String> {
    let Value::Object(m) = item else {
        return Err("an item is a JSON object".into());
    };
    let text = |key: &str| -> Option<String> {
        match m.get(key) {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        }
    };
    let message_id = text("messageId").ok_or("messageId: missing")?;
    let customer = text("userId")
        .or_else(|| text("anonymousId"))
        .ok_or("userId: missing (nor anonymousId)")?;
    let timestamp = text("timestamp").or_else(|| text("originalTimestamp"));
    let properties = match m.get("properties") {
        Some(Value::Object(p)) => p.clone(),
        _ => Map::new(),
    };
    let kind = text("type").ok_or("type: missing")?;
    let mut out = Map::new();
    out.insert("message_id".into(), Value::from(message_id));
    out.insert("customer_id".into(), Value::from(customer));
    if let Some(t) = &timestamp {
        out.insert("timestamp".into(), Value::from(t.as_str()));
    }
    match kind.as_str() {
        "identify" => {
            let traits = match m.get("traits") {
                Some(Value::Object(t)) => traits(t),
                _ => Map::new(),
            };
            out.insert("type".into(), Value::from("identify"));
            if !traits.is_empty() {
                out.insert("traits".into(), Value::Object(traits));
            }
            // The visitor a user was before signing in: merged into them, as Segment means.
            if let (Some(user), Some(anonymous)) = (text("userId"), text("anonymousId"))
                && user != anonymous
            {
                out.insert("previous_id".into(), Value::from(anonymous));
            }
        }
        "track" => {
            let event = text("event").ok_or("event: missing")?;
            // Segment's e-commerce spec: an order completed is an order.
            if let Some(order) = completed_order(&event, &properties) {
                out.insert("type".into(), Value::from("order"));
                out.extend(order);
            } else {
                out.insert("type".into(), Value::from("track"));
                out.insert("event".into(), Value::from(event_type(&event)?));
                out.insert("properties".into(), Value::Object(properties));
            }
        }
        "page" | "screen" => {
            let mut properties = properties;
            if let Some(name) = text("name") {
                properties.insert("name".into(), Value::from(name));
            }
            out.insert("type".into(), Value::from("track"));
            out.insert("event".into(), Value::from(format!("{kind}_view")));
            out.insert("properties".into(), Value::Object(properties));
        }
        "alias" => {
            // siyu's alias: the previous id is merged into the user id, who survives.
            let previous = text("previousId").ok_or("previousId: missing")?;
            out.insert("type".into(), Value::from("alias"));
            out.insert("previous_id".into(), Value::from(previous));
        }
        other => {
            return Err(format!(
                "type: '{other}' is not kept (identify, track, page, screen, alias are)"
            ));
        }
    }
    Ok(Value::Object(out))
}

/// The traits siyu keeps, from Segment's reserved ones; others are left out.
fn traits(t: &Map<String, Value>) -> Map<String, Value> {
    let text = |key: &str| match t.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let mut out = Map::new();
    let name = text("name").or_else(|| {
        let full: Vec<String> = ["lastName", "firstName"]
            .iter()
            .filter_map(|k| text(k))
            .collect();
        (!full.is_empty()).then(|| full.join(""))
    });
    let region = t
        .get("address")
        .and_then(|a| a.get("city").or_else(|| a.get("state")))
        .and_then(Value::as_str)
        .map(str::to_owned);
    for (key, value) in [
        ("name", name),
        ("phone", text("phone")),
        ("gender", text("gender")),
        ("birthday", text("birthday")),
        ("region", region.or_else(|| text("region"))),
        ("channel", text("channel")),
        (
            "referrer_id",
            text("referrerId").or_else(|| text("referrer_id")),
        ),
        ("joined_at", text("createdAt")),
    ] {
        if let Some(v) = value {
            out.insert(key.into(), Value::from(v));
        }
    }
    if let Some(Value::Array(tags)) = t.get("tags") {
        out.insert("tags".into(), Value::Array(tags.clone()));
    }
    out
}

/// `Order Completed` with an `order_id` and a `total` (or `revenue`): siyu's order fields.
fn completed_order(event: &str, p: &Map<String, Value>) -> Option<Map<String, Value>> {
    if !event.eq_ignore_ascii_case("order completed") {
        return None;
    }
    let id = match p.get("order_id").or_else(|| p.get("orderId"))? {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let amount = p.get("total").or_else(|| p.get("revenue"))?.clone();
    let mut out = Map::new();
    out.insert("order_id".into(), Value::from(id));
    out.insert("amount".into(), amount);
    if let Some(d) = p.get("discount") {
        out.insert("discount".into(), d.clone());
    }
    if let Some(Value::String(c)) = p.get("coupon") {
        out.insert("coupon_code".into(), Value::from(c.as_str()));
    }
    Some(out)
}

/// Segment's event names are free text (`Product Viewed`); siyu's are snake_case:
/// lower case, words joined by `_`.
fn event_type(event: &str) -> Result<String, String> {
    let mut out = String::new();
    for c in event.trim().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    let out = out.trim_end_matches('_').to_owned();
    let out = if out.starts_with(|c: char| c.is_ascii_digit()) {
        format!("e_{out}")
    } else {
        out
    };
    if out.is_empty() || out.len() > 64 {
        return Err(format!(
            "event: '{event}' gives no event name of letters and digits (up to 64)"
        ));
    }
    Ok(out)
}

/// `POST /v1/identify`, `/v1/track`, `/v1/page`, `/v1/screen`, `/v1/alias`: one Segment call.
pub async fn single(
    kind: &'static str,
    state: Arc<AppState>,
    caller: Caller,
    body: Body,
) -> Result<Json<BatchAnswer>, ApiError> {
    caller.require(Action::Ingest)?;
    let value = json_body(body, MAX_BODY_BYTES).await?;
    let Value::Object(mut item) = value else {
        return Err(ApiError::new(
            Code::InvalidBatch,
            "the body is one call, an object",
        ));
    };
    item.insert("type".into(), Value::from(kind));
    for key in ["writeKey", "sentAt"] {
        item.remove(key);
    }
    write_items(&state, &caller, vec![Value::Object(item)]).await
}

macro_rules! single_route {
    ($name:ident, $kind:literal) => {
        pub async fn $name(
            State(state): State<Arc<AppState>>,
            caller: Caller,
            body: Body,
        ) -> Result<Json<BatchAnswer>, ApiError> {
            single($kind, state, caller, body).await
        }
    };
}

single_route!(identify, "identify");
single_route!(track, "track");
single_route!(page, "page");
single_route!(screen, "screen");
single_route!(alias, "alias");

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn segment_items_become_siyu_items() {
        let identify = json!({"type": "identify", "messageId": "m1", "userId": "u1",
            "timestamp": "2026-05-01T09:30:00.123Z", "context": {"library": {"name": "analytics-python"}},
            "traits": {"firstName": "小王", "lastName": "王", "phone": "18618486065", "plan": "pro",
                       "address": {"city": "杭州"}, "createdAt": "2026-04-01T00:00:00Z"}});
        assert_eq!(
            translate(&identify).expect("identify"),
            json!({"type": "identify", "message_id": "m1", "customer_id": "u1",
                   "timestamp": "2026-05-01T09:30:00.123Z",
                   "traits": {"name": "王小王", "phone": "18618486065", "region": "杭州",
                              "joined_at": "2026-04-01T00:00:00Z"}})
        );
        // Signed in after browsing: the visitor's id is merged into the user.
        let signed_in =
            json!({"type": "identify", "messageId": "m5", "userId": "u1", "anonymousId": "a1"});
        assert_eq!(
            translate(&signed_in).expect("identify"),
            json!({"type": "identify", "message_id": "m5", "customer_id": "u1", "previous_id": "a1"})
        );
        let track = json!({"type": "track", "messageId": "m2", "anonymousId": "a1",
            "timestamp": "2026-05-01T09:30:00Z", "event": "Product Viewed", "properties": {"sku": "T1"}});
        assert_eq!(
            translate(&track).expect("track"),
            json!({"type": "track", "message_id": "m2", "customer_id": "a1",
                   "timestamp": "2026-05-01T09:30:00Z", "event": "product_viewed", "properties": {"sku": "T1"}})
        );
        let order = json!({"type": "track", "messageId": "m3", "userId": "u1",
            "timestamp": "2026-05-01T09:30:00Z", "event": "Order Completed",
            "properties": {"order_id": "o9", "total": 128.5, "coupon": "NEW10"}});
        assert_eq!(
            translate(&order).expect("order"),
            json!({"type": "order", "message_id": "m3", "customer_id": "u1",
                   "timestamp": "2026-05-01T09:30:00Z", "order_id": "o9", "amount": 128.5,
                   "coupon_code": "NEW10"})
        );
        let alias =
            json!({"type": "alias", "messageId": "m4", "userId": "u1", "previousId": "anon-7"});
        assert_eq!(
            translate(&alias).expect("alias"),
            json!({"type": "alias", "message_id": "m4", "customer_id": "u1", "previous_id": "anon-7"})
        );
        assert!(translate(&json!({"type": "group", "messageId": "m", "userId": "u"})).is_err());
        assert!(translate(&json!({"type": "track", "messageId": "m", "event": "x"})).is_err());
        assert_eq!(event_type("  Signed Up!! ").as_deref(), Ok("signed_up"));
        assert_eq!(event_type("2FA done").as_deref(), Ok("e_2fa_done"));
        assert!(event_type("？？").is_err());
    }
}

//! An event: an interaction of a customer with the merchant.

use serde::{Deserialize, Serialize};

use crate::ids::{CustomerId, EventId};
use crate::time::Timestamp;

/// The interaction types siyu knows the meaning of; others are kept and counted as they are.
pub const KNOWN_EVENT_TYPES: &[&str] = &[
    "view",
    "click",
    "favorite",
    "add_to_cart",
    "coupon_claimed",
    "coupon_redeemed",
    "share",
    "invite",
    "post_like",
    "post_comment",
    "message",
    "group_join",
    "group_leave",
    "follow",
    "unfollow",
    "left",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not an event type (lowercase letters, digits and '_', e.g. post_like)")]
pub struct EventTypeError(pub String);

/// An event type in snake_case.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventType(String);

impl EventType {
    pub fn parse(text: &str) -> Result<EventType, EventTypeError> {
        let s = text.trim();
        let valid = !s.is_empty()
            && s.len() <= 64
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if valid {
            Ok(EventType(s.to_owned()))
        } else {
            Err(EventTypeError(s.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_known(&self) -> bool {
        KNOWN_EVENT_TYPES.contains(&self.0.as_str())
    }
}

/// An event as imported. `properties` is a JSON object, kept as its compact text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub id: EventId,
    pub customer_id: CustomerId,
    pub kind: EventType,
    pub occurred_at: Timestamp,
    pub properties: String,
}

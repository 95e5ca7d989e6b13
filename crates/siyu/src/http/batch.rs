//! `POST /v1/batch`: identify, track and order items, each answered on its own.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use serde::Serialize;
use serde_json::Value;

use siyu_core::access::Action;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, Code};
use super::segment;
use crate::service::ingest::{ItemResult, MAX_ITEM_BYTES, MAX_ITEMS, message_id_of, parse_item};

/// Bytes of a request body, at most.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Serialize)]
pub struct BatchAnswer {
    pub accepted: usize,
    pub duplicates: usize,
    pub rejected: usize,
    /// One per item, in order.
    pub results: Vec<ItemResult>,
}

/// Reads a JSON body of at most `limit` bytes: 413 past it, 400 for broken JSON.
pub async fn json_body(body: Body, limit: usize) -> Result<Value, ApiError> {
    parse_json(&body_bytes(body, limit).await?)
}

/// A body that may be empty (or only white space): none then, else its JSON.
pub async fn optional_json_body(body: Body, limit: usize) -> Result<Option<Value>, ApiError> {
    let bytes = body_bytes(body, limit).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    parse_json(&bytes).map(Some)
}

pub(super) async fn body_bytes(body: Body, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            Code::PayloadTooLarge,
            format!("the body is larger than {limit} bytes"),
        )
    })
}

fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            Code::MalformedJson,
            format!(
                "the body is not JSON: line {}, column {}: {e}",
                e.line(),
                e.column()
            ),
        )
    })
}

pub async fn batch(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Body,
) -> Result<Json<BatchAnswer>, ApiError> {
    caller.require(Action::Ingest)?;
    let value = json_body(body, MAX_BODY_BYTES).await?;
    let Value::Object(mut top) = value else {
        return Err(ApiError::new(
            Code::InvalidBatch,
            "the body is an object: {\"batch\": [ … ]}",
        ));
    };
    let items = match top.remove("batch") {
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(ApiError::new(
                Code::InvalidBatch,
                "batch: expected an array of items",
            ));
        }
        None => return Err(ApiError::new(Code::InvalidBatch, "batch: missing")),
    };
    // Segment's libraries send their envelope beside the batch.
    if let Some(field) = top
        .keys()
        .find(|k| !segment::ENVELOPE_KEYS.contains(&k.as_str()))
    {
        return Err(ApiError::new(
            Code::UnknownField,
            format!("unknown field '{field}' (the body holds only \"batch\")"),
        ));
    }
    write_items(&state, &caller, items).await
}

/// Checks and writes items of siyu's shape or Segment's (see [`segment`]), each answered
/// on its own; the caller's right to ingest is checked before the body is read.
pub async fn write_items(
    state: &Arc<AppState>,
    caller: &Caller,
    items: Vec<Value>,
) -> Result<Json<BatchAnswer>, ApiError> {
    if items.len() > MAX_ITEMS {
        return Err(ApiError::new(
            Code::BatchTooLarge,
            format!("{} items; a batch holds at most {MAX_ITEMS}", items.len()),
        ));
    }
    for (i, item) in items.iter().enumerate() {
        let size = item.to_string().len();
        if size > MAX_ITEM_BYTES {
            return Err(ApiError::new(
                Code::ItemTooLarge,
                format!("item {i} is {size} bytes; an item is at most {MAX_ITEM_BYTES}"),
            ));
        }
    }
    let zone = caller.tenant.zone.clone();
    let checked: Vec<_> = items
        .iter()
        .map(|item| {
            if segment::is_segment_item(item) {
                let message_id = item
                    .get("messageId")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                segment::translate(item)
                    .and_then(|siyu| parse_item(&siyu, &zone))
                    .map_err(|reason| (message_id, reason))
            } else {
                parse_item(item, &zone).map_err(|reason| (message_id_of(item), reason))
            }
        })
        .collect();
    let results = state.ingester.write(caller.tenant.clone(), checked).await?;
    let count = |f: fn(&ItemResult) -> bool| results.iter().filter(|r| f(r)).count();
    let answer = BatchAnswer {
        accepted: count(|r| matches!(r, ItemResult::Accepted { .. })),
        duplicates: count(|r| matches!(r, ItemResult::Duplicate { .. })),
        rejected: count(|r| matches!(r, ItemResult::Rejected { .. })),
        results,
    };
    state.metrics.ingested(answer.accepted as u64);
    Ok(Json(answer))
}

//! Health, Prometheus metrics, the OpenAPI document and its page, and the JSON answers
//! for unknown routes and methods.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{Method, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, Code};
use std::sync::Arc;

/// Upper bounds of the latency histogram, seconds.
const BUCKETS: [f64; 10] = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0, 5.0];

#[derive(Default)]
struct Series {
    count: u64,
    sum: f64,
    buckets: [u64; BUCKETS.len()],
}

/// Series by method, route and status. Every label comes from a closed set, so that no
/// client can make the table grow: the methods of [`method_label`], the routes' templates
/// (or `unmatched`), and the statuses the handlers answer with.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, String, u16), Series>>,
    ingested: AtomicU64,
}

/// The method's label: its name if standard, else `other`.
fn method_label(method: &Method) -> &'static str {
    ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
        .into_iter()
        .find(|m| *m == method.as_str())
        .unwrap_or("other")
}

impl Metrics {
    /// `route` is the matched route's template, none for a path no route matched.
    pub fn observe(&self, method: &Method, route: Option<&str>, status: u16, took: Duration) {
        let secs = took.as_secs_f64();
        let method = method_label(method);
        let route = route.unwrap_or("unmatched");
        if let Ok(mut r) = self.requests.lock() {
            let s = r.entry((method, route.to_owned(), status)).or_default();
            s.count += 1;
            s.sum += secs;
            for (i, b) in BUCKETS.iter().enumerate() {
                if secs <= *b {
                    s.buckets[i] += 1;
                }
            }
        }
    }

    pub fn ingested(&self, items: u64) {
        self.ingested.fetch_add(items, Ordering::Relaxed);
    }

    fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP siyu_http_requests_total Requests by method, route and status."
        );
        let _ = writeln!(out, "# TYPE siyu_http_requests_total counter");
        let requests = self.requests.lock().map(|r| {
            r.iter()
                .map(|(k, s)| (k.clone(), s.count, s.sum, s.buckets))
                .collect::<Vec<_>>()
        });
        let requests = requests.unwrap_or_default();
        for ((m, r, st), count, _, _) in &requests {
            let _ = writeln!(
                out,
                "siyu_http_requests_total{{method=\"{m}\",route=\"{r}\",status=\"{st}\"}} {count}"
            );
        }
        let _ = writeln!(out, "# HELP siyu_http_request_seconds Request latency.");
        let _ = writeln!(out, "# TYPE siyu_http_request_seconds histogram");
        let mut by_route: BTreeMap<(&str, String), (u64, f64, [u64; BUCKETS.len()])> =
            BTreeMap::new();
        for ((m, r, _), count, sum, buckets) in &requests {
            let e = by_route
                .entry((*m, r.clone()))
                .or_insert((0, 0.0, [0; BUCKETS.len()]));
            e.0 += count;
            e.1 += sum;
            for (i, b) in buckets.iter().enumerate() {
                e.2[i] += b;
            }
        }
        for ((m, r), (count, sum, buckets)) in &by_route {
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "siyu_http_request_seconds_bucket{{method=\"{m}\",route=\"{r}\",le=\"{b}\"}} {}",
                    buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "siyu_http_request_seconds_bucket{{method=\"{m}\",route=\"{r}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "siyu_http_request_seconds_sum{{method=\"{m}\",route=\"{r}\"}} {sum}"
            );
            let _ = writeln!(
                out,
                "siyu_http_request_seconds_count{{method=\"{m}\",route=\"{r}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP siyu_ingested_items_total Batch items accepted."
        );
        let _ = writeln!(out, "# TYPE siyu_ingested_items_total counter");
        let _ = writeln!(
            out,
            "siyu_ingested_items_total {}",
            self.ingested.load(Ordering::Relaxed)
        );
        out
    }
}

pub async fn healthz(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    state
        .with_store(|store| {
            store
                .ping()
                .map_err(|e| ApiError::Internal(anyhow::anyhow!("the database: {e}")))
        })
        .await?;
    Ok(Json(json!({"status": "ok"})))
}

pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

pub async fn not_found() -> ApiError {
    ApiError::new(Code::NotFound, "no such route (see /v1/openapi.json)")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        Code::MethodNotAllowed,
        "this route does not take that method",
    )
}

pub async fn openapi() -> Json<Value> {
    Json(openapi_document())
}

/// A page that renders the OpenAPI document, with nothing fetched from elsewhere.
pub async fn docs() -> Html<&'static str> {
    Html(include_str!("docs.html"))
}

/// Every error code the API answers with, for the document.
fn error_codes() -> String {
    Code::ALL
        .iter()
        .map(|c| c.name())
        .collect::<Vec<_>>()
        .join(", ")
}

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

/// The codes every route behind a token may answer with.
const AUTH: [Code; 3] = [Code::Unauthorized, Code::Forbidden, Code::RateLimited];

/// A route's error answers by status: its own codes, each with a note or none, listed by
/// name under their status; then the token's, each by its description.
fn error_responses(codes: &[(Code, &str)]) -> serde_json::Map<String, Value> {
    let mut by_status: BTreeMap<u16, Vec<String>> = BTreeMap::new();
    for (code, note) in codes {
        let named = if note.is_empty() {
            code.name().to_owned()
        } else {
            format!("{} ({note})", code.name())
        };
        by_status
            .entry(code.status().as_u16())
            .or_default()
            .push(named);
    }
    for code in AUTH {
        by_status
            .entry(code.status().as_u16())
            .or_default()
            .push(format!("{} (code {})", code.description(), code.name()));
    }
    by_status
        .into_iter()
        .map(|(status, named)| (status.to_string(), error_response(&named.join(", "))))
        .collect()
}

/// The API as OpenAPI 3.1.
pub fn openapi_document() -> Value {
    let with = |mut ok: Value, codes: &[(Code, &str)]| -> Value {
        if let Value::Object(o) = &mut ok {
            o.extend(error_responses(codes));
        }
        ok
    };
    let mut document = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "siyu",
            "version": "1",
            "description": "The customer-operations engine: ingest customers, orders and events; read customers with their profiles, tags, stages, segments and model CLV; manage tags, segments, the lifetime value model and tokens. Every request but /healthz and /metrics needs Authorization: Bearer TOKEN (siyu token create). Money is integer fen in answers; amounts in requests are yuan (\"128.50\" or 128.5). Errors are {\"code\", \"message\"} with a stable snake_case code."
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["code", "message"], "properties": {"code": {"type": "string", "description": error_codes()}, "message": {"type": "string"}}},
                "Item": {
                    "type": "object",
                    "required": ["type", "message_id", "customer_id"],
                    "properties": {
                        "type": {"enum": ["identify", "track", "order"]},
                        "message_id": {"type": "string", "description": "unique per item; a repeated id is a duplicate, never applied twice"},
                        "customer_id": {"type": "string"},
                        "timestamp": {"type": "string", "description": "RFC 3339, or YYYY-MM-DD[ HH:MM:SS] in the tenant's zone; required for track and order"},
                        "traits": {"type": "object", "description": "identify: name, phone, gender, birthday, region, channel, referrer_id, joined_at, tags[]"},
                        "event": {"type": "string", "description": "track: the event type, snake_case (post_like, view, share, left, …)"},
                        "properties": {"type": "object", "description": "track: anything"},
                        "order_id": {"type": "string"},
                        "amount": {"description": "order: yuan, as text or number"},
                        "discount": {"description": "order: yuan"},
                        "coupon_code": {"type": "string"},
                        "channel": {"type": "string"},
                        "status": {"enum": ["paid", "refunded"]}
                    }
                },
                "ItemResult": {"type": "object", "required": ["status"], "properties": {"status": {"enum": ["accepted", "duplicate", "rejected"]}, "message_id": {"type": ["string", "null"]}, "reason": {"type": "string"}}}
            }
        },
        "security": [{"bearer": []}],
        "paths": {
            "/healthz": {"get": {"summary": "The server and its database answer", "security": [], "responses": {"200": {"description": "{\"status\": \"ok\"}"}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics: requests by route and status, latencies, items ingested", "security": [], "responses": {"200": {"description": "text exposition format"}}}},
            "/v1/openapi.json": {"get": {"summary": "This document", "security": [], "responses": {"200": {"description": "OpenAPI 3.1"}}}},
            "/v1/batch": {"post": {
                "summary": "Ingest identify, track and order items (role ingest or admin)",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["batch"], "properties": {"batch": {"type": "array", "maxItems": 1000, "items": {"$ref": "#/components/schemas/Item"}}, "sentAt": {"description": "Segment's envelope: ignored"}, "writeKey": {}, "context": {}, "integrations": {}, "_metadata": {}}, "additionalProperties": false}}}},
                "responses": with(
                    json!({"200": {"description": "each item accepted, duplicate or rejected with its reason", "content": {"application/json": {"schema": {"type": "object", "properties": {"accepted": {"type": "integer"}, "duplicates": {"type": "integer"}, "rejected": {"type": "integer"}, "results": {"type": "array", "items": {"$ref": "#/components/schemas/ItemResult"}}}}}}}}),
                    &[(Code::MalformedJson, ""), (Code::InvalidBatch, ""), (Code::UnknownField, ""), (Code::PayloadTooLarge, "4 MiB body"), (Code::BatchTooLarge, "1,000 items"), (Code::ItemTooLarge, "32 KiB")]
                )
            }},
            "/v1/customers": {"get": {
                "summary": "A page of customers in id order (role viewer, operator or admin)",
                "parameters": [
                    {"name": "after", "in": "query", "schema": {"type": "string"}, "description": "the `next` of the page before"},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}}
                ],
                "responses": with(json!({"200": {"description": "{customers: [...], next}"}}), &[(Code::InvalidQuery, ""), (Code::InvalidCustomerId, "")])
            }},
    "/v1/reports/{name}": {"get": {
                "summary": "A report, the same numbers as the CLI's `siyu report NAME --format json` (role viewer, operator or admin): overview, gmv, cohorts, funnel, pareto, channels, referrals, clv",
                "parameters": [
                    {"name": "name", "in": "path", "required": true, "schema": {"enum": ["overview", "gmv", "cohorts", "funnel", "pareto", "channels", "referrals", "clv"]}},
                    {"name": "from", "in": "query", "schema": {"type": "string", "format": "date"}},
                    {"name": "to", "in": "query", "schema": {"type": "string", "format": "date"}},
                    {"name": "compare_from", "in": "query", "schema": {"type": "string", "format": "date"}, "description": "gmv"},
                    {"name": "compare_to", "in": "query", "schema": {"type": "string", "format": "date"}, "description": "gmv"},
                    {"name": "what_if", "in": "query", "schema": {"type": "string"}, "description": "gmv: e.g. retention=+10%,aov=-5%"},
                    {"name": "by", "in": "query", "schema": {"enum": ["channel", "segment", "stage"]}, "description": "gmv, clv"},
                    {"name": "as_of", "in": "query", "schema": {"type": "string", "format": "date"}},
                    {"name": "months", "in": "query", "schema": {"type": "integer"}, "description": "cohorts"},
                    {"name": "top", "in": "query", "schema": {"type": "integer"}, "description": "referrals"}
                ],
                "responses": with(json!({"200": {"description": "the report; money in integer fen, n/a as null"}}), &[(Code::InvalidQuery, ""), (Code::ReportNotFound, "")])
            }},
    "/v1/segments": {
                "get": {"summary": "Every segment with its rule and members now (viewer, operator, admin)", "responses": with(json!({"200": {"description": "[{name, rule, purpose, members, created_by, created_at}]"}}), &[])},
                "post": {"summary": "Save a segment (operator, admin)",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["name", "rule"], "additionalProperties": false, "properties": {"name": {"type": "string"}, "rule": {"type": "string", "description": "e.g. rfm = \"important_value\" and days_since_order > 20"}, "purpose": {"type": "string", "enum": ["marketing", "analysis"], "default": "marketing", "description": "a marketing segment never holds a customer who opted out of marketing"}}}}}},
                    "responses": with(json!({"201": {"description": "{name, rule (canonical), members}"}}), &[(Code::InvalidSegmentRule, "with the column"), (Code::InvalidSegment, ""), (Code::MalformedJson, ""), (Code::SegmentExists, "")])}
            },
            "/v1/segments/{name}": {"delete": {"summary": "Delete a segment; its history stays (operator, admin)", "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}], "responses": with(json!({"204": {"description": "deleted"}}), &[(Code::SegmentNotFound, "")])}},
            "/v1/segments/{name}/members": {"get": {"summary": "Members now, by customer id, a page at a time; or every member as CSV with format=csv or Accept: text/csv (viewer, operator, admin)", "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}, {"name": "after", "in": "query", "schema": {"type": "string"}}, {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}}, {"name": "format", "in": "query", "schema": {"enum": ["json", "csv"], "default": "json"}, "description": "csv: every member, streamed, the columns of `siyu segment members NAME --format csv`; takes no after or limit. Without format, Accept: text/csv asks for csv too"}], "responses": with(json!({"200": {"description": "{segment, as_of, total, members: [{customer_id, since, stage, rfm, purchase_days, days_since_order, spend_365d}], next}; or text/csv", "content": {"application/json": {}, "text/csv; charset=utf-8": {"schema": {"type": "string", "description": "customer_id,since,stage,rfm,purchase_days,days_since_order,spend_365d"}}}}}), &[(Code::InvalidQuery, ""), (Code::SegmentNotFound, "")])}},
            "/v1/segments/{name}/history": {"get": {"summary": "Who entered and exited, newest first (at most 1,000)", "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}], "responses": with(json!({"200": {"description": "[{at, customer_id, change, kind, name, cause}]"}}), &[])}},
            "/v1/customers/{id}/tags": {"post": {"summary": "Tag a customer by hand, recorded as manual:api:ROLE (operator, admin)", "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}], "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["tag"], "additionalProperties": false, "properties": {"tag": {"type": "string"}}}}}}, "responses": with(json!({"200": {"description": "{added: false when the customer had the tag}"}}), &[(Code::InvalidTag, ""), (Code::InvalidCustomerId, ""), (Code::CustomerNotFound, ""), (Code::ErasedRemains, "the id is an erased customer's remains")])}},
            "/v1/customers/{id}/tags/{tag}": {"delete": {"summary": "Take a manual (or imported) tag off a customer (operator, admin); tags from a tag rule or level tags cannot be taken off by hand", "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}, {"name": "tag", "in": "path", "required": true, "schema": {"type": "string"}}], "responses": with(json!({"204": {"description": "taken off"}}), &[(Code::InvalidCustomerId, ""), (Code::CustomerNotFound, ""), (Code::TagNotFound, ""), (Code::TagNotManual, "the tag comes from a tag rule, or is a level tag")])}},
            "/v1/tags": {"get": {"summary": "Every tag with its family, source (manual, rule, level), rule and customers, as `siyu tag list --format json`; with customer, that customer's tags, where from and since when (viewer, operator, admin)", "parameters": [{"name": "customer", "in": "query", "schema": {"type": "string"}}], "responses": with(json!({"200": {"description": "[{tag, family, source, rule, customers}], or with customer [{tag, family, source, since}]"}}), &[(Code::InvalidQuery, ""), (Code::InvalidCustomerId, ""), (Code::CustomerNotFound, "")])}},
            "/v1/tags/rules/{name}": {
                "put": {"summary": "Define or redefine a tag by a rule, kept current like a segment (operator, admin)", "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["rule"], "additionalProperties": false, "properties": {"rule": {"type": "string", "description": "e.g. net_spend >= 1000 and has_tag(\"outdoor\")"}, "family": {"enum": ["static", "consumption", "behaviour", "level"], "description": "default consumption"}}}}}},
                    "responses": with(json!({"201": {"description": "created: {name, rule (canonical), customers}"}, "200": {"description": "replaced: {name, rule (canonical), customers}"}}), &[(Code::InvalidTagRule, "with the column"), (Code::InvalidTag, ""), (Code::MalformedJson, ""), (Code::TagRuleCircle, "names the tags whose rules would ask for each other")])},
                "delete": {"summary": "Delete a tag rule; customers lose the tag, its history stays (operator, admin)", "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}], "responses": with(json!({"204": {"description": "deleted"}}), &[(Code::TagRuleNotFound, "")])}
            },
            "/v1/clv/fit": {"post": {
                "summary": "Fit BG/NBD and Gamma-Gamma on the tenant's paid orders and keep the model for the tenant (operator, admin); the same JSON as `siyu clv fit --format json`, which keeps its fit the same way",
                "requestBody": {"required": false, "content": {"application/json": {"schema": {"type": "object", "additionalProperties": false, "properties": {"calibration_end": {"type": "string", "format": "date", "description": "default: the day of the last paid order"}, "horizon_weeks": {"type": "number", "exclusiveMinimum": 0, "default": 52}, "discount_monthly": {"type": "number", "exclusiveMinimum": -1, "default": 0.01}}}}}},
                "responses": with(json!({"200": {"description": "{bgnbd: {r, alpha, a, b, log_likelihood, customers}, gamma_gamma: {p, q, v, customers} or null}; time in weeks, spend in yuan"}}), &[(Code::InvalidClvFit, ""), (Code::MalformedJson, ""), (Code::ClvCannotFit, "no paid orders by the calibration end, or no repeat purchases")])
            }},
            "/v1/clv/predict": {"get": {
                "summary": "Predictions by the kept model for one customer or a page of customers in id order, from their own orders as of the model's calibration end: the numbers of `siyu clv predict --format json` as of that day (viewer, operator, admin)",
                "parameters": [
                    {"name": "customer", "in": "query", "schema": {"type": "string"}, "description": "one customer (none listed if they had no paid order by the calibration end); takes no after or limit"},
                    {"name": "after", "in": "query", "schema": {"type": "string"}, "description": "the `next` of the page before"},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}}
                ],
                "responses": with(json!({"200": {"description": "{calibration_end, horizon_weeks, months, discount_monthly, fitted_at, bgnbd, gamma_gamma, customers: [{customer_id, frequency, recency, T, monetary_value, p_alive, expected_purchases, expected_spend, clv}], next}; spend and CLV in yuan"}}), &[(Code::InvalidQuery, ""), (Code::InvalidCustomerId, ""), (Code::CustomerNotFound, ""), (Code::ClvNotFitted, "")])
            }},
            "/v1/tokens": {
                "get": {"summary": "The tenant's tokens, newest first: hash_prefix (12 hex digits of the SHA-256), role, label, created_at, revoked_at; never a token or a whole hash (admin)", "responses": with(json!({"200": {"description": "[{hash_prefix, role, label, created_at, revoked_at}]"}}), &[])},
                "post": {"summary": "Create a token for the tenant, shown once (admin)",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["role"], "additionalProperties": false, "properties": {"role": {"enum": ["admin", "operator", "viewer", "ingest"]}, "label": {"type": "string", "maxLength": 100}}}}}},
                    "responses": with(json!({"201": {"description": "{token (shown this once), hash_prefix, role, label, created_at, revoked_at}"}}), &[(Code::InvalidToken, ""), (Code::MalformedJson, "")])}
            },
            "/v1/tokens/{prefix}": {"delete": {"summary": "Revoke the tenant's token by the first 8 or more hex digits of its hash; refused at once by this server, within 5 s by others (admin)", "parameters": [{"name": "prefix", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[0-9a-fA-F]{8,64}$"}}], "responses": with(json!({"204": {"description": "revoked"}}), &[(Code::InvalidTokenPrefix, ""), (Code::TokenNotFound, "none of this tenant's live tokens")])}},
            "/v1/customers/{id}": {"get": {
                "summary": "One customer, whole: attributes, profile, stage, RFM class, segments, tags with where they came from, recent orders and events, and model_clv: their prediction by the kept CLV model ({calibration_end, horizon_weeks, discount_monthly, frequency, recency, T, monetary_value, p_alive, expected_purchases, expected_spend, clv}, its money in fen like the rest of the view), null before a fit or without a paid order by its calibration end",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": with(json!({"200": {"description": "the 360 view"}}), &[(Code::InvalidCustomerId, ""), (Code::CustomerNotFound, "")])
            },
            "delete": {
                "summary": "Erase the customer (PIPL): name, phone, gender, birthday, region, events, tags, memberships and history go; the orders stay under a random erased:… id so every total stays right; the id is refused by later imports and batches; recorded in the audit log (admin)",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": with(json!({"200": {"description": "{remains, orders_kept, events_erased, tags_erased, referees, suppression_key}"}}), &[(Code::InvalidCustomerId, ""), (Code::CustomerNotFound, ""), (Code::ErasedRemains, "the id is an erased customer's remains"), (Code::CustomerErased, "erased before")])
            }},
            "/v1/customers/{id}/export": {"get": {
                "summary": "Everything held on the customer (PIPL access): attributes, opt-out, profile, every order and event, tags, memberships, their history and the audit log about them; recorded in the audit log (admin)",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": with(json!({"200": {"description": "{exported_at, tenant, customer, marketing_opt_out_at, profile, orders, events, tags, memberships, history, audit}"}}), &[(Code::InvalidCustomerId, ""), (Code::CustomerNotFound, ""), (Code::ErasedRemains, ""), (Code::CustomerErased, "")])
            }},
            "/v1/customers/{id}/opt-out": {
                "post": {
                    "summary": "The customer opts out of marketing: no marketing segment holds them from now on (segments re-evaluated at once); recorded in the audit log (operator, admin)",
                    "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                    "responses": with(json!({"200": {"description": "{customer_id, marketing_opt_out: true}"}}), &[(Code::InvalidCustomerId, ""), (Code::CustomerNotFound, ""), (Code::ErasedRemains, ""), (Code::CustomerErased, "")])
                },
                "delete": {
                    "summary": "The customer withdraws their opt-out (operator, admin)",
                    "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                    "responses": with(json!({"200": {"description": "{customer_id, marketing_opt_out: false}"}}), &[(Code::InvalidCustomerId, ""), (Code::CustomerNotFound, ""), (Code::ErasedRemains, ""), (Code::CustomerErased, "")])
                }
            },
            "/v1/audit": {"get": {
                "summary": "The audit log of exports, erasures, opt-outs and opt-ins, newest first: who (api:ROLE:TOKEN or the CLI's --by), when, and the subject (a salted SHA-256 of the customer id, never the id) (admin)",
                "parameters": [
                    {"name": "customer", "in": "query", "schema": {"type": "string"}, "description": "only this customer's entries (found even after an erasure)"},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}}
                ],
                "responses": with(json!({"200": {"description": "[{at, actor, action: export|erase|opt_out|opt_in|view_phone, subject, detail}]"}}), &[(Code::InvalidQuery, ""), (Code::InvalidCustomerId, "")])
            }}
        }
    });
    // Segment's single calls (see docs/api.md), answered as /v1/batch.
    for (path, summary) in [
        (
            "/v1/identify",
            "One Segment `identify` call (Segment's camelCase shape; role ingest or admin)",
        ),
        ("/v1/track", "One Segment `track` call"),
        (
            "/v1/page",
            "One Segment `page` call, kept as a `page_view` event",
        ),
        (
            "/v1/screen",
            "One Segment `screen` call, kept as a `screen_view` event",
        ),
        (
            "/v1/alias",
            "One Segment `alias` call, kept as an `alias` event",
        ),
    ] {
        document["paths"][path] = json!({"post": {"summary": summary, "responses": {"200": {"description": "as /v1/batch"}}}});
    }
    // One person under many ids (in a statement of their own: one json! of every path
    // reaches the macro's recursion limit).
    document["paths"]["/v1/customers/{id}/merge"] = json!({"post": {
        "summary": "The customer and the one in the body {\"with\": ID} are one person: the earlier joined (a tie: the smaller id) survives and takes the other's orders, events, tags, identities and referees; the other leaves the pool until an unmerge (operator, admin)",
        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
        "responses": with(json!({"200": {"description": "{survivor, merged, reason, orders, events, tags, identities, referees}"}}), &[(Code::InvalidCustomerId, ""), (Code::InvalidMerge, ""), (Code::CustomerNotFound, ""), (Code::MergeRefused, ""), (Code::ErasedRemains, "")])
    }});
    document["paths"]["/v1/customers/{id}/unmerge"] = json!({"post": {
        "summary": "Undo the merge of the customer: both as they were before it, with what arrived since going to whichever id it named (operator, admin)",
        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
        "responses": with(json!({"200": {"description": "{customer, survivor}"}}), &[(Code::InvalidCustomerId, ""), (Code::NotMerged, ""), (Code::UnmergeOrder, "")])
    }});
    document["paths"]["/v1/customers/{id}/never-merge"] = json!({"post": {
        "summary": "The customer and the one in the body {\"with\": ID} are two persons: never merged, automatically or by hand (operator, admin)",
        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
        "responses": with(json!({"200": {"description": "{customer_id, with, recorded}"}}), &[(Code::InvalidCustomerId, ""), (Code::InvalidMerge, ""), (Code::CustomerNotFound, "")])
    }});
    document["paths"]["/v1/webhooks"] = webhook_paths(&with);
    document["paths"]["/v1/customers/{id}/ids"] = json!({"get": {
        "summary": "The customer's identities (namespace, value, source, at) and the customers merged into them",
        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
        "responses": with(json!({"200": {"description": "{customer_id, identities: [{namespace, value, source, at}], merged_from: [{merged, survivor, reason, at, unmerged_at}]}"}}), &[(Code::InvalidCustomerId, ""), (Code::CustomerNotFound, "a merged id's message names its survivor")])
    }});
    campaign_paths(&mut document, &with);
    document
}

/// A path's answers with the error responses of these codes added.
type WithErrors<'a> = &'a dyn Fn(Value, &[(Code, &str)]) -> Value;

/// Offers and campaigns (see docs/campaigns.md).
fn campaign_paths(document: &mut Value, with: WithErrors<'_>) {
    let name =
        json!([{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}]);
    document["paths"]["/v1/offers"] = json!({
        "get": {"summary": "Every offer (coupon template) with what it issued (viewer, operator, admin)", "responses": with(json!({"200": {"description": "[{name, label, benefit, validity, max_coupons, max_face, issued, issued_face, created_by, created_at}]; money in fen"}}), &[])},
        "post": {"summary": "Create an offer: kind threshold (min, off: 满X减Y), no_threshold (off), percent (percent, cap) or free_item (item, value), amounts in yuan; valid days from issue (default 14) or from/until local days; max_coupons, max_face (operator, admin)",
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["name", "kind"], "additionalProperties": false, "properties": {"name": {"type": "string"}, "kind": {"enum": ["threshold", "no_threshold", "percent", "free_item"]}, "min": {}, "off": {}, "percent": {"type": "integer", "minimum": 1, "maximum": 99}, "cap": {}, "item": {"type": "string"}, "value": {}, "days": {"type": "integer"}, "from": {"type": "string", "format": "date"}, "until": {"type": "string", "format": "date"}, "max_coupons": {"type": "integer"}, "max_face": {}}}}}},
            "responses": with(json!({"201": {"description": "{name, label, offer}"}}), &[(Code::InvalidOffer, ""), (Code::OfferExists, ""), (Code::MalformedJson, "")])}
    });
    document["paths"]["/v1/campaigns"] = json!({
        "get": {"summary": "Every campaign: status, audience, tiers, message, channel, policy, runs (viewer, operator, admin)", "responses": with(json!({"200": {"description": "[{name, status, audience, tiers, message, channel, policy, start_at, runs, created_by, created_at}]"}}), &[])},
        "post": {"summary": "Create a campaign: segment or customers (ids), or on_enter SEGMENT / on_stage STAGE / on_event TYPE with steps (triggered), message, channel (export or webhook:NAME), tiers [{name, rule, offer}] or the defaults with value_offer and lapsed_offer, holdout (%), frequency_cap/frequency_days, platform_cap/platform_days, quiet_hours (HH:MM-HH:MM or none), message_in_cycle, attribution_days, start_at (operator, admin)",
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["name", "message"], "additionalProperties": false, "properties": {"name": {"type": "string"}, "segment": {"type": "string"}, "customers": {"type": "array", "items": {"type": "string"}}, "on_enter": {"type": "string", "description": "triggered on entering this segment"}, "on_stage": {"type": "string", "description": "triggered on entering this lifecycle stage"}, "on_event": {"type": "string", "description": "triggered by an event of this type"}, "steps": {"type": "array", "items": {"type": "string"}, "description": "a triggered campaign's steps, DELAY or DELAY:TIER (0, 30m, 2h, 3d)"}, "message": {"type": "string"}, "channel": {"type": "string", "default": "export"}, "value_offer": {"type": "string"}, "lapsed_offer": {"type": "string"}, "tiers": {"type": "array", "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "rule": {"type": "string"}, "offer": {"type": ["string", "null"]}}}}, "holdout": {"type": "number", "default": 10}, "frequency_cap": {"type": "integer", "default": 2}, "frequency_days": {"type": "integer", "default": 7}, "platform_cap": {"type": "integer"}, "platform_days": {"type": "integer", "default": 1}, "quiet_hours": {"type": "string", "default": "21:00-08:00"}, "message_in_cycle": {"type": "boolean"}, "attribution_days": {"type": "integer", "default": 14}, "start_at": {"type": "string", "format": "date-time"}}}}}},
            "responses": with(json!({"201": {"description": "the campaign, as GET /v1/campaigns/{name}"}}), &[(Code::InvalidCampaign, ""), (Code::CampaignExists, ""), (Code::MalformedJson, "")])}
    });
    document["paths"]["/v1/campaigns/{name}"] = json!({"get": {"summary": "One campaign (viewer, operator, admin)", "parameters": name, "responses": with(json!({"200": {"description": "the campaign"}}), &[(Code::CampaignNotFound, "")])}});
    document["paths"]["/v1/campaigns/{name}/run"] = json!({"post": {"summary": "Decide every customer of the audience now, with the reason of each (never, holdout, held back, sent), the coupons and the sends in one transaction (operator, admin)", "parameters": name, "responses": with(json!({"200": {"description": "{run, audience, counts: [[outcome, reason, customers]], coupons, face_value, not_before, deliveries, seconds}"}}), &[(Code::CampaignNotFound, ""), (Code::CampaignNotRunnable, ""), (Code::InvalidCampaign, "an offer or tier that no longer reads")])}});
    document["paths"]["/v1/campaigns/{name}/pending"] = json!({"get": {"summary": "A triggered campaign's queued steps, the first due first, at most 10,000 (viewer, operator, admin)", "parameters": name, "responses": with(json!({"200": {"description": "[{step, customer_id, entered_at, due_at}]"}}), &[(Code::CampaignNotFound, "")])}});
    document["paths"]["/v1/campaigns/{name}/pause"] = json!({"post": {"summary": "Pause the campaign: it does not run until resumed (operator, admin)", "parameters": name, "responses": with(json!({"200": {"description": "{name, status}"}}), &[(Code::CampaignNotFound, "")])}});
    document["paths"]["/v1/campaigns/{name}/resume"] = json!({"post": {"summary": "Let a paused campaign run again (operator, admin)", "parameters": name, "responses": with(json!({"200": {"description": "{name, status}"}}), &[(Code::CampaignNotFound, "")])}});
    document["paths"]["/v1/campaigns/{name}/decisions"] = json!({"get": {"summary": "Each decision with its reason, by run and customer (viewer, operator, admin)", "parameters": [name[0].clone(), {"name": "customer", "in": "query", "schema": {"type": "string"}, "description": "one customer's decisions"}], "responses": with(json!({"200": {"description": "[{run, customer_id, tier, outcome, reason, detail, decided_at, channel, not_before, coupon_code, sent_at}]"}}), &[(Code::CampaignNotFound, ""), (Code::InvalidQuery, "")])}});
    document["paths"]["/v1/campaigns/{name}/results"] = json!({"get": {"summary": "Treated (sent or held back) against the holdout, overall and per tier: customers, buyers, orders, revenue per customer, redemption, coupon cost, incremental GMV, ROI, conversion and revenue lift with 95% intervals, and why not when the groups are too small (viewer, operator, admin)", "parameters": name, "responses": with(json!({"200": {"description": "{campaign, attribution_days, overall, tiers}; money in fen"}}), &[(Code::CampaignNotFound, "")])}});
}

/// The webhook endpoints' routes (kept apart: one `json!` of every route is past the
/// macro's recursion limit).
fn webhook_paths(with: WithErrors<'_>) -> Value {
    json!({
        "get": {"summary": "The tenant's webhook endpoints by name: url, limits (max_attempts, max_in_flight, max_per_second, timeout_ms, backoff_ms), created_at and outbox: their sends by state {pending, delivered, dead, cancelled}; never a secret (admin)", "responses": with(json!({"200": {"description": "[{name, url, max_attempts, max_in_flight, max_per_second, timeout_ms, backoff_ms, created_at, outbox}]"}}), &[])},
        "post": {"summary": "Add a webhook endpoint the dispatcher of siyu serve posts sends to, signed with its secret (generated unless given), shown this once; see docs/delivery.md (admin)",
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["name", "url"], "additionalProperties": false, "properties": {"name": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"}, "url": {"type": "string", "description": "http://host[:port]/path"}, "secret": {"type": "string", "minLength": 16, "maxLength": 256}, "max_attempts": {"type": "integer", "minimum": 1, "maximum": 100, "default": 8}, "max_in_flight": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 16}, "max_per_second": {"type": "integer", "minimum": 0, "maximum": 100000, "default": 0}, "timeout_ms": {"type": "integer", "minimum": 100, "maximum": 120000, "default": 10000}, "backoff_ms": {"type": "integer", "minimum": 1, "maximum": 3600000, "default": 5000}}}}}},
            "responses": with(json!({"201": {"description": "{secret (shown this once), name, url, limits, created_at, outbox}"}}), &[(Code::InvalidWebhook, ""), (Code::WebhookExists, ""), (Code::MalformedJson, "")])}
    })
}

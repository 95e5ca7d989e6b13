//! The one error type of the API: a code from one closed table and a message, `{"code",
//! "message"}`. The handlers, the OpenAPI document and docs/errors.md all read the table,
//! so a code cannot be misspelt in one place or missing from another. A 5xx says only
//! "internal error"; its cause is logged once, here.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Declares [`Code`] with each code's stable name, status and description, in the order the
/// OpenAPI document and docs/errors.md list them.
macro_rules! codes {
    ($($variant:ident = $name:literal, $status:ident, $description:literal;)+) => {
        /// Every error code the API answers with. The names are a contract with clients:
        /// never change one.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code {
            $($variant,)+
        }

        impl Code {
            /// Every code, in the document's order.
            pub const ALL: &[Code] = &[$(Code::$variant,)+];

            /// The stable snake_case string clients match on.
            pub fn name(self) -> &'static str {
                match self {
                    $(Code::$variant => $name,)+
                }
            }

            pub fn status(self) -> StatusCode {
                match self {
                    $(Code::$variant => StatusCode::$status,)+
                }
            }

            /// When the API answers with the code, for people.
            pub fn description(self) -> &'static str {
                match self {
                    $(Code::$variant => $description,)+
                }
            }
        }
    };
}

codes! {
    Unauthorized = "unauthorized", UNAUTHORIZED, "missing, unknown or revoked token";
    Forbidden = "forbidden", FORBIDDEN, "the token's role may not do this";
    RateLimited = "rate_limited", TOO_MANY_REQUESTS, "rate limited; see Retry-After";
    RequestTimeout = "request_timeout", REQUEST_TIMEOUT, "the request's body did not come within the body timeout; the connection closes";
    NotFound = "not_found", NOT_FOUND, "no such route";
    MethodNotAllowed = "method_not_allowed", METHOD_NOT_ALLOWED, "the route does not take that method";
    MalformedJson = "malformed_json", BAD_REQUEST, "the body is not JSON (the message gives line and column)";
    PayloadTooLarge = "payload_too_large", PAYLOAD_TOO_LARGE, "the body is larger than the route takes";
    UnknownField = "unknown_field", BAD_REQUEST, "a batch's body holds a field other than batch";
    InvalidBatch = "invalid_batch", BAD_REQUEST, "the body is not {\"batch\": [items]}";
    BatchTooLarge = "batch_too_large", PAYLOAD_TOO_LARGE, "more than 1,000 items in a batch";
    ItemTooLarge = "item_too_large", PAYLOAD_TOO_LARGE, "a batch item larger than 32 KiB";
    InvalidQuery = "invalid_query", BAD_REQUEST, "a query parameter is unknown or out of range";
    InvalidCustomerId = "invalid_customer_id", BAD_REQUEST, "a customer id that is empty, too long or has control characters";
    CustomerNotFound = "customer_not_found", NOT_FOUND, "the tenant has no such customer";
    ReportNotFound = "report_not_found", NOT_FOUND, "no report of that name";
    InvalidSegment = "invalid_segment", BAD_REQUEST, "a segment's body or name is refused";
    InvalidSegmentRule = "invalid_segment_rule", BAD_REQUEST, "a segment's rule does not read (the message names the column)";
    SegmentExists = "segment_exists", CONFLICT, "the tenant has a segment of that name already";
    SegmentNotFound = "segment_not_found", NOT_FOUND, "the tenant has no such segment";
    InvalidTag = "invalid_tag", BAD_REQUEST, "a tag's body, name or family is refused";
    InvalidTagRule = "invalid_tag_rule", BAD_REQUEST, "a tag rule does not read, or does not hold against the others";
    TagNotFound = "tag_not_found", NOT_FOUND, "the customer does not have the tag";
    TagNotManual = "tag_not_manual", CONFLICT, "the tag comes from a tag rule or is a level tag, and cannot be taken off by hand";
    TagRuleCircle = "tag_rule_circle", CONFLICT, "tag rules that would ask for each other (the message names them)";
    TagRuleNotFound = "tag_rule_not_found", NOT_FOUND, "the tenant has no such tag rule";
    InvalidClvFit = "invalid_clv_fit", BAD_REQUEST, "a fit's body is refused (calibration_end, horizon_weeks, discount_monthly)";
    ClvCannotFit = "clv_cannot_fit", CONFLICT, "the orders do not allow a fit (none paid by the calibration end, or no repeat purchases)";
    ClvNotFitted = "clv_not_fitted", CONFLICT, "no lifetime value model is fitted for the tenant yet";
    InvalidToken = "invalid_token", BAD_REQUEST, "a new token's body, role or label is refused";
    InvalidTokenPrefix = "invalid_token_prefix", BAD_REQUEST, "a token prefix that is not 8 to 64 hex digits";
    TokenNotFound = "token_not_found", NOT_FOUND, "none of the tenant's live tokens has a hash with that prefix";
    CustomerErased = "customer_erased", GONE, "the customer was erased at their request";
    ErasedRemains = "erased_remains", CONFLICT, "the id is an erased customer's remains";
    InvalidMerge = "invalid_merge", BAD_REQUEST, "a merge's body is not {\"with\": ID}, or names the customer itself";
    MergeRefused = "merge_refused", CONFLICT, "the two customers are recorded as two persons (never-merge)";
    NotMerged = "not_merged", CONFLICT, "the customer is not merged into anyone";
    UnmergeOrder = "unmerge_order", CONFLICT, "a later merge into the same survivor stands: undo it first (the message names it)";
    WecomNotConfigured = "wecom_not_configured", NOT_FOUND, "no WeCom callback is set for the tenant the path names (siyu wecom set-callback)";
    BadSignature = "bad_signature", UNAUTHORIZED, "a WeCom callback's msg_signature does not match, or its message is for another corp";
    InvalidCallback = "invalid_callback", BAD_REQUEST, "a WeCom callback's query or body is not what WeCom sends";
    InvalidOffer = "invalid_offer", BAD_REQUEST, "an offer's body is refused (the message says which field and why)";
    OfferExists = "offer_exists", CONFLICT, "the tenant has an offer of that name already";
    OfferNotFound = "offer_not_found", NOT_FOUND, "the tenant has no such offer";
    InvalidCampaign = "invalid_campaign", BAD_REQUEST, "a campaign's body is refused: its audience, tiers (an offer or segment that does not exist, a rule that does not read), channel or policy";
    CampaignExists = "campaign_exists", CONFLICT, "the tenant has a campaign of that name already";
    CampaignNotFound = "campaign_not_found", NOT_FOUND, "the tenant has no such campaign";
    CampaignNotRunnable = "campaign_not_runnable", CONFLICT, "the campaign is paused, scheduled for later, or was run meanwhile";
    InvalidWebhook = "invalid_webhook", BAD_REQUEST, "a webhook endpoint's body, name, URL, secret or limits are refused (the message says which)";
    WebhookExists = "webhook_exists", CONFLICT, "the tenant has a webhook endpoint of that name already";
    Internal = "internal", INTERNAL_SERVER_ERROR, "the server failed; the message says only \"internal error\", the log says more";
}

impl Code {
    /// docs/errors.md: every code with its status and description, as a table.
    pub fn markdown() -> String {
        let mut out = String::from(
            "# Error codes of the HTTP API\n\n\
             Every error answer is `{\"code\", \"message\"}`; clients match on `code`, which never\n\
             changes. Generated from `Code` in crates/siyu/src/http/error.rs (a test keeps this\n\
             file equal to it: `SIYU_WRITE_DOCS=1 cargo test -p siyu --test http error_codes`\n\
             rewrites it).\n\n\
             | code | status | when |\n| --- | --- | --- |\n",
        );
        for code in Code::ALL {
            out.push_str(&format!(
                "| `{}` | {} | {} |\n",
                code.name(),
                code.status().as_u16(),
                code.description().replace('|', "\\|")
            ));
        }
        out
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug)]
pub enum ApiError {
    /// A refusal with its code and a message for the client.
    Refused {
        code: Code,
        message: String,
    },
    RateLimited {
        retry_after_secs: u64,
    },
    /// The server's own failure: 500 `internal`, the cause logged and never sent.
    Internal(anyhow::Error),
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> ApiError {
        ApiError::Refused {
            code,
            message: message.into(),
        }
    }

    pub fn code(&self) -> Code {
        match self {
            ApiError::Refused { code, .. } => *code,
            ApiError::RateLimited { .. } => Code::RateLimited,
            ApiError::Internal(_) => Code::Internal,
        }
    }

    pub(crate) fn message(&self) -> String {
        match self {
            ApiError::Refused { code, .. } if code.status().is_server_error() => {
                "internal error".to_owned()
            }
            ApiError::Refused { message, .. } => message.clone(),
            ApiError::RateLimited { retry_after_secs } => {
                format!("too many requests for this token; retry after {retry_after_secs} s")
            }
            ApiError::Internal(_) => "internal error".to_owned(),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> ApiError {
        ApiError::Internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(cause) = &self {
            // The cause chain names files, tables and ids, never a customer's name or phone;
            // the request's span adds its method and route.
            tracing::error!("internal error: {cause:#}");
        }
        let code = self.code();
        let message = self.message();
        let mut response = (
            code.status(),
            Json(Body {
                code: code.name(),
                message: &message,
            }),
        )
            .into_response();
        if let ApiError::RateLimited { retry_after_secs } = self
            && let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_own_snake_case_name() {
        let mut seen = std::collections::HashSet::new();
        for code in Code::ALL {
            let name = code.name();
            assert!(seen.insert(name), "{name} twice");
            assert!(
                !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit()),
                "{name}"
            );
            assert!(
                code.status().is_client_error() || code.status().is_server_error(),
                "{name}"
            );
        }
    }

    #[test]
    fn a_server_error_never_sends_its_message() {
        let e = ApiError::new(Code::Internal, "table customers: disk full");
        assert_eq!(e.message(), "internal error");
    }
}

//! The one error type of the API: a stable snake_case code and a message, `{"code",
//! "message"}`. A 5xx says only "internal error"; its cause is logged once, here.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug)]
pub enum ApiError {
    Unauthorized(String),
    Forbidden(String),
    NotFound {
        code: &'static str,
        message: String,
    },
    BadRequest {
        code: &'static str,
        message: String,
    },
    Conflict {
        code: &'static str,
        message: String,
    },
    /// What was asked for was there once and is deliberately gone (an erased customer).
    Gone {
        code: &'static str,
        message: String,
    },
    PayloadTooLarge {
        code: &'static str,
        message: String,
    },
    RateLimited {
        retry_after_secs: u64,
    },
    Internal(anyhow::Error),
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::NotFound {
            code,
            message: message.into(),
        }
    }

    fn parts(&self) -> (StatusCode, &str, String) {
        match self {
            ApiError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, "unauthorized", m.clone()),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, "forbidden", m.clone()),
            ApiError::NotFound { code, message } => (StatusCode::NOT_FOUND, code, message.clone()),
            ApiError::BadRequest { code, message } => {
                (StatusCode::BAD_REQUEST, code, message.clone())
            }
            ApiError::Conflict { code, message } => (StatusCode::CONFLICT, code, message.clone()),
            ApiError::Gone { code, message } => (StatusCode::GONE, code, message.clone()),
            ApiError::PayloadTooLarge { code, message } => {
                (StatusCode::PAYLOAD_TOO_LARGE, code, message.clone())
            }
            ApiError::RateLimited { retry_after_secs } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many requests for this token; retry after {retry_after_secs} s"),
            ),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error".to_owned(),
            ),
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
            // The cause chain names files, tables and ids, never a customer's name or phone.
            eprintln!("siyu serve: internal error: {cause:#}");
        }
        let (status, code, message) = self.parts();
        let mut response = (
            status,
            Json(Body {
                code,
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

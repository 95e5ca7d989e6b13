//! Webhook endpoints and their sends (see docs/delivery.md): adding and listing endpoints,
//! test sends, the signature a receiver checks (HMAC-SHA256 over the timestamp and the
//! body), and the retry schedule. The dispatcher that delivers is `service::dispatch`.

use anyhow::Context;
use sha2::{Digest, Sha256};

use siyu_core::Timestamp;
use siyu_store::{NewDelivery, Store, Tenant, WebhookEndpoint};

use super::tokens::random_hex;

/// The header naming the send (the same on every attempt: the receiver's dedupe key).
pub const SEND_ID_HEADER: &str = "x-siyu-send-id";
/// The header with the attempt's time, Unix seconds.
pub const TIMESTAMP_HEADER: &str = "x-siyu-timestamp";
/// The header with `v1=` and the hex HMAC-SHA256 of `"{timestamp}.{body}"`.
pub const SIGNATURE_HEADER: &str = "x-siyu-signature";
/// The header with the attempt's number, from 1.
pub const ATTEMPT_HEADER: &str = "x-siyu-attempt";
/// How old a timestamp a receiver should still accept (what the docs advise).
pub const TOLERANCE_SECS: i64 = 300;

/// The longest wait between two attempts.
const MAX_BACKOFF_MS: u64 = 3_600_000;

/// Limits of an endpoint as given (`None`: the default).
#[derive(Debug, Clone, Default)]
pub struct Limits {
    pub max_attempts: Option<u32>,
    pub max_in_flight: Option<u32>,
    pub max_per_second: Option<u32>,
    pub timeout_ms: Option<u64>,
    pub backoff_ms: Option<u64>,
}

/// Why an endpoint could not be added or used.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("the tenant has a webhook endpoint named '{0}' already")]
    Exists(String),
    #[error("no webhook endpoint named '{0}'")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// HMAC-SHA256 (RFC 2104) of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The signature header's value of a body sent at `timestamp` (Unix seconds).
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut message = Vec::with_capacity(body.len() + 21);
    message.extend_from_slice(timestamp.to_string().as_bytes());
    message.push(b'.');
    message.extend_from_slice(body.as_bytes());
    format!("v1={}", hex(&hmac_sha256(secret.as_bytes(), &message)))
}

/// What a receiver does (see docs/delivery.md): true when `header` is the signature of
/// `body` at `timestamp` and the timestamp is within [`TOLERANCE_SECS`] of `now`.
pub fn verify(secret: &str, timestamp: i64, body: &str, header: &str, now: i64) -> bool {
    if (now - timestamp).abs() > TOLERANCE_SECS {
        return false;
    }
    let expected = signature(secret, timestamp, body);
    // In constant time: how much of a forged signature is right must not show.
    expected.len() == header.len()
        && expected
            .bytes()
            .zip(header.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// When the attempt after the `attempt`-th failed one is due: the endpoint's backoff
/// doubled for each attempt made, up to an hour, less a random part of up to half
/// (jitter, so that sends failed together do not all come back together). `None` when
/// that was the last attempt: the send is dead.
pub fn retry_at(
    endpoint: &WebhookEndpoint,
    attempt: u32,
    now: Timestamp,
    random: u64,
) -> Option<Timestamp> {
    if attempt >= endpoint.max_attempts {
        return None;
    }
    let doubling = attempt.saturating_sub(1).min(40);
    let full = endpoint
        .backoff_ms
        .saturating_mul(1u64 << doubling)
        .min(MAX_BACKOFF_MS);
    let half = full / 2;
    let wait = full - random % (half + 1);
    let wait = jiff::SignedDuration::from_millis(i64::try_from(wait).unwrap_or(i64::MAX));
    Some(now.saturating_add(wait).unwrap_or(now))
}

fn check_name(name: &str) -> Result<(), WebhookError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(WebhookError::Invalid(format!(
            "'{name}' is not an endpoint name: 1 to 64 letters, digits, '-', '_' or '.'"
        )))
    }
}

/// Checks a URL the dispatcher can post to: `http://host[:port]/path`.
/// The longest webhook URL taken.
pub const MAX_URL_CHARS: usize = 2_048;

pub fn check_url(url: &str) -> Result<(), WebhookError> {
    if url.len() > MAX_URL_CHARS {
        return Err(WebhookError::Invalid(format!(
            "a webhook URL is at most {MAX_URL_CHARS} characters, not {}",
            url.len()
        )));
    }
    if url.starts_with("https://") {
        return Err(WebhookError::Invalid(
            "https:// is not supported by the dispatcher yet: put a TLS-terminating proxy \
             on the same host and give its http:// address (see docs/delivery.md)"
                .into(),
        ));
    }
    let parsed: hyper::Uri = url
        .parse()
        .map_err(|e| WebhookError::Invalid(format!("'{url}' is not a URL: {e}")))?;
    if parsed.scheme_str() != Some("http") || parsed.host().is_none_or(str::is_empty) {
        return Err(WebhookError::Invalid(format!(
            "'{url}' is not an http:// URL with a host"
        )));
    }
    Ok(())
}

fn check_limits(e: &WebhookEndpoint) -> Result<(), WebhookError> {
    let bad = |what: &str| Err(WebhookError::Invalid(what.to_owned()));
    if !(1..=100).contains(&e.max_attempts) {
        return bad("--max-attempts must be 1 to 100");
    }
    if !(1..=1000).contains(&e.max_in_flight) {
        return bad("--max-in-flight must be 1 to 1000");
    }
    if e.max_per_second > 100_000 {
        return bad("--max-per-second must be 0 (no limit) to 100000");
    }
    if !(100..=120_000).contains(&e.timeout_ms) {
        return bad("--timeout-ms must be 100 to 120000");
    }
    if !(1..=MAX_BACKOFF_MS).contains(&e.backoff_ms) {
        return bad("--backoff-ms must be 1 to 3600000");
    }
    if e.secret.len() < 16 || e.secret.len() > 256 {
        return bad("--secret must have 16 to 256 characters");
    }
    Ok(())
}

/// Adds an endpoint; its secret is generated when none is given (32 random bytes, hex).
/// Returns the endpoint as stored (the secret shown to the operator once).
pub fn add_webhook(
    store: &mut dyn Store,
    tenant: &Tenant,
    name: &str,
    url: &str,
    secret: Option<&str>,
    limits: &Limits,
) -> Result<WebhookEndpoint, WebhookError> {
    check_name(name)?;
    check_url(url)?;
    let secret = match secret {
        Some(s) => s.to_owned(),
        None => format!("whsec_{}", random_hex(32)?),
    };
    let endpoint = WebhookEndpoint {
        name: name.to_owned(),
        url: url.to_owned(),
        secret,
        max_attempts: limits.max_attempts.unwrap_or(8),
        max_in_flight: limits.max_in_flight.unwrap_or(16),
        max_per_second: limits.max_per_second.unwrap_or(0),
        timeout_ms: limits.timeout_ms.unwrap_or(10_000),
        backoff_ms: limits.backoff_ms.unwrap_or(5_000),
        created_at: Timestamp::now(),
    };
    check_limits(&endpoint)?;
    if !store
        .add_webhook(tenant, &endpoint)
        .context("adding the webhook endpoint")?
    {
        return Err(WebhookError::Exists(name.to_owned()));
    }
    Ok(endpoint)
}

/// The tenant's endpoint of that name.
pub fn webhook(
    store: &mut dyn Store,
    tenant: &Tenant,
    name: &str,
) -> Result<WebhookEndpoint, WebhookError> {
    store
        .webhooks(tenant)
        .context("reading the webhook endpoints")?
        .into_iter()
        .find(|e| e.name == name)
        .ok_or_else(|| WebhookError::NotFound(name.to_owned()))
}

/// `count` test sends to the endpoint, through the same outbox as every send; their ids.
pub fn enqueue_tests(
    store: &mut dyn Store,
    tenant: &Tenant,
    name: &str,
    count: usize,
) -> Result<Vec<String>, WebhookError> {
    webhook(store, tenant, name)?;
    if !(1..=1_000_000).contains(&count) {
        return Err(WebhookError::Invalid(
            "--count must be 1 to 1000000".to_owned(),
        ));
    }
    let now = Timestamp::now();
    let run = random_hex(6)?;
    let sends: Vec<NewDelivery> = (0..count)
        .map(|i| {
            let send_id = format!("test-{run}-{i}");
            NewDelivery {
                payload: serde_json::json!({
                    "type": "test",
                    "send_id": send_id,
                    "created_at": now.to_string(),
                })
                .to_string(),
                send_id,
                endpoint: name.to_owned(),
                not_before: now,
            }
        })
        .collect();
    store
        .enqueue(tenant, &sends, now)
        .context("enqueueing the test sends")?;
    Ok(sends.into_iter().map(|s| s.send_id).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// RFC 4231's test cases 1, 2, 3, 4, 6 and 7 (5 truncates its output).
    #[test]
    fn hmac_matches_rfc_4231() {
        let cases: [(Vec<u8>, Vec<u8>, &str); 6] = [
            (
                vec![0x0b; 20],
                b"Hi There".to_vec(),
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            ),
            (
                b"Jefe".to_vec(),
                b"what do ya want for nothing?".to_vec(),
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                vec![0xaa; 20],
                vec![0xdd; 50],
                "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
            ),
            (
                unhex("0102030405060708090a0b0c0d0e0f10111213141516171819"),
                vec![0xcd; 50],
                "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
            ),
            (
                vec![0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
            (
                vec![0xaa; 131],
                b"This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.".to_vec(),
                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
            ),
        ];
        for (key, data, expected) in cases {
            assert_eq!(hex(&hmac_sha256(&key, &data)), expected);
        }
    }

    #[test]
    fn a_signature_verifies_only_with_its_secret_body_and_a_fresh_timestamp() {
        let sig = signature("s3cret-s3cret-s3", 1_765_000_000, r#"{"a":1}"#);
        // As docs/delivery.md's Python computes it (hmac.new(secret, ts + b"." + body, sha256)).
        assert_eq!(
            sig,
            "v1=bd28a262643c3e1dc9be5d0964c496d6c424f7e6aeaf92b12c5a6aca76d15435"
        );
        assert!(verify(
            "s3cret-s3cret-s3",
            1_765_000_000,
            r#"{"a":1}"#,
            &sig,
            1_765_000_100
        ));
        assert!(!verify(
            "s3cret-s3cret-s4",
            1_765_000_000,
            r#"{"a":1}"#,
            &sig,
            1_765_000_100
        ));
        assert!(!verify(
            "s3cret-s3cret-s3",
            1_765_000_000,
            r#"{"a":2}"#,
            &sig,
            1_765_000_100
        ));
        assert!(!verify(
            "s3cret-s3cret-s3",
            1_765_000_001,
            r#"{"a":1}"#,
            &sig,
            1_765_000_100
        ));
        // Replayed after the tolerance: refused.
        assert!(!verify(
            "s3cret-s3cret-s3",
            1_765_000_000,
            r#"{"a":1}"#,
            &sig,
            1_765_000_301
        ));
    }

    fn endpoint(max_attempts: u32, backoff_ms: u64) -> WebhookEndpoint {
        WebhookEndpoint {
            name: "crm".into(),
            url: "http://127.0.0.1:9/".into(),
            secret: "0123456789abcdef".into(),
            max_attempts,
            max_in_flight: 4,
            max_per_second: 0,
            timeout_ms: 1000,
            backoff_ms,
            created_at: Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn retries_back_off_exponentially_with_jitter_until_the_last_attempt() {
        let e = endpoint(5, 1000);
        let now = Timestamp::UNIX_EPOCH;
        let wait = |attempt, random| {
            retry_at(&e, attempt, now, random).map(|t| t.duration_since(now).as_millis())
        };
        // No jitter drawn: the full doubling.
        assert_eq!(wait(1, 0), Some(1000));
        assert_eq!(wait(2, 0), Some(2000));
        assert_eq!(wait(4, 0), Some(8000));
        // Jitter takes up to half off.
        assert_eq!(wait(2, 1000), Some(1000));
        assert_eq!(wait(2, 1001), Some(2000));
        for r in 0..50 {
            let w = wait(3, r * 7919).expect("a retry");
            assert!((2000..=4000).contains(&w), "{w}");
        }
        assert_eq!(wait(5, 0), None, "the fifth attempt was the last");
        // Never more than an hour.
        let slow = endpoint(100, 1_000_000);
        assert_eq!(
            retry_at(&slow, 60, now, 0).map(|t| t.duration_since(now).as_millis()),
            Some(3_600_000)
        );
    }

    #[test]
    fn only_plain_http_urls_with_a_host_are_taken() {
        assert!(check_url("http://127.0.0.1:8080/hook").is_ok());
        assert!(check_url("http://crm.internal/siyu").is_ok());
        assert!(check_url("https://crm.example.com/siyu").is_err());
        assert!(check_url("ftp://x/").is_err());
        assert!(check_url("not a url").is_err());
        assert!(check_url("/relative").is_err());
        let long = format!("http://h/{}", "a".repeat(MAX_URL_CHARS));
        assert!(check_url(&long).is_err());
    }
}

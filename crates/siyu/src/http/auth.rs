//! Bearer tokens: who is calling, for which tenant, in which role, and how fast.
//! Tokens are made in `service::tokens`; only their SHA-256 is stored. Lookups are cached
//! for a few seconds, so a token revoked elsewhere stops within that; one revoked through
//! this server's API stops at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use siyu_core::access::{Action, Role};
use siyu_store::{StoredToken, Tenant};

use super::AppState;
use super::error::{ApiError, Code};
pub use crate::service::tokens::{hash_token, new_token};

/// How long a token lookup is trusted.
const CACHE_FOR: Duration = Duration::from_secs(5);
/// Token lookups kept at most: a flood of made-up tokens cannot grow the cache past this.
const CACHE_ENTRIES: usize = 100_000;

/// The caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant: Tenant,
    pub role: Role,
    /// The first 12 hex digits of the token's hash: which token, for the audit log.
    pub token: String,
}

impl Caller {
    pub fn require(&self, action: Action) -> Result<(), ApiError> {
        if self.role.allows(action) {
            Ok(())
        } else {
            Err(ApiError::new(
                Code::Forbidden,
                format!(
                    "{} {} token may not do this",
                    crate::wording::article(self.role.as_str()),
                    self.role
                ),
            ))
        }
    }
}

#[derive(Default)]
pub struct TokenCache {
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    by_hash: HashMap<String, (Option<StoredToken>, Instant)>,
    /// Counts revokes: a lookup read from the store before a revoke is not cached after it.
    generation: u64,
}

impl TokenCache {
    fn get(&self, hash: &str) -> Option<Option<StoredToken>> {
        let entries = self.entries.lock().ok()?;
        entries
            .by_hash
            .get(hash)
            .filter(|(_, at)| at.elapsed() < CACHE_FOR)
            .map(|(t, _)| t.clone())
    }

    fn generation(&self) -> u64 {
        self.entries.lock().map_or(0, |e| e.generation)
    }

    /// Keeps a lookup, unless a revoke came after `generation` was read.
    fn put(&self, hash: String, token: Option<StoredToken>, generation: u64) {
        if let Ok(mut e) = self.entries.lock()
            && e.generation == generation
        {
            // Unknown tokens are kept too (a client retrying a bad one costs no lookup), so
            // lookups past their time go before the map outgrows what live tokens need.
            if e.by_hash.len() >= CACHE_ENTRIES {
                e.by_hash.retain(|_, (_, at)| at.elapsed() < CACHE_FOR);
            }
            if e.by_hash.len() < CACHE_ENTRIES {
                e.by_hash.insert(hash, (token, Instant::now()));
            }
        }
    }

    /// Forgets every token whose hash starts with `prefix` (after the store revoked them).
    pub fn forget(&self, prefix: &str) {
        let prefix = prefix.to_ascii_lowercase();
        if let Ok(mut e) = self.entries.lock() {
            e.by_hash.retain(|hash, _| !hash.starts_with(&prefix));
            e.generation += 1;
        }
    }
}

/// Requests per second and burst allowed per token.
#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: f64,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            per_second: 200.0,
            burst: 400.0,
        }
    }
}

/// A token bucket per token.
pub struct Limiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl Limiter {
    pub fn new(limit: RateLimit) -> Limiter {
        Limiter {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from the token's bucket, or says how long to wait.
    fn take(&self, key: &str) -> Result<(), u64> {
        let now = Instant::now();
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        let (tokens, last) = buckets
            .entry(key.to_owned())
            .or_insert((self.limit.burst, now));
        let refill = now.duration_since(*last).as_secs_f64() * self.limit.per_second;
        *tokens = (*tokens + refill).min(self.limit.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - *tokens) / self.limit.per_second.max(1e-9);
            Err(wait.ceil().max(1.0) as u64)
        }
    }
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| ApiError::new(Code::Unauthorized, "send Authorization: Bearer TOKEN"))?;
        // A bearer token, or HTTP Basic with the token as the user name (how Segment's
        // libraries send their write key).
        let token = header
            .to_str()
            .ok()
            .and_then(|h| {
                if let Some(t) = h.strip_prefix("Bearer ") {
                    Some(t.trim().to_owned())
                } else {
                    let encoded = h.strip_prefix("Basic ")?.trim();
                    let decoded = base64::Engine::decode(
                        &base64::engine::general_purpose::STANDARD,
                        encoded,
                    )
                    .ok()?;
                    let text = String::from_utf8(decoded).ok()?;
                    let user = text.split_once(':').map_or(text.as_str(), |(u, _)| u);
                    Some(user.trim().to_owned())
                }
            })
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::new(
                    Code::Unauthorized,
                    "the Authorization header is not Bearer TOKEN (or Basic with the token as user name)",
                )
            })?;
        let token = token.as_str();
        let hash = hash_token(token);
        let stored = match state.tokens.get(&hash) {
            Some(t) => t,
            None => {
                let generation = state.tokens.generation();
                let key = hash.clone();
                let found = state
                    .with_store(move |store| Ok(store.token(&key).context("reading tokens")?))
                    .await?;
                state.tokens.put(hash.clone(), found.clone(), generation);
                found
            }
        };
        let token = stored
            .filter(|t| t.revoked_at.is_none())
            .ok_or_else(|| ApiError::new(Code::Unauthorized, "unknown or revoked token"))?;
        state
            .limiter
            .take(&hash)
            .map_err(|retry_after_secs| ApiError::RateLimited { retry_after_secs })?;
        Ok(Caller {
            tenant: token.tenant,
            role: token.role,
            token: hash[..crate::service::tokens::SHOWN_PREFIX].to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revoke_forgets_the_token_and_a_lookup_read_before_it_is_not_kept() {
        let cache = TokenCache::default();
        let hash = "abcdef0123".to_owned();
        cache.put(hash.clone(), None, cache.generation());
        assert!(cache.get(&hash).is_some());
        let before = cache.generation();
        cache.forget("ABCDEF01");
        assert!(cache.get(&hash).is_none());
        cache.put(hash.clone(), None, before);
        assert!(
            cache.get(&hash).is_none(),
            "read from the store before the revoke"
        );
        cache.put(hash.clone(), None, cache.generation());
        assert!(cache.get(&hash).is_some());
    }

    #[test]
    fn a_bucket_refuses_past_its_burst_and_says_when_to_retry() {
        let l = Limiter::new(RateLimit {
            per_second: 1.0,
            burst: 2.0,
        });
        assert!(l.take("t").is_ok());
        assert!(l.take("t").is_ok());
        assert_eq!(l.take("t"), Err(1));
        assert!(l.take("other").is_ok(), "per token");
    }
}

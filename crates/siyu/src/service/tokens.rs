//! API tokens, for `siyu token …` and `/v1/tokens` alike. A token is `siyu_` and 64 hex
//! digits from the system's randomness, shown once; only its SHA-256 is stored, and a
//! listing shows the first 12 digits of that.

use std::io::Read;

use anyhow::{Context, bail};
use serde::Serialize;
use sha2::{Digest, Sha256};

use siyu_core::Timestamp;
use siyu_core::access::Role;
use siyu_store::{Store, Tenant};

/// Hex digits of the hash a listing shows, and that a revoke may name.
pub const SHOWN_PREFIX: usize = 12;
/// The fewest hex digits a revoke must name.
pub const MIN_PREFIX: usize = 8;
/// The longest label, in characters.
pub const MAX_LABEL: usize = 100;

/// A new token: `siyu_` + 32 random bytes in hex.
pub fn new_token() -> anyhow::Result<String> {
    Ok(format!("siyu_{}", random_hex(32)?))
}

/// `n` bytes of the system's randomness, in hex.
pub fn random_hex(n: usize) -> anyhow::Result<String> {
    let mut bytes = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading the system's randomness")?;
    Ok(hex(&bytes))
}

/// The stored form of a token: SHA-256, in hex.
pub fn hash_token(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// Bytes as lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(2 * bytes.len());
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// Why a token's label or a prefix naming tokens is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("a label is at most {MAX_LABEL} characters")]
    LabelTooLong,
    #[error("a label holds no control characters")]
    LabelControl,
    #[error(
        "'{0}' is not {MIN_PREFIX} to 64 hex digits of a token's hash (see the list of tokens)"
    )]
    Prefix(String),
}

/// A label a token may carry: at most 100 characters, no control characters.
pub fn check_label(label: &str) -> Result<(), TokenError> {
    if label.chars().count() > MAX_LABEL {
        return Err(TokenError::LabelTooLong);
    }
    if label.chars().any(char::is_control) {
        return Err(TokenError::LabelControl);
    }
    Ok(())
}

/// Whether `prefix` can name a token: 8 to 64 hex digits.
pub fn check_prefix(prefix: &str) -> Result<(), TokenError> {
    if !(MIN_PREFIX..=64).contains(&prefix.len()) || !prefix.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(TokenError::Prefix(prefix.to_owned()));
    }
    Ok(())
}

/// A token created now: the token itself (to be shown once) and its listing line.
pub struct NewToken {
    pub token: String,
    pub line: TokenLine,
}

/// Creates a token of `role` for the tenant; only its hash is kept.
pub fn create(
    store: &mut dyn Store,
    tenant: &Tenant,
    role: Role,
    label: &str,
) -> anyhow::Result<NewToken> {
    if let Err(e) = check_label(label) {
        bail!("label: {e}");
    }
    let token = new_token()?;
    let hash = hash_token(&token);
    let now = Timestamp::now();
    store
        .create_token(tenant, &hash, role, label, now)
        .context("saving the token")?;
    Ok(NewToken {
        token,
        line: TokenLine {
            hash_prefix: hash[..SHOWN_PREFIX].to_owned(),
            role,
            label: label.to_owned(),
            created_at: now.to_string(),
            revoked_at: None,
        },
    })
}

/// A token as listed: never the whole hash, never the token.
#[derive(Debug, Clone, Serialize)]
pub struct TokenLine {
    pub hash_prefix: String,
    pub role: Role,
    pub label: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// The tenant's tokens, newest first.
pub fn list(store: &mut dyn Store, tenant: &Tenant) -> anyhow::Result<Vec<TokenLine>> {
    Ok(store
        .tokens(tenant)
        .context("reading tokens")?
        .into_iter()
        .map(|t| TokenLine {
            hash_prefix: t.hash.chars().take(SHOWN_PREFIX).collect(),
            role: t.role,
            label: t.label,
            created_at: t.created_at.to_string(),
            revoked_at: t.revoked_at.map(|r| r.to_string()),
        })
        .collect())
}

/// Revokes the tenant's live tokens whose hash starts with `prefix`; false if none did.
pub fn revoke(store: &mut dyn Store, tenant: &Tenant, prefix: &str) -> anyhow::Result<bool> {
    if let Err(e) = check_prefix(prefix) {
        bail!("{e}");
    }
    store
        .revoke_token(tenant, prefix, Timestamp::now())
        .context("revoking the token")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_only_their_hash_is_kept() {
        let (a, b) = (new_token().expect("token"), new_token().expect("token"));
        assert_ne!(a, b);
        assert!(a.starts_with("siyu_") && a.len() == 5 + 64);
        assert_eq!(hash_token(&a), hash_token(&a));
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_revoke_names_eight_hex_digits_or_more() {
        assert!(check_prefix("abcdef01").is_ok());
        assert!(check_prefix("ABCDEF0123").is_ok());
        assert_eq!(
            check_prefix("abcdef0"),
            Err(TokenError::Prefix("abcdef0".into()))
        );
        assert!(check_prefix("abcdefgh").is_err());
        assert!(check_prefix(&"a".repeat(65)).is_err());
    }

    #[test]
    fn labels_are_short_plain_text() {
        assert!(check_label("").is_ok());
        assert!(check_label("wecom bridge 企业微信").is_ok());
        assert_eq!(check_label("a\nb"), Err(TokenError::LabelControl));
        assert_eq!(check_label(&"x".repeat(101)), Err(TokenError::LabelTooLong));
    }
}

//! The console's users: who may sign in to a tenant's web console, in which role, and how
//! a sign-in is checked. Passwords are kept only as argon2id hashes; repeated failures
//! lock the user for a while; sessions live in the store by the SHA-256 of their secret.

use std::time::Duration;

use anyhow::{Context, bail};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use siyu_core::Timestamp;
use siyu_core::access::Role;
use siyu_store::{ConsoleSession, ConsoleUser, Store, Tenant};

use super::tokens::{hash_token, random_hex};

/// The shortest password taken.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// The longest password taken (hashing a longer one is work an attacker could ask for).
pub const MAX_PASSWORD_CHARS: usize = 128;
/// The longest user name.
pub const MAX_NAME_CHARS: usize = 64;
/// Failed sign-ins in a row before the user is locked.
pub const FAILURES_BEFORE_LOCK: u32 = 5;
/// How long a user stays locked after that.
pub const LOCKED_FOR: Duration = Duration::from_secs(15 * 60);
/// How long a session lasts from sign-in.
pub const SESSION_FOR: Duration = Duration::from_secs(12 * 60 * 60);

/// Checks a user name: 1 to 64 characters, no spaces or control characters.
pub fn check_name(name: &str) -> anyhow::Result<()> {
    let n = name.chars().count();
    if n == 0 || n > MAX_NAME_CHARS {
        bail!("a user name has 1 to {MAX_NAME_CHARS} characters");
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!("a user name has no spaces or control characters");
    }
    Ok(())
}

/// Checks a password's length: 10 to 128 characters.
pub fn check_password(password: &str) -> anyhow::Result<()> {
    let n = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&n) {
        bail!("a password has {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters");
    }
    Ok(())
}

/// The console's roles: the API's, but for `ingest`, which is for programs.
pub fn console_role(text: &str) -> anyhow::Result<Role> {
    match Role::parse(text) {
        Some(r @ (Role::Admin | Role::Operator | Role::Viewer)) => Ok(r),
        _ => bail!("'{text}' is not a console role (admin, operator, viewer)"),
    }
}

fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::encode_b64(&hex_bytes(&random_hex(16)?))
        .map_err(|e| anyhow::anyhow!("making a salt: {e}"))?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))?
        .to_string())
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    hex.as_bytes()
        .chunks(2)
        .filter_map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok())
        .collect()
}

fn verify(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// Creates a console user of the tenant.
pub fn create_user(
    store: &mut dyn Store,
    tenant: &Tenant,
    name: &str,
    role: Role,
    password: &str,
) -> anyhow::Result<()> {
    check_name(name)?;
    check_password(password)?;
    console_role(role.as_str())?;
    let hash = hash_password(password)?;
    if !store.create_user(tenant, name, role, &hash, Timestamp::now())? {
        bail!("the tenant has a user named '{name}' already");
    }
    Ok(())
}

/// Sets a user's password, ending their sessions.
pub fn set_password(
    store: &mut dyn Store,
    tenant: &Tenant,
    name: &str,
    password: &str,
) -> anyhow::Result<()> {
    check_password(password)?;
    let hash = hash_password(password)?;
    if !store.set_password(tenant, name, &hash)? {
        bail!("the tenant has no user named '{name}'");
    }
    Ok(())
}

/// Why a sign-in was refused. The message never says whether the name exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// A wrong name or password.
    Wrong,
    /// Too many failures: locked until then.
    Locked(Timestamp),
}

/// A new session: the secret for the cookie (only its hash is stored) and the session.
pub struct SignedIn {
    pub secret: String,
    pub session: ConsoleSession,
}

/// Checks a sign-in and, when good, starts a session. A wrong password counts a failure;
/// the fifth in a row locks the user for 15 minutes, during which even the right password
/// is refused. An unknown name costs the same hashing work as a known one.
pub fn sign_in(
    store: &mut dyn Store,
    tenant: &Tenant,
    name: &str,
    password: &str,
) -> anyhow::Result<Result<SignedIn, Refused>> {
    let now = Timestamp::now();
    let user = if check_name(name).is_ok() && check_password(password).is_ok() {
        store.console_user(tenant, name)?
    } else {
        None
    };
    let Some(user) = user else {
        // The same work as a real check, so timing does not tell names apart.
        let _ = verify(password, DUMMY_HASH);
        return Ok(Err(Refused::Wrong));
    };
    if let Some(until) = user.locked_until
        && until > now
    {
        return Ok(Err(Refused::Locked(until)));
    }
    if !verify(password, &user.password_hash) {
        let failures = user.failures.saturating_add(1);
        let locked =
            (failures >= FAILURES_BEFORE_LOCK).then(|| now.checked_add(LOCKED_FOR).unwrap_or(now));
        let failures = if locked.is_some() { 0 } else { failures };
        store.record_sign_in(tenant, name, failures, locked)?;
        return Ok(match locked {
            Some(until) => Err(Refused::Locked(until)),
            None => Err(Refused::Wrong),
        });
    }
    if user.failures > 0 || user.locked_until.is_some() {
        store.record_sign_in(tenant, name, 0, None)?;
    }
    let secret = random_hex(32)?;
    let csrf = random_hex(16)?;
    let expires_at = now.checked_add(SESSION_FOR).context("session expiry")?;
    store.create_session(tenant, name, &hash_token(&secret), &csrf, now, expires_at)?;
    let user = ConsoleUser {
        failures: 0,
        locked_until: None,
        ..user
    };
    Ok(Ok(SignedIn {
        secret,
        session: ConsoleSession {
            user,
            csrf,
            expires_at,
        },
    }))
}

/// The session a cookie's secret names, if it is live.
pub fn session(store: &mut dyn Store, secret: &str) -> anyhow::Result<Option<ConsoleSession>> {
    if secret.len() != 64 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    Ok(store.session(&hash_token(secret), Timestamp::now())?)
}

/// Ends the session a cookie's secret names (and any expired ones).
pub fn sign_out(store: &mut dyn Store, secret: &str) -> anyhow::Result<()> {
    Ok(store.end_session(&hash_token(secret), Timestamp::now())?)
}

/// An argon2id hash of a password nobody has, to spend the same work on unknown names.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2l5dWR1bW15c2FsdA$9n4kN7Ww0cE3oQwSxg0q0Jd3m2ZC4Fv1fKq2Xcb8q2Y";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_hash_only() {
        let hash = hash_password("correct horse battery").expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", &hash));
        assert!(!verify("correct horse batterY", &hash));
        assert!(
            PasswordHash::new(DUMMY_HASH).is_ok(),
            "the dummy hash parses"
        );
    }

    #[test]
    fn names_passwords_and_roles_are_limited() {
        assert!(check_name("运营小王").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name(&"x".repeat(65)).is_err());
        assert!(check_password("short").is_err());
        assert!(check_password(&"p".repeat(129)).is_err());
        assert!(console_role("ingest").is_err());
        assert_eq!(console_role("viewer").expect("role"), Role::Viewer);
    }
}

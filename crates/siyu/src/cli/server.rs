//! `siyu serve` and `siyu token …`.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};

use siyu_core::access::Role;
use siyu_store::{Store, Tenant};

use super::output::{Format, local_time_of, print_lines};
use crate::http::{Limits, LogFormat, RateLimit};
use crate::service::tokens;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where to listen: an address or a host name with a port (`127.0.0.1:8080`,
    /// `localhost:8080`, `[::1]:8080`); port 0 picks a free one (printed on start).
    #[arg(long, default_value = "127.0.0.1:8080", value_parser = listen_addr)]
    pub addr: SocketAddr,
    /// Requests per second allowed per token (bursts of twice that).
    #[arg(long, default_value_t = 200.0, env = "SIYU_HTTP__RATE")]
    pub rate: f64,
    /// Seconds a client has for a request's line and headers (also how long a kept-alive
    /// connection may wait idle); the connection is closed past it.
    #[arg(long, default_value_t = 10, env = "SIYU_HTTP__HEADER_TIMEOUT_SECS")]
    pub header_timeout_secs: u64,
    /// Seconds a client has for a request's whole body, from its headers; answered 408
    /// (request_timeout) past it.
    #[arg(long, default_value_t = 30, env = "SIYU_HTTP__BODY_TIMEOUT_SECS")]
    pub body_timeout_secs: u64,
    /// Connections open at once; more are closed as they come (lowered to fit the
    /// process's limit on open files).
    #[arg(long, default_value_t = 1024, env = "SIYU_HTTP__MAX_CONNECTIONS")]
    pub max_connections: usize,
    /// The log on stderr: text for people, or json (one object a line) for a collector.
    /// SIYU_LOG__FILTER chooses what is logged (default info; debug adds each request).
    #[arg(long, value_enum, default_value_t, env = "SIYU_LOG__FORMAT")]
    pub log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token for the tenant (--tenant) and print it, once: only its hash is kept.
    Create {
        /// admin, operator, viewer or ingest.
        #[arg(long)]
        role: String,
        /// What the token is for, e.g. "wecom bridge".
        #[arg(long, default_value = "")]
        label: String,
    },
    /// The tenant's tokens (hash prefix, role, label, created, revoked).
    List {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Revoke a token by the first 8 or more characters of its hash (from `token list`).
    Revoke { hash_prefix: String },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user who signs in to the tenant's web console. The password is read from
    /// SIYU_PASSWORD, or else from the first line of standard input (10 to 128 characters).
    Create {
        name: String,
        /// admin, operator or viewer (as the API's tokens).
        #[arg(long)]
        role: String,
    },
    /// The tenant's console users (name, role, created, locked until).
    List {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Set a user's password (read as for `create`); their sessions end.
    Passwd { name: String },
    /// Delete a user; their sessions end.
    Delete { name: String },
}

/// The password for `user create|passwd`: SIYU_PASSWORD, else a line of standard input.
fn password() -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("SIYU_PASSWORD") {
        return Ok(p);
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

pub fn run_user(
    store: &mut dyn Store,
    tenant: &Tenant,
    command: &UserCommand,
) -> anyhow::Result<()> {
    use crate::service::users;
    match command {
        UserCommand::Create { name, role } => {
            let role = users::console_role(role).context("--role")?;
            users::create_user(store, tenant, name, role, &password()?)?;
            println!(
                "created {role} '{name}' of tenant '{}': sign in at http://HOST:PORT/console",
                tenant.name
            );
        }
        UserCommand::List { format } => {
            // Never the password's hash.
            #[derive(serde::Serialize)]
            struct UserLine {
                name: String,
                role: Role,
                created_at: String,
                locked_until: Option<String>,
            }
            let list: Vec<UserLine> = store
                .console_users(tenant)?
                .into_iter()
                .map(|u| UserLine {
                    name: u.name,
                    role: u.role,
                    created_at: u.created_at.to_string(),
                    locked_until: u.locked_until.map(|t| t.to_string()),
                })
                .collect();
            print_lines(
                *format,
                &list,
                &["name", "role", "created", "locked_until"],
                |u| {
                    vec![
                        u.name.clone(),
                        u.role.to_string(),
                        local_time_of(&tenant.zone, &u.created_at),
                        u.locked_until
                            .as_deref()
                            .map(|t| local_time_of(&tenant.zone, t))
                            .unwrap_or_default(),
                    ]
                },
            )?;
        }
        UserCommand::Passwd { name } => {
            users::set_password(store, tenant, name, &password()?)?;
            println!("password of '{name}' set; their sessions ended");
        }
        UserCommand::Delete { name } => {
            if !store.delete_user(tenant, name)? {
                bail!("the tenant '{}' has no user named '{name}'", tenant.name);
            }
            println!("deleted '{name}'; their sessions ended");
        }
    }
    Ok(())
}

/// `--addr`: a socket address, or a host name and port resolved now (its first address,
/// IPv4 first, as `localhost` means 127.0.0.1 to most people).
fn listen_addr(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    if !text.contains(':') {
        return Err(format!(
            "'{text}' has no port: give HOST:PORT, e.g. 127.0.0.1:8080 or localhost:8080"
        ));
    }
    let mut found: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(text)
        .map_err(|e| format!("'{text}' is not an address to listen on: {e}"))?
        .collect();
    found.sort_by_key(|a| !a.is_ipv4());
    found
        .first()
        .copied()
        .ok_or_else(|| format!("'{text}' resolves to no address"))
}

pub fn serve(db: &str, args: &ServeArgs) -> anyhow::Result<()> {
    if !(args.rate.is_finite() && args.rate > 0.0) {
        bail!("--rate: a positive number of requests per second");
    }
    for (flag, secs) in [
        ("--header-timeout-secs", args.header_timeout_secs),
        ("--body-timeout-secs", args.body_timeout_secs),
    ] {
        if secs == 0 {
            bail!("{flag}: a positive number of seconds");
        }
    }
    if args.max_connections == 0 {
        bail!("--max-connections: a positive number of connections");
    }
    crate::log::init(args.log_format)?;
    crate::http::serve(
        db,
        args.addr,
        RateLimit {
            per_second: args.rate,
            burst: 2.0 * args.rate,
        },
        Limits {
            header_timeout: Duration::from_secs(args.header_timeout_secs),
            body_timeout: Duration::from_secs(args.body_timeout_secs),
            max_connections: args.max_connections,
        },
    )
}

pub fn run_token(
    store: &mut dyn Store,
    tenant: &Tenant,
    command: &TokenCommand,
) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create { role, label } => {
            let role = Role::parse(role).ok_or_else(|| {
                anyhow!("--role: '{role}' is not admin, operator, viewer or ingest")
            })?;
            let created = tokens::create(store, tenant, role, label)?;
            eprintln!(
                "{} {role} token for tenant '{}' (shown once; keep it secret):",
                super::output::article(role.as_str()),
                tenant.name
            );
            println!("{}", created.token);
        }
        TokenCommand::List { format } => {
            let lines = tokens::list(store, tenant)?;
            print_lines(
                *format,
                &lines,
                &["hash", "role", "label", "created", "revoked"],
                |l| {
                    vec![
                        l.hash_prefix.clone(),
                        l.role.to_string(),
                        l.label.clone(),
                        local_time_of(&tenant.zone, &l.created_at),
                        l.revoked_at
                            .as_deref()
                            .map(|r| local_time_of(&tenant.zone, r))
                            .unwrap_or_default(),
                    ]
                },
            )?;
        }
        TokenCommand::Revoke { hash_prefix } => {
            if !tokens::revoke(store, tenant, hash_prefix)? {
                bail!(
                    "no live token of tenant '{}' has a hash starting with '{hash_prefix}' (8 hex digits or more)",
                    tenant.name
                );
            }
            println!("revoked (within a few seconds on running servers)");
        }
    }
    Ok(())
}

#[cfg(test)]
mod addr_tests {
    use super::listen_addr;

    #[test]
    fn localhost_with_a_port_is_an_address_to_listen_on() {
        assert_eq!(
            listen_addr("localhost:8080").expect("resolves").to_string(),
            "127.0.0.1:8080"
        );
        assert_eq!(listen_addr("[::1]:0").expect("v6").to_string(), "[::1]:0");
        assert!(
            listen_addr("localhost")
                .expect_err("no port")
                .contains("has no port")
        );
    }
}

//! Sign-ins guarded per client address, besides the per-user lock: an address with too
//! many failed sign-ins in a while (to any user, of any tenant) is refused for a while,
//! whatever it sends. Kept in the server's memory: a restart forgets it, as it does the
//! API's rate limits.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::http::{Extensions, HeaderMap};

/// Failed sign-ins from one address within [`WINDOW`] that lock it.
pub const FAILURES_PER_ADDRESS: u32 = 10;
/// The while the failures are counted over, from the first.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// How long a locked address is refused.
pub const ADDRESS_LOCKED_FOR: Duration = Duration::from_secs(15 * 60);
/// Addresses remembered at most; past it, those whose window and lock are over are
/// forgotten first, then the oldest.
const MAX_ADDRESSES: usize = 100_000;

/// Where a sign-in came from: the peer's address; a loopback peer (a proxy on the same
/// host) is taken at its word for the client's, the last address of `X-Forwarded-For`.
/// An IPv6 address counts by its /64 (one host's usual share). None in process (tests
/// that drive the router without a connection).
pub fn client_of(extensions: &Extensions, headers: &HeaderMap) -> Option<IpAddr> {
    let peer = extensions.get::<ConnectInfo<SocketAddr>>()?.0.ip();
    let forwarded = || {
        headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .next_back()
            .and_then(|a| a.trim().parse::<IpAddr>().ok())
    };
    let client = if peer.is_loopback() {
        forwarded().unwrap_or(peer)
    } else {
        peer
    };
    Some(match client {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(client, IpAddr::V4),
        v4 => v4,
    })
}

#[derive(Debug, Clone, Copy)]
struct Strikes {
    failures: u32,
    since: Instant,
    locked_until: Option<Instant>,
}

impl Strikes {
    fn over(&self, now: Instant) -> bool {
        now.duration_since(self.since) >= WINDOW && self.locked_until.is_none_or(|u| u <= now)
    }
}

/// The failed sign-ins of each client address.
#[derive(Debug, Default)]
pub struct AddressGuard {
    seen: Mutex<HashMap<IpAddr, Strikes>>,
}

impl AddressGuard {
    /// Until when the address is refused, if it is now.
    pub fn locked(&self, addr: IpAddr, now: Instant) -> Option<Instant> {
        let seen = self.seen.lock().ok()?;
        seen.get(&addr)
            .and_then(|s| s.locked_until)
            .filter(|&until| until > now)
    }

    /// Counts a failed sign-in from the address; true when it locks the address.
    pub fn failed(&self, addr: IpAddr, now: Instant) -> bool {
        let Ok(mut seen) = self.seen.lock() else {
            return false;
        };
        if seen.len() >= MAX_ADDRESSES && !seen.contains_key(&addr) {
            seen.retain(|_, s| !s.over(now));
            if seen.len() >= MAX_ADDRESSES
                && let Some(oldest) = seen.iter().min_by_key(|(_, s)| s.since).map(|(a, _)| *a)
            {
                seen.remove(&oldest);
            }
        }
        let s = seen.entry(addr).or_insert(Strikes {
            failures: 0,
            since: now,
            locked_until: None,
        });
        if s.over(now) {
            *s = Strikes {
                failures: 0,
                since: now,
                locked_until: None,
            };
        }
        s.failures += 1;
        if s.failures >= FAILURES_PER_ADDRESS {
            s.locked_until = Some(now + ADDRESS_LOCKED_FOR);
            s.failures = 0;
            s.since = now;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_locked_after_its_failures_and_let_in_again_after_the_lock() {
        let guard = AddressGuard::default();
        let a: IpAddr = "203.0.113.7".parse().expect("ip");
        let b: IpAddr = "203.0.113.8".parse().expect("ip");
        let t0 = Instant::now();
        for i in 1..FAILURES_PER_ADDRESS {
            assert!(!guard.failed(a, t0), "failure {i} does not lock");
        }
        assert!(guard.locked(a, t0).is_none());
        assert!(guard.failed(a, t0), "the last one does");
        assert_eq!(guard.locked(a, t0), Some(t0 + ADDRESS_LOCKED_FOR));
        assert!(guard.locked(b, t0).is_none(), "another address is not");
        let later = t0 + ADDRESS_LOCKED_FOR;
        assert!(guard.locked(a, later).is_none(), "the lock ends");
    }

    #[test]
    fn failures_spread_wider_than_the_window_never_lock() {
        let guard = AddressGuard::default();
        let a: IpAddr = "198.51.100.1".parse().expect("ip");
        let t0 = Instant::now();
        for i in 0..3 * FAILURES_PER_ADDRESS {
            let at = t0 + (WINDOW / (FAILURES_PER_ADDRESS - 1)) * i;
            assert!(!guard.failed(a, at), "failure {i}");
        }
    }

    #[test]
    fn a_proxy_on_the_host_names_the_client_and_ipv6_counts_by_its_64() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "10.0.0.9, 203.0.113.5".parse().expect("header"),
        );
        let with = |peer: &str| {
            let mut e = Extensions::new();
            e.insert(ConnectInfo(peer.parse::<SocketAddr>().expect("addr")));
            e
        };
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert_eq!(
            client_of(&with("127.0.0.1:5000"), &headers),
            Some(ip("203.0.113.5"))
        );
        assert_eq!(
            client_of(&with("198.51.100.2:5000"), &headers),
            Some(ip("198.51.100.2")),
            "not a proxy"
        );
        assert_eq!(
            client_of(&with("[2001:db8:1:2:3:4:5:6]:80"), &HeaderMap::new()),
            Some(ip("2001:db8:1:2::"))
        );
        assert_eq!(client_of(&Extensions::new(), &headers), None);
    }
}

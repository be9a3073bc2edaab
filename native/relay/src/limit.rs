//! Offers per client address, on top of each room's own rate: one address flooding a
//! room it knows takes only its own share, so the room's real viewers still get in.
//! `governor`'s keyed GCRA limiter (the same the robot uses on `/connect`) keeps the
//! count; addresses not seen for a while are forgotten, so a spray of addresses
//! cannot grow the table without bound. (The robot's `auth::limit` has the same
//! shape; the relay links nothing of the robot's crate, which pulls in WebRTC and
//! the encoders, so the few lines are its own.)
//!
//! Behind a reverse proxy (Caddy, nginx) every request comes from the proxy:
//! `forwarded_for` then takes the client from the last `X-Forwarded-For` entry, the
//! one the proxy itself added.

use axum::http::HeaderMap;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

/// Addresses tracked before the idle ones are forgotten.
pub const MAX_TRACKED: usize = 10_000;

/// Offers per client address.
#[derive(Clone)]
pub struct AddressLimiter {
    limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

impl std::fmt::Debug for AddressLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AddressLimiter({} addresses)", self.limiter.len())
    }
}

impl AddressLimiter {
    /// `burst` offers at once, then `per_minute` a minute, per address (each at least
    /// 1).
    pub fn new(burst: u32, per_minute: u32) -> Self {
        let one = NonZeroU32::MIN;
        let quota = Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(one))
            .allow_burst(NonZeroU32::new(burst).unwrap_or(one));
        Self {
            limiter: Arc::new(RateLimiter::keyed(quota)),
        }
    }

    /// Takes one offer from `client`'s share; false when it has none left.
    pub fn take(&self, client: IpAddr) -> bool {
        if self.limiter.len() >= MAX_TRACKED {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(&key(client)).is_ok()
    }
}

/// What a client is counted by: its IPv4 address, or the /64 of an IPv6 one (one host
/// usually holds a whole /64).
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The client a request came from: the peer's address, or behind a proxy
/// (`forwarded_for`) the last `X-Forwarded-For` entry. `None` when neither is known
/// (a request made in-process).
pub fn client(
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    forwarded_for: bool,
) -> Option<IpAddr> {
    if forwarded_for {
        let last = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|v| !v.is_empty());
        if let Some(ip) = last.and_then(|v| v.parse().ok()) {
            return Some(ip);
        }
    }
    peer.map(|p| p.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_has_its_own_share() {
        let limiter = AddressLimiter::new(3, 1);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!((0..3).all(|_| limiter.take(a)), "the burst");
        assert!(!limiter.take(a), "over the burst");
        assert!(limiter.take(b), "another address goes on");
        // One IPv6 host's /64 is one client.
        let v6 = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!((0..3).all(|_| limiter.take(v6("2001:db8::1"))));
        assert!(!limiter.take(v6("2001:db8::ffff")));
        assert!(limiter.take(v6("2001:db8:0:1::1")));
    }

    #[test]
    fn behind_a_proxy_the_client_is_the_last_forwarded_entry() {
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.7".parse().unwrap(),
        );
        assert_eq!(
            client(&headers, Some(peer), true),
            Some("198.51.100.7".parse().unwrap()),
            "the entry the proxy added, not one the client wrote"
        );
        assert_eq!(
            client(&headers, Some(peer), false),
            Some(peer.ip()),
            "not trusted"
        );
        headers.insert("x-forwarded-for", "garbage".parse().unwrap());
        assert_eq!(client(&headers, Some(peer), true), Some(peer.ip()));
        assert_eq!(client(&HeaderMap::new(), None, true), None);
    }
}

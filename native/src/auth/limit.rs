//! `/connect` calls per client address: a burst, then a steady rate (GCRA, the
//! `governor` crate's keyed limiter), so nobody can try tokens quickly while a
//! driver at another address connects as ever. Addresses not seen for a while are
//! forgotten, so the table stays small under a spray of addresses.

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// Addresses tracked before the limiter forgets the idle ones.
pub const MAX_TRACKED: usize = 10_000;

/// What one client is known by for the per-client limits (connecting peers in the
/// robot's peer registry, `/connect` calls here): its IPv4 address, or the
/// /64 network of an IPv6 one (one host usually holds a whole /64, so counting its
/// addresses one by one would let it take every connecting place).
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Limits `/connect` calls per client address.
#[derive(Clone)]
pub struct ConnectLimiter {
    limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

impl std::fmt::Debug for ConnectLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ConnectLimiter({} addresses)", self.limiter.len())
    }
}

impl ConnectLimiter {
    /// `burst` calls at once, then `per_minute` a minute, per address (both at least 1).
    pub fn new(burst: u32, per_minute: u32) -> Self {
        let one = NonZeroU32::MIN;
        let quota = Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(one))
            .allow_burst(NonZeroU32::new(burst).unwrap_or(one));
        Self {
            limiter: Arc::new(RateLimiter::keyed(quota)),
        }
    }

    /// Takes one call from `client`'s quota; `Err` says how long until the next one
    /// is allowed.
    pub fn check(&self, client: IpAddr) -> Result<(), Duration> {
        if self.limiter.len() >= MAX_TRACKED {
            self.limiter.retain_recent();
        }
        let client = client_key(client);
        self.limiter.check_key(&client).map_err(|not_until| {
            not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_429_for_that_address_only() {
        let limiter = ConnectLimiter::new(5, 60);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..5 {
            limiter.check(a).unwrap();
        }
        let wait = limiter.check(a).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        limiter.check(b).unwrap();
    }
}

//! Token buckets: per token, and per client address for calls without one.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// Requests per second allowed, and the burst.
#[derive(Debug, Clone, Copy)]
pub struct RateLimits {
    /// Per token; 0 turns the limit off.
    pub per_token: f64,
    /// Per client address for calls without a token; 0 turns it off.
    pub per_address: f64,
}

impl Default for RateLimits {
    fn default() -> RateLimits {
        RateLimits {
            per_token: 2000.0,
            per_address: 100.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum BucketKey {
    Token(String),
    /// A client network (see [`BucketKey::address`]).
    Address(IpAddr),
}

impl BucketKey {
    /// The bucket of a client address: one per IPv4 address, one per IPv6
    /// /64 (a single IPv6 client owns a /64, and may use any address in it).
    pub(crate) fn address(ip: IpAddr) -> BucketKey {
        BucketKey::Address(network_of(ip))
    }
}

/// The network a client address counts as.
pub(crate) fn network_of(ip: IpAddr) -> IpAddr {
    use std::net::{Ipv4Addr, Ipv6Addr};
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None if v6.is_loopback() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Token buckets, one per token or address; a second's worth of requests
/// may come at once.
pub(crate) struct Limiter {
    limits: RateLimits,
    buckets: Mutex<HashMap<BucketKey, (f64, Instant)>>,
}

/// Buckets kept before full (idle) ones are dropped.
const MAX_BUCKETS: usize = 100_000;

impl Limiter {
    pub(crate) fn new(limits: RateLimits) -> Limiter {
        Limiter {
            limits,
            buckets: Mutex::default(),
        }
    }

    pub(crate) fn admit(&self, key: BucketKey) -> bool {
        self.admit_at(key, Instant::now())
    }

    fn admit_at(&self, key: BucketKey, now: Instant) -> bool {
        let rate = match key {
            BucketKey::Token(_) => self.limits.per_token,
            BucketKey::Address(_) => self.limits.per_address,
        };
        if rate <= 0.0 {
            return true;
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_BUCKETS {
            buckets.retain(|_, (level, at)| *level + now.duration_since(*at).as_secs_f64() * rate < rate);
        }
        let (level, at) = buckets.entry(key).or_insert((rate, now));
        *level = (*level + now.duration_since(*at).as_secs_f64() * rate).min(rate);
        *at = now;
        if *level >= 1.0 {
            *level -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_refills_at_its_rate() {
        let l = Limiter {
            limits: RateLimits {
                per_token: 5.0,
                per_address: 0.0,
            },
            buckets: Mutex::default(),
        };
        let k = || BucketKey::Token("t".into());
        let start = Instant::now();
        let admitted = (0..20).filter(|_| l.admit_at(k(), start)).count();
        assert_eq!(admitted, 5, "a burst of one second's worth");
        let later = start + std::time::Duration::from_millis(150);
        assert!(
            !l.admit_at(k(), later),
            "less than one request refilled after 0.15 s at 5/s"
        );
        let later = start + std::time::Duration::from_millis(450);
        assert!(l.admit_at(k(), later), "refilled after 0.45 s at 5/s");
        assert!(l.admit(BucketKey::Address("127.0.0.1".parse().expect("an address"))));
    }

    #[test]
    fn an_ipv6_client_is_its_64() {
        let net = |s: &str| network_of(s.parse().expect("an address")).to_string();
        assert_eq!(net("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::");
        assert_eq!(net("2001:db8:1:2:ffff:ffff:ffff:ffff"), "2001:db8:1:2::");
        assert_ne!(net("2001:db8:1:3::1"), "2001:db8:1:2::");
        assert_eq!(net("127.0.0.2"), "127.0.0.2");
        assert_eq!(net("::1"), "127.0.0.1");
        assert_eq!(net("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(net("192.0.2.7"), "192.0.2.7");
    }
}

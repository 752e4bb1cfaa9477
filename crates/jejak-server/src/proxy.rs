//! Which address a request comes from when the server sits behind reverse
//! proxies (`--trusted-proxy CIDR`, repeatable). Only a request whose
//! connection comes from a trusted proxy has its `X-Forwarded-For`
//! believed: the client is the rightmost address in it that is not itself
//! a trusted proxy (each proxy appends the address it saw, so anything to
//! the left of that may be the client's own invention). Without trusted
//! proxies, or from anyone else, the connection's address is the client's.

use std::net::{IpAddr, SocketAddr};

/// The networks whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<ipnet::IpNet>);

impl TrustedProxies {
    pub fn new(nets: Vec<ipnet::IpNet>) -> TrustedProxies {
        TrustedProxies(nets)
    }

    /// Whether `ip` is one of the trusted proxies.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client's address for a request whose connection comes from `peer`.
    pub fn client(&self, peer: SocketAddr, headers: &http::HeaderMap) -> SocketAddr {
        if self.0.is_empty() || !self.trusts(peer.ip()) {
            return peer;
        }
        // Each entry as written, in order over every header line; one that
        // does not parse (or a line that is not text) is `None`.
        let mut hops: Vec<Option<IpAddr>> = Vec::new();
        for value in headers.get_all("x-forwarded-for") {
            match value.to_str() {
                Ok(text) => hops.extend(text.split(',').map(|part| parse_hop(part.trim()))),
                Err(_) => hops.push(None),
            }
        }
        // From the right, past trusted proxies. A garbled entry stops the
        // walk: anything left of it may be anyone's invention, so the
        // client is the last trusted hop reached (the peer when none was),
        // however the entries left of it were written.
        let mut reached: Option<IpAddr> = None;
        for hop in hops.iter().rev() {
            match hop {
                None => break,
                Some(ip) if self.trusts(*ip) => reached = Some(*ip),
                Some(ip) => return SocketAddr::new(canonical(*ip), 0),
            }
        }
        reached.map_or(peer, |ip| SocketAddr::new(canonical(ip), 0))
    }
}

/// Parses a CIDR (`10.0.0.0/8`, `fd00::/8`) or a single address.
pub fn parse_cidr(text: &str) -> Result<ipnet::IpNet, String> {
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(ipnet::IpNet::from))
        .map(|n| n.trunc())
        .map_err(|_| format!("{text:?} is not an address or a CIDR such as 10.0.0.0/8 or fd00::/8"))
}

/// One `X-Forwarded-For` entry: an address, possibly with a port
/// (`203.0.113.7:5123`, `[2001:db8::1]:443`).
fn parse_hop(text: &str) -> Option<IpAddr> {
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// An IPv4 address as itself, also when written IPv4-mapped in IPv6.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn proxies(nets: &[&str]) -> TrustedProxies {
        TrustedProxies::new(nets.iter().map(|n| parse_cidr(n).unwrap()).collect())
    }

    #[test]
    fn only_a_trusted_proxy_is_believed_and_the_rightmost_untrusted_hop_is_the_client() {
        let p = proxies(&["10.0.0.0/8", "fd00::/8"]);
        let from_proxy: SocketAddr = "10.1.2.3:40000".parse().unwrap();
        let stranger: SocketAddr = "198.51.100.9:40000".parse().unwrap();
        let h = headers(&["1.2.3.4, 203.0.113.7"]);
        assert_eq!(p.client(from_proxy, &h).ip(), "203.0.113.7".parse::<IpAddr>().unwrap());
        // Anyone else's header is ignored.
        assert_eq!(p.client(stranger, &h), stranger);
        // A chain of trusted proxies is skipped; a spoofed left part is not believed.
        let h = headers(&["6.6.6.6, 203.0.113.7", "10.9.9.9"]);
        assert_eq!(p.client(from_proxy, &h).ip(), "203.0.113.7".parse::<IpAddr>().unwrap());
        // Ports and IPv6 in brackets.
        let h = headers(&["[2001:db8::1]:443"]);
        assert_eq!(p.client(from_proxy, &h).ip(), "2001:db8::1".parse::<IpAddr>().unwrap());
        // No header, a garbled one, or only proxies: the proxy itself, or the leftmost proxy.
        assert_eq!(p.client(from_proxy, &http::HeaderMap::new()), from_proxy);
        assert_eq!(p.client(from_proxy, &headers(&["not an address"])), from_proxy);
        let h = headers(&["10.0.0.5"]);
        assert_eq!(p.client(from_proxy, &h).ip(), "10.0.0.5".parse::<IpAddr>().unwrap());
        // A garbled entry a client put left of its real address changes
        // nothing; one a proxy wrote stops the walk at the last trusted hop.
        let h = headers(&["x", "203.0.113.7"]);
        assert_eq!(p.client(from_proxy, &h).ip(), "203.0.113.7".parse::<IpAddr>().unwrap());
        let h = headers(&["not-an-ip, 203.0.113.7, 10.0.0.5"]);
        assert_eq!(p.client(from_proxy, &h).ip(), "203.0.113.7".parse::<IpAddr>().unwrap());
        let h = headers(&["203.0.113.7, x, 10.0.0.5"]);
        assert_eq!(p.client(from_proxy, &h).ip(), "10.0.0.5".parse::<IpAddr>().unwrap());
        assert_eq!(p.client(from_proxy, &headers(&["203.0.113.7, x"])), from_proxy);
        // Without trusted proxies nothing is believed.
        assert_eq!(
            TrustedProxies::default().client(from_proxy, &headers(&["1.2.3.4"])),
            from_proxy
        );
    }

    #[test]
    fn cidrs_and_bare_addresses_parse_and_nonsense_is_named() {
        assert_eq!(parse_cidr("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse_cidr("::1").unwrap().to_string(), "::1/128");
        assert!(parse_cidr("10.0.0.0/33").unwrap_err().contains("10.0.0.0/33"));
        // An IPv4-mapped peer is matched as IPv4.
        let p = proxies(&["127.0.0.1"]);
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:1".parse().unwrap();
        assert_eq!(
            p.client(mapped, &headers(&["192.0.2.1"])).ip(),
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );
    }
}

//! CIDR and port-range arithmetic for ingress rules.
//!
//! Real arithmetic, not string matching: `/0` of any address is the world (the Stratus corpus has
//! `208.236.235.254/0`), a trusted range covers an opened range only when it contains all of it,
//! and a port range counts when it contains the port.

use std::net::IpAddr;

/// An IPv4 or IPv6 network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `a.b.c.d/n`, `x::y/n`, or a bare address (a host route).
    pub fn parse(text: &str) -> Option<Cidr> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr.parse::<IpAddr>().ok()?, Some(prefix.parse::<u8>().ok()?)),
            None => (text.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Cidr { addr, prefix })
    }

    /// Whether the address is the network's first (no host bits set): `10.0.0.0/8`, not
    /// `10.0.0.1/8`, which is what a configured range must look like (a typo otherwise trusts a
    /// range the user did not mean).
    pub fn is_network_address(&self) -> bool {
        let bits: u32 = if self.addr.is_ipv4() { 32 } else { 128 };
        let host_bits = bits - u32::from(self.prefix);
        match self.addr {
            IpAddr::V4(a) => host_bits == 0 || u32::from(a) & (u32::MAX >> (32 - host_bits)) == 0,
            IpAddr::V6(a) => host_bits == 0 || u128::from(a) & (u128::MAX >> (128 - host_bits)) == 0,
        }
    }

    /// Prefix length 0: every address.
    pub fn is_world(&self) -> bool {
        self.prefix == 0
    }

    /// True when the whole range is private address space: RFC 1918 (`10/8`, `172.16/12`,
    /// `192.168/16`), RFC 6598 shared space (`100.64/10`), loopback, or IPv6 unique local
    /// (`fc00::/7`). Only such ranges are unreachable from the internet.
    pub fn is_private(&self) -> bool {
        const PRIVATE: [&str; 7] =
            ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8", "fc00::/7", "::1/128"];
        PRIVATE.iter().filter_map(|range| Cidr::parse(range)).any(|range| range.contains(self))
    }

    /// True when every address of `other` is inside `self`.
    pub fn contains(&self, other: &Cidr) -> bool {
        if other.prefix < self.prefix {
            return false;
        }
        match (self.addr, other.addr) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(a) & mask == u32::from(b) & mask
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(a) & mask == u128::from(b) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// An inclusive port range; `None` bounds mean "all ports".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    /// First port.
    pub from: u16,
    /// Last port.
    pub to: u16,
}

impl PortRange {
    /// Every port.
    pub const ALL: PortRange = PortRange { from: 0, to: u16::MAX };

    /// From the numbers in a request; negative or missing bounds (`-1`) mean all ports.
    pub fn from_bounds(from: Option<i64>, to: Option<i64>) -> PortRange {
        match (from, to) {
            (Some(f), Some(t)) if f >= 0 && t >= 0 => {
                let (f, t) = (f.min(65_535) as u16, t.min(65_535) as u16);
                PortRange { from: f.min(t), to: f.max(t) }
            }
            (Some(f), None) if f >= 0 => PortRange { from: f.min(65_535) as u16, to: f.min(65_535) as u16 },
            _ => PortRange::ALL,
        }
    }

    /// True when `port` is inside.
    pub fn contains(&self, port: u16) -> bool {
        (self.from..=self.to).contains(&port)
    }

    /// True when some port of the range is not in `allowed`.
    pub fn has_port_outside(&self, allowed: &[u16]) -> bool {
        let inside = allowed.iter().filter(|p| self.contains(**p)).count();
        (usize::from(self.to - self.from) + 1) > inside
    }
}

impl std::fmt::Display for PortRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if *self == PortRange::ALL {
            f.write_str("all")
        } else if self.from == self.to {
            write!(f, "{}", self.from)
        } else {
            write!(f, "{}-{}", self.from, self.to)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_addresses_have_no_host_bits() {
        for good in ["10.0.0.0/8", "0.0.0.0/0", "192.168.1.7/32", "192.168.1.7", "fd00::/8", "::/0"] {
            assert!(Cidr::parse(good).expect("cidr").is_network_address(), "{good}");
        }
        for bad in ["10.0.0.1/8", "192.168.1.7/24", "fd00::1/8", "1.2.3.4/0"] {
            assert!(!Cidr::parse(bad).expect("cidr").is_network_address(), "{bad}");
        }
    }

    #[test]
    fn private_ranges_are_the_rfc_1918_6598_and_ula_ones_entirely() {
        for private in ["10.0.0.0/8", "10.1.2.0/24", "172.31.0.0/16", "192.168.1.1", "100.64.0.0/10", "fd12::/16"] {
            assert!(Cidr::parse(private).expect("cidr").is_private(), "{private}");
        }
        for public in ["0.0.0.0/0", "8.0.0.0/7", "172.32.0.0/16", "198.51.100.0/24", "10.0.0.0/7", "2001:db8::/32"] {
            assert!(!Cidr::parse(public).expect("cidr").is_private(), "{public}");
        }
    }

    #[test]
    fn cidr_arithmetic() {
        let c = |s| Cidr::parse(s).expect(s);
        assert!(c("208.236.235.254/0").is_world());
        assert!(c("::/0").is_world());
        assert!(c("10.0.0.0/8").contains(&c("10.1.2.0/24")));
        assert!(!c("10.1.2.0/24").contains(&c("10.0.0.0/8")));
        assert!(!c("10.0.0.0/8").contains(&c("11.0.0.1/32")));
        assert!(c("2001:db8::/32").contains(&c("2001:db8:1::/48")));
        assert!(!c("10.0.0.0/8").contains(&c("::/0")));
        assert_eq!(Cidr::parse("1.2.3.4/33"), None);
        assert_eq!(Cidr::parse("nonsense"), None);
    }

    #[test]
    fn port_ranges() {
        let r = PortRange::from_bounds(Some(20), Some(25));
        assert!(r.contains(22) && !r.contains(26));
        assert_eq!(PortRange::from_bounds(Some(-1), Some(-1)), PortRange::ALL);
        assert!(!PortRange::from_bounds(Some(443), Some(443)).has_port_outside(&[80, 443]));
        assert!(PortRange::from_bounds(Some(80), Some(81)).has_port_outside(&[80, 443]));
    }
}

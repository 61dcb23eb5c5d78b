//! IPv4 networks in CIDR notation (`203.0.113.0/24`, a bare address is a `/32`).

use crate::NetError;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 network; the address is always the network address (host bits zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Cidr {
    network: Ipv4Addr,
    prefix: u8,
}

impl Ipv4Cidr {
    /// `addr/prefix`, refusing host bits set (a likely typo).
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Self, NetError> {
        if prefix > 32 {
            return Err(NetError::InvalidConfig(format!(
                "prefix /{prefix} is longer than 32"
            )));
        }
        let cidr = Ipv4Cidr {
            network: Ipv4Addr::from(u32::from(addr) & mask(prefix)),
            prefix,
        };
        if cidr.network != addr {
            return Err(NetError::InvalidConfig(format!(
                "{addr}/{prefix} has host bits set (did you mean {cidr}?)"
            )));
        }
        Ok(cidr)
    }
    pub fn network(&self) -> Ipv4Addr {
        self.network
    }
    pub fn prefix(&self) -> u8 {
        self.prefix
    }
    /// Number of addresses.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == u32::from(self.network)
    }
    pub fn overlaps(&self, other: &Ipv4Cidr) -> bool {
        self.contains(other.network) || other.contains(self.network)
    }
    /// The address `offset` places after the network address.
    pub fn nth(&self, offset: u64) -> Option<Ipv4Addr> {
        (offset < self.size()).then(|| Ipv4Addr::from(u32::from(self.network) + offset as u32))
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

impl FromStr for Ipv4Cidr {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Self, NetError> {
        let bad = || NetError::InvalidConfig(format!("{s:?} is not an IPv4 address or CIDR"));
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                (a, p.parse::<u8>().map_err(|_| bad())?)
            }
            Some(_) => return Err(bad()),
            None => (s.trim(), 32),
        };
        let addr = Ipv4Addr::from_str(addr).map_err(|_| bad())?;
        Ipv4Cidr::new(addr, prefix)
    }
}

impl std::fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_networks_and_bare_addresses() {
        let c: Ipv4Cidr = "203.0.113.0/24".parse().unwrap();
        assert!(c.contains("203.0.113.200".parse().unwrap()));
        assert!(!c.contains("203.0.114.1".parse().unwrap()));
        assert_eq!("1.2.3.4".parse::<Ipv4Cidr>().unwrap().to_string(), "1.2.3.4/32");
        assert_eq!("0.0.0.0/0".parse::<Ipv4Cidr>().unwrap().size(), 1 << 32);
        for bad in [
            "",
            "1.2.3",
            "1.2.3.4/33",
            "1.2.3.4/",
            "1.2.3.4/-1",
            "::1",
            "10.0.0.1/8",
            "a/8",
        ] {
            assert!(bad.parse::<Ipv4Cidr>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn overlap_and_offsets() {
        let a: Ipv4Cidr = "10.0.0.0/8".parse().unwrap();
        let b: Ipv4Cidr = "10.3.0.0/16".parse().unwrap();
        let c: Ipv4Cidr = "11.0.0.0/8".parse().unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a) && !a.overlaps(&c));
        assert_eq!(b.nth(5), Some("10.3.0.5".parse().unwrap()));
        assert_eq!(b.nth(1 << 16), None);
    }
}

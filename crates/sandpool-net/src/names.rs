//! Names and addresses of one session's host objects. Every name carries the instance
//! tag, so instances never collide and a restarted instance finds its leftovers.

use crate::Ipv4Cidr;
use sha2::{Digest, Sha256};
use std::net::Ipv4Addr;

/// Four hex digits identifying a sandpool instance on this host.
pub fn instance_tag(instance: &str) -> String {
    hex::encode(&Sha256::digest(instance.as_bytes())[..2])
}

/// Prefix of every network namespace of the instance.
pub fn netns_prefix(tag: &str) -> String {
    format!("sp{tag}n")
}

/// Prefix of every host-side veth of the instance (at most 15 bytes in all).
pub fn host_if_prefix(tag: &str) -> String {
    format!("sp{tag}h")
}

/// The nftables table (family `inet`) of the instance.
pub fn table_name(tag: &str) -> String {
    format!("sandpool_{tag}")
}

/// Where session `slot` lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotNames {
    pub slot: u32,
    pub netns: String,
    pub host_if: String,
    pub host_ip: Ipv4Addr,
    pub sandbox_ip: Ipv4Addr,
}

/// Slots available in `subnet`: one /30 each.
pub fn slot_count(subnet: &Ipv4Cidr) -> u32 {
    (subnet.size() / 4).min(999_999) as u32
}

pub fn slot_names(tag: &str, subnet: &Ipv4Cidr, slot: u32) -> Option<SlotNames> {
    if slot >= slot_count(subnet) {
        return None;
    }
    let base = u64::from(slot) * 4;
    Some(SlotNames {
        slot,
        netns: format!("{}{slot}", netns_prefix(tag)),
        host_if: format!("{}{slot}", host_if_prefix(tag)),
        host_ip: subnet.nth(base + 1)?,
        sandbox_ip: subnet.nth(base + 2)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_interface_limits_and_addresses_do_not_overlap() {
        let tag = instance_tag("/var/lib/sandpool");
        assert_eq!(tag.len(), 4);
        let subnet: Ipv4Cidr = "10.203.0.0/16".parse().unwrap();
        assert_eq!(slot_count(&subnet), 16384);
        let last = slot_names(&tag, &subnet, 16383).unwrap();
        assert!(last.host_if.len() <= 15, "{}", last.host_if);
        assert_eq!(last.sandbox_ip, "10.203.255.254".parse::<Ipv4Addr>().unwrap());
        let first = slot_names(&tag, &subnet, 0).unwrap();
        assert_eq!(first.host_ip, "10.203.0.1".parse::<Ipv4Addr>().unwrap());
        assert!(slot_names(&tag, &subnet, 16384).is_none());
        assert_ne!(instance_tag("a"), instance_tag("b"));
    }
}

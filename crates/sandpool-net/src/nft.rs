//! The nftables scripts (for `nft -f -`): the instance's table and each session's
//! chains, sets and counters. Pure text generation, unit-tested; [`crate::command`]
//! runs them.
//!
//! Forward path of a session's packets: `forward` jumps by input interface to the
//! session's `o<slot>` chain (established, uplink only, never-reachable ranges,
//! connection limit, then its allow-list or "public only"), and by output interface to
//! `r<slot>` (replies only). Input from a session reaches only its resolver.

use crate::names::{host_if_prefix, table_name, SlotNames};
use crate::{EgressRules, Ipv4Cidr};
use std::fmt::Write;
use std::net::Ipv4Addr;
use std::time::Duration;

/// What the instance-wide table needs.
#[derive(Debug, Clone)]
pub struct TableParams<'a> {
    pub tag: &'a str,
    pub uplink: &'a str,
    pub session_subnet: Ipv4Cidr,
    pub never: &'a [Ipv4Cidr],
    pub private: &'a [Ipv4Cidr],
    /// Drop forwarded traffic that is not a session's (forwarding was off before us).
    pub guard_other_forwarding: bool,
}

fn elements(cidrs: &[Ipv4Cidr]) -> String {
    cidrs.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", ")
}

/// Replaces the instance's table (deleting any leftover of an earlier run).
pub fn table(p: &TableParams) -> String {
    let t = table_name(p.tag);
    let hosts = format!("{}*", host_if_prefix(p.tag));
    let mut never = p.never.to_vec();
    never.push(p.session_subnet);
    let mut s = String::new();
    let _ = writeln!(s, "table inet {t} {{}}\ndelete table inet {t}");
    let _ = writeln!(s, "table inet {t} {{");
    let _ = writeln!(
        s,
        "  set never4 {{ type ipv4_addr; flags interval; auto-merge; elements = {{ {} }} }}",
        elements(&never)
    );
    let _ = writeln!(
        s,
        "  set private4 {{ type ipv4_addr; flags interval; auto-merge; elements = {{ {} }} }}",
        elements(p.private)
    );
    let _ = writeln!(s, "  map from_session {{ type ifname : verdict; }}");
    let _ = writeln!(s, "  map to_session {{ type ifname : verdict; }}");
    let _ = writeln!(s, "  map input_session {{ type ifname : verdict; }}");
    let _ = writeln!(s, "  chain forward {{");
    let _ = writeln!(
        s,
        "    type filter hook forward priority filter - 5; policy accept;"
    );
    let _ = writeln!(s, "    iifname \"{hosts}\" meta nfproto != ipv4 drop");
    let _ = writeln!(s, "    iifname vmap @from_session");
    let _ = writeln!(s, "    oifname vmap @to_session");
    let _ = writeln!(s, "    iifname \"{hosts}\" drop");
    let _ = writeln!(s, "    oifname \"{hosts}\" drop");
    if p.guard_other_forwarding {
        let _ = writeln!(s, "    drop");
    }
    let _ = writeln!(s, "  }}");
    let _ = writeln!(s, "  chain input {{");
    let _ = writeln!(
        s,
        "    type filter hook input priority filter - 5; policy accept;"
    );
    let _ = writeln!(s, "    iifname vmap @input_session");
    let _ = writeln!(s, "    iifname \"{hosts}\" drop");
    let _ = writeln!(s, "  }}");
    let _ = writeln!(s, "  chain postrouting {{");
    let _ = writeln!(s, "    type nat hook postrouting priority srcnat; policy accept;");
    let _ = writeln!(
        s,
        "    ip saddr {} oifname \"{}\" masquerade",
        p.session_subnet, p.uplink
    );
    let _ = writeln!(s, "  }}");
    let _ = writeln!(s, "}}");
    s
}

/// Deletes the instance's table (ignoring that it may not exist).
pub fn delete_table(tag: &str) -> String {
    let t = table_name(tag);
    format!("table inet {t} {{}}\ndelete table inet {t}\n")
}

/// Creates a session's counters, sets and chains and hooks them in.
pub fn add_session(tag: &str, uplink: &str, n: &SlotNames, rules: &EgressRules) -> String {
    let t = table_name(tag);
    let k = n.slot;
    let mut s = String::new();
    let _ = writeln!(s, "add counter inet {t} tx{k}");
    let _ = writeln!(s, "add counter inet {t} rx{k}");
    let _ = writeln!(
        s,
        "add set inet {t} a{k} {{ type ipv4_addr; flags interval; auto-merge; }}"
    );
    let _ = writeln!(s, "add set inet {t} d{k} {{ type ipv4_addr; flags timeout; }}");
    for chain in ["o", "r", "i"] {
        let _ = writeln!(s, "add chain inet {t} {chain}{k}");
    }
    s.push_str(&session_rules(tag, uplink, n, rules));
    let _ = writeln!(
        s,
        "add element inet {t} from_session {{ \"{}\" : jump o{k} }}",
        n.host_if
    );
    let _ = writeln!(
        s,
        "add element inet {t} to_session {{ \"{}\" : jump r{k} }}",
        n.host_if
    );
    let _ = writeln!(
        s,
        "add element inet {t} input_session {{ \"{}\" : jump i{k} }}",
        n.host_if
    );
    s
}

/// (Re)writes a session's rules and allowed CIDRs; forgets addresses its resolver
/// opened. Established connections are kept.
pub fn session_rules(tag: &str, uplink: &str, n: &SlotNames, rules: &EgressRules) -> String {
    let t = table_name(tag);
    let k = n.slot;
    let mut s = String::new();
    for chain in ["o", "r", "i"] {
        let _ = writeln!(s, "flush chain inet {t} {chain}{k}");
    }
    let _ = writeln!(s, "flush set inet {t} a{k}");
    let _ = writeln!(s, "flush set inet {t} d{k}");
    if !rules.cidrs.is_empty() {
        let _ = writeln!(s, "add element inet {t} a{k} {{ {} }}", elements(&rules.cidrs));
    }
    let o = format!("add rule inet {t} o{k}");
    let _ = writeln!(s, "{o} ct state established,related counter name tx{k} accept");
    let _ = writeln!(s, "{o} oifname != \"{uplink}\" drop");
    let _ = writeln!(s, "{o} ip daddr @never4 drop");
    // The rule's own connection count: the chain is the session's, so the count is too,
    // and rewriting the chain applies a new limit. (An element of a shared dynamic set
    // kept the first limit it was added with: changes never took effect.)
    let _ = writeln!(s, "{o} ct state new ct count over {} drop", rules.max_connections);
    let _ = writeln!(s, "{o} ip daddr @a{k} counter name tx{k} accept");
    if rules.allow_list {
        let _ = writeln!(
            s,
            "{o} ip daddr @d{k} ip daddr != @private4 counter name tx{k} accept"
        );
    } else {
        let _ = writeln!(s, "{o} ip daddr != @private4 counter name tx{k} accept");
    }
    let _ = writeln!(s, "{o} drop");
    let r = format!("add rule inet {t} r{k}");
    let _ = writeln!(s, "{r} ct state established,related counter name rx{k} accept");
    let _ = writeln!(s, "{r} drop");
    let i = format!("add rule inet {t} i{k}");
    let _ = writeln!(s, "{i} ip daddr {} udp dport 53 accept", n.host_ip);
    let _ = writeln!(s, "{i} drop");
    s
}

/// Unhooks and deletes everything of a session.
pub fn remove_session(tag: &str, n: &SlotNames) -> String {
    let t = table_name(tag);
    let k = n.slot;
    let mut s = String::new();
    for map in ["from_session", "to_session", "input_session"] {
        let _ = writeln!(s, "delete element inet {t} {map} {{ \"{}\" }}", n.host_if);
    }
    for chain in ["o", "r", "i"] {
        let _ = writeln!(s, "flush chain inet {t} {chain}{k}");
        let _ = writeln!(s, "delete chain inet {t} {chain}{k}");
    }
    for set in ["a", "d"] {
        let _ = writeln!(s, "delete set inet {t} {set}{k}");
    }
    for counter in ["tx", "rx"] {
        let _ = writeln!(s, "delete counter inet {t} {counter}{k}");
    }
    s
}

/// Opens `addresses` for a session for `ttl` (refreshing an existing entry's timeout).
pub fn open_addresses(tag: &str, slot: u32, addresses: &[(Ipv4Addr, Duration)]) -> String {
    let t = table_name(tag);
    let mut s = String::new();
    for (ip, ttl) in addresses {
        let secs = ttl.as_secs().max(1);
        let _ = writeln!(s, "add element inet {t} d{slot} {{ {ip} timeout {secs}s }}");
        let _ = writeln!(s, "delete element inet {t} d{slot} {{ {ip} }}");
        let _ = writeln!(s, "add element inet {t} d{slot} {{ {ip} timeout {secs}s }}");
    }
    s
}

/// Parses `nft -j list counter` output: (packets, bytes).
pub fn parse_counter(json: &str) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    v.get("nftables")?
        .as_array()?
        .iter()
        .find_map(|item| item.get("counter")?.get("bytes")?.as_u64())
}

/// `(name, bytes)` of every counter in `nft -j list counters` output.
pub fn parse_counters(json: &str) -> Vec<(String, u64)> {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(json) else {
        return Vec::new();
    };
    v.get("nftables")
        .and_then(|items| items.as_array())
        .map(|items| {
            items
                .iter()
                .filter_map(|item| {
                    let c = item.get("counter")?;
                    Some((c.get("name")?.as_str()?.to_owned(), c.get("bytes")?.as_u64()?))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::slot_names;
    use sandpool_sandbox::EgressConfig;

    fn rules(cidrs: &[&str], domains: &[&str]) -> EgressRules {
        EgressRules::parse(&EgressConfig {
            allow_cidrs: cidrs.iter().map(|s| s.to_string()).collect(),
            allow_domains: domains.iter().map(|s| s.to_string()).collect(),
            ..EgressConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn open_sessions_reach_public_addresses_and_allow_lists_only_listed_ones() {
        let n = slot_names("ab12", &"10.203.0.0/16".parse().unwrap(), 3).unwrap();
        let open = session_rules("ab12", "eth0", &n, &rules(&[], &[]));
        assert!(
            open.contains("o3 ip daddr != @private4 counter name tx3 accept"),
            "{open}"
        );
        assert!(!open.contains("@d3 ip daddr"));
        let listed = session_rules("ab12", "eth0", &n, &rules(&["198.51.100.0/24"], &["x.test"]));
        assert!(
            listed.contains("add element inet sandpool_ab12 a3 { 198.51.100.0/24 }"),
            "{listed}"
        );
        assert!(listed.contains("o3 ip daddr @d3 ip daddr != @private4"));
        assert!(!listed.contains("o3 ip daddr != @private4 counter"));
        assert!(listed.contains("i3 ip daddr 10.203.0.13 udp dport 53 accept"));
        assert!(listed.trim_end().ends_with("add rule inet sandpool_ab12 i3 drop"));
        assert!(listed.contains("oifname != \"eth0\" drop"));
    }

    #[test]
    fn the_table_blocks_sessions_subnet_and_guards_forwarding_when_asked() {
        let never: Vec<Ipv4Cidr> = vec!["127.0.0.0/8".parse().unwrap()];
        let p = TableParams {
            tag: "ab12",
            uplink: "eth0",
            session_subnet: "10.203.0.0/16".parse().unwrap(),
            never: &never,
            private: &never,
            guard_other_forwarding: true,
        };
        let t = table(&p);
        assert!(t.contains("elements = { 127.0.0.0/8, 10.203.0.0/16 }"), "{t}");
        assert!(t.contains("ip saddr 10.203.0.0/16 oifname \"eth0\" masquerade"));
        assert!(t.contains("    drop\n  }"));
        assert!(!table(&TableParams {
            guard_other_forwarding: false,
            ..p
        })
        .contains("    drop\n  }"));
    }

    #[test]
    fn counters_are_parsed() {
        let out =
            r#"{"nftables": [{"metainfo": {}}, {"counter": {"name": "tx5", "packets": 3, "bytes": 180}}]}"#;
        assert_eq!(parse_counter(out), Some(180));
        assert_eq!(parse_counter("{}"), None);
    }

    #[test]
    fn every_counter_of_a_listing_is_read() {
        let json = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
            {"counter": {"family": "inet", "name": "tx3", "table": "sandpool-ab12", "handle": 7, "packets": 2, "bytes": 120}},
            {"counter": {"family": "inet", "name": "rx3", "table": "sandpool-ab12", "handle": 8, "packets": 9, "bytes": 70000}}]}"#;
        assert_eq!(
            parse_counters(json),
            vec![("tx3".to_string(), 120), ("rx3".to_string(), 70000)]
        );
        assert!(parse_counters("not json").is_empty());
        assert!(parse_counters(r#"{"nftables": [{"counter": {"name": "x"}}]}"#).is_empty());
    }
}

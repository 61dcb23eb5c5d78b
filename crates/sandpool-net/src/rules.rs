//! An [`EgressConfig`] checked and normalized: which CIDRs and domain names a session
//! may reach, and its limits.

use crate::{Ipv4Cidr, NetError};
use sandpool_sandbox::EgressConfig;

/// Destinations no configuration can open: "this network", loopback, link-local
/// (including cloud metadata 169.254.169.254), multicast and reserved.
pub const NEVER_REACHABLE: &[&str] = &["0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/3"];

/// Private and shared ranges, closed unless an allowed CIDR opens them.
pub const PRIVATE: &[&str] = &[
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "192.0.0.0/24",
];

/// One allowed domain pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainRule {
    /// Exactly this name.
    Exact(String),
    /// Any name strictly below this suffix (`*.example.com`).
    Below(String),
}

/// A validated egress configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressRules {
    pub cidrs: Vec<Ipv4Cidr>,
    pub domains: Vec<DomainRule>,
    /// Only listed destinations are reachable.
    pub allow_list: bool,
    pub bandwidth_bytes_per_sec: u64,
    pub max_connections: u32,
}

impl EgressRules {
    /// Checks every CIDR, domain and limit, naming the offending one.
    pub fn parse(config: &EgressConfig) -> Result<Self, NetError> {
        let never: Vec<Ipv4Cidr> = NEVER_REACHABLE
            .iter()
            .map(|c| c.parse().expect("valid"))
            .collect();
        let mut cidrs = Vec::new();
        for text in &config.allow_cidrs {
            let cidr: Ipv4Cidr = text.parse()?;
            if let Some(n) = never.iter().find(|n| n.overlaps(&cidr)) {
                return Err(NetError::InvalidConfig(format!(
                    "allowed CIDR {cidr} overlaps {n}, which is never reachable"
                )));
            }
            cidrs.push(cidr);
        }
        let domains = config
            .allow_domains
            .iter()
            .map(|d| parse_domain(d))
            .collect::<Result<Vec<_>, _>>()?;
        if config.bandwidth_bytes_per_sec < 1024 {
            return Err(NetError::InvalidConfig("bandwidth below 1 KiB/s".into()));
        }
        if config.max_connections == 0 {
            return Err(NetError::InvalidConfig("connection limit 0".into()));
        }
        Ok(EgressRules {
            cidrs,
            domains,
            allow_list: config.is_allow_list(),
            bandwidth_bytes_per_sec: config.bandwidth_bytes_per_sec,
            max_connections: config.max_connections,
        })
    }

    /// Whether sandpool's resolver answers `name` (lowercase, no trailing dot).
    pub fn allows_name(&self, name: &str) -> bool {
        if !self.allow_list {
            return true;
        }
        self.domains.iter().any(|rule| match rule {
            DomainRule::Exact(d) => name == d,
            DomainRule::Below(suffix) => {
                name.len() > suffix.len() + 1
                    && name.ends_with(suffix.as_str())
                    && name.as_bytes()[name.len() - suffix.len() - 1] == b'.'
            }
        })
    }
}

fn parse_domain(text: &str) -> Result<DomainRule, NetError> {
    let lower = text.trim().trim_end_matches('.').to_ascii_lowercase();
    let (below, name) = match lower.strip_prefix("*.") {
        Some(rest) => (true, rest.to_string()),
        None => (false, lower),
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(NetError::InvalidConfig(format!(
            "{text:?} is not a domain name or *.domain"
        )));
    }
    Ok(if below {
        DomainRule::Below(name)
    } else {
        DomainRule::Exact(name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(cidrs: &[&str], domains: &[&str]) -> Result<EgressRules, NetError> {
        EgressRules::parse(&EgressConfig {
            allow_cidrs: cidrs.iter().map(|s| s.to_string()).collect(),
            allow_domains: domains.iter().map(|s| s.to_string()).collect(),
            ..EgressConfig::default()
        })
    }

    #[test]
    fn exact_and_wildcard_domains_match_as_documented() {
        let r = rules(&[], &["Example.COM.", "*.wild.test"]).unwrap();
        assert!(r.allow_list);
        assert!(r.allows_name("example.com"));
        assert!(!r.allows_name("www.example.com"));
        assert!(r.allows_name("a.wild.test"));
        assert!(r.allows_name("a.b.wild.test"));
        assert!(!r.allows_name("wild.test"));
        assert!(!r.allows_name("notwild.test"));
        assert!(!r.allows_name("evil-wild.test"));
    }

    #[test]
    fn an_empty_config_is_open_and_bad_entries_are_named() {
        assert!(rules(&[], &[]).unwrap().allows_name("anything.example"));
        for (c, d) in [
            (&["169.254.169.254"][..], &[][..]),
            (&["127.0.0.1/32"], &[]),
            (&["0.0.0.0/0"], &[]),
            (&["10.0.0.1/8"], &[]),
            (&[], &["bad domain"]),
            (&[], &["*."]),
            (&[], &["-x.com"]),
            (&[], &["a..b"]),
        ] {
            let err = rules(c, d).unwrap_err().to_string();
            assert!(err.starts_with("invalid network configuration"), "{err}");
        }
        assert!(rules(&["10.1.0.0/16"], &[]).is_ok());
    }
}

//! Session networking on the host. `EgressDisabled` sandboxes need nothing from here;
//! for `EgressEnabled` ones the [`NetworkManager`] gives each session its own network
//! namespace with a veth pair to the host, NAT through a configurable uplink, nftables
//! filtering (no host, no other session, no private/link-local/metadata ranges unless
//! allowed), per-session bandwidth, connection and byte counters, and a small DNS
//! resolver that answers only allowed names and opens their addresses for the record's
//! TTL. Everything it creates carries the instance's tag and is removed when a session
//! ends, and at start after a crash.

mod cidr;
mod command;
mod config;
mod dns_wire;
mod error;
mod manager;
mod names;
mod nft;
mod resolver;
mod rules;
mod sandbox;
mod session;
mod shaping;

pub use cidr::Ipv4Cidr;
pub use config::NetConfig;
pub use error::NetError;
pub use manager::{EgressCounters, EgressSample, NetworkManager};
pub use rules::{DomainRule, EgressRules};
pub use sandbox::NetworkedSandbox;
pub use session::SessionNetwork;

//! How the host side of session networking is set up.

use crate::Ipv4Cidr;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Configuration of a [`crate::NetworkManager`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConfig {
    /// Identifies this sandpool instance's host objects (netns, veth and nftables
    /// names carry a tag hashed from it); e.g. the service's data directory.
    pub instance: String,
    /// Interface egress traffic leaves through; `None` is the interface of the host's
    /// default route. Traffic routed anywhere else is dropped.
    pub uplink: Option<String>,
    /// Addresses for session links, one /30 per session. Must not be used elsewhere
    /// on the host.
    pub session_subnet: Ipv4Cidr,
    /// Where sandpool's resolver sends the queries it allows; `None` is the first
    /// `nameserver` of the host's `/etc/resolv.conf`.
    pub upstream_dns: Option<SocketAddr>,
    /// Holds each session's `resolv.conf`.
    pub state_dir: PathBuf,
}

impl NetConfig {
    /// Defaults for an instance whose state lives in `state_dir`: default-route uplink,
    /// sessions in `10.203.0.0/16`, the host's resolver upstream.
    pub fn new(state_dir: PathBuf) -> Self {
        NetConfig {
            instance: state_dir.to_string_lossy().into_owned(),
            uplink: None,
            session_subnet: Ipv4Cidr::new([10, 203, 0, 0].into(), 16).expect("valid"),
            upstream_dns: None,
            state_dir,
        }
    }
}

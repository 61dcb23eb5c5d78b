//! Per-session bandwidth: token-bucket (`tbf`) qdiscs on both ends of the session's
//! veth pair, written as `tc -batch` scripts. Traffic towards the sandbox is shaped on
//! the host end, traffic from it on the end inside the session namespace, where the
//! sandbox cannot reach them (no `CAP_NET_ADMIN` under runc; gVisor's netstack sits in
//! front of the namespace). nftables' `limit ... bytes/second` was measured here not to
//! hold above ~16 MiB/s (a 64 MiB/s limit let ~940 MiB/s through), so it is not used.

use std::fmt::Write;

/// Interface name inside the session namespace.
pub const SANDBOX_IF: &str = "eth0";

/// Queueing delay a shaped packet may wait before it is dropped.
const LATENCY_MS: u64 = 50;

/// Bucket size: a tenth of a second of traffic, at least 256 KiB (a full GSO packet
/// must fit, or nothing would ever pass) and at most 32 MiB.
pub fn burst_bytes(bytes_per_sec: u64) -> u64 {
    (bytes_per_sec / 10).clamp(256 << 10, 32 << 20)
}

/// `tc -batch` lines that set (or replace) the shaper of `dev` to `bytes_per_sec`.
pub fn shape(dev: &str, bytes_per_sec: u64) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "qdisc replace dev {dev} root tbf rate {}bit burst {} latency {LATENCY_MS}ms",
        bytes_per_sec.saturating_mul(8),
        burst_bytes(bytes_per_sec)
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_given_in_bits_and_bursts_fit_a_gso_packet() {
        assert_eq!(
            shape("sp1h3", 64 << 20),
            "qdisc replace dev sp1h3 root tbf rate 536870912bit burst 6710886 latency 50ms\n"
        );
        assert_eq!(burst_bytes(1024), 256 << 10);
        assert_eq!(burst_bytes(u64::MAX / 4), 32 << 20);
        assert!(shape("x", u64::MAX).contains(&format!("rate {}bit", u64::MAX)));
    }
}

//! The runc backend's seccomp profile and masked paths: Docker's defaults, kept as data
//! (`docker-default-seccomp.json`: Docker's default allowlist without `io_uring` and
//! `ptrace`, `clone` only without namespace flags, `clone3` answering `ENOSYS` so libc
//! falls back to `clone`).

/// `/proc` and `/sys` entries hidden from the sandbox (Docker's list).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// `/proc` entries made read-only (Docker's list).
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

const DEFAULT_PROFILE: &str = include_str!("docker-default-seccomp.json");

/// An OCI `linux.seccomp` object.
pub type Profile = serde_json::Value;

/// The OCI `linux.seccomp` object.
pub fn default_profile() -> Profile {
    serde_json::from_str(DEFAULT_PROFILE).expect("the embedded seccomp profile is valid JSON")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_profile_denies_by_default_and_allows_common_syscalls() {
        let p = super::default_profile();
        assert_eq!(p["defaultAction"], "SCMP_ACT_ERRNO");
        let allowed = p["syscalls"][0]["names"].as_array().unwrap();
        for name in ["read", "write", "execve", "mmap"] {
            assert!(allowed.iter().any(|n| n == name), "{name} not allowed");
        }
        for name in [
            "mount",
            "ptrace",
            "kexec_load",
            "bpf",
            "unshare",
            "io_uring_setup",
        ] {
            assert!(!allowed.iter().any(|n| n == name), "{name} allowed");
        }
    }
}

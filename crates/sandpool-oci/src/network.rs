//! The network hunks of a bundle: joining a session's prepared network namespace with
//! its `resolv.conf`, bringing loopback up in runc's own fresh namespace, and hiding
//! `/proc/sys/net` from runsc's root-namespace check.

use crate::config::{Hook, Hooks, Mount, RuntimeConfig};
use crate::OciError;
use std::path::{Path, PathBuf};

/// Makes the sandbox join the network namespace at `netns` (instead of a fresh one)
/// and see `resolv_conf` read-only at `/etc/resolv.conf`.
pub fn join_network(config: &mut RuntimeConfig, netns: &Path, resolv_conf: &Path) -> Result<(), OciError> {
    let utf8 = |p: &Path| {
        p.to_str()
            .filter(|_| p.is_absolute())
            .map(str::to_string)
            .ok_or_else(|| OciError::InvalidSpec(format!("{} is not an absolute UTF-8 path", p.display())))
    };
    let netns = utf8(netns)?;
    let ns = config
        .linux
        .namespaces
        .iter_mut()
        .find(|n| n.kind == "network")
        .ok_or_else(|| OciError::InvalidSpec("the bundle has no network namespace".into()))?;
    ns.path = Some(netns);
    config.mounts.push(Mount {
        destination: "/etc/resolv.conf".into(),
        kind: "bind".into(),
        source: utf8(resolv_conf)?,
        options: ["rbind", "ro", "nosuid", "nodev", "noexec"]
            .map(String::from)
            .to_vec(),
    });
    Ok(())
}

/// The host's `ip` binary.
pub fn find_ip_binary() -> Option<PathBuf> {
    ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// runc creates the network namespace with loopback down; a `createContainer` hook
/// (run inside the container's namespaces, before `pivot_root`) brings it up.
pub fn bring_loopback_up(config: &mut RuntimeConfig, ip: &Path) {
    let hooks = config.hooks.get_or_insert_with(Hooks::default);
    hooks.create_container.push(Hook {
        path: ip.to_string_lossy().into_owned(),
        args: ["ip", "link", "set", "lo", "up"].map(String::from).to_vec(),
        timeout: 10,
    });
}

/// runsc 20221219 refuses `--network=sandbox` when `/proc/sys/net/core/rmem_default`
/// exists after it joined the sandbox's namespace ("cannot run with network enabled in
/// root network namespace"); kernels since 4.15 show that file in every namespace. The
/// runsc child therefore runs in a private mount namespace with an empty read-only
/// tmpfs over `/proc/sys/net`. Runs between fork and exec: async-signal-safe calls only.
pub(crate) fn hide_proc_sys_net(cmd: &mut tokio::process::Command) {
    // SAFETY: only unshare(2) and mount(2) with static C strings run in the child.
    unsafe {
        cmd.pre_exec(|| {
            let check = |rc: libc::c_int| {
                if rc == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            };
            check(libc::unshare(libc::CLONE_NEWNS))?;
            check(libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ))?;
            check(libc::mount(
                c"sandpool-hide".as_ptr(),
                c"/proc/sys/net".as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                c"size=4k".as_ptr().cast(),
            ))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{build_config, BundleOptions, Flavour};
    use sandpool_sandbox::{AgentRuntime, Limits, NetworkPolicy, SandboxId, SandboxKind, SandboxSpec};

    fn config() -> RuntimeConfig {
        let spec = SandboxSpec {
            id: SandboxId::new("sb-1").unwrap(),
            rootfs: "/images/py/rootfs".into(),
            image_digest: "abc".into(),
            kind: SandboxKind::Shell,
            limits: Limits::default(),
            network: NetworkPolicy::Disabled,
            agent: AgentRuntime {
                host_dir: "/agent".into(),
                argv: vec!["/opt/sandpool/sandpool-agent".into()],
            },
            env: vec![],
            workload: None,
        };
        let options = BundleOptions {
            flavour: Flavour::Runc {
                seccomp: crate::seccomp::default_profile(),
            },
            cgroups_path: "/sandpool/sb-1".into(),
        };
        build_config(&spec, &options).unwrap()
    }

    #[test]
    fn joining_a_network_sets_the_namespace_path_and_resolv_conf() {
        let mut c = config();
        let fresh = serde_json::to_value(&c).unwrap();
        assert!(fresh["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n.get("path").is_none()));
        assert!(fresh.get("hooks").is_none());
        join_network(
            &mut c,
            Path::new("/run/netns/spab12n0"),
            Path::new("/s/resolv/x.conf"),
        )
        .unwrap();
        let v = serde_json::to_value(&c).unwrap();
        let net = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["type"] == "network")
            .unwrap()
            .clone();
        assert_eq!(net["path"], "/run/netns/spab12n0");
        let resolv = c
            .mounts
            .iter()
            .find(|m| m.destination == "/etc/resolv.conf")
            .unwrap();
        assert!(resolv.options.contains(&"ro".to_string()));
        assert!(join_network(&mut c, Path::new("relative"), Path::new("/x")).is_err());
    }

    #[test]
    fn the_loopback_hook_runs_ip_in_the_container() {
        let mut c = config();
        bring_loopback_up(&mut c, Path::new("/usr/sbin/ip"));
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["hooks"]["createContainer"][0]["path"], "/usr/sbin/ip");
        assert_eq!(
            v["hooks"]["createContainer"][0]["args"],
            serde_json::json!(["ip", "link", "set", "lo", "up"])
        );
    }
}

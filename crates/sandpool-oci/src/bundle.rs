//! Builds the OCI bundle (`config.json` plus per-sandbox log files) for one sandbox
//! from its [`SandboxSpec`]; the two runtimes differ only in what [`Flavour`] adds.

use crate::config::*;
use crate::image_user::{resolve_image_user, ImageUser};
use crate::{custom_env, sandbox_env, OciError};
use sandpool_sandbox::{SandboxKind, SandboxSpec, AGENT_MOUNT_POINT, DATA_DIR};
use std::path::{Path, PathBuf};

/// The user every sandbox process runs as (`sandbox` in the images).
pub const SANDBOX_UID: u32 = 1000;
const CPU_PERIOD_US: u64 = 100_000;

/// Which runtime the bundle is for.
#[derive(Debug, Clone, PartialEq)]
pub enum Flavour {
    /// gVisor: the process limit is the sandbox kernel's `RLIMIT_NPROC` (counted per
    /// sandbox), the host pids cgroup only bounds the sentry and must stay generous;
    /// `preload` is a compatibility library for runsc's gaps.
    Gvisor {
        host_pids_limit: u64,
        preload: Option<Preload>,
    },
    /// runc: a shared host kernel, so the process limit is the pids cgroup
    /// (`RLIMIT_NPROC` would count uid 1000 across every sandbox on the host), plus a
    /// seccomp allowlist and masked `/proc` paths.
    Runc { seccomp: serde_json::Value },
}

/// A shared object preloaded into every sandbox process: `host_dir` is mounted
/// read-only at `mount_point` and `LD_PRELOAD` names `<mount_point>/<library>` (before
/// any `LD_PRELOAD` of the spec).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preload {
    pub host_dir: PathBuf,
    pub mount_point: String,
    pub library: String,
}

/// Runtime-specific choices for [`build_config`].
#[derive(Debug, Clone, PartialEq)]
pub struct BundleOptions {
    pub flavour: Flavour,
    /// cgroup path relative to each controller's mount, e.g. `/sandpool/<id>`.
    pub cgroups_path: String,
}

/// Files of one sandbox's bundle directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleLayout {
    pub dir: PathBuf,
}

impl BundleLayout {
    pub fn new(dir: PathBuf) -> Self {
        BundleLayout { dir }
    }
    pub fn config(&self) -> PathBuf {
        self.dir.join("config.json")
    }
    /// Where the runtime child's stderr goes.
    pub fn stderr_log(&self) -> PathBuf {
        self.dir.join("stderr.log")
    }
    /// The runtime's own `--log` file.
    pub fn runtime_log(&self) -> PathBuf {
        self.dir.join("runtime.log")
    }
    /// Creates the directory (owner-only) and writes `config.json`.
    pub fn write(&self, config: &RuntimeConfig) -> Result<(), OciError> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)?;
        std::fs::write(self.config(), serde_json::to_vec_pretty(config)?)?;
        Ok(())
    }
}

fn path_str(p: &Path, what: &str) -> Result<String, OciError> {
    if !p.is_absolute() {
        return Err(OciError::InvalidSpec(format!(
            "{what} {} is not absolute",
            p.display()
        )));
    }
    p.to_str()
        .map(str::to_string)
        .ok_or_else(|| OciError::InvalidSpec(format!("{what} {} is not UTF-8", p.display())))
}

fn validate(spec: &SandboxSpec) -> Result<(), OciError> {
    let l = &spec.limits;
    let problems = [
        (l.memory_bytes < 64 << 20, "memory limit below 64 MiB"),
        (l.cpu_millis < 10, "CPU limit below 10 millicores"),
        (l.max_processes < 4, "process limit below 4"),
        (l.data_bytes < 1 << 20, "data size below 1 MiB"),
        (spec.agent.argv.is_empty(), "empty agent argv"),
        (
            (spec.kind == SandboxKind::Custom) != spec.workload.is_some(),
            "a workload is required for custom sandboxes and only for them",
        ),
        (
            spec.workload.as_ref().is_some_and(|w| w.argv.is_empty()),
            "the workload has no command (image Entrypoint/Cmd and pool command are empty)",
        ),
    ];
    match problems.iter().find(|(bad, _)| *bad) {
        Some((_, what)) => Err(OciError::InvalidSpec(what.to_string())),
        None => Ok(()),
    }
}

fn mount(destination: &str, kind: &str, source: &str, options: &[&str]) -> Mount {
    Mount {
        destination: destination.to_string(),
        kind: kind.to_string(),
        source: source.to_string(),
        options: options.iter().map(|o| o.to_string()).collect(),
    }
}

fn rlimit(kind: &str, value: u64) -> Rlimit {
    Rlimit {
        kind: kind.to_string(),
        hard: value,
        soft: value,
    }
}

/// Mounts the preload directory and puts its library first in `LD_PRELOAD`.
fn add_preload(mounts: &mut Vec<Mount>, env: &mut Vec<String>, preload: &Preload) -> Result<(), OciError> {
    let valid = preload.mount_point.starts_with('/')
        && !preload.library.is_empty()
        && !preload.library.contains(['/', ' ', ':']);
    if !valid {
        return Err(OciError::InvalidSpec(format!("bad preload {preload:?}")));
    }
    mounts.push(mount(
        &preload.mount_point,
        "bind",
        &path_str(&preload.host_dir, "preload directory")?,
        &["rbind", "ro", "nosuid", "nodev"],
    ));
    let ours = format!("{}/{}", preload.mount_point, preload.library);
    match env.iter_mut().find(|e| e.starts_with("LD_PRELOAD=")) {
        Some(theirs) => *theirs = format!("LD_PRELOAD={ours} {}", &theirs["LD_PRELOAD=".len()..]),
        None => env.push(format!("LD_PRELOAD={ours}")),
    }
    Ok(())
}

/// The `config.json` for `spec`: read-only image root, the agent bundle read-only at
/// [`AGENT_MOUNT_POINT`], tmpfs `/tmp` and a size-limited tmpfs [`DATA_DIR`] owned by
/// the sandbox user, the agent as uid/gid 1000 with no capabilities and
/// `noNewPrivileges`, and the spec's memory, CPU and process limits.
///
/// A [`SandboxKind::Custom`] sandbox runs as the image's user instead (resolved inside
/// the rootfs, see [`resolve_image_user`]), who also owns [`DATA_DIR`]; its agent gets
/// the workload's argv after `--` and the [`custom_env`] environment.
pub fn build_config(spec: &SandboxSpec, options: &BundleOptions) -> Result<RuntimeConfig, OciError> {
    validate(spec)?;
    let limits = &spec.limits;
    let (user, mut env, args) = match &spec.workload {
        Some(workload) => {
            let user = resolve_image_user(&spec.rootfs, workload.user.as_deref())?;
            let env = custom_env(spec, workload, &user.home)?;
            let mut args = spec.agent.argv.clone();
            args.push("--".to_string());
            args.extend(workload.argv.iter().cloned());
            (user, env, args)
        }
        None => (
            ImageUser {
                uid: SANDBOX_UID,
                gid: SANDBOX_UID,
                home: "/tmp".to_string(),
            },
            sandbox_env(spec)?,
            spec.agent.argv.clone(),
        ),
    };
    let data_size = format!("size={}", limits.data_bytes);
    let owner_uid = format!("uid={}", user.uid);
    let owner_gid = format!("gid={}", user.gid);
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount("/tmp", "tmpfs", "tmpfs", &["nosuid", "nodev", "mode=1777"]),
        mount(
            DATA_DIR,
            "tmpfs",
            "tmpfs",
            &["nosuid", "nodev", "mode=0755", &data_size, &owner_uid, &owner_gid],
        ),
        mount(
            AGENT_MOUNT_POINT,
            "bind",
            &path_str(&spec.agent.host_dir, "agent bundle directory")?,
            &["rbind", "ro", "nosuid", "nodev"],
        ),
    ];
    let mut rlimits = vec![rlimit("RLIMIT_NOFILE", 4096), rlimit("RLIMIT_CORE", 0)];
    let namespaces = ["pid", "ipc", "uts", "mount", "network"]
        .iter()
        .map(|k| Namespace {
            kind: k.to_string(),
            path: None,
        })
        .collect();
    let mut linux = Linux {
        cgroups_path: options.cgroups_path.clone(),
        resources: Resources {
            memory: MemoryResources {
                limit: i64::try_from(limits.memory_bytes).unwrap_or(i64::MAX),
            },
            cpu: CpuResources {
                quota: i64::from(limits.cpu_millis) * (CPU_PERIOD_US as i64) / 1000,
                period: CPU_PERIOD_US,
            },
            pids: PidsResources { limit: 0 },
            devices: vec![DeviceRule {
                allow: false,
                access: "rwm".to_string(),
            }],
        },
        namespaces,
        masked_paths: Vec::new(),
        readonly_paths: Vec::new(),
        seccomp: None,
    };
    match &options.flavour {
        Flavour::Gvisor {
            host_pids_limit,
            preload,
        } => {
            rlimits.push(rlimit("RLIMIT_NPROC", u64::from(limits.max_processes)));
            linux.resources.pids.limit = i64::try_from(*host_pids_limit).unwrap_or(i64::MAX);
            if let Some(preload) = preload {
                add_preload(&mut mounts, &mut env, preload)?;
            }
        }
        Flavour::Runc { seccomp } => {
            linux.resources.pids.limit = i64::from(limits.max_processes);
            linux.seccomp = Some(seccomp.clone());
            linux.masked_paths = crate::seccomp::MASKED_PATHS
                .iter()
                .map(|p| p.to_string())
                .collect();
            linux.readonly_paths = crate::seccomp::READONLY_PATHS
                .iter()
                .map(|p| p.to_string())
                .collect();
            mounts.extend([
                mount(
                    "/dev/pts",
                    "devpts",
                    "devpts",
                    &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
                ),
                mount(
                    "/dev/shm",
                    "tmpfs",
                    "shm",
                    &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
                ),
                mount("/dev/mqueue", "mqueue", "mqueue", &["nosuid", "noexec", "nodev"]),
                mount("/sys", "sysfs", "sysfs", &["nosuid", "noexec", "nodev", "ro"]),
            ]);
        }
    }
    Ok(RuntimeConfig {
        oci_version: "1.0.2".to_string(),
        process: Process {
            terminal: false,
            user: User {
                uid: user.uid,
                gid: user.gid,
                additional_gids: Vec::new(),
            },
            args,
            env,
            cwd: DATA_DIR.to_string(),
            capabilities: Capabilities::default(),
            rlimits,
            no_new_privileges: true,
        },
        root: Root {
            path: path_str(&spec.rootfs, "image rootfs")?,
            readonly: true,
        },
        hostname: "sandbox".to_string(),
        mounts,
        hooks: None,
        linux,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sandpool_sandbox::{AgentRuntime, Limits, NetworkPolicy, SandboxId, SandboxKind};

    fn spec() -> SandboxSpec {
        SandboxSpec {
            id: SandboxId::new("sb-1").unwrap(),
            rootfs: "/images/py/rootfs".into(),
            image_digest: "abc".into(),
            kind: SandboxKind::Python,
            limits: Limits::default(),
            network: NetworkPolicy::Disabled,
            agent: AgentRuntime {
                host_dir: "/agent".into(),
                argv: vec!["/opt/sandpool/sandpool-agent".into()],
            },
            env: vec![("FOO".into(), "bar".into())],
            workload: None,
        }
    }

    fn gvisor() -> BundleOptions {
        BundleOptions {
            flavour: Flavour::Gvisor {
                host_pids_limit: 5000,
                preload: None,
            },
            cgroups_path: "/sandpool/sb-1".into(),
        }
    }

    #[test]
    fn gvisor_config_limits_processes_inside_and_keeps_host_pids_generous() {
        let c = build_config(&spec(), &gvisor()).unwrap();
        assert!(c.root.readonly);
        assert_eq!((c.process.user.uid, c.process.user.gid), (1000, 1000));
        assert!(c.process.no_new_privileges);
        assert!(c.process.capabilities.bounding.is_empty());
        let nproc = c
            .process
            .rlimits
            .iter()
            .find(|r| r.kind == "RLIMIT_NPROC")
            .unwrap();
        assert_eq!(nproc.hard, 256);
        assert_eq!(c.linux.resources.pids.limit, 5000);
        assert_eq!(c.linux.resources.cpu.quota, 100_000);
        let data = c.mounts.iter().find(|m| m.destination == DATA_DIR).unwrap();
        assert!(data.options.contains(&format!("size={}", 256u64 << 20)));
        let agent = c
            .mounts
            .iter()
            .find(|m| m.destination == AGENT_MOUNT_POINT)
            .unwrap();
        assert!(agent.options.contains(&"ro".to_string()));
        assert!(c.process.env.contains(&"FOO=bar".to_string()));
        assert!(c.process.env.contains(&"SANDPOOL_KIND=python".to_string()));
    }

    #[test]
    fn a_preload_is_mounted_and_comes_first_in_ld_preload() {
        let mut options = gvisor();
        options.flavour = Flavour::Gvisor {
            host_pids_limit: 5000,
            preload: Some(Preload {
                host_dir: "/state/compat/abc".into(),
                mount_point: "/opt/sandpool-compat".into(),
                library: "libx.so".into(),
            }),
        };
        let c = build_config(&spec(), &options).unwrap();
        let m = c
            .mounts
            .iter()
            .find(|m| m.destination == "/opt/sandpool-compat")
            .unwrap();
        assert_eq!(m.source, "/state/compat/abc");
        assert!(m.options.contains(&"ro".to_string()));
        assert!(c
            .process
            .env
            .contains(&"LD_PRELOAD=/opt/sandpool-compat/libx.so".to_string()));
        let mut s = spec();
        s.env.push(("LD_PRELOAD".into(), "/usr/lib/libmine.so".into()));
        let c = build_config(&s, &options).unwrap();
        let preloads: Vec<_> = c
            .process
            .env
            .iter()
            .filter(|e| e.starts_with("LD_PRELOAD="))
            .collect();
        assert_eq!(
            preloads,
            ["LD_PRELOAD=/opt/sandpool-compat/libx.so /usr/lib/libmine.so"]
        );
        options.flavour = Flavour::Gvisor {
            host_pids_limit: 5000,
            preload: Some(Preload {
                host_dir: "relative".into(),
                mount_point: "/opt/x".into(),
                library: "libx.so".into(),
            }),
        };
        assert!(build_config(&spec(), &options).is_err());
    }

    #[test]
    fn runc_config_uses_the_pids_cgroup_and_seccomp() {
        let options = BundleOptions {
            flavour: Flavour::Runc {
                seccomp: crate::seccomp::default_profile(),
            },
            cgroups_path: "/sandpool/sb-1".into(),
        };
        let c = build_config(&spec(), &options).unwrap();
        assert!(c.process.rlimits.iter().all(|r| r.kind != "RLIMIT_NPROC"));
        assert_eq!(c.linux.resources.pids.limit, 256);
        assert!(c.linux.seccomp.is_some());
        assert!(c.linux.masked_paths.contains(&"/proc/kcore".to_string()));
    }

    #[test]
    fn custom_sandboxes_run_the_workload_as_the_image_user() {
        let rootfs = tempfile::tempdir().unwrap();
        std::fs::create_dir(rootfs.path().join("etc")).unwrap();
        std::fs::write(rootfs.path().join("etc/passwd"), "web:x:101:102::/srv:/bin/sh\n").unwrap();
        let mut s = spec();
        s.rootfs = rootfs.path().to_path_buf();
        s.kind = SandboxKind::Custom;
        s.env = vec![("PORT".into(), "9000".into())];
        s.workload = Some(sandpool_sandbox::Workload {
            argv: vec!["python3".into(), "-m".into(), "http.server".into()],
            env: vec![
                ("PATH".into(), "/app/bin:/usr/bin".into()),
                ("PORT".into(), "8000".into()),
            ],
            cwd: Some("/app".into()),
            user: Some("web".into()),
        });
        let c = build_config(&s, &gvisor()).unwrap();
        assert_eq!((c.process.user.uid, c.process.user.gid), (101, 102));
        assert_eq!(
            c.process.args,
            [
                "/opt/sandpool/sandpool-agent",
                "--",
                "python3",
                "-m",
                "http.server"
            ]
        );
        for var in [
            "PATH=/app/bin:/usr/bin",
            "PORT=9000",
            "HOME=/srv",
            "SANDPOOL_KIND=custom",
            "SANDPOOL_WORKLOAD_CWD=/app",
        ] {
            assert!(
                c.process.env.contains(&var.to_string()),
                "{var} missing: {:?}",
                c.process.env
            );
        }
        assert!(!c.process.env.iter().any(|e| e == "PORT=8000"));
        let data = c.mounts.iter().find(|m| m.destination == DATA_DIR).unwrap();
        assert!(data.options.contains(&"uid=101".to_string()));
        assert!(c.root.readonly);
        assert!(c.process.no_new_privileges);

        let mut bad = s.clone();
        bad.env.push(("SANDPOOL_KIND".into(), "python".into()));
        assert!(build_config(&bad, &gvisor()).is_err());
        let mut bad = s.clone();
        bad.workload = None;
        assert!(build_config(&bad, &gvisor()).is_err());
        let mut bad = s.clone();
        bad.workload.as_mut().unwrap().argv.clear();
        assert!(build_config(&bad, &gvisor()).is_err());
        let mut bad = s.clone();
        bad.workload.as_mut().unwrap().cwd = Some("relative".into());
        assert!(build_config(&bad, &gvisor()).is_err());
        let mut bad = s;
        bad.kind = SandboxKind::Python;
        assert!(build_config(&bad, &gvisor()).is_err());
    }

    #[test]
    fn bad_specs_are_refused() {
        let mut s = spec();
        s.env.push(("PATH".into(), "/evil".into()));
        assert!(matches!(
            build_config(&s, &gvisor()),
            Err(OciError::InvalidSpec(_))
        ));
        let mut s = spec();
        s.env.push(("A=B".into(), "x".into()));
        assert!(build_config(&s, &gvisor()).is_err());
        let mut s = spec();
        s.rootfs = "relative/rootfs".into();
        assert!(build_config(&s, &gvisor()).is_err());
        let mut s = spec();
        s.limits.memory_bytes = 1;
        assert!(build_config(&s, &gvisor()).is_err());
    }
}

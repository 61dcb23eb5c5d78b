//! [`RuncBackend`]: sandboxes as runc containers, always cold-booted.

use crate::RuncError;
use async_trait::async_trait;
use sandpool_net::{NetworkManager, NetworkedSandbox, SessionNetwork};
use sandpool_oci::{
    build_config, launch, seccomp, BundleLayout, BundleOptions, CgroupLimits, Flavour, LaunchRequest,
    OciRuntime, OciSandbox, SandboxCgroup,
};
use sandpool_sandbox::{Backend, NetworkPolicy, Sandbox, SandboxError, SandboxId, SandboxSpec, Template};
use sha2::{Digest, Sha256};
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const NAME: &str = "runc";
const HELLO_TIMEOUT: Duration = Duration::from_secs(60);
const CPU_PERIOD_US: u64 = 100_000;

/// Where and how to run runc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuncConfig {
    /// Holds runc's state (`runc/`) and sandbox bundles (`bundles/`).
    pub state_dir: PathBuf,
    /// The runc binary.
    pub runc: PathBuf,
}

/// The runc backend.
pub struct RuncBackend {
    state_dir: PathBuf,
    runtime: OciRuntime,
    cgroup_parent: String,
    seccomp: sandpool_oci::seccomp::Profile,
    /// The host's `ip`, run by the hook that brings loopback up.
    ip: PathBuf,
    network: Option<NetworkManager>,
}

impl RuncBackend {
    /// Checks runc and the host's cgroups and creates the state directories.
    pub async fn new(config: RuncConfig) -> Result<Self, RuncError> {
        SandboxCgroup::check_host()?;
        let version = tokio::process::Command::new(&config.runc)
            .arg("--version")
            .output()
            .await
            .map_err(|e| RuncError::Runc {
                path: config.runc.display().to_string(),
                message: e.to_string(),
            })?;
        if !version.status.success() {
            return Err(RuncError::Runc {
                path: config.runc.display().to_string(),
                message: format!("--version: {}", version.status),
            });
        }
        let ip = sandpool_oci::find_ip_binary().ok_or_else(|| RuncError::Runc {
            path: "ip".into(),
            message: "iproute2's ip is needed to bring loopback up in sandboxes".into(),
        })?;
        for sub in ["runc", "bundles"] {
            std::fs::create_dir_all(config.state_dir.join(sub))?;
        }
        let state_dir = std::fs::canonicalize(&config.state_dir)?;
        let instance = hex::encode(&Sha256::digest(state_dir.to_string_lossy().as_bytes())[..4]);
        let runc_version = String::from_utf8_lossy(&version.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .to_string();
        tracing::info!(runc_version, state_dir = %state_dir.display(), "runc backend ready");
        Ok(RuncBackend {
            runtime: OciRuntime {
                name: "runc",
                binary: config.runc,
                global_args: vec!["--root".into(), state_dir.join("runc").into()],
            },
            cgroup_parent: format!("/sandpool/runc-{instance}"),
            state_dir,
            seccomp: seccomp::default_profile(),
            ip,
            network: None,
        })
    }

    fn bundle(&self, id: &SandboxId) -> BundleLayout {
        BundleLayout::new(self.state_dir.join("bundles").join(id.as_str()))
    }

    fn cgroup(&self, id: &SandboxId) -> Result<SandboxCgroup, SandboxError> {
        Ok(SandboxCgroup::new(&format!("{}/{}", self.cgroup_parent, id))?)
    }

    /// Lets egress-enabled sandboxes ([`NetworkPolicy::Enabled`]) get their session
    /// network from `manager`; without it they are refused.
    pub fn with_network(mut self, manager: NetworkManager) -> Self {
        self.network = Some(manager);
        self
    }

    /// Writes the bundle (joining `network`'s namespace, or a fresh loopback-only one),
    /// creates the cgroup and runs the container.
    async fn boot(
        &self,
        spec: &SandboxSpec,
        network: Option<&SessionNetwork>,
    ) -> Result<OciSandbox, SandboxError> {
        let started = Instant::now();
        let bundle = self.bundle(&spec.id);
        let cgroup = self.cgroup(&spec.id)?;
        let mut config = build_config(
            spec,
            &BundleOptions {
                flavour: Flavour::Runc {
                    seccomp: self.seccomp.clone(),
                },
                cgroups_path: cgroup.relative().to_string(),
            },
        )?;
        match network {
            Some(net) => sandpool_oci::join_network(&mut config, net.netns_path(), net.resolv_conf())?,
            // A fresh network namespace: loopback only, brought up by a hook.
            None => sandpool_oci::bring_loopback_up(&mut config, &self.ip),
        }
        if bundle.dir.exists() {
            return Err(SandboxError::InvalidSpec(format!(
                "sandbox {} already exists",
                spec.id
            )));
        }
        let limits = CgroupLimits {
            memory_bytes: spec.limits.memory_bytes,
            cpu_quota_us: u64::from(spec.limits.cpu_millis) * CPU_PERIOD_US / 1000,
            cpu_period_us: CPU_PERIOD_US,
            pids: u64::from(spec.limits.max_processes),
        };
        if let Err(e) = bundle.write(&config).and_then(|()| cgroup.create(&limits)) {
            sandpool_oci::remove_leftover(&self.runtime, &spec.id, bundle, cgroup)
                .await
                .ok();
            return Err(e.into());
        }
        let extra_global: Vec<OsString> = vec!["--log".into(), bundle.runtime_log().into()];
        // `--keep` leaves the container (and its cgroup, with the OOM counter) in
        // place after it exits, until destroy deletes it.
        let args: Vec<OsString> = vec![
            "run".into(),
            "--keep".into(),
            "--bundle".into(),
            bundle.dir.clone().into(),
            spec.id.as_str().into(),
        ];
        let sandbox = launch(LaunchRequest {
            runtime: self.runtime.clone(),
            id: spec.id.clone(),
            bundle,
            cgroup,
            extra_global,
            args,
            restored: false,
            hello_timeout: HELLO_TIMEOUT,
            hide_proc_sys_net: false,
        })
        .await?;
        tracing::info!(sandbox = %spec.id, elapsed_ms = started.elapsed().as_millis() as u64, "runc sandbox up");
        Ok(sandbox)
    }
}

#[async_trait]
impl Backend for RuncBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn supports_checkpoint(&self) -> bool {
        false
    }

    async fn build_template(&self, _spec: &SandboxSpec, _warm: &[String]) -> Result<Template, SandboxError> {
        Err(SandboxError::Unsupported {
            backend: NAME,
            what: "checkpoint templates (CRIU does not work on these hosts)",
        })
    }

    async fn create(
        &self,
        spec: &SandboxSpec,
        template: Option<&Template>,
    ) -> Result<Box<dyn Sandbox>, SandboxError> {
        if template.is_some() {
            return Err(SandboxError::Unsupported {
                backend: NAME,
                what: "restoring from a template",
            });
        }
        match &spec.network {
            NetworkPolicy::Disabled => Ok(Box::new(self.boot(spec, None).await?)),
            NetworkPolicy::Enabled(egress) => {
                let manager = self.network.as_ref().ok_or(SandboxError::Unsupported {
                    backend: NAME,
                    what: "egress without a network manager (RuncBackend::with_network)",
                })?;
                let net = manager.attach(&spec.id, egress).await?;
                match self.boot(spec, Some(&net)).await {
                    Ok(sandbox) => Ok(Box::new(NetworkedSandbox::new(sandbox, net))),
                    Err(e) => {
                        if let Err(cleanup) = net.remove().await {
                            tracing::warn!(sandbox = %spec.id, error = %cleanup, "removing the network of a failed start");
                        }
                        Err(e)
                    }
                }
            }
        }
    }

    async fn leftovers(&self) -> Result<Vec<SandboxId>, SandboxError> {
        sandpool_oci::list_leftovers(&self.runtime, &self.state_dir.join("bundles")).await
    }

    async fn remove_leftover(&self, id: &SandboxId) -> Result<(), SandboxError> {
        tracing::info!(sandbox = %id, "removing leftover runc sandbox");
        sandpool_oci::remove_leftover(&self.runtime, id, self.bundle(id), self.cgroup(id)?).await
    }
}

//! [`GvisorBackend`]: sandboxes as runsc containers, cold-booted or restored from
//! checkpointed templates.

use crate::compat;
use crate::platform_cache::{cached_or_probed_platform, ProbeKey};
use crate::template::{template_dir, template_key, RuntimeIdentity};
use crate::GvisorError;
use async_trait::async_trait;
use rand::RngCore;
use sandpool_net::{NetworkManager, NetworkedSandbox, SessionNetwork};
use sandpool_oci::{
    build_config, launch, BundleLayout, BundleOptions, CgroupLimits, Flavour, LaunchRequest, OciRuntime,
    OciSandbox, Preload, SandboxCgroup,
};
use sandpool_proto::{Request, Response};
use sandpool_sandbox::{
    unexpected_response, Backend, NetworkPolicy, Sandbox, SandboxError, SandboxId, SandboxKind, SandboxSpec,
    Template,
};
use sha2::{Digest, Sha256};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const NAME: &str = "gvisor";
const HELLO_TIMEOUT: Duration = Duration::from_secs(60);
const WARM_TIMEOUT: Duration = Duration::from_secs(600);
const RESEED_TIMEOUT: Duration = Duration::from_secs(30);
const CHECKPOINT_TIMEOUT: Duration = Duration::from_secs(300);
const CPU_PERIOD_US: u64 = 100_000;

/// Where and how to run runsc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GvisorConfig {
    /// Holds runsc's state (`runsc/`), sandbox bundles (`bundles/`), templates
    /// (`templates/`) and the compatibility shim (`compat/`). One directory per backend instance.
    pub state_dir: PathBuf,
    /// The runsc binary.
    pub runsc: PathBuf,
    /// Skip the platform probe and use this platform (`systrap`, `kvm`, `ptrace`).
    /// Without it the probe's result is cached in `state_dir/platform` for this runsc
    /// (path and version) and kernel.
    pub platform: Option<String>,
}

/// The gVisor backend.
pub struct GvisorBackend {
    state_dir: PathBuf,
    runtime: OciRuntime,
    identity: RuntimeIdentity,
    /// The statx compatibility shim preloaded into python and shell sandboxes.
    preload: Preload,
    /// Parent of every sandbox cgroup of this backend instance.
    cgroup_parent: String,
    template_lock: tokio::sync::Mutex<()>,
    /// Session networks of egress-enabled sandboxes; `None` refuses them.
    network: Option<NetworkManager>,
    /// This runsc can write a checkpoint uncompressed (`checkpoint --compression none`,
    /// runsc 2024 and later). Restores then map the pages file instead of inflating it.
    uncompressed_checkpoints: bool,
}

/// The generous host pids limit: gVisor's own threads (~40 idle) and, on ptrace, the
/// stub processes and threads of guest tasks live there (measured: ~11 host tasks per
/// guest process in a fork bomb); too low a limit kills the sentry. The in-sandbox
/// limit is `RLIMIT_NPROC`, which the sandbox kernel enforces per sandbox.
fn host_pids_limit(max_processes: u32) -> u64 {
    (16 * u64::from(max_processes) + 1024).max(4096)
}

/// Whether `runsc checkpoint` takes `--compression` (its help lists the flag; runsc
/// 20221219 has none and always compresses).
async fn supports_uncompressed_checkpoints(runsc: &Path) -> bool {
    let help = tokio::process::Command::new(runsc)
        .args(["help", "checkpoint"])
        .output()
        .await;
    match help {
        Ok(out) => {
            checkpoint_help_offers_compression(&String::from_utf8_lossy(&out.stdout))
                || checkpoint_help_offers_compression(&String::from_utf8_lossy(&out.stderr))
        }
        Err(_) => false,
    }
}

fn checkpoint_help_offers_compression(help: &str) -> bool {
    help.lines().any(|l| {
        let flag = l.trim_start();
        flag == "-compression" || flag.starts_with("-compression ")
    }) && help.contains("none")
}

impl GvisorBackend {
    /// Checks runsc and the host's cgroups, creates the state directories and picks the
    /// platform: `config.platform` if set, else the cached probe result for this runsc
    /// and kernel, else a probe (~10 s here).
    pub async fn new(config: GvisorConfig) -> Result<Self, GvisorError> {
        SandboxCgroup::check_host()?;
        let version = tokio::process::Command::new(&config.runsc)
            .arg("--version")
            .output()
            .await
            .map_err(|e| GvisorError::Runsc {
                path: config.runsc.display().to_string(),
                message: e.to_string(),
            })?;
        if !version.status.success() {
            return Err(GvisorError::Runsc {
                path: config.runsc.display().to_string(),
                message: format!("--version: {}", version.status),
            });
        }
        let runsc_version = String::from_utf8_lossy(&version.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .to_string();
        let uncompressed_checkpoints = supports_uncompressed_checkpoints(&config.runsc).await;
        for sub in ["runsc", "bundles", "templates", "compat"] {
            std::fs::create_dir_all(config.state_dir.join(sub))?;
        }
        let state_dir = std::fs::canonicalize(&config.state_dir)?;
        let platform = match config.platform {
            Some(p) => {
                tracing::info!(platform = p, "gVisor platform set by configuration");
                p
            }
            None => {
                let key = ProbeKey::for_host(&config.runsc, &runsc_version);
                cached_or_probed_platform(&config.runsc, &key, &state_dir).await?
            }
        };
        let preload = compat::install(&state_dir.join("compat"))?;
        let instance = hex::encode(&Sha256::digest(state_dir.to_string_lossy().as_bytes())[..4]);
        tracing::info!(runsc_version, platform, state_dir = %state_dir.display(), "gVisor backend ready");
        Ok(GvisorBackend {
            runtime: OciRuntime {
                name: "runsc",
                binary: config.runsc,
                global_args: vec![
                    "--root".into(),
                    state_dir.join("runsc").into(),
                    "--platform".into(),
                    platform.clone().into(),
                ],
            },
            identity: RuntimeIdentity {
                runsc_version,
                platform,
                compat: compat::digest(),
            },
            preload,
            cgroup_parent: format!("/sandpool/gvisor-{instance}"),
            state_dir,
            template_lock: tokio::sync::Mutex::new(()),
            network: None,
            uncompressed_checkpoints,
        })
    }

    /// Lets egress-enabled sandboxes ([`NetworkPolicy::Enabled`]) get their session
    /// network from `manager`; without it they are refused.
    pub fn with_network(mut self, manager: NetworkManager) -> Self {
        self.network = Some(manager);
        self
    }

    /// The platform in use.
    pub fn platform(&self) -> &str {
        &self.identity.platform
    }

    fn bundle(&self, id: &SandboxId) -> BundleLayout {
        BundleLayout::new(self.state_dir.join("bundles").join(id.as_str()))
    }

    fn cgroup(&self, id: &SandboxId) -> Result<SandboxCgroup, SandboxError> {
        Ok(SandboxCgroup::new(&format!("{}/{}", self.cgroup_parent, id))?)
    }

    fn templates_dir(&self) -> PathBuf {
        self.state_dir.join("templates")
    }

    /// Writes the bundle, creates the cgroup and runs `run` or `restore`.
    async fn start(
        &self,
        spec: &SandboxSpec,
        checkpoint: Option<&Path>,
        network: Option<&SessionNetwork>,
    ) -> Result<OciSandbox, SandboxError> {
        let started = Instant::now();
        let bundle = self.bundle(&spec.id);
        let cgroup = self.cgroup(&spec.id)?;
        let mut config = build_config(
            spec,
            &BundleOptions {
                flavour: Flavour::Gvisor {
                    host_pids_limit: host_pids_limit(spec.limits.max_processes),
                    // Our Debian images only: a custom image keeps its own environment.
                    preload: matches!(spec.kind, SandboxKind::Python | SandboxKind::Shell)
                        .then(|| self.preload.clone()),
                },
                cgroups_path: cgroup.relative().to_string(),
            },
        )?;
        // runsc would write the quota into the cgroup too: it is applied once the agent
        // is up (see below).
        config.linux.resources.cpu.quota = -1;
        if let Some(net) = network {
            sandpool_oci::join_network(&mut config, net.netns_path(), net.resolv_conf())?;
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
            pids: host_pids_limit(spec.limits.max_processes),
        };
        let prepared = bundle
            .write(&config)
            .and_then(|()| cgroup.create(&limits))
            .and_then(|()| cgroup.set_cpu_quota(None));
        if let Err(e) = prepared {
            sandpool_oci::remove_leftover(&self.runtime, &spec.id, bundle, cgroup)
                .await
                .ok();
            return Err(e.into());
        }
        let mut extra_global: Vec<OsString> = vec!["--log".into(), bundle.runtime_log().into()];
        // Egress-enabled: gVisor's netstack on the session namespace's veth.
        let network_mode = if network.is_some() { "sandbox" } else { "none" };
        extra_global.extend(["--network".into(), network_mode.into()]);
        let mut args: Vec<OsString> = match checkpoint {
            Some(image) => vec!["restore".into(), "--image-path".into(), image.into()],
            None => vec!["run".into()],
        };
        args.extend([
            "--bundle".into(),
            bundle.dir.clone().into(),
            spec.id.as_str().into(),
        ]);
        let sandbox = launch(LaunchRequest {
            runtime: self.runtime.clone(),
            id: spec.id.clone(),
            bundle,
            cgroup: cgroup.clone(),
            extra_global,
            args,
            restored: checkpoint.is_some(),
            hello_timeout: HELLO_TIMEOUT,
            hide_proc_sys_net: network.is_some(),
        })
        .await?;
        // Starting (and above all restoring: decompressing the checkpoint) runs
        // unthrottled, with only sandpool's agent or the template's state in the sandbox;
        // the CPU limit applies before any request is served.
        if let Err(e) = cgroup.set_cpu_quota(Some(limits.cpu_quota_us)) {
            let _ = sandbox.destroy().await;
            return Err(e.into());
        }
        tracing::info!(
            sandbox = %spec.id,
            restored = checkpoint.is_some(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "gVisor sandbox up"
        );
        Ok(sandbox)
    }

    /// Boots the template sandbox, warms it and checkpoints it into `dir`.
    async fn checkpoint_into(
        &self,
        spec: &SandboxSpec,
        warm: &[String],
        dir: &Path,
    ) -> Result<(), SandboxError> {
        let sandbox = self.start(spec, None, None).await?;
        let result = async {
            if spec.kind == SandboxKind::Python {
                let request = Request::Warm {
                    modules: warm.to_vec(),
                };
                match tokio::time::timeout(WARM_TIMEOUT, sandbox.agent().call(request)).await {
                    Ok(Ok(Response::Done)) => {}
                    Ok(Ok(other)) => return Err(unexpected_response("Done", &other)),
                    Ok(Err(e)) => return Err(e),
                    Err(_) => return Err(SandboxError::Timeout(WARM_TIMEOUT, "warming the template")),
                }
            }
            let mut args: Vec<std::ffi::OsString> =
                vec!["checkpoint".into(), "--image-path".into(), dir.into()];
            if self.uncompressed_checkpoints {
                args.extend(["--compression".into(), "none".into()]);
            }
            args.push(spec.id.as_str().into());
            self.runtime
                .run("checkpoint the template", &args, CHECKPOINT_TIMEOUT)
                .await?;
            Ok(())
        }
        .await;
        let tail = sandbox.log_tail();
        let destroyed = sandbox.destroy().await;
        match result {
            Err(SandboxError::Runtime {
                runtime,
                action,
                message,
            }) => Err(SandboxError::Runtime {
                runtime,
                action,
                message: format!("{message}\n{tail}"),
            }),
            other => other.and(destroyed),
        }
    }
}

fn random_suffix() -> String {
    let mut bytes = [0u8; 6];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[async_trait]
impl Backend for GvisorBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn supports_checkpoint(&self) -> bool {
        true
    }

    async fn build_template(
        &self,
        spec: &SandboxSpec,
        warm_modules: &[String],
    ) -> Result<Template, SandboxError> {
        if matches!(spec.network, NetworkPolicy::Enabled(_)) {
            // A checkpoint holds the netstack of its session's namespace and address.
            return Err(SandboxError::Unsupported {
                backend: NAME,
                what: "templates of egress-enabled sandboxes (they cold-boot)",
            });
        }
        let key = template_key(spec, &self.identity)?;
        let path = template_dir(&self.templates_dir(), &key, warm_modules);
        let _building = self.template_lock.lock().await;
        if path.is_dir() {
            tracing::info!(key, "gVisor template already built");
            return Ok(Template { key, path });
        }
        let started = Instant::now();
        let mut template_spec = spec.clone();
        template_spec.id = SandboxId::new(format!("tpl-{}", random_suffix()))?;
        let partial = self
            .templates_dir()
            .join(format!(".partial-{}", template_spec.id));
        std::fs::create_dir_all(&partial)?;
        let result = self.checkpoint_into(&template_spec, warm_modules, &partial).await;
        let result = result.and_then(|()| Ok(std::fs::rename(&partial, &path)?));
        if let Err(e) = result {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(e);
        }
        tracing::info!(
            key,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "gVisor template built"
        );
        Ok(Template { key, path })
    }

    async fn create(
        &self,
        spec: &SandboxSpec,
        template: Option<&Template>,
    ) -> Result<Box<dyn Sandbox>, SandboxError> {
        if let NetworkPolicy::Enabled(egress) = &spec.network {
            if template.is_some() {
                return Err(SandboxError::Unsupported {
                    backend: NAME,
                    what: "restoring an egress-enabled sandbox from a template",
                });
            }
            let manager = self.network.as_ref().ok_or(SandboxError::Unsupported {
                backend: NAME,
                what: "egress without a network manager (GvisorBackend::with_network)",
            })?;
            let net = manager.attach(&spec.id, egress).await?;
            return match self.start(spec, None, Some(&net)).await {
                Ok(sandbox) => Ok(Box::new(NetworkedSandbox::new(sandbox, net))),
                Err(e) => {
                    if let Err(cleanup) = net.remove().await {
                        tracing::warn!(sandbox = %spec.id, error = %cleanup, "removing the network of a failed start");
                    }
                    Err(e)
                }
            };
        }
        let Some(template) = template else {
            return Ok(Box::new(self.start(spec, None, None).await?));
        };
        if template.key != template_key(spec, &self.identity)? {
            return Err(SandboxError::InvalidSpec(format!(
                "template {} was built for a different image, limits, agent or runsc",
                template.key
            )));
        }
        if !template.path.join("checkpoint.img").is_file() {
            return Err(SandboxError::InvalidSpec(format!(
                "template {} has no checkpoint at {}",
                template.key,
                template.path.display()
            )));
        }
        let sandbox = self.start(spec, Some(&template.path), None).await?;
        let mut seed = vec![0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        let reseeded = match tokio::time::timeout(
            RESEED_TIMEOUT,
            sandbox.agent().call(Request::Reseed { seed }),
        )
        .await
        {
            Ok(Ok(Response::Done)) => Ok(()),
            Ok(Ok(other)) => Err(unexpected_response("Done", &other)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(SandboxError::Timeout(
                RESEED_TIMEOUT,
                "reseeding a restored sandbox",
            )),
        };
        if let Err(e) = reseeded {
            let _ = sandbox.destroy().await;
            return Err(e);
        }
        Ok(Box::new(sandbox))
    }

    async fn leftovers(&self) -> Result<Vec<SandboxId>, SandboxError> {
        sandpool_oci::list_leftovers(&self.runtime, &self.state_dir.join("bundles")).await
    }

    async fn remove_leftover(&self, id: &SandboxId) -> Result<(), SandboxError> {
        tracing::info!(sandbox = %id, "removing leftover gVisor sandbox");
        sandpool_oci::remove_leftover(&self.runtime, id, self.bundle(id), self.cgroup(id)?).await
    }
}

#[cfg(test)]
mod tests {
    use super::checkpoint_help_offers_compression;

    #[test]
    fn uncompressed_checkpoints_are_used_only_where_runsc_offers_them() {
        let runsc_2024 = "checkpoint [flags] <container id> - save current state of container.\n  \
            -compression value\n    \tcompress checkpoint image on disk. Values: none|flate-best-speed. \
            (default flate-best-speed)\n  -direct\n    \tuse O_DIRECT for writing checkpoint pages file\n";
        let runsc_2022 = "checkpoint [flags] <container id> - save current state of container.\n  \
            -image-path string\n    \tdirectory path to saved container image\n  -leave-running\n";
        assert!(checkpoint_help_offers_compression(runsc_2024));
        assert!(!checkpoint_help_offers_compression(runsc_2022));
        assert!(!checkpoint_help_offers_compression("-compressionist none"));
    }
}

//! Getting a custom-container pool ready: pulling its image (progress in the log), a
//! portable agent bundle (the host's dynamic loader and the agent's libraries beside the
//! agent, so images without a compatible libc can run it) and the workload built from
//! the image config with the pool's overrides.

use crate::custom_spec::{find_secret, CustomContainerSpec, PoolSecret};
use crate::factory::{CustomRuntime, SandboxFactory};
use crate::service::{EngineError, PoolMetadata};
use crate::PoolSpec;
use sandpool_registry::{
    Credentials, ImageCache, ImageRef, ImageSource, PreparedImage, Progress, RegistryOptions,
};
use sandpool_sandbox::{
    AgentRuntime, Backend, SandboxId, SandboxKind, SandboxSpec, Workload, AGENT_MOUNT_POINT,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Folder of the bundle holding the loader and the agent's shared libraries.
const LIB_DIR: &str = "lib";
/// Bound on pulling and unpacking one image.
const PULL_TIMEOUT: Duration = Duration::from_secs(1800);

/// Adds `lib/` (the dynamic loader and every library `ldd` lists for the agent) to the
/// bundle at `agent.host_dir` and runs the agent through that loader, so it does not
/// depend on the image's libc.
pub(crate) fn portable_agent(agent: &AgentRuntime) -> Result<AgentRuntime, EngineError> {
    let exe = agent.host_dir.join(sandpool_agent::AGENT_EXE_NAME);
    let lib = agent.host_dir.join(LIB_DIR);
    let internal = |what: &str, e: &dyn std::fmt::Display| EngineError::Internal(format!("{what}: {e}"));
    if !lib.exists() {
        let out = Command::new("ldd")
            .arg(&exe)
            .output()
            .map_err(|e| internal("running ldd on the agent", &e))?;
        let libs = parse_ldd(&String::from_utf8_lossy(&out.stdout));
        let tmp = agent.host_dir.join(".lib.tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(|e| internal("creating the agent lib dir", &e))?;
        let mut loader = false;
        for path in libs {
            let name = path.file_name().map(PathBuf::from).unwrap_or_default();
            loader |= name.to_string_lossy().starts_with("ld-linux");
            // `copy` follows symlinks: the bundle holds real files.
            std::fs::copy(&path, tmp.join(&name))
                .map_err(|e| internal(&format!("copying {}", path.display()), &e))?;
        }
        if !loader {
            return Err(EngineError::Internal(
                "ldd did not name a dynamic loader for the agent".into(),
            ));
        }
        std::fs::rename(&tmp, &lib).map_err(|e| internal("installing the agent lib dir", &e))?;
    }
    let loader = std::fs::read_dir(&lib)
        .map_err(|e| internal("reading the agent lib dir", &e))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("ld-linux"))
        .ok_or_else(|| EngineError::Internal("the agent lib dir has no dynamic loader".into()))?;
    Ok(AgentRuntime {
        host_dir: agent.host_dir.clone(),
        argv: vec![
            format!("{AGENT_MOUNT_POINT}/{LIB_DIR}/{loader}"),
            "--library-path".into(),
            format!("{AGENT_MOUNT_POINT}/{LIB_DIR}"),
            format!("{AGENT_MOUNT_POINT}/{}", sandpool_agent::AGENT_EXE_NAME),
        ],
    })
}

/// Absolute library paths from `ldd` output (`name => /path (addr)` and `/path (addr)`).
fn parse_ldd(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|line| {
            let target = line.split("=>").nth(1).unwrap_or(line).trim();
            let path = target.split_whitespace().next()?;
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// Pulls (or finds in the cache) the pool's image, logging progress.
pub(crate) async fn pull_image(
    data_dir: &Path,
    pool: &str,
    custom: &CustomContainerSpec,
    secrets: &[PoolSecret],
) -> Result<PreparedImage, EngineError> {
    let image = ImageRef::parse(&custom.image).map_err(|e| {
        EngineError::InvalidInput(format!("customContainerTemplate.containers[0].image: {e}"))
    })?;
    let mut options = RegistryOptions {
        insecure: custom.insecure_registry,
        ..Default::default()
    };
    if let Some(r) = &custom.registry {
        if r.server.eq_ignore_ascii_case(&image.registry) {
            let password = find_secret(secrets, &r.password_secret_ref).ok_or_else(|| {
                EngineError::InvalidInput(
                    "customContainerTemplate.registryCredentials.passwordSecretRef: no pool secret of that name".into(),
                )
            })?;
            options.credentials = Some(Credentials::new(r.username.clone(), password.expose()));
        } else {
            tracing::warn!(pool, server = %r.server, registry = %image.registry, "registry credentials are for another server; pulling anonymously");
        }
    }
    let cache = ImageCache::new(data_dir.join("registry"));
    let pool_name = pool.to_owned();
    let last_report = Mutex::new(Instant::now() - Duration::from_secs(10));
    let progress: sandpool_registry::ProgressFn = Arc::new(move |p: &Progress| {
        if let Progress::Downloading {
            downloaded, total, ..
        } = p
        {
            let mut last = last_report.lock().expect("progress lock");
            if downloaded < total && last.elapsed() < Duration::from_secs(2) {
                return;
            }
            *last = Instant::now();
        }
        tracing::info!(pool = %pool_name, "image: {p:?}");
    });
    tracing::info!(pool, image = %image, "pulling the pool's image");
    let source = ImageSource::Registry { image, options };
    tokio::time::timeout(PULL_TIMEOUT, cache.ensure(&source, progress))
        .await
        .map_err(|_| EngineError::Internal(format!("pulling the image took longer than {PULL_TIMEOUT:?}")))?
        .map_err(|e| EngineError::Internal(format!("pulling image {}: {e}", custom.image)))
}

/// The workload: the image's entrypoint/cmd/env/workdir/user with the pool's
/// `command`, `args` and `env` over them.
pub(crate) fn workload(
    config: &sandpool_registry::ImageConfig,
    custom: &CustomContainerSpec,
    env: Vec<(String, String)>,
) -> Result<Workload, EngineError> {
    let entrypoint = if custom.command.is_empty() {
        config.entrypoint.clone()
    } else {
        custom.command.clone()
    };
    let cmd = if custom.args.is_empty() && custom.command.is_empty() {
        config.cmd.clone()
    } else {
        custom.args.clone()
    };
    let argv: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if argv.is_empty() {
        return Err(EngineError::InvalidInput(
            "customContainerTemplate.containers[0].command: the image has no entrypoint or cmd; set command"
                .into(),
        ));
    }
    let mut merged: Vec<(String, String)> = config
        .env
        .iter()
        .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    for (k, v) in env {
        merged.retain(|(name, _)| name != &k);
        merged.push((k, v));
    }
    Ok(Workload {
        argv,
        env: merged,
        cwd: (!config.working_dir.is_empty()).then(|| config.working_dir.clone()),
        user: (!config.user.is_empty()).then(|| config.user.clone()),
    })
}

/// Factory and metadata for a `CustomContainer` pool: image pulled, portable agent,
/// workload, no warm-start template.
pub(crate) async fn prepare_custom_pool(
    spec: &PoolSpec,
    data_dir: &Path,
    agent: AgentRuntime,
    backend: Arc<dyn Backend>,
    generation: u64,
    now: std::time::SystemTime,
) -> Result<(SandboxFactory, PoolMetadata), EngineError> {
    let custom = spec.custom.as_ref().ok_or_else(|| {
        EngineError::InvalidInput(
            "customContainerTemplate: required for containerType CustomContainer".into(),
        )
    })?;
    let env = custom.resolved_env(&spec.secrets)?;
    let image = pull_image(data_dir, &spec.name, custom, &spec.secrets).await?;
    let workload = workload(&image.config, custom, env)?;
    let agent = portable_agent(&agent)?;
    let base = SandboxSpec {
        id: SandboxId::new(format!("sp-{}-template-{generation}", spec.name))
            .map_err(|e| EngineError::Internal(e.to_string()))?,
        rootfs: image.rootfs.clone(),
        image_digest: image.digest.to_string(),
        kind: SandboxKind::Custom,
        limits: spec.limits,
        network: spec.network.clone(),
        agent,
        env: Vec::new(),
        workload: Some(workload),
    };
    tracing::info!(pool = %spec.name, image = %custom.image, digest = %image.digest, "custom container image ready");
    let factory = SandboxFactory {
        backend,
        base,
        template: None,
        custom: Some(CustomRuntime {
            target_port: custom.target_port,
            startup: custom.startup_probe.clone(),
            liveness: custom.liveness_probe.clone(),
            lifecycle: custom.lifecycle,
        }),
    };
    let metadata = PoolMetadata {
        runtimes: vec![("image".to_owned(), format!("{}@{}", custom.image, image.digest))],
        packages: Vec::new(),
        created_at: now,
    };
    Ok((factory, metadata))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::custom_spec::{EnvSource, Lifecycle};

    #[test]
    fn ldd_output_gives_paths() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x7f)\n\t/lib64/ld-linux-x86-64.so.2 (0x7f)\n";
        assert_eq!(
            parse_ldd(text),
            vec![
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2")
            ]
        );
    }

    #[test]
    fn pool_overrides_apply_over_the_image() {
        let config: sandpool_registry::ImageConfig = sandpool_registry::ImageConfig::parse(
            "config",
            br#"{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/bin/httpd"],"Cmd":["-f"],"Env":["A=1","B=2"],"WorkingDir":"/www","User":"1000"},"rootfs":{"type":"layers","diff_ids":[]}}"#,
        )
        .unwrap();
        let mut custom = CustomContainerSpec {
            image: "x".into(),
            command: vec![],
            args: vec![],
            env: vec![("B".into(), EnvSource::Value("3".into()))],
            target_port: 80,
            registry: None,
            insecure_registry: false,
            startup_probe: None,
            liveness_probe: None,
            lifecycle: Lifecycle::Timed,
        };
        let w = workload(&config, &custom, vec![("B".into(), "3".into())]).unwrap();
        assert_eq!(w.argv, vec!["/bin/httpd", "-f"]);
        assert_eq!(w.env, vec![("A".into(), "1".into()), ("B".into(), "3".into())]);
        assert_eq!(
            (w.cwd.as_deref(), w.user.as_deref()),
            (Some("/www"), Some("1000"))
        );
        custom.args = vec!["-v".into()];
        assert_eq!(
            workload(&config, &custom, vec![]).unwrap().argv,
            vec!["/bin/httpd", "-v"]
        );
        custom.command = vec!["/bin/sh".into()];
        custom.args = vec![];
        assert_eq!(workload(&config, &custom, vec![]).unwrap().argv, vec!["/bin/sh"]);
    }
}

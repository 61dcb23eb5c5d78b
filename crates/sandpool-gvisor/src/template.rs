//! Template identity: the key that says whether a checkpoint may be restored for a
//! spec, and where a template for a given set of warmed modules lives.

use sandpool_sandbox::SandboxSpec;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// What, besides the spec, a checkpoint depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeIdentity {
    pub runsc_version: String,
    pub platform: String,
    /// Digest of the preloaded compatibility shim.
    pub compat: String,
}

/// Hash of everything that must match between checkpoint and restore: runsc and its
/// platform, the compatibility shim, the image, kind, limits, network, environment and the agent bundle
/// (argv and each file's name, size and modification time). The sandbox id is not part
/// of it.
pub fn template_key(spec: &SandboxSpec, runtime: &RuntimeIdentity) -> std::io::Result<String> {
    let mut h = Sha256::new();
    let mut field = |name: &str, value: &str| {
        h.update(name.as_bytes());
        h.update([0]);
        h.update((value.len() as u64).to_be_bytes());
        h.update(value.as_bytes());
    };
    field("format", "sandpool-gvisor-template-1");
    field("runsc", &runtime.runsc_version);
    field("platform", &runtime.platform);
    field("compat", &runtime.compat);
    field("image", &spec.image_digest);
    field("rootfs", &spec.rootfs.to_string_lossy());
    field("kind", spec.kind.as_str());
    field("limits", &format!("{:?}", spec.limits));
    field("network", &format!("{:?}", spec.network));
    field("argv", &spec.agent.argv.join("\0"));
    field("agent", &bundle_fingerprint(&spec.agent.host_dir)?);
    for (k, v) in &spec.env {
        field("env", &format!("{k}={v}"));
    }
    Ok(hex::encode(&h.finalize()[..16]))
}

/// Names, sizes and modification times of the agent bundle's files.
fn bundle_fingerprint(dir: &Path) -> std::io::Result<String> {
    use std::os::unix::fs::MetadataExt;
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        entries.push(format!(
            "{}:{}:{}.{}",
            entry.file_name().to_string_lossy(),
            meta.len(),
            meta.mtime(),
            meta.mtime_nsec()
        ));
    }
    entries.sort();
    Ok(format!("{}|{}", dir.display(), entries.join("|")))
}

/// The directory of the template for `key` warmed with `modules`.
pub fn template_dir(templates: &Path, key: &str, modules: &[String]) -> PathBuf {
    let warm = Sha256::digest(modules.join("\n").as_bytes());
    templates.join(format!("{key}-{}", &hex::encode(warm)[..12]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sandpool_sandbox::{AgentRuntime, Limits, NetworkPolicy, SandboxId, SandboxKind};

    fn spec(agent: &Path, id: &str) -> SandboxSpec {
        SandboxSpec {
            id: SandboxId::new(id).unwrap(),
            rootfs: "/r".into(),
            image_digest: "d".into(),
            kind: SandboxKind::Python,
            limits: Limits::default(),
            network: NetworkPolicy::Disabled,
            agent: AgentRuntime {
                host_dir: agent.to_path_buf(),
                argv: vec!["/opt/sandpool/sandpool-agent".into()],
            },
            env: vec![],
            workload: None,
        }
    }

    #[test]
    fn the_key_ignores_the_id_but_not_limits_or_the_agent() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("sandpool-agent"), "v1").unwrap();
        let rt = RuntimeIdentity {
            runsc_version: "x".into(),
            platform: "ptrace".into(),
            compat: "c".into(),
        };
        let a = template_key(&spec(dir.path(), "a"), &rt).unwrap();
        assert_eq!(a, template_key(&spec(dir.path(), "b"), &rt).unwrap());
        let mut other = spec(dir.path(), "a");
        other.limits.memory_bytes *= 2;
        assert_ne!(a, template_key(&other, &rt).unwrap());
        std::fs::write(dir.path().join("sandpool-agent"), "v2 longer").unwrap();
        assert_ne!(a, template_key(&spec(dir.path(), "a"), &rt).unwrap());
        let t = Path::new("/t");
        assert_ne!(template_dir(t, &a, &["numpy".into()]), template_dir(t, &a, &[]));
    }
}

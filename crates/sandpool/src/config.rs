//! The TOML configuration file: server settings, pools (in the ARM `properties` shape of
//! `Microsoft.App/sessionPools`) and API keys (stored as SHA-256 hashes).

use anyhow::Context;
use sandpool_api::pool_schema::PoolProperties;
use sandpool_engine::{ContainerType, PoolSpec};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub server: ServerSection,
    #[serde(default)]
    pub pools: Vec<PoolSection>,
    #[serde(default)]
    pub keys: Vec<KeySection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServerSection {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    /// `gvisor` (default) or `runc`.
    pub backend: Option<String>,
    /// gVisor platform override (`systrap`, `kvm`, `ptrace`); probed when absent.
    pub platform: Option<String>,
    /// Interface `EgressEnabled` traffic leaves through; the default route's when absent.
    pub egress_uplink: Option<String>,
    /// IPv4 range for session links of `EgressEnabled` pools (one /30 per session);
    /// `10.203.0.0/16` when absent. Must be unused elsewhere on the host.
    pub egress_subnet: Option<String>,
}

/// One pool: its name and the same ARM `properties` the management API accepts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSection {
    pub name: String,
    #[serde(default)]
    pub properties: PoolProperties,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySection {
    pub name: String,
    /// `executor` or `admin`.
    pub role: String,
    /// Hex SHA-256 of the key (`printf %s KEY | sha256sum`).
    pub sha256: String,
}

impl ConfigFile {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading config {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("parsing config {}", path.display()))
    }

    /// Parses the TOML text; errors name the offending key's path.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let de = toml::Deserializer::new(text);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            anyhow::anyhow!("{path}: {}", e.into_inner().message())
        })
    }
}

/// The pools served when neither the config nor the store declares any.
pub fn default_pools() -> Vec<PoolSpec> {
    vec![
        PoolSpec::with_defaults("python", ContainerType::PythonLts),
        PoolSpec::with_defaults("shell", ContainerType::Shell),
    ]
}

impl PoolSection {
    /// Turns the ARM-shaped section into a validated spec; errors name the field.
    pub fn to_spec(&self) -> anyhow::Result<PoolSpec> {
        self.properties
            .to_spec(&self.name)
            .map_err(|e| anyhow::anyhow!("pool {}: {e}", self.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn arm_shaped_pool_section() {
        let cfg = ConfigFile::parse(
            r#"
            [[pools]]
            name = "calc"
            [pools.properties]
            containerType = "pythonlts"
            scaleConfiguration = { maxConcurrentSessions = 5, readySessionInstances = 1 }
            dynamicPoolConfiguration = { lifecycleConfiguration = { lifecycleType = "Timed", cooldownPeriodInSeconds = 60 } }
            resources = { cpu = 0.5, memory = "512Mi" }
            "#,
        )
        .unwrap();
        let spec = cfg.pools[0].to_spec().unwrap();
        assert_eq!((spec.max_concurrent, spec.ready_instances), (5, 1));
        assert_eq!(spec.cooldown, Duration::from_secs(60));
        assert_eq!(
            (spec.limits.cpu_millis, spec.limits.memory_bytes),
            (500, 512 << 20)
        );
    }

    #[test]
    fn errors_name_the_field() {
        let cfg =
            ConfigFile::parse("[[pools]]\nname = \"x1x\"\n[pools.properties]\ncontainerType = \"NodeLTS\"\n")
                .unwrap();
        let err = cfg.pools[0].to_spec().unwrap_err().to_string();
        assert!(err.contains("properties.containerType"), "{err}");
        let err = ConfigFile::parse(
            "[[pools]]\nname = \"calc\"\n[pools.properties]\nscaleConfiguration = { maxConcurentSessions = 3 }\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("pools[0].properties.scaleConfiguration"), "{err}");
        let cfg = ConfigFile::parse(
            "[[pools]]\nname = \"calc\"\n[pools.properties]\nscaleConfiguration = { maxConcurrentSessions = 601 }\n",
        )
        .unwrap();
        let err = cfg.pools[0].to_spec().unwrap_err().to_string();
        assert!(
            err.contains("properties.scaleConfiguration.maxConcurrentSessions: must be between 1 and 600"),
            "{err}"
        );
    }
}

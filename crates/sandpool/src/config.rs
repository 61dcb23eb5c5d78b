//! The TOML configuration file: server settings, pools (in the ARM `properties` shape of
//! `Microsoft.App/sessionPools`) and API keys (stored as SHA-256 hashes).

use anyhow::{bail, Context};
use sandpool_engine::{ContainerType, PoolSpec};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSection {
    pub name: String,
    #[serde(default)]
    pub properties: PoolProperties,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolProperties {
    pub container_type: Option<String>,
    pub scale_configuration: Option<ScaleConfiguration>,
    pub dynamic_pool_configuration: Option<DynamicPoolConfiguration>,
    pub session_network_configuration: Option<SessionNetworkConfiguration>,
    pub resources: Option<Resources>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleConfiguration {
    pub max_concurrent_sessions: Option<u32>,
    pub ready_session_instances: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DynamicPoolConfiguration {
    pub lifecycle_configuration: Option<LifecycleConfiguration>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleConfiguration {
    pub lifecycle_type: Option<String>,
    pub cooldown_period_in_seconds: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionNetworkConfiguration {
    pub status: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    /// Cores, e.g. 0.5.
    pub cpu: Option<f64>,
    /// Kubernetes-style quantity: `512Mi`, `1Gi`, `1.5Gi`.
    pub memory: Option<String>,
    /// Size of /mnt/data (sandpool extension), same syntax as `memory`.
    pub data: Option<String>,
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
        toml::from_str(&text).with_context(|| format!("parsing config {}", path.display()))
    }
}

/// The pools served when the config declares none.
pub fn default_pools() -> Vec<PoolSpec> {
    vec![
        PoolSpec::with_defaults("python", ContainerType::PythonLts),
        PoolSpec::with_defaults("shell", ContainerType::Shell),
    ]
}

impl PoolSection {
    /// Turns the ARM-shaped section into a validated spec; errors name the field.
    pub fn to_spec(&self) -> anyhow::Result<PoolSpec> {
        let p = &self.properties;
        let ctype = match p
            .container_type
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("pythonlts") => ContainerType::PythonLts,
            Some("shell") => ContainerType::Shell,
            Some(other) => bail!(
                "pool {}: properties.containerType: unsupported value {other:?} (PythonLTS or Shell)",
                self.name
            ),
        };
        let mut spec = PoolSpec::with_defaults(&self.name, ctype);
        if let Some(scale) = &p.scale_configuration {
            if let Some(n) = scale.max_concurrent_sessions {
                spec.max_concurrent = n;
            }
            if let Some(n) = scale.ready_session_instances {
                spec.ready_instances = n;
            }
        }
        if let Some(lc) = p
            .dynamic_pool_configuration
            .as_ref()
            .and_then(|d| d.lifecycle_configuration.as_ref())
        {
            if let Some(t) = &lc.lifecycle_type {
                if !t.eq_ignore_ascii_case("timed") {
                    bail!("pool {}: properties.dynamicPoolConfiguration.lifecycleConfiguration.lifecycleType: only Timed is supported for {ctype:?} pools", self.name);
                }
            }
            if let Some(s) = lc.cooldown_period_in_seconds {
                spec.cooldown = Duration::from_secs(s);
            }
        }
        if let Some(net) = p
            .session_network_configuration
            .as_ref()
            .and_then(|n| n.status.as_deref())
        {
            if !net.eq_ignore_ascii_case("egressdisabled") {
                bail!("pool {}: properties.sessionNetworkConfiguration.status: only EgressDisabled is supported so far", self.name);
            }
        }
        if let Some(r) = &p.resources {
            if let Some(cpu) = r.cpu {
                if !(cpu.is_finite() && cpu > 0.0) {
                    bail!(
                        "pool {}: properties.resources.cpu: must be a positive number of cores",
                        self.name
                    );
                }
                spec.limits.cpu_millis = (cpu * 1000.0).round() as u32;
            }
            if let Some(m) = &r.memory {
                spec.limits.memory_bytes = parse_quantity(m)
                    .with_context(|| format!("pool {}: properties.resources.memory", self.name))?;
            }
            if let Some(d) = &r.data {
                spec.limits.data_bytes = parse_quantity(d)
                    .with_context(|| format!("pool {}: properties.resources.data", self.name))?;
            }
        }
        spec.validate()
            .map_err(|e| anyhow::anyhow!("pool {}: {e}", self.name))?;
        Ok(spec)
    }
}

/// Parses `512Mi`, `1Gi`, `1.5Gi`, `1G`, `1000000` into bytes.
pub fn parse_quantity(q: &str) -> anyhow::Result<u64> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(q.len());
    let (num, unit) = q.split_at(split);
    let num: f64 = num
        .parse()
        .with_context(|| format!("{q:?} is not a quantity like 512Mi or 1Gi"))?;
    let mult: f64 = match unit {
        "" => 1.0,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "K" | "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        _ => bail!("{q:?}: unknown unit {unit:?} (use Ki, Mi, Gi, K, M or G)"),
    };
    Ok((num * mult) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("512Mi").unwrap(), 512 << 20);
        assert_eq!(parse_quantity("1.5Gi").unwrap(), 3 << 29);
        assert_eq!(parse_quantity("1000").unwrap(), 1000);
        assert!(parse_quantity("1Tb").is_err());
        assert!(parse_quantity("lots").is_err());
    }

    #[test]
    fn arm_shaped_pool_section() {
        let cfg: ConfigFile = toml::from_str(
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
        let cfg: ConfigFile =
            toml::from_str("[[pools]]\nname = \"x1x\"\n[pools.properties]\ncontainerType = \"NodeLTS\"\n")
                .unwrap();
        let err = cfg.pools[0].to_spec().unwrap_err().to_string();
        assert!(err.contains("properties.containerType"), "{err}");
    }
}

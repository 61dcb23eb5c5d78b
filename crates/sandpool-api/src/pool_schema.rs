//! The one pool schema: the ARM-shaped `properties` of `Microsoft.App/sessionPools`
//! (plus sandpool's `resources` and `isolation`), read from JSON (management API) and
//! TOML (config file) alike, turned into a [`PoolSpec`] with errors naming the field.

use crate::custom_schema::CustomContainerTemplate;
use sandpool_engine::{
    ContainerType, EgressConfig, Lifecycle, NetworkPolicy, PoolSecret, PoolSpec, SecretValue,
};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Most sessions a pool may allow (Azure's limit for code-interpreter pools).
pub const MAX_CONCURRENT_SESSIONS: u32 = 600;
/// Longest cooldown accepted, in seconds.
pub const MAX_COOLDOWN_SECONDS: u64 = 86_400;

/// A bad pool definition; the message starts with the field's path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SchemaError {
    pub field: String,
    pub message: String,
}

fn bad<T>(field: &str, message: impl Into<String>) -> Result<T, SchemaError> {
    Err(SchemaError {
        field: format!("properties.{field}"),
        message: message.into(),
    })
}

/// `properties` of a session pool as clients send it. Read-only fields a client may
/// echo back from a GET are accepted and ignored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PoolProperties {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_management_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_configuration: Option<ScaleConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamic_pool_configuration: Option<DynamicPoolConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_network_configuration: Option<SessionNetworkConfiguration>,
    /// sandpool extension: per-sandbox resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// sandpool extension: isolation backend (`gvisor`, `runc`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<String>,
    /// Write-only: kept (the store needs them), never in [`PoolProperties::from_spec`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<Vec<Secret>>,
    /// `CustomContainer` pools only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_container_template: Option<CustomContainerTemplate>,
    #[serde(default, skip_serializing)]
    pub environment_id: Option<serde_json::Value>,
    #[serde(default, skip_serializing)]
    pub pool_management_endpoint: Option<serde_json::Value>,
    #[serde(default, skip_serializing)]
    pub provisioning_state: Option<serde_json::Value>,
    #[serde(default, skip_serializing)]
    pub provisioning_error: Option<serde_json::Value>,
    #[serde(default, skip_serializing)]
    pub node_count: Option<serde_json::Value>,
    #[serde(default, skip_serializing)]
    pub session_counts: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScaleConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_sessions: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_session_instances: Option<u32>,
    /// sandpool extension: at `maxConcurrentSessions`, a request for a new identifier waits
    /// (bounded) for a session to end instead of getting 404 at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_for_capacity: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DynamicPoolConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_configuration: Option<LifecycleConfiguration>,
    /// Old contract (2024-02-02-preview): `executionType` + cooldown at this level.
    #[serde(default, skip_serializing)]
    pub execution_type: Option<String>,
    #[serde(default, skip_serializing)]
    pub cooldown_period_in_seconds: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LifecycleConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown_period_in_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_alive_period_in_seconds: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionNetworkConfiguration {
    /// `EgressDisabled` (default) or `EgressEnabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// sandpool extension, `EgressEnabled` only: IPv4 networks sessions may reach. With
    /// either allow-list present, everything not listed is dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_cidrs: Option<Vec<String>>,
    /// sandpool extension, `EgressEnabled` only: domain names (`example.com`, or
    /// `*.example.com` for the names below it) sessions may resolve and reach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_domains: Option<Vec<String>>,
    /// sandpool extension: per-session bandwidth per direction, bytes per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_bytes_per_second: Option<u64>,
    /// sandpool extension: concurrent outbound connections per session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Resources {
    /// Cores, e.g. 0.5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<f64>,
    /// Kubernetes-style quantity: `512Mi`, `1Gi`, `1.5Gi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// Size of `/mnt/data`, same syntax as `memory`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Secret {
    pub name: String,
    #[serde(default)]
    pub value: Option<String>,
}

/// Parses `properties` from JSON, naming the offending field on error.
pub fn properties_from_json(value: serde_json::Value) -> Result<PoolProperties, SchemaError> {
    serde_path_to_error::deserialize(value).map_err(path_error)
}

/// Turns a `serde_path_to_error` failure into a [`SchemaError`] under `properties`.
pub fn path_error<E: std::fmt::Display>(e: serde_path_to_error::Error<E>) -> SchemaError {
    let path = e.path().to_string();
    let field = if path == "." || path.is_empty() {
        "properties".to_owned()
    } else {
        format!("properties.{path}")
    };
    SchemaError {
        field,
        message: e.inner().to_string(),
    }
}

impl PoolProperties {
    /// The validated spec of pool `name`; unset fields keep the embedded defaults.
    pub fn to_spec(&self, name: &str) -> Result<PoolSpec, SchemaError> {
        let ctype = match self
            .container_type
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("pythonlts") => ContainerType::PythonLts,
            Some("shell") => ContainerType::Shell,
            Some("customcontainer") => ContainerType::CustomContainer,
            Some(other) => {
                return bad(
                    "containerType",
                    format!("unsupported value {other:?} (PythonLTS, Shell or CustomContainer)"),
                )
            }
        };
        let mut spec = PoolSpec::with_defaults(name, ctype);
        self.apply(&mut spec)?;
        spec.validate().map_err(|e| {
            let text = e.to_string();
            match text.split_once(": ") {
                Some(("name", message)) => SchemaError {
                    field: "name".into(),
                    message: message.into(),
                },
                Some((field, message)) => SchemaError {
                    field: format!("properties.{field}"),
                    message: message.into(),
                },
                None => SchemaError {
                    field: "properties".into(),
                    message: text,
                },
            }
        })?;
        Ok(spec)
    }

    fn apply(&self, spec: &mut PoolSpec) -> Result<(), SchemaError> {
        if let Some(t) = &self.pool_management_type {
            if !t.eq_ignore_ascii_case("dynamic") {
                return bad("poolManagementType", "only Dynamic is supported");
            }
        }
        let custom = spec.container_type == ContainerType::CustomContainer;
        match (&self.custom_container_template, custom) {
            (Some(_), false) => {
                return bad(
                    "customContainerTemplate",
                    "only allowed with containerType CustomContainer",
                )
            }
            (None, true) => {
                return bad(
                    "customContainerTemplate",
                    "required for containerType CustomContainer",
                )
            }
            _ => {}
        }
        if let Some(secrets) = &self.secrets {
            for (i, s) in secrets.iter().enumerate() {
                if s.name.is_empty() {
                    return bad(&format!("secrets[{i}].name"), "must not be empty");
                }
                if secrets[..i].iter().any(|o| o.name == s.name) {
                    return bad(&format!("secrets[{i}].name"), "duplicate secret name");
                }
                let Some(value) = &s.value else {
                    return bad(&format!("secrets[{i}].value"), "is required");
                };
                spec.secrets.push(PoolSecret {
                    name: s.name.clone(),
                    value: SecretValue::new(value.clone()),
                });
            }
        }
        let mut lifecycle = Lifecycle::Timed;
        if let Some(scale) = &self.scale_configuration {
            if let Some(n) = scale.max_concurrent_sessions {
                if !(1..=MAX_CONCURRENT_SESSIONS).contains(&n) {
                    return bad(
                        "scaleConfiguration.maxConcurrentSessions",
                        format!("must be between 1 and {MAX_CONCURRENT_SESSIONS}"),
                    );
                }
                spec.max_concurrent = n;
            }
            if let Some(n) = scale.ready_session_instances {
                spec.ready_instances = n;
            }
            if let Some(wait) = scale.wait_for_capacity {
                spec.wait_for_capacity = wait;
            }
        }
        if spec.ready_instances > spec.max_concurrent {
            return bad(
                "scaleConfiguration.readySessionInstances",
                format!("must be at most maxConcurrentSessions ({})", spec.max_concurrent),
            );
        }
        if let Some(d) = &self.dynamic_pool_configuration {
            if let Some(t) = &d.execution_type {
                if !t.eq_ignore_ascii_case("timed") {
                    return bad(
                        "dynamicPoolConfiguration.executionType",
                        "only Timed is supported",
                    );
                }
            }
            if let Some(s) = d.cooldown_period_in_seconds {
                spec.cooldown = cooldown(s, "dynamicPoolConfiguration.cooldownPeriodInSeconds")?;
            }
            if let Some(lc) = &d.lifecycle_configuration {
                const LC: &str = "dynamicPoolConfiguration.lifecycleConfiguration";
                if let Some(t) = &lc.lifecycle_type {
                    if t.eq_ignore_ascii_case("oncontainerexit") && custom {
                        lifecycle = Lifecycle::OnContainerExit;
                    } else if !t.eq_ignore_ascii_case("timed") {
                        return bad(
                            &format!("{LC}.lifecycleType"),
                            if custom {
                                "must be Timed or OnContainerExit"
                            } else {
                                "only Timed is supported for PythonLTS and Shell pools"
                            },
                        );
                    }
                }
                if let Some(s) = lc.cooldown_period_in_seconds {
                    spec.cooldown = cooldown(s, &format!("{LC}.cooldownPeriodInSeconds"))?;
                }
                if let Some(s) = lc.max_alive_period_in_seconds {
                    if s == 0 {
                        return bad(&format!("{LC}.maxAlivePeriodInSeconds"), "must be at least 1");
                    }
                    spec.max_alive = Some(Duration::from_secs(s));
                }
            }
        }
        if let Some(net) = &self.session_network_configuration {
            const NET: &str = "sessionNetworkConfiguration";
            let enabled = match net.status.as_deref().map(str::to_ascii_lowercase).as_deref() {
                None | Some("egressdisabled") => false,
                Some("egressenabled") => true,
                Some(_) => {
                    return bad(
                        &format!("{NET}.status"),
                        "must be EgressDisabled or EgressEnabled",
                    )
                }
            };
            let extensions = net.allowed_cidrs.is_some()
                || net.allowed_domains.is_some()
                || net.bandwidth_bytes_per_second.is_some()
                || net.max_connections.is_some();
            if enabled {
                let mut egress = EgressConfig {
                    allow_cidrs: net.allowed_cidrs.clone().unwrap_or_default(),
                    allow_domains: net.allowed_domains.clone().unwrap_or_default(),
                    ..Default::default()
                };
                if let Some(b) = net.bandwidth_bytes_per_second {
                    if b < 1024 {
                        return bad(&format!("{NET}.bandwidthBytesPerSecond"), "must be at least 1024");
                    }
                    egress.bandwidth_bytes_per_sec = b;
                }
                if let Some(c) = net.max_connections {
                    if c == 0 {
                        return bad(&format!("{NET}.maxConnections"), "must be at least 1");
                    }
                    egress.max_connections = c;
                }
                spec.network = NetworkPolicy::Enabled(egress);
            } else if extensions {
                return bad(
                    &format!("{NET}.status"),
                    "allow-lists and limits need status EgressEnabled",
                );
            }
        }
        if let Some(r) = &self.resources {
            if let Some(cpu) = r.cpu {
                if !(cpu.is_finite() && (0.05..=64.0).contains(&cpu)) {
                    return bad("resources.cpu", "must be between 0.05 and 64 cores");
                }
                spec.limits.cpu_millis = (cpu * 1000.0).round() as u32;
            }
            if let Some(m) = &r.memory {
                spec.limits.memory_bytes = parse_quantity(m).or_else(|e| bad("resources.memory", e))?;
            }
            if let Some(d) = &r.data {
                let bytes = parse_quantity(d).or_else(|e| bad("resources.data", e))?;
                if bytes < 1 << 20 {
                    return bad("resources.data", "must be at least 1Mi");
                }
                spec.limits.data_bytes = bytes;
            }
        }
        if let Some(t) = &self.custom_container_template {
            spec.custom = Some(t.to_custom(&mut spec.limits, lifecycle)?);
            if lifecycle == Lifecycle::OnContainerExit {
                // No request-driven cooldown: the session lives until the container exits
                // (or maxAlivePeriodInSeconds).
                spec.cooldown = Duration::from_secs(MAX_COOLDOWN_SECONDS);
            }
        }
        if let Some(b) = &self.isolation {
            if b.is_empty() {
                return bad("isolation", "must name a backend (gvisor or runc)");
            }
            spec.backend = Some(b.to_ascii_lowercase());
        }
        Ok(())
    }

    /// What the store keeps: [`PoolProperties::from_spec`] plus the secrets' values.
    pub fn for_store(spec: &PoolSpec) -> PoolProperties {
        let mut p = Self::from_spec(spec);
        if !spec.secrets.is_empty() {
            p.secrets = Some(
                spec.secrets
                    .iter()
                    .map(|s| Secret {
                        name: s.name.clone(),
                        value: Some(s.value.expose().to_owned()),
                    })
                    .collect(),
            );
        }
        p
    }

    /// The canonical, complete properties of `spec` (what GET returns); secrets are
    /// write-only and never part of it.
    pub fn from_spec(spec: &PoolSpec) -> PoolProperties {
        let lifecycle = match spec.custom.as_ref().map(|c| c.lifecycle) {
            Some(Lifecycle::OnContainerExit) => "OnContainerExit",
            _ => "Timed",
        };
        let on_exit_without_cooldown = lifecycle == "OnContainerExit";
        PoolProperties {
            container_type: Some(
                match spec.container_type {
                    ContainerType::PythonLts => "PythonLTS",
                    ContainerType::Shell => "Shell",
                    ContainerType::CustomContainer => "CustomContainer",
                }
                .into(),
            ),
            custom_container_template: spec
                .custom
                .as_ref()
                .map(|c| CustomContainerTemplate::from_custom(c, &spec.limits)),
            pool_management_type: Some("Dynamic".into()),
            scale_configuration: Some(ScaleConfiguration {
                max_concurrent_sessions: Some(spec.max_concurrent),
                ready_session_instances: Some(spec.ready_instances),
                wait_for_capacity: Some(spec.wait_for_capacity),
            }),
            dynamic_pool_configuration: Some(DynamicPoolConfiguration {
                lifecycle_configuration: Some(LifecycleConfiguration {
                    lifecycle_type: Some(lifecycle.into()),
                    cooldown_period_in_seconds: (!on_exit_without_cooldown)
                        .then_some(spec.cooldown.as_secs()),
                    max_alive_period_in_seconds: spec.max_alive.map(|d| d.as_secs()),
                }),
                ..Default::default()
            }),
            session_network_configuration: Some(match &spec.network {
                NetworkPolicy::Disabled => SessionNetworkConfiguration {
                    status: Some("EgressDisabled".into()),
                    ..Default::default()
                },
                NetworkPolicy::Enabled(e) => SessionNetworkConfiguration {
                    status: Some("EgressEnabled".into()),
                    allowed_cidrs: (!e.allow_cidrs.is_empty()).then(|| e.allow_cidrs.clone()),
                    allowed_domains: (!e.allow_domains.is_empty()).then(|| e.allow_domains.clone()),
                    bandwidth_bytes_per_second: Some(e.bandwidth_bytes_per_sec),
                    max_connections: Some(e.max_connections),
                },
            }),
            resources: Some(Resources {
                cpu: Some(spec.limits.cpu_millis as f64 / 1000.0),
                memory: Some(format_quantity(spec.limits.memory_bytes)),
                data: Some(format_quantity(spec.limits.data_bytes)),
            }),
            isolation: spec.backend.clone(),
            ..Default::default()
        }
    }
}

fn cooldown(seconds: u64, field: &str) -> Result<Duration, SchemaError> {
    if !(1..=MAX_COOLDOWN_SECONDS).contains(&seconds) {
        return bad(field, format!("must be between 1 and {MAX_COOLDOWN_SECONDS}"));
    }
    Ok(Duration::from_secs(seconds))
}

/// Parses `512Mi`, `1Gi`, `1.5Gi`, `1G`, `1000000` into bytes.
pub fn parse_quantity(q: &str) -> Result<u64, String> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(q.len());
    let (num, unit) = q.split_at(split);
    let num: f64 = num
        .parse()
        .map_err(|_| format!("{q:?} is not a quantity like 512Mi or 1Gi"))?;
    let mult: f64 = match unit {
        "" => 1.0,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "K" | "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        _ => {
            return Err(format!(
                "{q:?}: unknown unit {unit:?} (use Ki, Mi, Gi, K, M or G)"
            ))
        }
    };
    Ok((num * mult) as u64)
}

/// Bytes as the shortest exact binary quantity (`512Mi`, `1Gi`), else plain bytes.
pub fn format_quantity(bytes: u64) -> String {
    for (unit, size) in [("Gi", 1u64 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: serde_json::Value) -> String {
        match properties_from_json(v) {
            Err(e) => e.to_string(),
            Ok(p) => p.to_spec("pool").unwrap_err().to_string(),
        }
    }

    #[test]
    fn egress_settings_round_trip() {
        let props: PoolProperties = serde_json::from_value(json!({
            "sessionNetworkConfiguration": {"status": "egressenabled", "allowedCidrs": ["198.18.0.0/24"], "allowedDomains": ["*.example.com"]}
        }))
        .unwrap();
        let spec = props.to_spec("net").unwrap();
        match &spec.network {
            NetworkPolicy::Enabled(e) => {
                assert_eq!(
                    (e.allow_cidrs.as_slice(), e.allow_domains.as_slice()),
                    (
                        &["198.18.0.0/24".to_string()][..],
                        &["*.example.com".to_string()][..]
                    )
                );
            }
            other => panic!("{other:?}"),
        }
        let back = PoolProperties::from_spec(&spec);
        assert_eq!(back.to_spec("net").unwrap().network, spec.network);
    }

    #[test]
    fn quantities_round_trip() {
        assert_eq!(parse_quantity("512Mi").unwrap(), 512 << 20);
        assert_eq!(parse_quantity("1.5Gi").unwrap(), 3 << 29);
        assert!(parse_quantity("1Tb").is_err());
        assert_eq!(format_quantity(512 << 20), "512Mi");
        assert_eq!(format_quantity(1 << 30), "1Gi");
        assert_eq!(format_quantity(1000), "1000");
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                json!({"scaleConfiguration": {"maxConcurrentSessions": 0}}),
                "properties.scaleConfiguration.maxConcurrentSessions: must be between 1 and 600",
            ),
            (
                json!({"scaleConfiguration": {"maxConcurrentSessions": 2, "readySessionInstances": 3}}),
                "properties.scaleConfiguration.readySessionInstances:",
            ),
            (
                json!({"scaleConfiguration": {"maxConcurrentSessions": "ten"}}),
                "properties.scaleConfiguration.maxConcurrentSessions:",
            ),
            (json!({"containerType": "NodeLTS"}), "properties.containerType:"),
            (json!({"bogus": 1}), "properties.bogus:"),
            (
                json!({"dynamicPoolConfiguration": {"lifecycleConfiguration": {"cooldownPeriodInSeconds": 0}}}),
                "properties.dynamicPoolConfiguration.lifecycleConfiguration.cooldownPeriodInSeconds:",
            ),
            (
                json!({"resources": {"memory": "1Tb"}}),
                "properties.resources.memory:",
            ),
            (
                json!({"resources": {"memory": "1Mi"}}),
                "properties.resources.memory:",
            ),
            (json!({"resources": {"cpu": 0}}), "properties.resources.cpu:"),
            (
                json!({"sessionNetworkConfiguration": {"status": "Sometimes"}}),
                "properties.sessionNetworkConfiguration.status:",
            ),
            (
                json!({"sessionNetworkConfiguration": {"allowedDomains": ["example.com"]}}),
                "properties.sessionNetworkConfiguration.status: allow-lists and limits need status EgressEnabled",
            ),
            (
                json!({"sessionNetworkConfiguration": {"status": "EgressEnabled", "allowedCidrs": ["10.0.0.0/33"]}}),
                "properties.sessionNetworkConfiguration:",
            ),
            (
                json!({"sessionNetworkConfiguration": {"status": "EgressEnabled", "maxConnections": 0}}),
                "properties.sessionNetworkConfiguration.maxConnections:",
            ),
            (
                json!({"customContainerTemplate": {}}),
                "properties.customContainerTemplate:",
            ),
        ];
        for (input, want) in cases {
            let got = err(input.clone());
            assert!(got.starts_with(want), "{input}: {got}");
        }
    }

    #[test]
    fn canonical_properties_round_trip_and_hide_secrets() {
        let p = properties_from_json(json!({
            "containerType": "Shell",
            "scaleConfiguration": {"maxConcurrentSessions": 5, "readySessionInstances": 1},
            "dynamicPoolConfiguration": {"lifecycleConfiguration": {"lifecycleType": "Timed", "cooldownPeriodInSeconds": 60}},
            "resources": {"cpu": 0.5, "memory": "512Mi"},
            "isolation": "runc",
            "secrets": [{"name": "s", "value": "hidden"}],
            "provisioningState": "Succeeded"
        }))
        .unwrap();
        let spec = p.to_spec("calc").unwrap();
        assert_eq!((spec.max_concurrent, spec.ready_instances), (5, 1));
        assert_eq!(spec.cooldown, Duration::from_secs(60));
        assert_eq!(spec.backend.as_deref(), Some("runc"));
        let canonical = PoolProperties::from_spec(&spec);
        let text = serde_json::to_string(&canonical).unwrap();
        assert!(!text.contains("hidden"), "{text}");
        let shown = properties_from_json(serde_json::from_str(&text).unwrap())
            .unwrap()
            .to_spec("calc")
            .unwrap();
        assert!(shown.secrets.is_empty());
        let stored = serde_json::to_string(&PoolProperties::for_store(&spec)).unwrap();
        let again = properties_from_json(serde_json::from_str(&stored).unwrap())
            .unwrap()
            .to_spec("calc")
            .unwrap();
        assert_eq!(again, spec);
    }

    fn custom_pool() -> serde_json::Value {
        json!({
            "containerType": "CustomContainer",
            "secrets": [{"name": "regpass", "value": "s3cret-pw"}, {"name": "token", "value": "tok-value"}],
            "customContainerTemplate": {
                "containers": [{
                    "name": "app",
                    "image": "127.0.0.1:5000/app:1",
                    "command": ["/bin/busybox"],
                    "args": ["httpd", "-f", "-p", "8080"],
                    "env": [{"name": "MODE", "value": "x"}, {"name": "TOKEN", "secretRef": "token"}],
                    "resources": {"cpu": 0.5, "memory": "256Mi"},
                    "probes": [
                        {"type": "Liveness", "httpGet": {"path": "/health", "port": 8080}, "periodSeconds": 2, "failureThreshold": 2},
                        {"type": "Startup", "tcpSocket": {"port": 8080}}
                    ]
                }],
                "ingress": {"targetPort": 8080},
                "registryCredentials": {"server": "127.0.0.1:5000", "username": "u", "passwordSecretRef": "regpass"},
                "insecureRegistry": true
            },
            "dynamicPoolConfiguration": {"lifecycleConfiguration": {"lifecycleType": "OnContainerExit", "maxAlivePeriodInSeconds": 600}}
        })
    }

    #[test]
    fn custom_containers_parse_store_secrets_and_never_return_them() {
        let spec = properties_from_json(custom_pool())
            .unwrap()
            .to_spec("app")
            .unwrap();
        let c = spec.custom.as_ref().unwrap();
        assert_eq!(spec.container_type, ContainerType::CustomContainer);
        assert_eq!((c.target_port, c.lifecycle), (8080, Lifecycle::OnContainerExit));
        assert_eq!(spec.limits.cpu_millis, 500);
        assert_eq!(spec.max_alive, Some(Duration::from_secs(600)));
        assert_eq!(c.liveness_probe.as_ref().unwrap().failure_threshold, 2);
        assert_eq!(c.resolved_env(&spec.secrets).unwrap()[1].1, "tok-value");
        assert!(!format!("{spec:?}").contains("s3cret-pw"));
        let shown = serde_json::to_string(&PoolProperties::from_spec(&spec)).unwrap();
        assert!(
            !shown.contains("s3cret-pw") && !shown.contains("tok-value"),
            "{shown}"
        );
        let stored = serde_json::to_string(&PoolProperties::for_store(&spec)).unwrap();
        assert!(stored.contains("s3cret-pw"));
        let again = properties_from_json(serde_json::from_str(&stored).unwrap())
            .unwrap()
            .to_spec("app")
            .unwrap();
        assert_eq!(again, spec);
    }

    #[test]
    fn custom_container_errors_name_the_field() {
        let cases: [(&str, serde_json::Value, &str); 8] = [
            (
                "/customContainerTemplate/ingress",
                json!({}),
                "properties.customContainerTemplate.ingress.targetPort:",
            ),
            (
                "/customContainerTemplate/containers/0/image",
                json!(""),
                "properties.customContainerTemplate.containers[0].image:",
            ),
            (
                "/customContainerTemplate/containers/0/env/1/secretRef",
                json!("missing"),
                "properties.customContainerTemplate.containers[0].env[1].secretRef:",
            ),
            (
                "/customContainerTemplate/registryCredentials/passwordSecretRef",
                json!("nope"),
                "properties.customContainerTemplate.registryCredentials.passwordSecretRef:",
            ),
            (
                "/customContainerTemplate/containers/0/probes/0/type",
                json!("Readiness"),
                "properties.customContainerTemplate.containers[0].probes[0].type:",
            ),
            (
                "/customContainerTemplate/containers/0/probes/0/periodSeconds",
                json!(0),
                "properties.customContainerTemplate.containers[0].probes[0].periodSeconds:",
            ),
            (
                "/dynamicPoolConfiguration/lifecycleConfiguration/lifecycleType",
                json!("Forever"),
                "properties.dynamicPoolConfiguration.lifecycleConfiguration.lifecycleType:",
            ),
            (
                "/secrets/0/value",
                serde_json::Value::Null,
                "properties.secrets[0].value:",
            ),
        ];
        for (pointer, value, want) in cases {
            let mut v = custom_pool();
            *v.pointer_mut(pointer).unwrap_or_else(|| panic!("{pointer}")) = value;
            let got = err(v);
            assert!(got.starts_with(want), "{pointer}: {got}");
        }
        let mut v = custom_pool();
        v["containerType"] = json!("Shell");
        assert!(err(v).starts_with("properties.customContainerTemplate: only allowed"));
        let mut v = custom_pool();
        v.as_object_mut().unwrap().remove("customContainerTemplate");
        assert!(err(v).starts_with("properties.customContainerTemplate: required"));
    }

    #[test]
    fn toml_uses_the_same_schema() {
        let p: PoolProperties = toml::from_str(
            "containerType = \"PythonLTS\"\nscaleConfiguration = { maxConcurrentSessions = 700 }\n",
        )
        .unwrap();
        assert!(p
            .to_spec("calc")
            .unwrap_err()
            .to_string()
            .starts_with("properties.scaleConfiguration.maxConcurrentSessions"));
    }
}

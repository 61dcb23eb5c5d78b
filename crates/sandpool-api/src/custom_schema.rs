//! `customContainerTemplate` of the ARM pool schema (containers[0] image, command, args,
//! env, resources, probes; ingress; registry credentials), read into the engine's
//! [`CustomContainerSpec`] with errors naming the field, and written back canonically.

use crate::pool_schema::{format_quantity, parse_quantity, SchemaError};
use sandpool_engine::{CustomContainerSpec, EnvSource, Lifecycle, Probe, ProbeCheck, RegistryCredentials};
use sandpool_sandbox::Limits;
use serde::{Deserialize, Serialize};
use std::time::Duration;

const T: &str = "customContainerTemplate";

fn bad<V>(field: &str, message: impl Into<String>) -> Result<V, SchemaError> {
    Err(SchemaError {
        field: format!("properties.{field}"),
        message: message.into(),
    })
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomContainerTemplate {
    #[serde(default)]
    pub containers: Vec<Container>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<Ingress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_credentials: Option<RegistryCredentialsJson>,
    /// sandpool extension: pull over plain HTTP (loopback registries only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure_registry: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Container {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub image: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ContainerResources>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<ProbeJson>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvVar {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerResources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProbeJson {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_get: Option<HttpGet>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_socket: Option<TcpSocket>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_threshold: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpGet {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpSocket {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Ingress {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_port: Option<u16>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegistryCredentialsJson {
    pub server: String,
    pub username: String,
    pub password_secret_ref: String,
}

impl CustomContainerTemplate {
    /// The engine's spec; `limits` takes the container's cpu/memory, `lifecycle` comes
    /// from `dynamicPoolConfiguration.lifecycleConfiguration.lifecycleType`.
    pub fn to_custom(
        &self,
        limits: &mut Limits,
        lifecycle: Lifecycle,
    ) -> Result<CustomContainerSpec, SchemaError> {
        let c = match self.containers.as_slice() {
            [c] => c,
            [] => return bad(&format!("{T}.containers"), "exactly one container is required"),
            _ => {
                return bad(
                    &format!("{T}.containers"),
                    "only one container per session is supported",
                )
            }
        };
        const C: &str = "customContainerTemplate.containers[0]";
        if c.image.trim().is_empty() {
            return bad(&format!("{C}.image"), "is required");
        }
        let target_port = match self.ingress.as_ref().and_then(|i| i.target_port) {
            Some(p) if p > 0 => p,
            _ => return bad(&format!("{T}.ingress.targetPort"), "is required (1-65535)"),
        };
        let mut env = Vec::new();
        for (i, e) in c.env.iter().enumerate() {
            let valid = !e.name.is_empty()
                && !e.name.contains('=')
                && !e.name.contains('\0')
                && !e.name.starts_with("SANDPOOL_");
            if !valid {
                return bad(
                    &format!("{C}.env[{i}].name"),
                    "must be a non-empty name without '=' and not starting with SANDPOOL_",
                );
            }
            let source = match (&e.value, &e.secret_ref) {
                (Some(v), None) => EnvSource::Value(v.clone()),
                (None, Some(s)) => EnvSource::SecretRef(s.clone()),
                (None, None) => EnvSource::Value(String::new()),
                (Some(_), Some(_)) => {
                    return bad(&format!("{C}.env[{i}]"), "set value or secretRef, not both")
                }
            };
            env.push((e.name.clone(), source));
        }
        if let Some(r) = &c.resources {
            if let Some(cpu) = r.cpu {
                if !(cpu.is_finite() && (0.05..=64.0).contains(&cpu)) {
                    return bad(&format!("{C}.resources.cpu"), "must be between 0.05 and 64 cores");
                }
                limits.cpu_millis = (cpu * 1000.0).round() as u32;
            }
            if let Some(m) = &r.memory {
                let bytes = parse_quantity(m).or_else(|e| bad(&format!("{C}.resources.memory"), e))?;
                if bytes < 64 << 20 {
                    return bad(&format!("{C}.resources.memory"), "must be at least 64Mi");
                }
                limits.memory_bytes = bytes;
            }
        }
        let (mut startup, mut liveness) = (None, None);
        for (i, p) in c.probes.iter().enumerate() {
            let field = format!("{C}.probes[{i}]");
            let probe = probe(p, &field, target_port)?;
            let slot = match p.kind.to_ascii_lowercase().as_str() {
                "startup" => &mut startup,
                "liveness" => &mut liveness,
                _ => return bad(&format!("{field}.type"), "must be Liveness or Startup"),
            };
            if slot.is_some() {
                return bad(&format!("{field}.type"), "only one probe of each type");
            }
            *slot = Some(probe);
        }
        let registry = match &self.registry_credentials {
            None => None,
            Some(r) => {
                const R: &str = "customContainerTemplate.registryCredentials";
                for (name, v) in [
                    ("server", &r.server),
                    ("username", &r.username),
                    ("passwordSecretRef", &r.password_secret_ref),
                ] {
                    if v.trim().is_empty() {
                        return bad(&format!("{R}.{name}"), "must not be empty");
                    }
                }
                Some(RegistryCredentials {
                    server: r.server.clone(),
                    username: r.username.clone(),
                    password_secret_ref: r.password_secret_ref.clone(),
                })
            }
        };
        Ok(CustomContainerSpec {
            image: c.image.trim().to_owned(),
            command: c.command.clone(),
            args: c.args.clone(),
            env,
            target_port,
            registry,
            insecure_registry: self.insecure_registry,
            startup_probe: startup,
            liveness_probe: liveness,
            lifecycle,
        })
    }

    /// The canonical template of `spec` (secret values are never part of it).
    pub fn from_custom(spec: &CustomContainerSpec, limits: &Limits) -> CustomContainerTemplate {
        let probes = [
            ("Startup", &spec.startup_probe),
            ("Liveness", &spec.liveness_probe),
        ]
        .into_iter()
        .filter_map(|(kind, p)| p.as_ref().map(|p| probe_json(kind, p)))
        .collect();
        CustomContainerTemplate {
            containers: vec![Container {
                name: None,
                image: spec.image.clone(),
                command: spec.command.clone(),
                args: spec.args.clone(),
                env: spec
                    .env
                    .iter()
                    .map(|(name, source)| EnvVar {
                        name: name.clone(),
                        value: match source {
                            EnvSource::Value(v) => Some(v.clone()),
                            EnvSource::SecretRef(_) => None,
                        },
                        secret_ref: match source {
                            EnvSource::SecretRef(s) => Some(s.clone()),
                            EnvSource::Value(_) => None,
                        },
                    })
                    .collect(),
                resources: Some(ContainerResources {
                    cpu: Some(limits.cpu_millis as f64 / 1000.0),
                    memory: Some(format_quantity(limits.memory_bytes)),
                }),
                probes,
            }],
            ingress: Some(Ingress {
                target_port: Some(spec.target_port),
            }),
            registry_credentials: spec.registry.as_ref().map(|r| RegistryCredentialsJson {
                server: r.server.clone(),
                username: r.username.clone(),
                password_secret_ref: r.password_secret_ref.clone(),
            }),
            insecure_registry: spec.insecure_registry,
        }
    }
}

fn probe(p: &ProbeJson, field: &str, target_port: u16) -> Result<Probe, SchemaError> {
    let check = match (&p.http_get, &p.tcp_socket) {
        (Some(h), None) => {
            let path = h.path.clone().unwrap_or_else(|| "/".into());
            let path_ok = path.starts_with('/') && path.bytes().all(|b| b.is_ascii_graphic());
            if !path_ok {
                return bad(
                    &format!("{field}.httpGet.path"),
                    "must start with / and have no spaces",
                );
            }
            ProbeCheck::HttpGet {
                path,
                port: port(h.port, target_port, &format!("{field}.httpGet.port"))?,
            }
        }
        (None, Some(t)) => ProbeCheck::TcpSocket {
            port: port(t.port, target_port, &format!("{field}.tcpSocket.port"))?,
        },
        _ => return bad(field, "set exactly one of httpGet or tcpSocket"),
    };
    let mut probe = Probe::with_defaults(check);
    let secs = |v: Option<u64>, name: &str, min: u64, default: Duration| -> Result<Duration, SchemaError> {
        match v {
            None => Ok(default),
            Some(s) if (min..=3600).contains(&s) => Ok(Duration::from_secs(s)),
            Some(_) => bad(
                &format!("{field}.{name}"),
                format!("must be between {min} and 3600"),
            ),
        }
    };
    probe.initial_delay = secs(
        p.initial_delay_seconds,
        "initialDelaySeconds",
        0,
        probe.initial_delay,
    )?;
    probe.period = secs(p.period_seconds, "periodSeconds", 1, probe.period)?;
    probe.timeout = secs(p.timeout_seconds, "timeoutSeconds", 1, probe.timeout)?;
    for (name, v, slot) in [
        (
            "failureThreshold",
            p.failure_threshold,
            &mut probe.failure_threshold,
        ),
        (
            "successThreshold",
            p.success_threshold,
            &mut probe.success_threshold,
        ),
    ] {
        match v {
            None => {}
            Some(n) if (1..=100).contains(&n) => *slot = n,
            Some(_) => return bad(&format!("{field}.{name}"), "must be between 1 and 100"),
        }
    }
    Ok(probe)
}

fn port(p: Option<u16>, target_port: u16, field: &str) -> Result<u16, SchemaError> {
    match p {
        None => Ok(target_port),
        Some(0) => bad(field, "must be between 1 and 65535"),
        Some(p) => Ok(p),
    }
}

fn probe_json(kind: &str, p: &Probe) -> ProbeJson {
    let (http_get, tcp_socket) = match &p.check {
        ProbeCheck::HttpGet { path, port } => (
            Some(HttpGet {
                path: Some(path.clone()),
                port: Some(*port),
            }),
            None,
        ),
        ProbeCheck::TcpSocket { port } => (None, Some(TcpSocket { port: Some(*port) })),
    };
    ProbeJson {
        kind: kind.into(),
        http_get,
        tcp_socket,
        initial_delay_seconds: Some(p.initial_delay.as_secs()),
        period_seconds: Some(p.period.as_secs()),
        timeout_seconds: Some(p.timeout.as_secs()),
        failure_threshold: Some(p.failure_threshold),
        success_threshold: Some(p.success_threshold),
    }
}

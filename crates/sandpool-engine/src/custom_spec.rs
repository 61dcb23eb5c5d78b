//! The declared shape of a custom-container pool: image, overrides, target port,
//! registry credentials, probes and lifecycle; and secret values that never print.

use crate::service::EngineError;
use std::time::Duration;

/// A secret value (pool secret, registry password): compared and cloned like a string,
/// but `Debug` never shows it, so it cannot reach a log line by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    pub fn new(value: impl Into<String>) -> Self {
        SecretValue(value.into())
    }
    /// The value itself; only for handing it to where it is used.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A named pool secret (`properties.secrets[]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSecret {
    pub name: String,
    pub value: SecretValue,
}

/// Where an environment variable's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvSource {
    Value(String),
    /// The value of the pool secret of this name.
    SecretRef(String),
}

/// How the registry is reached: credentials for `server`, plain HTTP for loopback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryCredentials {
    pub server: String,
    pub username: String,
    /// Name of the pool secret holding the password.
    pub password_secret_ref: String,
}

/// What a probe checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeCheck {
    /// `GET path` on `port` answers 200–399.
    HttpGet { path: String, port: u16 },
    /// `port` accepts a connection.
    TcpSocket { port: u16 },
}

/// A Kubernetes-style probe, run through the agent channel (no host network).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub check: ProbeCheck,
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    /// Consecutive failures that make the probe fail.
    pub failure_threshold: u32,
    /// Consecutive successes that make it pass.
    pub success_threshold: u32,
}

impl Probe {
    /// Kubernetes' defaults for a check.
    pub fn with_defaults(check: ProbeCheck) -> Probe {
        Probe {
            check,
            initial_delay: Duration::ZERO,
            period: Duration::from_secs(10),
            timeout: Duration::from_secs(1),
            failure_threshold: 3,
            success_threshold: 1,
        }
    }
}

/// When a custom container's session ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// After the cooldown with no request.
    Timed,
    /// When the container's process exits (or after `maxAlivePeriodInSeconds`).
    OnContainerExit,
}

/// `customContainerTemplate` and friends, as the engine uses them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomContainerSpec {
    /// Image reference, e.g. `127.0.0.1:5000/app:1` or `docker.io/library/nginx:1`.
    pub image: String,
    /// Replaces the image's entrypoint when not empty.
    pub command: Vec<String>,
    /// Replaces the image's cmd when not empty (or when `command` is set).
    pub args: Vec<String>,
    pub env: Vec<(String, EnvSource)>,
    /// The port the container listens on (`ingress.targetPort`).
    pub target_port: u16,
    pub registry: Option<RegistryCredentials>,
    /// Plain HTTP to the registry (sandpool extension; loopback registries only).
    pub insecure_registry: bool,
    pub startup_probe: Option<Probe>,
    pub liveness_probe: Option<Probe>,
    pub lifecycle: Lifecycle,
}

impl CustomContainerSpec {
    /// The environment with secret references resolved against `secrets`.
    pub fn resolved_env(&self, secrets: &[PoolSecret]) -> Result<Vec<(String, String)>, EngineError> {
        self.env
            .iter()
            .enumerate()
            .map(|(i, (name, source))| match source {
                EnvSource::Value(v) => Ok((name.clone(), v.clone())),
                EnvSource::SecretRef(s) => find_secret(secrets, s)
                    .map(|v| (name.clone(), v.expose().to_owned()))
                    .ok_or_else(|| {
                        EngineError::InvalidInput(format!(
                            "customContainerTemplate.containers[0].env[{i}].secretRef: no pool secret named {s:?}"
                        ))
                    }),
            })
            .collect()
    }

    /// Checks what the schema cannot, naming the field.
    pub fn validate(&self, secrets: &[PoolSecret]) -> Result<(), EngineError> {
        let bad = |field: &str, why: &str| Err(EngineError::InvalidInput(format!("{field}: {why}")));
        if self.image.trim().is_empty() {
            return bad("customContainerTemplate.containers[0].image", "must not be empty");
        }
        if self.target_port == 0 {
            return bad("ingress.targetPort", "must be between 1 and 65535");
        }
        self.resolved_env(secrets)?;
        if let Some(r) = &self.registry {
            if find_secret(secrets, &r.password_secret_ref).is_none() {
                return bad(
                    "customContainerTemplate.registryCredentials.passwordSecretRef",
                    "no pool secret of that name",
                );
            }
        }
        for (field, probe) in [
            ("Startup", &self.startup_probe),
            ("Liveness", &self.liveness_probe),
        ] {
            if let Some(p) = probe {
                if p.failure_threshold == 0
                    || p.success_threshold == 0
                    || p.period.is_zero()
                    || p.timeout.is_zero()
                {
                    return bad(
                        &format!("customContainerTemplate.containers[0].probes[{field}]"),
                        "periodSeconds, timeoutSeconds and thresholds must be at least 1",
                    );
                }
            }
        }
        Ok(())
    }
}

pub(crate) fn find_secret<'a>(secrets: &'a [PoolSecret], name: &str) -> Option<&'a SecretValue> {
    secrets.iter().find(|s| s.name == name).map(|s| &s.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print_and_refs_resolve() {
        let secrets = vec![PoolSecret {
            name: "pw".into(),
            value: SecretValue::new("hunter2"),
        }];
        assert!(!format!("{secrets:?}").contains("hunter2"));
        let spec = CustomContainerSpec {
            image: "127.0.0.1:5000/app:1".into(),
            command: vec![],
            args: vec![],
            env: vec![
                ("A".into(), EnvSource::Value("1".into())),
                ("B".into(), EnvSource::SecretRef("pw".into())),
            ],
            target_port: 8080,
            registry: None,
            insecure_registry: true,
            startup_probe: None,
            liveness_probe: None,
            lifecycle: Lifecycle::Timed,
        };
        assert_eq!(
            spec.resolved_env(&secrets).unwrap(),
            vec![("A".into(), "1".into()), ("B".into(), "hunter2".into())]
        );
        let err = spec.resolved_env(&[]).unwrap_err().to_string();
        assert!(err.contains("env[1].secretRef"), "{err}");
    }
}

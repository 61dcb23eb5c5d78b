//! The declared shape of a pool: what it runs, how many sandboxes, how long sessions live.

use crate::custom_spec::{CustomContainerSpec, PoolSecret};
use crate::service::{ContainerType, EngineError};
use sandpool_sandbox::{Limits, NetworkPolicy};
use std::time::Duration;

/// Everything the engine needs to run one pool.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolSpec {
    /// 3–63 characters, lowercase letters and digits, starting with a letter (Azure's rule).
    pub name: String,
    pub container_type: ContainerType,
    /// Sandboxes kept started but unallocated (`readySessionInstances`).
    pub ready_instances: u32,
    /// Most sessions allocated at once (`maxConcurrentSessions`).
    pub max_concurrent: u32,
    /// Idle time after the last request before a session is deleted (`cooldownPeriodInSeconds`).
    pub cooldown: Duration,
    /// Sessions end (`max-alive`) this long after they started, busy or not.
    pub max_alive: Option<Duration>,
    pub limits: Limits,
    pub network: NetworkPolicy,
    /// Largest accepted upload.
    pub max_upload_bytes: u64,
    /// Longest execution timeout a request may ask for (Azure: 220 s).
    pub max_execution_timeout: Duration,
    /// How long a request for a new identifier waits when no sandbox is ready (and, with
    /// `wait_for_capacity`, for a session to end).
    pub allocation_timeout: Duration,
    /// At `max_concurrent`, queue a new identifier's request (bounded by
    /// `allocation_timeout`) instead of refusing it at once as Azure does.
    pub wait_for_capacity: bool,
    /// Isolation backend by name (`gvisor`, `runc`); `None` is the engine's default.
    pub backend: Option<String>,
    /// Pool secrets (write-only over the API; kept in the store for restarts).
    pub secrets: Vec<PoolSecret>,
    /// Set exactly for `CustomContainer` pools.
    pub custom: Option<CustomContainerSpec>,
}

impl PoolSpec {
    /// The embedded defaults for a pool of `container_type` named `name`.
    pub fn with_defaults(name: &str, container_type: ContainerType) -> Self {
        PoolSpec {
            name: name.to_owned(),
            container_type,
            ready_instances: 2,
            max_concurrent: 50,
            cooldown: Duration::from_secs(300),
            max_alive: None,
            limits: Limits::default(),
            network: NetworkPolicy::Disabled,
            max_upload_bytes: 128 << 20,
            max_execution_timeout: Duration::from_secs(220),
            allocation_timeout: Duration::from_secs(60),
            wait_for_capacity: false,
            backend: None,
            secrets: Vec::new(),
            custom: None,
        }
    }

    /// True when sandboxes made for `self` and for `other` differ (image, limits,
    /// network, backend), so ready sandboxes must be replaced.
    pub fn template_differs(&self, other: &PoolSpec) -> bool {
        self.container_type != other.container_type
            || self.limits != other.limits
            || self.network != other.network
            || self.backend != other.backend
            || self.custom != other.custom
            || (self.custom.is_some() && self.secrets != other.secrets)
    }

    /// Checks the spec, naming the offending field.
    pub fn validate(&self) -> Result<(), EngineError> {
        if let NetworkPolicy::Enabled(egress) = &self.network {
            sandpool_net::EgressRules::parse(egress)
                .map_err(|e| EngineError::InvalidInput(format!("sessionNetworkConfiguration: {e}")))?;
        }
        let bad = |field: &str, why: &str| Err(EngineError::InvalidInput(format!("{field}: {why}")));
        let name_ok = (3..=63).contains(&self.name.len())
            && self.name.starts_with(|c: char| c.is_ascii_lowercase())
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !name_ok {
            return bad(
                "name",
                "must be 3-63 lowercase letters or digits, starting with a letter",
            );
        }
        if self.max_concurrent == 0 {
            return bad("scaleConfiguration.maxConcurrentSessions", "must be at least 1");
        }
        if self.ready_instances > 1000 {
            return bad("scaleConfiguration.readySessionInstances", "must be at most 1000");
        }
        if self.cooldown.is_zero() {
            return bad(
                "dynamicPoolConfiguration.lifecycleConfiguration.cooldownPeriodInSeconds",
                "must be at least 1",
            );
        }
        if self.ready_instances > self.max_concurrent {
            return bad(
                "scaleConfiguration.readySessionInstances",
                "must be at most maxConcurrentSessions",
            );
        }
        if self.limits.memory_bytes < 64 << 20 {
            return bad("resources.memory", "must be at least 64 MiB");
        }
        if self.limits.cpu_millis < 50 {
            return bad("resources.cpu", "must be at least 0.05 cores");
        }
        match (&self.custom, self.container_type) {
            (Some(c), ContainerType::CustomContainer) => c.validate(&self.secrets)?,
            (None, ContainerType::CustomContainer) => {
                return bad(
                    "customContainerTemplate",
                    "required for containerType CustomContainer",
                )
            }
            (Some(_), _) => {
                return bad(
                    "customContainerTemplate",
                    "only allowed with containerType CustomContainer",
                )
            }
            (None, _) => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_names_are_checked() {
        assert!(PoolSpec::with_defaults("python", ContainerType::PythonLts)
            .validate()
            .is_ok());
        for bad in ["py", "Python", "1abc", "a-b-c", "ab_c"] {
            let err = PoolSpec::with_defaults(bad, ContainerType::Shell)
                .validate()
                .unwrap_err();
            assert!(err.to_string().starts_with("name:"), "{bad}: {err}");
        }
    }

    #[test]
    fn zero_capacity_names_the_field() {
        let mut s = PoolSpec::with_defaults("python", ContainerType::PythonLts);
        s.max_concurrent = 0;
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("maxConcurrentSessions"));
    }
}

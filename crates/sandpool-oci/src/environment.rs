//! The environment every sandbox's agent starts with (the shared convention), plus the
//! spec's extra variables; for custom images, the image's environment with the pool's
//! overrides and sandpool's own `SANDPOOL_*` variables.

use crate::OciError;
use sandpool_sandbox::{SandboxSpec, Workload, AGENT_MOUNT_POINT, DATA_DIR};

/// `PATH` of a custom workload whose image sets none (Docker's default).
pub const DEFAULT_IMAGE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `KEY=value` strings for a custom sandbox's agent and, minus `SANDPOOL_*`, its
/// workload: the image's variables, replaced or extended by the spec's, `PATH` and
/// `HOME` defaulted, then `SANDPOOL_KIND`, `SANDPOOL_DATA_DIR` and
/// `SANDPOOL_WORKLOAD_CWD`. Neither the image nor the pool may set `SANDPOOL_*`.
pub fn custom_env(spec: &SandboxSpec, workload: &Workload, home: &str) -> Result<Vec<String>, OciError> {
    let mut vars: Vec<(String, String)> = Vec::new();
    for (key, value) in workload.env.iter().chain(&spec.env) {
        let valid_key = !key.is_empty() && !key.contains(['=', '\0']);
        if !valid_key {
            return Err(OciError::InvalidSpec(format!(
                "bad environment variable name {key:?}"
            )));
        }
        if value.contains('\0') {
            return Err(OciError::InvalidSpec(format!(
                "environment variable {key} contains NUL"
            )));
        }
        if key.starts_with("SANDPOOL_") {
            return Err(OciError::InvalidSpec(format!(
                "environment variable {key} is reserved for sandpool"
            )));
        }
        match vars.iter_mut().find(|(k, _)| k == key) {
            Some(existing) => existing.1 = value.clone(),
            None => vars.push((key.clone(), value.clone())),
        }
    }
    for (key, default) in [("PATH", DEFAULT_IMAGE_PATH), ("HOME", home)] {
        if !vars.iter().any(|(k, _)| k == key) {
            vars.push((key.to_string(), default.to_string()));
        }
    }
    let cwd = workload.cwd.as_deref().unwrap_or("/");
    if !cwd.starts_with('/') || cwd.contains('\0') {
        return Err(OciError::InvalidSpec(format!(
            "the workload's working directory {cwd:?} is not an absolute path"
        )));
    }
    vars.extend([
        ("SANDPOOL_KIND".to_string(), spec.kind.as_str().to_string()),
        ("SANDPOOL_DATA_DIR".to_string(), DATA_DIR.to_string()),
        ("SANDPOOL_WORKLOAD_CWD".to_string(), cwd.to_string()),
    ]);
    Ok(vars.into_iter().map(|(k, v)| format!("{k}={v}")).collect())
}

/// `KEY=value` strings for the sandbox process. Extra variables from the spec come
/// last and may not redefine the fixed ones.
pub fn sandbox_env(spec: &SandboxSpec) -> Result<Vec<String>, OciError> {
    let fixed: Vec<(&str, String)> = vec![
        ("SANDPOOL_KIND", spec.kind.as_str().to_string()),
        ("SANDPOOL_DATA_DIR", DATA_DIR.to_string()),
        ("SANDPOOL_PYTHON", "/opt/venv/bin/python3".to_string()),
        (
            "SANDPOOL_DRIVER",
            format!("{AGENT_MOUNT_POINT}/sandpool_driver.py"),
        ),
        ("PATH", "/opt/venv/bin:/usr/local/bin:/usr/bin:/bin".to_string()),
        ("HOME", "/tmp".to_string()),
        ("MPLCONFIGDIR", "/tmp/.matplotlib".to_string()),
        ("IPYTHONDIR", "/tmp/.ipython".to_string()),
        ("LANG", "C.UTF-8".to_string()),
    ];
    let mut env: Vec<String> = fixed.iter().map(|(k, v)| format!("{k}={v}")).collect();
    for (key, value) in &spec.env {
        let valid_key = !key.is_empty()
            && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && !key.as_bytes()[0].is_ascii_digit();
        if !valid_key {
            return Err(OciError::InvalidSpec(format!(
                "bad environment variable name {key:?}"
            )));
        }
        if value.contains('\0') {
            return Err(OciError::InvalidSpec(format!(
                "environment variable {key} contains NUL"
            )));
        }
        if fixed.iter().any(|(k, _)| k == key) {
            return Err(OciError::InvalidSpec(format!(
                "environment variable {key} is set by sandpool"
            )));
        }
        env.push(format!("{key}={value}"));
    }
    Ok(env)
}

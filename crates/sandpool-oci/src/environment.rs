//! The environment every sandbox's agent starts with (the shared convention), plus the
//! spec's extra variables.

use crate::OciError;
use sandpool_sandbox::{SandboxSpec, AGENT_MOUNT_POINT, DATA_DIR};

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

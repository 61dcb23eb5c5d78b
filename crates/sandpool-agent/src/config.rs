//! The agent's settings, read from the environment the backend gives every sandbox.

use crate::AgentError;
use std::path::PathBuf;

/// What the sandbox runs: Python sandboxes host the IPython driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Python,
    Shell,
}

/// Everything the agent needs to know about its sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub kind: Kind,
    /// `SANDPOOL_DATA_DIR` (default `/mnt/data`): the only directory file operations reach.
    pub data_dir: PathBuf,
    /// `SANDPOOL_PYTHON` (default `/opt/venv/bin/python3`).
    pub python: PathBuf,
    /// `SANDPOOL_DRIVER` (default `/opt/sandpool/sandpool_driver.py`).
    pub driver: PathBuf,
}

impl Config {
    /// Reads `SANDPOOL_KIND` (required: `python` or `shell`) and the paths above.
    pub fn from_env() -> Result<Config, AgentError> {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let kind = match std::env::var("SANDPOOL_KIND").as_deref() {
            Ok("python") => Kind::Python,
            Ok("shell") => Kind::Shell,
            Ok(other) => {
                return Err(AgentError::Config(format!(
                    "SANDPOOL_KIND is {other:?}; expected python or shell"
                )))
            }
            Err(_) => {
                return Err(AgentError::Config(
                    "SANDPOOL_KIND is not set (python or shell)".into(),
                ))
            }
        };
        Ok(Config {
            kind,
            data_dir: var("SANDPOOL_DATA_DIR").map_or_else(|| "/mnt/data".into(), PathBuf::from),
            python: var("SANDPOOL_PYTHON").map_or_else(|| "/opt/venv/bin/python3".into(), PathBuf::from),
            driver: var("SANDPOOL_DRIVER")
                .map_or_else(|| "/opt/sandpool/sandpool_driver.py".into(), PathBuf::from),
        })
    }
}

//! The agent's settings, read from the environment the backend gives every sandbox and,
//! for custom sandboxes, the workload's argv after `--` on the agent's command line.

use crate::AgentError;
use std::ffi::OsString;
use std::path::PathBuf;

/// What the sandbox runs: Python sandboxes host the IPython driver, custom ones a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Python,
    Shell,
    Custom,
}

/// The program a custom sandbox runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadCommand {
    /// argv (not empty); `argv[0]` is looked up in the workload's `PATH` when relative.
    pub argv: Vec<OsString>,
    /// `SANDPOOL_WORKLOAD_CWD` (default `/`).
    pub cwd: PathBuf,
    /// The agent's environment without sandpool's own `SANDPOOL_*` variables.
    pub env: Vec<(OsString, OsString)>,
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
    /// The workload of a custom sandbox (`SANDPOOL_KIND=custom`), else `None`.
    pub workload: Option<WorkloadCommand>,
}

impl Config {
    /// Reads `SANDPOOL_KIND` (required: `python` or `shell`) and the paths above.
    pub fn from_env() -> Result<Config, AgentError> {
        Config::from_env_and_args(std::iter::empty())
    }

    /// Like [`Config::from_env`], also accepting `SANDPOOL_KIND=custom`, whose workload
    /// argv is everything after a `--` in `args` (the agent's arguments, without `argv[0]`).
    pub fn from_env_and_args(args: impl IntoIterator<Item = OsString>) -> Result<Config, AgentError> {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let kind = match std::env::var("SANDPOOL_KIND").as_deref() {
            Ok("python") => Kind::Python,
            Ok("shell") => Kind::Shell,
            Ok("custom") => Kind::Custom,
            Ok(other) => {
                return Err(AgentError::Config(format!(
                    "SANDPOOL_KIND is {other:?}; expected python, shell or custom"
                )))
            }
            Err(_) => {
                return Err(AgentError::Config(
                    "SANDPOOL_KIND is not set (python, shell or custom)".into(),
                ))
            }
        };
        let workload = match kind {
            Kind::Custom => Some(WorkloadCommand {
                argv: workload_argv(args)?,
                cwd: var("SANDPOOL_WORKLOAD_CWD").map_or_else(|| "/".into(), PathBuf::from),
                env: std::env::vars_os()
                    .filter(|(k, _)| !k.to_string_lossy().starts_with("SANDPOOL_"))
                    .collect(),
            }),
            Kind::Python | Kind::Shell => None,
        };
        Ok(Config {
            kind,
            data_dir: var("SANDPOOL_DATA_DIR").map_or_else(|| "/mnt/data".into(), PathBuf::from),
            python: var("SANDPOOL_PYTHON").map_or_else(|| "/opt/venv/bin/python3".into(), PathBuf::from),
            driver: var("SANDPOOL_DRIVER")
                .map_or_else(|| "/opt/sandpool/sandpool_driver.py".into(), PathBuf::from),
            workload,
        })
    }
}

/// The arguments after the first `--`; at least one is required.
fn workload_argv(args: impl IntoIterator<Item = OsString>) -> Result<Vec<OsString>, AgentError> {
    let argv: Vec<OsString> = args.into_iter().skip_while(|a| a != "--").skip(1).collect();
    if argv.is_empty() || argv[0].is_empty() {
        return Err(AgentError::Config(
            "SANDPOOL_KIND is custom but no workload follows `--` on the command line".into(),
        ));
    }
    Ok(argv)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn workload_is_everything_after_the_first_double_dash() {
        assert_eq!(
            workload_argv(os(&["--", "python3", "-m", "--", "x"])).unwrap(),
            os(&["python3", "-m", "--", "x"])
        );
        assert!(workload_argv(os(&["python3"])).is_err());
        assert!(workload_argv(os(&["--"])).is_err());
        assert!(workload_argv(os(&["--", ""])).is_err());
    }
}

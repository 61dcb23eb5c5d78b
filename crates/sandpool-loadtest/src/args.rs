//! Command-line options of `service-bench`, parsed without a framework.

use crate::error::BenchError;
use std::path::PathBuf;
use std::time::Duration;

pub const USAGE: &str = "service-bench [--sandpool PATH] [--new-sessions N] [--repeats M] \
[--clients C] [--duration SECS] [--ready R] [--skip-direct] [--keep-data]";

/// What to run and how much of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Args {
    /// The `sandpool` binary; default `target/release/sandpool`.
    pub sandpool: PathBuf,
    /// Samples of "new identifier → first result" on a warm pool.
    pub new_sessions: usize,
    /// Sequential executions in one session (after 20 warm-up calls).
    pub repeats: usize,
    /// Concurrent clients, one identifier and one keep-alive connection each.
    pub clients: usize,
    /// How long each concurrent phase keeps executing.
    pub duration: Duration,
    /// `readySessionInstances` of the warm pool.
    pub ready: u32,
    /// Skip the direct agent round trips interleaved with phase 2.
    pub skip_direct: bool,
    /// Keep the server's data dir (and its log) after a clean run.
    pub keep_data: bool,
}

impl Args {
    pub fn defaults(workspace_root: &std::path::Path) -> Self {
        Args {
            sandpool: workspace_root.join("target/release/sandpool"),
            new_sessions: 30,
            repeats: 500,
            clients: 64,
            duration: Duration::from_secs(20),
            ready: 8,
            skip_direct: false,
            keep_data: false,
        }
    }

    /// Parses `argv` (without the program name) over `defaults`. `Ok(None)` means help was asked.
    pub fn parse(defaults: Args, argv: impl IntoIterator<Item = String>) -> Result<Option<Args>, BenchError> {
        let mut args = defaults;
        let mut it = argv.into_iter();
        while let Some(flag) = it.next() {
            let mut value = || {
                it.next()
                    .ok_or_else(|| BenchError::Args(format!("{flag} needs a value")))
            };
            let number = |v: String| {
                v.parse::<usize>()
                    .map_err(|_| BenchError::Args(format!("{flag}: {v:?} is not a count")))
            };
            match flag.as_str() {
                "--sandpool" => args.sandpool = PathBuf::from(value()?),
                "--new-sessions" => args.new_sessions = number(value()?)?,
                "--repeats" => args.repeats = number(value()?)?,
                "--clients" => args.clients = number(value()?)?,
                "--duration" => args.duration = Duration::from_secs(number(value()?)? as u64),
                "--ready" => {
                    args.ready = u32::try_from(number(value()?)?)
                        .map_err(|_| BenchError::Args("--ready is too large".into()))?
                }
                "--skip-direct" => args.skip_direct = true,
                "--keep-data" => args.keep_data = true,
                "-h" | "--help" => return Ok(None),
                other => return Err(BenchError::Args(format!("unknown argument {other:?}; {USAGE}"))),
            }
        }
        let positive = [
            ("--new-sessions", args.new_sessions),
            ("--repeats", args.repeats),
            ("--clients", args.clients),
            ("--duration", args.duration.as_secs() as usize),
            ("--ready", args.ready as usize),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(BenchError::Args(format!("{name} must be positive")));
        }
        if args.clients > 1000 || args.ready as usize > args.clients {
            return Err(BenchError::Args(
                "--clients must be at most 1000 and --ready at most --clients".into(),
            ));
        }
        Ok(Some(args))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(argv: &[&str]) -> Result<Option<Args>, BenchError> {
        Args::parse(
            Args::defaults(std::path::Path::new("/w")),
            argv.iter().map(|s| s.to_string()),
        )
    }

    #[test]
    fn defaults_match_the_issue() {
        let a = parse(&[]).unwrap().unwrap();
        assert_eq!(a.clients, 64);
        assert_eq!(a.ready, 8);
        assert_eq!(a.sandpool, PathBuf::from("/w/target/release/sandpool"));
    }

    #[test]
    fn flags_override_defaults() {
        let a = parse(&[
            "--clients",
            "16",
            "--ready",
            "4",
            "--duration",
            "5",
            "--skip-direct",
        ])
        .unwrap()
        .unwrap();
        assert_eq!((a.clients, a.ready), (16, 4));
        assert_eq!(a.duration, Duration::from_secs(5));
        assert!(a.skip_direct);
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(parse(&["--clients"]).is_err());
        assert!(parse(&["--clients", "x"]).is_err());
        assert!(parse(&["--repeats", "0"]).is_err());
        assert!(parse(&["--ready", "9", "--clients", "8"]).is_err());
        assert!(parse(&["--frobnicate"]).is_err());
        assert!(parse(&["--help"]).unwrap().is_none());
    }
}

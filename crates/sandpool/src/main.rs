//! The `sandpool` binary: the service (`sandpool serve`), image commands, the client
//! commands over the HTTP API (`pool`, `session`, `exec`, `files`, `key`), and — when run
//! as `sandpool-agent` inside a sandbox, or as `sandpool agent` — the in-sandbox agent.

mod cli;
mod client;
mod config;
mod keys;
mod remote;
mod serve;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let argv0 = std::env::args_os().next().unwrap_or_default();
    let invoked_as_agent = std::path::Path::new(&argv0)
        .file_name()
        .is_some_and(|n| n == "sandpool-agent");
    if invoked_as_agent || std::env::args().nth(1).as_deref() == Some("agent") {
        return match sandpool_agent::run() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("sandpool-agent: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sandpool: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sandpool: {e:#}");
            match e.downcast_ref::<client::CliError>() {
                Some(c) => ExitCode::from(c.code),
                None => ExitCode::FAILURE,
            }
        }
    }
}

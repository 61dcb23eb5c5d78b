//! Command-line arguments and the dispatch of subcommands.

use crate::remote::{self, ExecArgs, FilesCommand, KeyCommand, PoolCommand, Remote, SessionCommand};
use clap::{Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "sandpool",
    version,
    about = "Pools of pre-warmed, isolated sandboxes behind the Azure dynamic-sessions API"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub remote: Remote,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "SANDPOOL_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Where images, templates, sandboxes and the database live.
    #[arg(long, env = "SANDPOOL_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// TOML file declaring server settings, pools and API keys.
    #[arg(long, env = "SANDPOOL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Default isolation backend for pools that do not name one.
    #[arg(long)]
    pub backend: Option<String>,
    /// gVisor platform (systrap, kvm, ptrace); probed when not given.
    #[arg(long)]
    pub platform: Option<String>,
    /// The runsc binary.
    #[arg(long, default_value = "runsc")]
    pub runsc: PathBuf,
    /// The runc binary.
    #[arg(long, default_value = "runc")]
    pub runc: PathBuf,
    /// End every session at shutdown instead of only stopping.
    #[arg(long)]
    pub shutdown_sessions: bool,
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service.
    Serve(ServeArgs),
    /// Build or list sandbox images.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Print the SHA-256 of an API key, for the `keys` section of the config file.
    HashKey {
        /// The key; read from standard input when absent.
        key: Option<String>,
    },
    /// Manage session pools on a server (admin key).
    #[command(subcommand)]
    Pool(PoolCommand),
    /// List or stop sessions (admin key).
    #[command(subcommand)]
    Session(SessionCommand),
    /// Run code in a session; prints stdout, stderr and the result, saves images.
    Exec(ExecArgs),
    /// Upload, list and download a session's files.
    #[command(subcommand)]
    Files(FilesCommand),
    /// Create, list and revoke API keys (admin key).
    #[command(subcommand)]
    Key(KeyCommand),
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Build an image (python or shell) if its recipe changed.
    Build {
        name: String,
        #[arg(long, env = "SANDPOOL_DATA_DIR", default_value = ".sandpool")]
        data_dir: PathBuf,
    },
    /// List built images.
    List {
        #[arg(long, env = "SANDPOOL_DATA_DIR", default_value = ".sandpool")]
        data_dir: PathBuf,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let r = &cli.remote;
    match cli.command {
        Command::Pool(cmd) => Ok(remote::pool(r, cmd)?),
        Command::Session(cmd) => Ok(remote::session(r, cmd)?),
        Command::Exec(args) => Ok(remote::exec(r, args)?),
        Command::Files(cmd) => Ok(remote::files(r, cmd)?),
        Command::Key(cmd) => Ok(remote::key(r, cmd)?),
        Command::Serve(args) => crate::serve::serve(args).await,
        Command::Image(cmd) => image(cmd).await,
        Command::HashKey { key } => {
            let key = match key {
                Some(k) => k,
                None => {
                    let mut s = String::new();
                    std::io::stdin().read_line(&mut s)?;
                    s.trim().to_owned()
                }
            };
            println!("{}", crate::keys::hash_hex(&key));
            Ok(())
        }
    }
}

async fn image(cmd: ImageCommand) -> anyhow::Result<()> {
    use sandpool_image::{recipes, ImageStore};
    match cmd {
        ImageCommand::Build { name, data_dir } => {
            let recipe = match name.as_str() {
                "python" => recipes::python(),
                "shell" => recipes::shell(),
                other => anyhow::bail!("unknown image {other:?}: use python or shell"),
            };
            let image = tokio::task::spawn_blocking(move || {
                ImageStore::new(&data_dir).ensure(&recipe, &mut |line: &str| eprintln!("[{name}] {line}"))
            })
            .await??;
            println!(
                "{}\t{}\t{}",
                image.name,
                &image.digest[..12],
                image.rootfs.display()
            );
        }
        ImageCommand::List { data_dir } => {
            for image in ImageStore::new(&data_dir).list()? {
                println!(
                    "{}\t{}\t{} packages\t{}",
                    image.name,
                    &image.digest[..12],
                    image.manifest.len(),
                    image.dir.display()
                );
            }
        }
    }
    Ok(())
}

//! `sandpool serve`: wires the store, the isolation backends, the engine and the HTTP
//! API together, prints the pool URLs, and shuts down gracefully on SIGTERM/SIGINT.

use crate::cli::{LogFormat, ServeArgs};
use crate::config::{default_pools, ConfigFile};
use crate::keys;
use anyhow::{bail, Context};
use sandpool_api::{ApiState, Authenticator, Caller, JsonPoolCodec, Role};
use sandpool_engine::{AdminService, EndReason, Engine, EngineConfig, SystemClock};
use sandpool_sandbox::Backend;
use sandpool_store::Store;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// How long in-flight requests may run after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SANDPOOL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    init_logging(args.log_format);
    let file = match &args.config {
        Some(path) => ConfigFile::load(path)?,
        None => ConfigFile::default(),
    };
    let listen: SocketAddr = match (args.listen, &file.server.listen) {
        (Some(a), _) => a,
        (None, Some(s)) => s
            .parse()
            .with_context(|| format!("server.listen: {s:?} is not an address"))?,
        (None, None) => DEFAULT_LISTEN.parse()?,
    };
    let data_dir = args
        .data_dir
        .clone()
        .or(file.server.data_dir.clone())
        .unwrap_or_else(|| PathBuf::from(".sandpool"));
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating data dir {}", data_dir.display()))?;
    let data_dir = data_dir.canonicalize()?;

    let pools = file
        .pools
        .iter()
        .map(|p| p.to_spec())
        .collect::<anyhow::Result<Vec<_>>>()?;

    let mut auth = Authenticator::new();
    let mut have_key = false;
    if let Ok(key) = std::env::var("SANDPOOL_API_KEY") {
        if key.len() < 16 {
            bail!("SANDPOOL_API_KEY must be at least 16 characters");
        }
        auth.add_named_key_hash(Authenticator::hash_key(&key), "env", Role::Admin);
        have_key = true;
    }
    for k in &file.keys {
        let role = match k.role.to_ascii_lowercase().as_str() {
            "admin" => Role::Admin,
            "executor" => Role::Executor,
            "metrics" => Role::Metrics,
            other => bail!(
                "keys.{}: role {other:?} is not admin, executor or metrics",
                k.name
            ),
        };
        let hash = Authenticator::parse_key_hash(&k.sha256)
            .with_context(|| format!("keys.{}: sha256 must be 64 hex digits", k.name))?;
        auth.add_named_key_hash(hash, &k.name, role);
        have_key = true;
    }
    if !have_key {
        let (path, key) = keys::ensure_generated_admin_key(&data_dir)?;
        auth.add_key(&key, Role::Admin);
        eprintln!(
            "sandpool: no API key configured; generated an admin key in {}",
            path.display()
        );
    }

    let store = Arc::new(Store::open(&data_dir.join("sandpool.db")).context("opening the database")?);
    // Config-file pools are upserted over the stored ones; the defaults only serve a
    // server that has neither.
    let pools = if pools.is_empty() && store.list_pools().context("reading pools")?.is_empty() {
        default_pools()
    } else {
        pools
    };
    let network = start_network(&file, &data_dir).await?;
    let backends = make_backends(&args, &file, &data_dir, network.clone()).await?;
    let engine = Engine::start(
        EngineConfig {
            data_dir: data_dir.clone(),
            agent_exe: std::env::current_exe().context("locating the sandpool executable")?,
            backends,
            store,
            clock: Arc::new(SystemClock),
            codec: Arc::new(JsonPoolCodec),
            network: network.clone(),
        },
        pools,
    )
    .await
    .context("starting pools")?;

    let lookup_engine = engine.clone();
    auth.set_lookup(Arc::new(move |key: &str| {
        let info = match lookup_engine.lookup_api_key(key) {
            Ok(info) => info?,
            Err(e) => {
                tracing::error!(error = %e, "API key lookup failed");
                return None;
            }
        };
        Some(Caller {
            role: Role::parse(&info.role)?,
            id: info.id,
            name: info.name,
        })
    }));
    let app = sandpool_api::router(ApiState::new(engine.clone(), auth).with_admin(engine.clone()));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let addr = listener.local_addr()?;
    for name in engine.pool_names() {
        println!("pool {name}: http://{addr}/pools/{name}");
    }
    println!("sandpool ready on http://{addr}");

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // No Nagle delay: proxied responses are written as headers, then body chunks.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
    });
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: no new connections, finishing requests in flight");
        let _ = stop_tx.send(true);
    });
    let mut drain_rx = stop_rx.clone();
    tokio::select! {
        r = server => r.context("HTTP server")?,
        _ = async move {
            let _ = drain_rx.wait_for(|s| *s).await;
            tokio::time::sleep(DRAIN_TIMEOUT).await;
        } => tracing::warn!("requests still running after {DRAIN_TIMEOUT:?}; stopping anyway"),
    }
    let reason = if args.shutdown_sessions {
        EndReason::Stopped
    } else {
        EndReason::ServerRestart
    };
    engine.shutdown(reason, Duration::from_secs(30)).await;
    if let Some(net) = network {
        if let Err(e) = net.shutdown().await {
            tracing::warn!(error = %e, "removing session networks");
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// Sets up per-session networking for `EgressEnabled` pools (and removes what a previous
/// run left). A host without it still serves `EgressDisabled` pools; egress pools then
/// fail to start their sandboxes with a clear reason.
async fn start_network(
    file: &ConfigFile,
    data_dir: &std::path::Path,
) -> anyhow::Result<Option<sandpool_net::NetworkManager>> {
    let mut config = sandpool_net::NetConfig::new(data_dir.join("net"));
    config.uplink = file.server.egress_uplink.clone();
    if let Some(subnet) = &file.server.egress_subnet {
        config.session_subnet = subnet
            .parse()
            .map_err(|e| anyhow::anyhow!("server.egressSubnet: {subnet:?} is not an IPv4 CIDR: {e}"))?;
    }
    match sandpool_net::NetworkManager::start(config).await {
        Ok(manager) => Ok(Some(manager)),
        Err(e) => {
            tracing::warn!(error = %e, "session networking unavailable: EgressEnabled pools cannot start sandboxes");
            Ok(None)
        }
    }
}

async fn make_backends(
    args: &ServeArgs,
    file: &ConfigFile,
    data_dir: &std::path::Path,
    network: Option<sandpool_net::NetworkManager>,
) -> anyhow::Result<Vec<Arc<dyn Backend>>> {
    let default = args
        .backend
        .clone()
        .or(file.server.backend.clone())
        .unwrap_or_else(|| "gvisor".into());
    let platform = args.platform.clone().or(file.server.platform.clone());
    let gvisor = sandpool_gvisor::GvisorBackend::new(sandpool_gvisor::GvisorConfig {
        state_dir: data_dir.join("gvisor"),
        runsc: args.runsc.clone(),
        platform,
    })
    .await
    .map(|b| match &network {
        Some(net) => b.with_network(net.clone()),
        None => b,
    });
    let runc = sandpool_runc::RuncBackend::new(sandpool_runc::RuncConfig {
        state_dir: data_dir.join("runc"),
        runc: args.runc.clone(),
    })
    .await
    .map(|b| match &network {
        Some(net) => b.with_network(net.clone()),
        None => b,
    });
    let mut backends: Vec<Arc<dyn Backend>> = Vec::new();
    match (default.as_str(), gvisor, runc) {
        ("gvisor", Ok(g), r) => {
            backends.push(Arc::new(g));
            match r {
                Ok(r) => backends.push(Arc::new(r)),
                Err(e) => tracing::warn!(error = %e, "runc backend unavailable"),
            }
        }
        ("runc", g, Ok(r)) => {
            backends.push(Arc::new(r));
            match g {
                Ok(g) => backends.push(Arc::new(g)),
                Err(e) => tracing::warn!(error = %e, "gVisor backend unavailable"),
            }
        }
        ("gvisor", Err(e), _) => bail!("the gVisor backend is unavailable: {e}"),
        ("runc", _, Err(e)) => bail!("the runc backend is unavailable: {e}"),
        (other, _, _) => bail!("unknown backend {other:?}: use gvisor or runc"),
    }
    Ok(backends)
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

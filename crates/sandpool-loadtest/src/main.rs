//! `service-bench`: load benchmark of the real `sandpool serve` binary over loopback
//! HTTP. Starts the server as a child with its own data dir, measures new-identifier
//! latency on a warm pool, repeated executions, concurrent throughput on a warm and a
//! drained pool, ready-set refill, and the server's overhead over a direct agent round
//! trip; prints the figures and the targets, and stops the server.
//!
//! `cargo build --release -p sandpool && cargo run --release -p sandpool-loadtest --bin service-bench -- [options]`

mod args;
mod client;
mod direct;
mod error;
mod events;
mod phases;
mod report;
mod server;

use args::{Args, USAGE};
use client::Client;
use direct::DirectSandbox;
use error::BenchError;
use sandpool_conformance::bench::stats::ms;
use sandpool_conformance::paths;
use server::{Server, COLD_POOL, WARM_POOL};
use std::time::Duration;

const FIRST_FILL_TIMEOUT: Duration = Duration::from_secs(900);
/// Lets a refill's restores finish their CPU work before a measurement.
const SETTLE: Duration = Duration::from_millis(500);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    sandpool_conformance::bench::cells::init_tracing();
    let args = match Args::parse(Args::defaults(&paths::workspace_root()), std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return;
        }
        Err(e) => {
            eprintln!("service-bench: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(args).await {
        eprintln!("service-bench: {e}");
        std::process::exit(1);
    }
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    format!("{cores} cores, load average {}", load.join(" "))
}

async fn run(args: Args) -> Result<(), BenchError> {
    println!(
        "# service-bench: new identifiers {}, repeats {}, clients {}, duration {} s, ready {}; {}",
        args.new_sessions,
        args.repeats,
        args.clients,
        args.duration.as_secs(),
        args.ready,
        machine()
    );
    eprintln!("starting sandpool serve…");
    // Phase 5 takes the whole ready set and then allocates one probe identifier, so the
    // pools hold at least `ready + 1` sessions even when there are fewer clients.
    let config = server::config_toml(args.ready, args.clients.max(args.ready as usize + 1));
    let mut server =
        tokio::task::block_in_place(|| Server::start(&args.sandpool, &paths::test_data_dir(), &config))?;
    println!("server: {} (data dir {})", server.base, server.data_dir.display());
    let direct = if args.skip_direct {
        Ok(None)
    } else {
        eprintln!("restoring a sandbox for the direct agent round trip…");
        DirectSandbox::start().await.map(Some)
    };
    let result = match direct {
        Ok(direct) => {
            let r = phases_against(&server, &args, direct.as_ref()).await;
            if let Some(d) = direct {
                d.destroy().await;
            }
            r
        }
        Err(e) => Err(e),
    };
    let clean = tokio::task::block_in_place(|| server.stop());
    if result.is_ok() && clean && !args.keep_data {
        let _ = std::fs::remove_dir_all(&server.data_dir);
    } else {
        eprintln!("server data dir and log kept in {}", server.data_dir.display());
    }
    result
}

/// Waits for a full warm ready set, then lets its starts' CPU work settle.
async fn full_ready_set(events: &events::Events, ready: i64) -> Result<(), BenchError> {
    phases::wait_ready(events, WARM_POOL, ready, FIRST_FILL_TIMEOUT).await?;
    tokio::time::sleep(SETTLE).await;
    Ok(())
}

async fn phases_against(
    server: &Server,
    args: &Args,
    direct: Option<&DirectSandbox>,
) -> Result<(), BenchError> {
    let ready = i64::from(args.ready);
    let events = &server.events;
    let took = phases::wait_ready(events, WARM_POOL, ready, FIRST_FILL_TIMEOUT).await?;
    println!("warm pool filled ({ready} ready) {} after `ready on`", ms(took));
    let client = Client::new(&server.base)?;

    eprintln!("1. new identifier on a warm pool…");
    let new = phases::new_session::run(&client, events, WARM_POOL, ready, args.new_sessions).await?;
    report::percentiles("1. new identifier → first print(1), warm pool", &new.first);
    report::percentiles(
        "   its second print(1), sent at once (the refill's restore is running)",
        &new.second,
    );

    if let Some(d) = direct {
        let n = args.new_sessions.min(10);
        eprintln!("1'. first print(1) in {n} directly restored sandboxes (no server)…");
        let f = d.first_executions(n, Duration::from_secs(2)).await?;
        report::percentiles(
            "   direct: first print(1) in a restored sandbox idle 2 s (no HTTP, no engine)",
            &f.first,
        );
        report::percentiles("   direct: its second print(1)", &f.second);
    }

    eprintln!("2. repeated executions in one session…");
    full_ready_set(events, ready).await?;
    let rep = phases::repeated::run(&client, WARM_POOL, args.repeats, direct).await?;
    report::percentiles("2. print(1) in one session via HTTP", &rep.execute);
    if let Some(d) = &rep.direct {
        report::percentiles(
            "   print(1) direct agent round trip, interleaved (no HTTP, no engine)",
            d,
        );
    }
    report::percentiles(
        "   GET session (HTTP + auth + engine lookup, no agent)",
        &rep.get_session,
    );
    report::percentiles("   GET /healthz (HTTP only)", &rep.healthz);

    eprintln!("3. {} concurrent clients, warm pool…", args.clients);
    full_ready_set(events, ready).await?;
    let warm = phases::concurrent::run(&server.base, events, WARM_POOL, args.clients, args.duration).await?;
    report::throughput("3. concurrent print(1), warm pool", args.clients, &warm);

    eprintln!("5. refill…");
    let after_delete =
        phases::refill::after_delete(&server.base, events, WARM_POOL, &warm.identifiers, ready).await?;
    report::refill("5a. refill after DELETE of all sessions", &after_delete, ready);
    let after_take = phases::refill::after_taking_ready_set(&server.base, events, WARM_POOL, ready).await?;
    report::refill("5b. refill after taking the whole ready set", &after_take, ready);

    eprintln!("4. {} concurrent clients, drained pool (ready 0)…", args.clients);
    full_ready_set(events, ready).await?;
    let cold = phases::concurrent::run(&server.base, events, COLD_POOL, args.clients, args.duration).await?;
    report::throughput(
        "4. concurrent print(1), drained pool (readySessionInstances 0)",
        args.clients,
        &cold,
    );
    let mut start_ms = cold.after.start_ms[cold.before.start_ms.len()..].to_vec();
    if !start_ms.is_empty() {
        start_ms.sort_unstable();
        println!(
            "   server-reported sandbox start (took_ms) during phase 4: p50 {} ms, max {} ms",
            start_ms[start_ms.len() / 2],
            start_ms[start_ms.len() - 1]
        );
    }
    let deleter = Client::new(&server.base)?;
    for id in &cold.identifiers {
        deleter.delete_session(COLD_POOL, id).await?;
    }

    println!("---");
    if let Some(d) = &rep.direct {
        let overhead = rep.execute.percentile(50.0).saturating_sub(d.percentile(50.0));
        println!(
            "6. print(1) p50: via HTTP {} vs direct agent {} → server overhead {} (p99 {} vs {})",
            ms(rep.execute.percentile(50.0)),
            ms(d.percentile(50.0)),
            ms(overhead),
            ms(rep.execute.percentile(99.0)),
            ms(d.percentile(99.0))
        );
        report::target("server overhead p50", overhead, Duration::from_millis(1));
    }
    report::target(
        "new identifier p50",
        new.first.percentile(50.0),
        Duration::from_millis(10),
    );
    report::target(
        "new identifier p99",
        new.first.percentile(99.0),
        Duration::from_millis(30),
    );
    Ok(())
}

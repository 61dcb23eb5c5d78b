//! `sandbox-bench`: sandbox start (restore and cold boot), `print(1)` round trip in a
//! warm sandbox next to the same agent and driver on the host, and idle PSS per ready
//! sandbox with numpy/pandas/matplotlib imported. Each round trip is also measured with a
//! `Health` request, which the agent answers without the driver: the channel's share.
//!
//! `cargo run --release -p sandpool-conformance --bin sandbox-bench -- [--backend gvisor|runc] [--n N] [--round-trips M] [--idle K] [--round-trips-only]`

use sandpool_conformance::bench::cells::{execute, init_tracing, BoxError};
use sandpool_conformance::bench::host_agent::HostAgent;
use sandpool_conformance::bench::pss::{pss_by_process, sandbox_host_pids, total_pss_bytes};
use sandpool_conformance::bench::stats::{ms, Samples};
use sandpool_conformance::paths::{self, Profile};
use sandpool_conformance::{backends, setup, SandboxGuard, TestEnv};
use sandpool_proto::{Request, Response};
use sandpool_sandbox::{AgentClient, Backend, Limits, SandboxKind, Template};
use std::time::{Duration, Instant};

struct Args {
    backend: String,
    n: usize,
    round_trips: usize,
    idle: usize,
    /// Skip the start and PSS figures.
    round_trips_only: bool,
}

fn parse_args() -> Result<Args, BoxError> {
    let mut args = Args {
        backend: "gvisor".into(),
        n: 20,
        round_trips: 1000,
        idle: 3,
        round_trips_only: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--backend" => args.backend = value()?,
            "--n" => args.n = value()?.parse()?,
            "--round-trips" => args.round_trips = value()?.parse()?,
            "--idle" => args.idle = value()?.parse()?,
            "--round-trips-only" => args.round_trips_only = true,
            "-h" | "--help" => {
                println!(
                    "sandbox-bench [--backend gvisor|runc] [--n N] [--round-trips M] [--idle K] [--round-trips-only]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    if args.n == 0 || args.round_trips == 0 || args.idle == 0 {
        return Err("--n, --round-trips and --idle must be positive".into());
    }
    Ok(args)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    init_tracing();
    if let Err(e) = run().await {
        eprintln!("sandbox-bench: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), BoxError> {
    let args = parse_args()?;
    eprintln!("preparing images and agent bundle…");
    let env = tokio::task::spawn_blocking(|| setup::prepare(Profile::Release)).await??;
    let backend = backends::create(&args.backend, &env.data_dir).await?;
    backends::remove_orphans(&*backend).await?;
    println!(
        "# sandbox-bench: backend {}, n {}, round trips {}",
        backend.name(),
        args.n,
        args.round_trips
    );
    println!("agent: {}", env.agent.host_dir.join("sandpool-agent").display());

    let template = if !backend.supports_checkpoint() {
        println!("start, restore: not supported by {}", backend.name());
        None
    } else {
        eprintln!("building the template…");
        let started = Instant::now();
        let t = env.python_template(&*backend).await;
        println!(
            "template ready (boot + import numpy/pandas/matplotlib + checkpoint; near zero when reused from disk): {}",
            ms(started.elapsed())
        );
        if !args.round_trips_only {
            let restores = time_starts(&*backend, &env, Some(&t), args.n).await?;
            report("start, restore", &restores, &[50.0, 95.0]);
        }
        Some(t)
    };
    if !args.round_trips_only {
        let boots = time_starts(&*backend, &env, None, args.n).await?;
        report("start, cold boot (agent answers Hello)", &boots, &[50.0, 95.0]);
        let heavy = time_heavy_boots(&*backend, &env, args.n).await?;
        report(
            "start, cold boot + import numpy/pandas/matplotlib",
            &heavy,
            &[50.0, 95.0],
        );
    }

    let warm = ready_sandbox(&*backend, &env, template.as_ref(), "bench-rt").await?;
    let in_sandbox = round_trips(warm.agent(), args.round_trips).await;
    warm.destroy().await;
    let (print_rt, health_rt) = in_sandbox?;
    report(
        "print(1) round trip, sandboxed",
        &print_rt,
        &[50.0, 90.0, 99.0, 99.9],
    );
    report(
        "Health round trip (agent only), sandboxed",
        &health_rt,
        &[50.0, 99.0],
    );

    let scratch = tempfile::tempdir()?;
    let python = paths::test_python()?;
    let host = HostAgent::spawn(
        &env.agent.host_dir.join("sandpool-agent"),
        &python,
        &env.agent.host_dir.join("sandpool_driver.py"),
        scratch.path(),
    )
    .await?;
    let on_host = round_trips(&host.client, args.round_trips).await;
    host.stop().await;
    let (print_rt, health_rt) = on_host?;
    report("print(1) round trip, host (no sandbox)", &print_rt, &[50.0, 99.0]);
    report("Health round trip (agent only), host", &health_rt, &[50.0, 99.0]);

    if args.round_trips_only {
        return Ok(());
    }
    idle_pss(&*backend, &env, template.as_ref(), args.idle).await
}

async fn time_starts(
    backend: &dyn Backend,
    env: &TestEnv,
    template: Option<&Template>,
    n: usize,
) -> Result<Samples, BoxError> {
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let spec = env.spec("bench-start", SandboxKind::Python, Limits::default());
        let started = Instant::now();
        let sandbox = backend.create(&spec, template).await?;
        samples.push(started.elapsed());
        let guard = SandboxGuard::new(sandbox);
        guard.destroy().await;
        eprint!(
            "\r{} {}/{n}",
            if template.is_some() { "restore" } else { "boot" },
            i + 1
        );
    }
    eprintln!();
    Ok(Samples::new(samples))
}

/// Cold boot until the heavy modules are imported: what a restore saves.
async fn time_heavy_boots(backend: &dyn Backend, env: &TestEnv, n: usize) -> Result<Samples, BoxError> {
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let started = Instant::now();
        let guard = ready_sandbox(backend, env, None, "bench-heavy").await?;
        samples.push(started.elapsed());
        guard.destroy().await;
        eprint!("\rboot+import {}/{n}", i + 1);
    }
    eprintln!();
    Ok(Samples::new(samples))
}

/// A ready python sandbox with the heavy modules imported.
async fn ready_sandbox(
    backend: &dyn Backend,
    env: &TestEnv,
    template: Option<&Template>,
    label: &str,
) -> Result<SandboxGuard, BoxError> {
    let spec = env.spec(label, SandboxKind::Python, Limits::default());
    let guard = SandboxGuard::new(backend.create(&spec, template).await?);
    if template.is_none() {
        execute(guard.agent(), "import numpy, pandas, matplotlib.pyplot").await?;
    }
    Ok(guard)
}

/// `print(1)` and `Health` round trips, interleaved so both see the same machine state.
async fn round_trips(agent: &AgentClient, n: usize) -> Result<(Samples, Samples), BoxError> {
    for _ in 0..20 {
        execute(agent, "print(1)").await?;
        health(agent).await?;
    }
    let mut prints = Vec::with_capacity(n);
    let mut healths = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        execute(agent, "print(1)").await?;
        prints.push(started.elapsed());
        let started = Instant::now();
        health(agent).await?;
        healths.push(started.elapsed());
    }
    Ok((Samples::new(prints), Samples::new(healths)))
}

async fn health(agent: &AgentClient) -> Result<(), BoxError> {
    match tokio::time::timeout(Duration::from_secs(30), agent.call(Request::Health)).await?? {
        Response::Health(_) => Ok(()),
        other => Err(format!("Health failed: {other:?}").into()),
    }
}

async fn idle_pss(
    backend: &dyn Backend,
    env: &TestEnv,
    template: Option<&Template>,
    count: usize,
) -> Result<(), BoxError> {
    let mut ready = Vec::new();
    for i in 0..count {
        ready.push(ready_sandbox(backend, env, template, &format!("bench-idle-{i}")).await?);
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut total = 0;
    for guard in &ready {
        let pids = sandbox_host_pids(guard.sandbox().id().as_str());
        if pids.is_empty() {
            return Err(format!("no host processes found for {}", guard.sandbox().id()).into());
        }
        let parts = pss_by_process(&pids);
        let pss = total_pss_bytes(&parts);
        let breakdown: Vec<String> = parts
            .iter()
            .map(|p| match p.shares_memory_with {
                None => format!("{}[{}] {}", p.comm, p.pid, mib(p.pss_bytes)),
                Some(other) => format!("({}[{}] shares [{other}]'s memory)", p.comm, p.pid),
            })
            .collect();
        println!(
            "idle PSS of {}: {} = {}",
            guard.sandbox().id(),
            mib(pss),
            breakdown.join(" + ")
        );
        total += pss;
    }
    println!(
        "idle PSS per ready sandbox ({count} ready at once, numpy/pandas/matplotlib imported): {}",
        mib(total / count as u64)
    );
    for guard in ready {
        guard.destroy().await;
    }
    Ok(())
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

fn report(what: &str, samples: &Samples, percentiles: &[f64]) {
    let figures: Vec<String> = percentiles
        .iter()
        .map(|p| format!("p{p} {}", ms(samples.percentile(*p))))
        .collect();
    println!("{what}: {} (n={})", figures.join(", "), samples.len());
}

//! `warm-up-bench`: how a restored sandbox's warm-up changes its first `print(1)` after
//! idling as a ready sandbox, next to later `print(1)`s after a shorter idle gap and
//! back-to-back ones. Chooses the warm-up the engine runs before a sandbox counts as ready.
//!
//! `cargo run --release -p sandpool-conformance --bin warm-up-bench -- [--n N] [--ready-idle-ms MS] [--gap-ms MS] [--warm-up CODE:ROUNDS]...`
//!
//! Each `--warm-up` is one variant (default: `None:1`, `print(1):1`, `print(1):3`,
//! `print(1):5`); every variant restores `--n` sandboxes from the python template, one at
//! a time, runs the warm-up cells, idles `--ready-idle-ms`, then times the first
//! `print(1)`, then three pairs of (`--gap-ms` idle, `print(1)`, `print(1)` at once).

use sandpool_conformance::bench::cells::{execute, init_tracing, BoxError};
use sandpool_conformance::bench::stats::{ms, Samples};
use sandpool_conformance::paths::Profile;
use sandpool_conformance::{backends, setup, SandboxGuard, CREATE_TIMEOUT};
use sandpool_sandbox::{AgentClient, Limits, SandboxKind};
use std::time::{Duration, Instant};

const USAGE: &str = "warm-up-bench [--n N] [--ready-idle-ms MS] [--gap-ms MS] [--warm-up CODE:ROUNDS]...";

struct Variant {
    code: String,
    rounds: usize,
}

struct Args {
    n: usize,
    ready_idle: Duration,
    gap: Duration,
    variants: Vec<Variant>,
}

fn parse_variant(v: &str) -> Result<Variant, BoxError> {
    let (code, rounds) = v
        .rsplit_once(':')
        .ok_or_else(|| format!("--warm-up {v:?}: expected CODE:ROUNDS"))?;
    Ok(Variant {
        code: code.to_owned(),
        rounds: rounds
            .parse()
            .map_err(|_| format!("--warm-up {v:?}: {rounds:?} is not a count"))?,
    })
}

fn parse_args() -> Result<Args, BoxError> {
    let mut args = Args {
        n: 15,
        ready_idle: Duration::from_millis(1500),
        gap: Duration::from_millis(300),
        variants: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--n" => args.n = value()?.parse()?,
            "--ready-idle-ms" => args.ready_idle = Duration::from_millis(value()?.parse()?),
            "--gap-ms" => args.gap = Duration::from_millis(value()?.parse()?),
            "--warm-up" => args.variants.push(parse_variant(&value()?)?),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}; {USAGE}").into()),
        }
    }
    if args.n == 0 {
        return Err("--n must be positive".into());
    }
    if args.variants.is_empty() {
        for v in ["None:1", "print(1):1", "print(1):3", "print(1):5"] {
            args.variants.push(parse_variant(v)?);
        }
    }
    Ok(args)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    init_tracing();
    if let Err(e) = run().await {
        eprintln!("warm-up-bench: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), BoxError> {
    let args = parse_args()?;
    eprintln!("preparing images and agent bundle…");
    let env = tokio::task::spawn_blocking(|| setup::prepare(Profile::Release)).await??;
    let backend = backends::create("gvisor", &env.data_dir).await?;
    backends::remove_orphans(&*backend).await?;
    eprintln!("building the template…");
    let template = env.python_template(&*backend).await;
    println!(
        "# warm-up-bench: gvisor, n {}, ready idle {:?}, gap {:?}",
        args.n, args.ready_idle, args.gap
    );
    for variant in &args.variants {
        let (mut first, mut after_gap, mut at_once) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..args.n {
            let spec = env.spec("bench-warm-up", SandboxKind::Python, Limits::default());
            let sandbox =
                tokio::time::timeout(CREATE_TIMEOUT, backend.create(&spec, Some(&template))).await??;
            let guard = SandboxGuard::new(sandbox);
            for _ in 0..variant.rounds {
                execute(guard.agent(), &variant.code).await?;
            }
            tokio::time::sleep(args.ready_idle).await;
            first.push(print_one(guard.agent()).await?);
            for _ in 0..3 {
                tokio::time::sleep(args.gap).await;
                after_gap.push(print_one(guard.agent()).await?);
                at_once.push(print_one(guard.agent()).await?);
            }
            guard.destroy().await;
            eprint!("\r{:?} x{} {}/{}", variant.code, variant.rounds, i + 1, args.n);
        }
        eprintln!();
        let (first, after_gap, at_once) = (
            Samples::new(first),
            Samples::new(after_gap),
            Samples::new(at_once),
        );
        println!(
            "warm-up {:?} x{}: first print(1) after {:?} idle p50 {} p95 {} | later, after {:?} idle p50 {} | back to back p50 {}",
            variant.code,
            variant.rounds,
            args.ready_idle,
            ms(first.percentile(50.0)),
            ms(first.percentile(95.0)),
            args.gap,
            ms(after_gap.percentile(50.0)),
            ms(at_once.percentile(50.0)),
        );
    }
    Ok(())
}

async fn print_one(agent: &AgentClient) -> Result<Duration, BoxError> {
    let began = Instant::now();
    execute(agent, "print(1)").await?;
    Ok(began.elapsed())
}

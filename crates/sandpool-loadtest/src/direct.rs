//! The baseline for server overhead: `print(1)` straight through the host's
//! `AgentClient` into a sandbox restored from the python template, no HTTP, no engine
//! (the same path `sandbox-bench` measures, through `sandpool-conformance`'s library).

use crate::error::BenchError;
use sandpool_conformance::bench::stats::Samples;
use sandpool_conformance::paths::Profile;
use sandpool_conformance::{backends, setup, CREATE_TIMEOUT, TEMPLATE_TIMEOUT, WARM_MODULES};
use sandpool_proto::{ExecutionStatus, Request, Response};
use sandpool_sandbox::{AgentClient, Limits, SandboxKind};
use std::time::{Duration, Instant};

const WARM_UP: usize = 20;

fn fail(e: impl std::fmt::Display) -> BenchError {
    BenchError::Direct(e.to_string())
}

/// `n` sequential direct round trips in one warm gVisor sandbox (after 20 warm-up calls).
pub async fn round_trips(n: usize) -> Result<Samples, BenchError> {
    let env = tokio::task::spawn_blocking(|| setup::prepare(Profile::Release))
        .await
        .map_err(fail)?
        .map_err(fail)?;
    let backend = backends::create("gvisor", &env.data_dir).await.map_err(fail)?;
    backends::remove_orphans(&*backend).await.map_err(fail)?;
    let modules: Vec<String> = WARM_MODULES.iter().map(|m| m.to_string()).collect();
    let template_spec = env.spec("lt-template", SandboxKind::Python, Limits::default());
    let template = tokio::time::timeout(TEMPLATE_TIMEOUT, backend.build_template(&template_spec, &modules))
        .await
        .map_err(fail)?
        .map_err(fail)?;
    let spec = env.spec("lt-direct", SandboxKind::Python, Limits::default());
    let sandbox = tokio::time::timeout(CREATE_TIMEOUT, backend.create(&spec, Some(&template)))
        .await
        .map_err(fail)?
        .map_err(fail)?;
    let measured = measure(sandbox.agent(), n).await;
    if let Err(e) = sandbox.destroy().await {
        tracing::warn!(error = %e, "destroying the direct-round-trip sandbox failed");
    }
    measured
}

async fn measure(agent: &AgentClient, n: usize) -> Result<Samples, BenchError> {
    for _ in 0..WARM_UP {
        print_one(agent).await?;
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let began = Instant::now();
        print_one(agent).await?;
        samples.push(began.elapsed());
    }
    Ok(Samples::new(samples))
}

async fn print_one(agent: &AgentClient) -> Result<(), BenchError> {
    let request = Request::Execute {
        code: "print(1)".into(),
        timeout_ms: 60_000,
    };
    match tokio::time::timeout(Duration::from_secs(90), agent.call(request))
        .await
        .map_err(fail)?
        .map_err(fail)?
    {
        Response::Execution(r) if r.status == ExecutionStatus::Ok => Ok(()),
        other => Err(fail(format!("print(1) failed: {other:?}"))),
    }
}

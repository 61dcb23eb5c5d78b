//! The baseline for server overhead: `print(1)` straight through the host's
//! `AgentClient` into a gVisor sandbox restored from the python template, no HTTP, no
//! engine (the path `sandbox-bench` measures, through `sandpool-conformance`'s library).
//! Kept alive beside the server so the two can be measured interleaved, under the same
//! machine load.

use crate::error::BenchError;
use sandpool_conformance::bench::stats::Samples;
use sandpool_conformance::paths::Profile;
use sandpool_conformance::{backends, setup, TestEnv, CREATE_TIMEOUT, TEMPLATE_TIMEOUT, WARM_MODULES};
use sandpool_proto::{ExecutionStatus, Request, Response};
use sandpool_sandbox::{Backend, Limits, Sandbox, SandboxKind, Template};
use std::time::{Duration, Instant};

fn fail(e: impl std::fmt::Display) -> BenchError {
    BenchError::Direct(e.to_string())
}

/// One warm sandbox of the conformance suite's gVisor backend.
pub struct DirectSandbox {
    sandbox: Box<dyn Sandbox>,
    backend: Box<dyn Backend>,
    env: TestEnv,
    template: Template,
}

/// First and second `print(1)` in freshly restored sandboxes, without the server.
pub struct FirstExecutions {
    pub first: Samples,
    pub second: Samples,
}

impl DirectSandbox {
    /// Prepares images and the agent bundle (`SANDPOOL_TEST_DATA`, `SANDPOOL_AGENT_EXE`),
    /// builds or reuses the python template, and restores one sandbox from it.
    pub async fn start() -> Result<DirectSandbox, BenchError> {
        let env = tokio::task::spawn_blocking(|| setup::prepare(Profile::Release))
            .await
            .map_err(fail)?
            .map_err(fail)?;
        let backend = backends::create("gvisor", &env.data_dir).await.map_err(fail)?;
        backends::remove_orphans(&*backend).await.map_err(fail)?;
        let modules: Vec<String> = WARM_MODULES.iter().map(|m| m.to_string()).collect();
        let template_spec = env.spec("lt-template", SandboxKind::Python, Limits::default());
        let template =
            tokio::time::timeout(TEMPLATE_TIMEOUT, backend.build_template(&template_spec, &modules))
                .await
                .map_err(fail)?
                .map_err(fail)?;
        let spec = env.spec("lt-direct", SandboxKind::Python, Limits::default());
        let sandbox = tokio::time::timeout(CREATE_TIMEOUT, backend.create(&spec, Some(&template)))
            .await
            .map_err(fail)?
            .map_err(fail)?;
        Ok(DirectSandbox {
            sandbox,
            backend,
            env,
            template,
        })
    }

    /// Restores `n` more sandboxes one at a time, leaves each idle for `idle` (as a
    /// ready sandbox would be), then times its first and second `print(1)`.
    pub async fn first_executions(&self, n: usize, idle: Duration) -> Result<FirstExecutions, BenchError> {
        let (mut first, mut second) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for _ in 0..n {
            let spec = self.env.spec("lt-first", SandboxKind::Python, Limits::default());
            let sandbox =
                tokio::time::timeout(CREATE_TIMEOUT, self.backend.create(&spec, Some(&self.template)))
                    .await
                    .map_err(fail)?
                    .map_err(fail)?;
            tokio::time::sleep(idle).await;
            let measured = async {
                first.push(print_one(&*sandbox).await?);
                second.push(print_one(&*sandbox).await?);
                Ok::<(), BenchError>(())
            }
            .await;
            if let Err(e) = sandbox.destroy().await {
                tracing::warn!(error = %e, "destroying a first-execution sandbox failed");
            }
            measured?;
        }
        Ok(FirstExecutions {
            first: Samples::new(first),
            second: Samples::new(second),
        })
    }

    /// One `print(1)` round trip; returns its duration.
    pub async fn print_one(&self) -> Result<Duration, BenchError> {
        print_one(&*self.sandbox).await
    }

    pub async fn destroy(self) {
        if let Err(e) = self.sandbox.destroy().await {
            tracing::warn!(error = %e, "destroying the direct-round-trip sandbox failed");
        }
    }
}

async fn print_one(sandbox: &dyn Sandbox) -> Result<Duration, BenchError> {
    let request = Request::Execute {
        code: "print(1)".into(),
        timeout_ms: 60_000,
    };
    let began = Instant::now();
    let response = tokio::time::timeout(Duration::from_secs(90), sandbox.agent().call(request))
        .await
        .map_err(fail)?
        .map_err(fail)?;
    let took = began.elapsed();
    match response {
        Response::Execution(r) if r.status == ExecutionStatus::Ok && r.stdout == "1\n" => Ok(took),
        other => Err(fail(format!("print(1) failed: {other:?}"))),
    }
}

//! The baseline for server overhead: `print(1)` straight through the host's
//! `AgentClient` into a gVisor sandbox restored from the python template, no HTTP, no
//! engine (the path `sandbox-bench` measures, through `sandpool-conformance`'s library).
//! Kept alive beside the server so the two can be measured interleaved, under the same
//! machine load.

use crate::error::BenchError;
use sandpool_conformance::paths::Profile;
use sandpool_conformance::{backends, setup, CREATE_TIMEOUT, TEMPLATE_TIMEOUT, WARM_MODULES};
use sandpool_proto::{ExecutionStatus, Request, Response};
use sandpool_sandbox::{Backend, Limits, Sandbox, SandboxKind};
use std::time::{Duration, Instant};

fn fail(e: impl std::fmt::Display) -> BenchError {
    BenchError::Direct(e.to_string())
}

/// One warm sandbox of the conformance suite's gVisor backend.
pub struct DirectSandbox {
    sandbox: Box<dyn Sandbox>,
    _backend: Box<dyn Backend>,
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
            _backend: backend,
        })
    }

    /// One `print(1)` round trip; returns its duration.
    pub async fn print_one(&self) -> Result<Duration, BenchError> {
        let request = Request::Execute {
            code: "print(1)".into(),
            timeout_ms: 60_000,
        };
        let began = Instant::now();
        let response = tokio::time::timeout(Duration::from_secs(90), self.sandbox.agent().call(request))
            .await
            .map_err(fail)?
            .map_err(fail)?;
        let took = began.elapsed();
        match response {
            Response::Execution(r) if r.status == ExecutionStatus::Ok && r.stdout == "1\n" => Ok(took),
            other => Err(fail(format!("print(1) failed: {other:?}"))),
        }
    }

    pub async fn destroy(self) {
        if let Err(e) = self.sandbox.destroy().await {
            tracing::warn!(error = %e, "destroying the direct-round-trip sandbox failed");
        }
    }
}

//! Resource bombs: each must stay inside the sandbox that set it off (which may die,
//! or see its cell fail with a clear error) while a second sandbox keeps answering.

use crate::ops::{assert_answers_one_plus_one, call, execute, shell, CALL_SLACK};
use crate::TestEnv;
use sandpool_proto::{ErrorKind, ExecutionStatus, Request, Response};
use sandpool_sandbox::{Backend, Limits, SandboxError, SandboxKind};
use std::time::Duration;

const BOMB_TIMEOUT: Duration = Duration::from_secs(15);

fn small_limits() -> Limits {
    Limits {
        memory_bytes: 512 << 20,
        cpu_millis: 1000,
        max_processes: 64,
        data_bytes: 32 << 20,
    }
}

/// How a bombed sandbox's cell or command ended; an agent that stopped answering
/// (rather than answering with an error or dying) fails the test.
fn describe<T: std::fmt::Debug>(outcome: &Result<T, SandboxError>) -> String {
    if let Err(e @ SandboxError::Timeout(..)) = outcome {
        panic!("the bombed sandbox neither answered nor died: {e}");
    }
    match outcome {
        Ok(v) => format!("{v:?}").chars().take(600).collect(),
        Err(e) => e.to_string(),
    }
}

/// A fork bomb hits the process limit; the neighbour keeps answering, and the host
/// sees no more than the limit's worth of processes for the sandbox.
pub async fn fork_bomb_is_contained(backend: &dyn Backend, env: &TestEnv) {
    let limits = small_limits();
    let victim = env.boot(backend, "fork-bomb", SandboxKind::Python, limits).await;
    let neighbour = env.python(backend, "fork-neighbour").await;
    let idle_host_pids = victim.sandbox().stats().await.map(|s| s.host_pids).unwrap_or(0);
    let bomb = shell(
        victim.agent(),
        "bomb() { bomb | bomb & }; bomb; sleep 30",
        BOMB_TIMEOUT,
    );
    let watch_pids = async {
        let mut most = 0;
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if let Ok(stats) = victim.sandbox().stats().await {
                most = most.max(stats.host_pids);
            }
        }
        most
    };
    let (outcome, most_host_pids) = tokio::join!(bomb, watch_pids);
    tracing::info!(outcome = %describe(&outcome), idle_host_pids, most_host_pids, "fork bomb ended");
    if let Ok(result) = &outcome {
        assert_ne!(
            result.exit_code, 0,
            "the fork bomb cannot have succeeded: {result:?}"
        );
    }
    // Under runc every user process is a host process. Under gVisor ptrace each guest
    // address space has a host stub process and each guest thread a stub thread, and the
    // sentry adds threads under load (measured: 53 idle, ~720 at a 64-process limit).
    // Either way growth is bounded by the process limit, not by the host's capacity.
    let allowed = idle_host_pids + 16 * u64::from(limits.max_processes) + 64;
    assert!(
        most_host_pids <= allowed,
        "{most_host_pids} host tasks for one sandbox (idle {idle_host_pids}, allowed {allowed})"
    );
    assert_answers_one_plus_one(neighbour.agent(), "the neighbour of the fork bomb").await;
    victim.destroy().await;
    neighbour.destroy().await;
}

/// Allocating 10× the memory limit fails (MemoryError, a killed and restarted driver
/// reported as lost state, or a dead sandbox) without taking the neighbour down.
pub async fn memory_bomb_is_contained(backend: &dyn Backend, env: &TestEnv) {
    let limits = small_limits();
    let victim = env
        .boot(backend, "memory-bomb", SandboxKind::Python, limits)
        .await;
    let neighbour = env.python(backend, "memory-neighbour").await;
    let code = format!(
        "chunks = []\nfor _ in range({}):\n    chunks.append(b'\\x01' * (64 << 20))\nprint('allocated', len(chunks))",
        10 * limits.memory_bytes / (64 << 20)
    );
    let outcome = execute(victim.agent(), &code, Duration::from_secs(60)).await;
    tracing::info!(outcome = %describe(&outcome), "memory bomb ended");
    if let Ok(result) = &outcome {
        assert_ne!(
            result.status,
            ExecutionStatus::Ok,
            "allocated 10x the memory limit: {result:?}"
        );
        if result.status == ExecutionStatus::Error {
            // Either Python's own MemoryError, or the driver killed for memory and
            // restarted, which must be reported as lost state with a named error.
            let ename = result.error.as_ref().map(|e| e.ename.as_str()).unwrap_or("");
            assert!(
                ename == "MemoryError" || (result.state_lost && !ename.is_empty()),
                "unclear error: {result:?}"
            );
        }
    }
    assert_answers_one_plus_one(neighbour.agent(), "the neighbour of the memory bomb").await;
    victim.destroy().await;
    neighbour.destroy().await;
}

/// Filling /mnt/data stops at its size with a clear error and nothing written past
/// it; the neighbour keeps answering and can still write.
pub async fn disk_fill_is_contained(backend: &dyn Backend, env: &TestEnv) {
    let limits = small_limits();
    let victim = env.boot(backend, "disk-fill", SandboxKind::Python, limits).await;
    let neighbour = env.python(backend, "disk-neighbour").await;
    let fill = shell(
        victim.agent(),
        "dd if=/dev/zero of=/mnt/data/fill bs=1M count=1024; echo exit=$?; stat -c %s /mnt/data/fill",
        Duration::from_secs(60),
    )
    .await;
    tracing::info!(outcome = %describe(&fill), "dd into /mnt/data ended");
    if let Ok(result) = &fill {
        assert!(
            result.stderr.contains("No space left"),
            "dd did not hit ENOSPC: {result:?}"
        );
        let size: u64 = result
            .stdout
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(0);
        assert!(
            size <= limits.data_bytes,
            "wrote {size} bytes into a {}-byte /mnt/data",
            limits.data_bytes
        );
        // A file operation past the limit fails with NoSpace.
        let write = Request::WriteFile {
            path: "more".into(),
            data: vec![7u8; 4 << 20],
            append: false,
        };
        match call(victim.agent(), write, CALL_SLACK).await {
            Err(SandboxError::Agent(e)) => assert_eq!(e.kind, ErrorKind::NoSpace, "{e}"),
            other => panic!("writing to a full /mnt/data: expected NoSpace, got {other:?}"),
        }
    }
    assert_answers_one_plus_one(neighbour.agent(), "the neighbour of the disk filler").await;
    let write = Request::WriteFile {
        path: "ok.bin".into(),
        data: vec![1u8; 1 << 20],
        append: false,
    };
    match call(neighbour.agent(), write, CALL_SLACK).await {
        Ok(Response::Done) => {}
        other => panic!("the neighbour cannot write 1 MiB: {other:?}"),
    }
    victim.destroy().await;
    neighbour.destroy().await;
}

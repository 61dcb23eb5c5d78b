//! The runc backend with real runc, the real agent and real images: lifecycle cleanup,
//! confinement (user, capabilities, seccomp, network, read-only root), limits and
//! leftovers.

mod support;

use sandpool_runc::{RuncBackend, RuncConfig};
use sandpool_sandbox::{Backend, ExitReason, SandboxError, SandboxKind};
use std::path::Path;
use std::time::Instant;
use support::*;

async fn backend(state_dir: &Path) -> RuncBackend {
    RuncBackend::new(RuncConfig {
        state_dir: state_dir.to_path_buf(),
        runc: "runc".into(),
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_sandbox_is_confined_and_leaves_nothing_behind() {
    init_tracing();
    let dir = scratch("runc-life-");
    let agent = agent_bundle(&dir.path().join("agent"));
    let image = image(SandboxKind::Shell).await;
    let backend = backend(&dir.path().join("state")).await;
    let spec = spec("life-1", SandboxKind::Shell, &image, &agent);
    assert!(!backend.supports_checkpoint());
    assert!(matches!(
        backend.build_template(&spec, &[]).await,
        Err(SandboxError::Unsupported { .. })
    ));

    let started = Instant::now();
    let sandbox = backend.create(&spec, None).await.unwrap();
    eprintln!("figure: runc cold boot (shell image) {:?}", started.elapsed());
    let checks = [
        ("id -u", "1000"),
        ("grep CapEff /proc/self/status | cut -f2", "0000000000000000"),
        ("grep NoNewPrivs /proc/self/status | cut -f2", "1"),
        (
            "touch /etc/x 2>/dev/null && echo writable || echo read-only",
            "read-only",
        ),
        (
            "unshare -U true 2>/dev/null && echo unshared || echo denied",
            "denied",
        ),
        ("cat /proc/kcore 2>/dev/null | head -c1 | wc -c", "0"),
        ("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '", "lo"),
        ("hostname", "sandbox"),
        ("stat -c %u /mnt/data", "1000"),
    ];
    for (command, expected) in checks {
        let out = shell(sandbox.as_ref(), command).await;
        assert_eq!(out.stdout.trim(), expected, "{command}: {out:?}");
    }
    assert_eq!(backend.leftovers().await.unwrap(), vec![spec.id.clone()]);
    assert!(!cgroup_dirs("life-1").is_empty());
    sandbox.destroy().await.unwrap();
    sandbox.destroy().await.unwrap();
    assert_eq!(sandbox.wait_exit().await, ExitReason::Destroyed);
    assert!(backend.leftovers().await.unwrap().is_empty());
    assert!(cgroup_dirs("life-1").is_empty(), "{:?}", cgroup_dirs("life-1"));
    assert!(!dir.path().join("state/bundles/life-1").exists());
}

#[tokio::test]
async fn processes_data_and_memory_are_limited() {
    init_tracing();
    let dir = scratch("runc-limits-");
    let agent = agent_bundle(&dir.path().join("agent"));
    let image = image(SandboxKind::Python).await;
    let backend = backend(&dir.path().join("state")).await;
    let mut spec = spec("limits-1", SandboxKind::Python, &image, &agent);
    spec.limits.max_processes = 32;
    spec.limits.data_bytes = 8 << 20;
    spec.limits.memory_bytes = 256 << 20;
    let sandbox = backend.create(&spec, None).await.unwrap();

    let forks = shell(
        sandbox.as_ref(),
        "python3 -c '\nimport os, signal, time\nkids = []\nfor _ in range(64):\n    try:\n        pid = os.fork()\n    except OSError:\n        break\n    if pid == 0:\n        time.sleep(30)\n        os._exit(0)\n    kids.append(pid)\nprint(len(kids))\nfor k in kids:\n    os.kill(k, signal.SIGKILL)\n    os.waitpid(k, 0)\n'",
    )
    .await;
    let forked: u32 = forks.stdout.trim().parse().unwrap_or(u32::MAX);
    assert!(forked > 0 && forked < 32, "{forks:?}");
    let stats = sandbox.stats().await.unwrap();
    assert!(stats.host_pids <= 32, "{stats:?}");

    let fill = shell(
        sandbox.as_ref(),
        "dd if=/dev/zero of=/mnt/data/f bs=1M count=32 2>&1",
    )
    .await;
    assert_ne!(fill.exit_code, 0, "{fill:?}");
    assert!(fill.stdout.contains("No space left"), "{fill:?}");

    let hog = shell(
        sandbox.as_ref(),
        "python3 -c 'b = bytearray(512 << 20); b[::4096] = b\"x\" * len(b[::4096])'",
    )
    .await;
    assert_ne!(hog.exit_code, 0, "{hog:?}");
    assert_eq!(shell(sandbox.as_ref(), "echo alive").await.stdout.trim(), "alive");
    sandbox.destroy().await.unwrap();
    assert!(cgroup_dirs("limits-1").is_empty());
}

#[tokio::test]
async fn leftovers_of_a_previous_run_are_found_and_removed() {
    init_tracing();
    let dir = scratch("runc-left-");
    let agent = agent_bundle(&dir.path().join("agent"));
    let image = image(SandboxKind::Shell).await;
    let state = dir.path().join("state");
    let crashed_service = backend(&state).await;
    let sandbox = crashed_service
        .create(&spec("left-1", SandboxKind::Shell, &image, &agent), None)
        .await
        .unwrap();
    // The service "crashes": nothing of it runs its cleanup.
    std::mem::forget(sandbox);

    let restarted = backend(&state).await;
    let left = restarted.leftovers().await.unwrap();
    assert_eq!(
        left.iter().map(|id| id.as_str()).collect::<Vec<_>>(),
        vec!["left-1"]
    );
    for id in &left {
        restarted.remove_leftover(id).await.unwrap();
        restarted.remove_leftover(id).await.unwrap();
    }
    assert!(restarted.leftovers().await.unwrap().is_empty());
    assert!(cgroup_dirs("left-1").is_empty());
}

//! The gVisor backend with real runsc, the real agent and real images: lifecycle
//! cleanup, platform probe, templates and restores, OOM, leftovers.

mod support;

use sandpool_gvisor::{probe_platform, GvisorBackend, GvisorConfig, PLATFORM_CANDIDATES};
use sandpool_sandbox::{Backend, ExitReason, SandboxKind};
use std::path::Path;
use std::time::{Duration, Instant};
use support::*;

async fn backend(state_dir: &Path) -> GvisorBackend {
    let platform = std::env::var("SANDPOOL_GVISOR_PLATFORM").unwrap_or_else(|_| "ptrace".into());
    GvisorBackend::new(GvisorConfig {
        state_dir: state_dir.to_path_buf(),
        runsc: "runsc".into(),
        platform: Some(platform),
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn the_platform_probe_picks_a_working_platform() {
    init_tracing();
    let dir = scratch("probe-");
    let started = Instant::now();
    let platform = probe_platform(Path::new("runsc"), &dir.path().join("probe"))
        .await
        .unwrap();
    eprintln!("probe chose {platform} in {:?}", started.elapsed());
    assert!(PLATFORM_CANDIDATES.contains(&platform.as_str()));
    assert!(
        !dir.path().join("probe").exists(),
        "the probe left its work directory behind"
    );
}

#[tokio::test]
async fn the_probed_platform_is_cached_per_runsc_version() {
    init_tracing();
    let dir = scratch("probe-cache-");
    let state = dir.path().join("state");
    let config = |platform: Option<&str>| GvisorConfig {
        state_dir: state.clone(),
        runsc: "runsc".into(),
        platform: platform.map(str::to_string),
    };
    let started = Instant::now();
    let probed = GvisorBackend::new(config(None))
        .await
        .unwrap()
        .platform()
        .to_string();
    eprintln!(
        "figure: gVisor backend start with a platform probe {:?}",
        started.elapsed()
    );
    let cache = state.join("platform");
    let text = std::fs::read_to_string(&cache).unwrap();
    assert!(text.starts_with(&format!("platform {probed}\n")), "{text}");
    assert!(text.contains("version runsc version"), "{text}");

    // A cache entry for this runsc is believed: another candidate written there is used.
    let other = PLATFORM_CANDIDATES.iter().find(|p| **p != probed).unwrap();
    std::fs::write(&cache, text.replacen(&probed, other, 1)).unwrap();
    let started = Instant::now();
    let cached = GvisorBackend::new(config(None)).await.unwrap();
    eprintln!(
        "figure: gVisor backend start with a cached platform {:?}",
        started.elapsed()
    );
    assert_eq!(cached.platform(), *other);
    // The explicit setting wins over the cache.
    assert_eq!(
        GvisorBackend::new(config(Some(&probed)))
            .await
            .unwrap()
            .platform(),
        probed
    );
    // An entry for another runsc version is ignored and replaced by a fresh probe.
    let stale = text
        .replacen(&probed, other, 1)
        .replace("version runsc version", "version runsc version 1999");
    std::fs::write(&cache, stale).unwrap();
    assert_eq!(GvisorBackend::new(config(None)).await.unwrap().platform(), probed);
    assert_eq!(std::fs::read_to_string(&cache).unwrap(), text);
    assert!(!state.join("probe").exists());
}

#[tokio::test]
async fn a_sandbox_runs_as_the_sandbox_user_and_leaves_nothing_behind() {
    init_tracing();
    let dir = scratch("gvisor-life-");
    let agent = agent_bundle(&dir.path().join("agent"));
    let image = image(SandboxKind::Shell).await;
    let backend = backend(&dir.path().join("state")).await;
    let spec = spec("life-1", SandboxKind::Shell, &image, &agent);

    let started = Instant::now();
    let sandbox = backend.create(&spec, None).await.unwrap();
    eprintln!("figure: gVisor cold boot (shell image) {:?}", started.elapsed());
    assert!(!sandbox.restored());
    let out = shell(
        sandbox.as_ref(),
        "id -u; id -g; grep CapEff /proc/self/status; touch /etc/x 2>&1; df -B1 /mnt/data | tail -1",
    )
    .await;
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(&lines[..2], &["1000", "1000"], "{out:?}");
    assert!(lines[2].ends_with("0000000000000000"), "{out:?}");
    assert!(
        out.stdout.contains("Read-only") || out.stdout.contains("Permission denied"),
        "{out:?}"
    );
    assert!(
        lines
            .last()
            .unwrap()
            .contains(&spec.limits.data_bytes.to_string()),
        "{out:?}"
    );
    let stats = sandbox.stats().await.unwrap();
    assert!(stats.memory_bytes > 0 && stats.host_pids > 0, "{stats:?}");
    // Started unthrottled, limited once up, with a burst allowance of one period's quota
    // (where the kernel has one).
    assert_eq!(cpu_quota("life-1"), Some(100_000));
    if std::path::Path::new("/sys/fs/cgroup/cpu/cpu.cfs_burst_us").exists() {
        assert_eq!(sandpool_testkit::cpu_burst("life-1"), Some(100_000));
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
async fn restored_sandboxes_are_independent() {
    init_tracing();
    let dir = scratch("gvisor-tpl-");
    let agent = agent_bundle(&dir.path().join("agent"));
    let image = image(SandboxKind::Python).await;
    let backend = backend(&dir.path().join("state")).await;

    let started = Instant::now();
    let cold = backend
        .create(&spec("cold-1", SandboxKind::Python, &image, &agent), None)
        .await
        .unwrap();
    let first = execute(cold.as_ref(), "import numpy, pandas; 1 + 1").await;
    eprintln!(
        "figure: gVisor cold boot + first cell importing numpy and pandas {:?}",
        started.elapsed()
    );
    assert_eq!(value(&first), "2");
    cold.destroy().await.unwrap();

    let warm = vec!["numpy".to_string(), "pandas".to_string(), "random".to_string()];
    let started = Instant::now();
    let template = backend
        .build_template(&spec("tpl", SandboxKind::Python, &image, &agent), &warm)
        .await
        .unwrap();
    eprintln!("figure: gVisor template build {:?}", started.elapsed());
    assert!(template.path.join("checkpoint.img").is_file());
    let again = backend
        .build_template(&spec("tpl", SandboxKind::Python, &image, &agent), &warm)
        .await
        .unwrap();
    assert_eq!(again, template, "templates are content-addressed");

    let mut sandboxes = Vec::new();
    for id in ["restored-a", "restored-b"] {
        let started = Instant::now();
        let sandbox = backend
            .create(&spec(id, SandboxKind::Python, &image, &agent), Some(&template))
            .await
            .unwrap();
        eprintln!("figure: gVisor restore {:?}", started.elapsed());
        assert!(sandbox.restored());
        assert_eq!(
            cpu_quota(id),
            Some(100_000),
            "the CPU limit applies after a restore"
        );
        sandboxes.push(sandbox);
    }
    let (a, b) = (sandboxes[0].as_ref(), sandboxes[1].as_ref());
    let started = Instant::now();
    let ra = value(&execute(a, "import random; random.random()").await);
    eprintln!("figure: first cell after restore {:?}", started.elapsed());
    let rb = value(&execute(b, "import random; random.random()").await);
    assert_ne!(ra, rb, "restored copies share PRNG state");
    execute(a, "x = 41").await;
    assert_eq!(value(&execute(a, "x + 1").await), "42");
    let in_b = execute(b, "x").await;
    assert_eq!(
        in_b.error.as_ref().map(|e| e.ename.as_str()),
        Some("NameError"),
        "{in_b:?}"
    );
    shell(a, "echo only-a > /mnt/data/mark").await;
    assert_ne!(shell(b, "cat /mnt/data/mark").await.exit_code, 0);

    let wrong = spec("wrong", SandboxKind::Shell, &image, &agent);
    assert!(backend.create(&wrong, Some(&template)).await.is_err());
    assert!(!dir.path().join("state/bundles/wrong").exists());
    for sandbox in &sandboxes {
        sandbox.destroy().await.unwrap();
    }
    assert!(backend.leftovers().await.unwrap().is_empty());
}

#[tokio::test]
async fn running_out_of_memory_is_reported_as_such() {
    init_tracing();
    let dir = scratch("gvisor-oom-");
    let agent = agent_bundle(&dir.path().join("agent"));
    let image = image(SandboxKind::Python).await;
    let backend = backend(&dir.path().join("state")).await;
    let mut spec = spec("oom-1", SandboxKind::Python, &image, &agent);
    spec.limits.memory_bytes = 384 << 20;
    let sandbox = backend.create(&spec, None).await.unwrap();
    let hog = sandpool_proto::Request::Execute {
        code: "blocks = [bytearray(16 << 20) for _ in range(64)]".into(),
        timeout_ms: 60_000,
    };
    let _ = tokio::time::timeout(CALL_TIMEOUT, sandbox.agent().call(hog)).await;
    let reason = tokio::time::timeout(Duration::from_secs(60), sandbox.wait_exit()).await;
    sandbox.destroy().await.unwrap();
    assert_eq!(reason.unwrap(), ExitReason::OutOfMemory);
    assert!(cgroup_dirs("oom-1").is_empty());
}

#[tokio::test]
async fn leftovers_of_a_previous_run_are_found_and_removed() {
    init_tracing();
    let dir = scratch("gvisor-left-");
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

#[tokio::test]
async fn processes_and_data_are_limited_inside_the_sandbox() {
    init_tracing();
    let dir = scratch("gvisor-limits-");
    let agent = agent_bundle(&dir.path().join("agent"));
    let image = image(SandboxKind::Python).await;
    let backend = backend(&dir.path().join("state")).await;
    let mut spec = spec("limits-1", SandboxKind::Python, &image, &agent);
    spec.limits.max_processes = 32;
    spec.limits.data_bytes = 8 << 20;
    let sandbox = backend.create(&spec, None).await.unwrap();

    // RLIMIT_NPROC, counted by the sandbox kernel for this sandbox only.
    let forks = shell(
        sandbox.as_ref(),
        "python3 -c '\nimport os, signal, time\nkids = []\nfor _ in range(64):\n    try:\n        pid = os.fork()\n    except OSError:\n        break\n    if pid == 0:\n        time.sleep(30)\n        os._exit(0)\n    kids.append(pid)\nprint(len(kids))\nfor k in kids:\n    os.kill(k, signal.SIGKILL)\n    os.waitpid(k, 0)\n'",
    )
    .await;
    let forked: u32 = forks.stdout.trim().parse().unwrap_or(u32::MAX);
    assert!(forked > 0 && forked < 32, "{forks:?}");

    // The sandbox kernel's tmpfs honours `size=`.
    let fill = shell(
        sandbox.as_ref(),
        "dd if=/dev/zero of=/mnt/data/f bs=1M count=32 2>&1",
    )
    .await;
    assert_ne!(fill.exit_code, 0, "{fill:?}");
    assert!(fill.stdout.contains("No space left"), "{fill:?}");
    assert_eq!(shell(sandbox.as_ref(), "echo alive").await.stdout.trim(), "alive");
    sandbox.destroy().await.unwrap();
    assert!(cgroup_dirs("limits-1").is_empty());
}

/// runsc 20221219 answers coreutils 9.1's `statx` calls with EINVAL; the backend's
/// seccomp rule makes `statx` fail with ENOSYS so glibc falls back to `fstatat`.
#[tokio::test]
async fn long_listings_and_stat_work_in_cold_and_restored_sandboxes() {
    init_tracing();
    let dir = scratch("gvisor-statx-");
    let agent = agent_bundle(&dir.path().join("agent"));
    let image = image(SandboxKind::Python).await;
    let backend = backend(&dir.path().join("state")).await;
    let template = backend
        .build_template(&spec("tpl", SandboxKind::Python, &image, &agent), &[])
        .await
        .unwrap();
    let cold = backend
        .create(&spec("statx-cold", SandboxKind::Python, &image, &agent), None)
        .await
        .unwrap();
    let restored = backend
        .create(
            &spec("statx-warm", SandboxKind::Python, &image, &agent),
            Some(&template),
        )
        .await
        .unwrap();
    for sandbox in [cold.as_ref(), restored.as_ref()] {
        let id = sandbox.id().to_string();
        let out = shell(
            sandbox,
            "touch /mnt/data/f && ls -l /mnt/data && stat -c '%s %U' /etc/hostname /mnt/data/f",
        )
        .await;
        assert_eq!(out.exit_code, 0, "{id}: {out:?}");
        assert!(
            out.stdout.contains("sandbox") && out.stdout.contains(" f\n"),
            "{id}: {out:?}"
        );
        let cell = execute(sandbox, "%ls -la /mnt/data").await;
        assert!(cell.error.is_none(), "{id}: {cell:?}");
        assert!(
            cell.stdout.contains(" f\n") && !cell.stdout.contains("Invalid argument"),
            "{id}: {cell:?}"
        );
        let bang = execute(sandbox, "!ls -la /etc/hostname").await;
        assert!(
            bang.stdout.contains("hostname") && !bang.stdout.contains("Invalid argument"),
            "{id}: {bang:?}"
        );
    }
    cold.destroy().await.unwrap();
    restored.destroy().await.unwrap();
    assert!(backend.leftovers().await.unwrap().is_empty());
}

#[tokio::test]
#[ignore = "benchmark: prints figures"]
async fn channel_throughput_bench() {
    init_tracing();
    let dir = scratch("gvisor-tput-");
    let agent = agent_bundle(&dir.path().join("agent"));
    let image = image(SandboxKind::Shell).await;
    let backend = backend(&dir.path().join("state")).await;
    let mut spec = spec("tput-1", SandboxKind::Shell, &image, &agent);
    spec.limits.data_bytes = 256 << 20;
    let sandbox = backend.create(&spec, None).await.unwrap();
    for chunk in [64usize << 10, 1 << 20, 4 << 20] {
        let total = 32usize << 20;
        let data = vec![7u8; chunk];
        let started = Instant::now();
        for i in 0..total / chunk {
            let r = sandbox
                .agent()
                .call(sandpool_proto::Request::WriteFile {
                    path: "big.bin".into(),
                    data: data.clone(),
                    append: i > 0,
                })
                .await
                .unwrap();
            assert!(matches!(r, sandpool_proto::Response::Done), "{r:?}");
        }
        let took = started.elapsed();
        eprintln!(
            "figure: WriteFile 32 MiB in {} KiB chunks: {:.1} MiB/s",
            chunk >> 10,
            32.0 / took.as_secs_f64()
        );
    }
    let sink = shell(
        sandbox.as_ref(),
        r#"cat > /tmp/sink.py <<'PY'
import socket
s = socket.socket(); s.bind(("127.0.0.1", 7000)); s.listen(4)
while True:
    c, _ = s.accept(); n = 0
    while True:
        b = c.recv(1 << 20)
        if not b: break
        n += len(b)
    c.sendall(str(n).encode()); c.close()
PY
setsid nohup python3 /tmp/sink.py >/dev/null 2>&1 &
for i in $(seq 50); do python3 -c "import socket; socket.create_connection(('127.0.0.1', 7000), 1)" 2>/dev/null && echo up && break; sleep 0.1; done"#,
    )
    .await;
    assert!(sink.stdout.contains("up"), "{sink:?}");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for _ in 0..2 {
        let mut stream = sandbox.agent().connect(7000).await.unwrap();
        let data = vec![7u8; 1 << 20];
        let started = Instant::now();
        for _ in 0..32 {
            stream.write_all(&data).await.unwrap();
        }
        stream.shutdown().await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        let took = started.elapsed();
        assert_eq!(answer, (32usize << 20).to_string());
        eprintln!(
            "figure: AgentStream 32 MiB upload: {:.1} MiB/s",
            32.0 / took.as_secs_f64()
        );
    }
    sandbox.destroy().await.unwrap();
}

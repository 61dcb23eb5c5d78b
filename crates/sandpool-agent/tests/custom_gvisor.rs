//! Custom sandboxes under real gVisor: a workload from the python image reached only
//! through `AgentClient::connect` (no host network into the sandbox): HTTP with hyper,
//! a 50 MB streamed upload with the agent's memory checked, raw TCP with half-close,
//! two sandboxes with their own state, a refused port, and the workload's exit.

use http_body_util::BodyExt;
use hyper::body::{Bytes, Frame};
use sandpool_gvisor::{GvisorBackend, GvisorConfig};
use sandpool_proto::{ErrorKind, Request, Response, WorkloadState};
use sandpool_sandbox::{
    AgentClient, AgentRuntime, AgentStream, Backend, Limits, NetworkPolicy, Sandbox, SandboxError, SandboxId,
    SandboxKind, SandboxSpec, Workload,
};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WAIT: Duration = Duration::from_secs(120);
const UPLOAD_BYTES: u64 = 50 << 20;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// `SANDPOOL_TEST_DATA`, else `<workspace>/target/test-data`.
fn test_data() -> PathBuf {
    let dir = std::env::var_os("SANDPOOL_TEST_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/test-data"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Destroys the sandbox when the test ends, even on failure.
struct Guard(Option<Box<dyn Sandbox>>);

impl Guard {
    fn agent(&self) -> &AgentClient {
        self.0.as_ref().unwrap().agent()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(sandbox) = self.0.take() {
            let handle = tokio::runtime::Handle::current();
            let done = tokio::task::block_in_place(|| {
                handle.block_on(tokio::time::timeout(Duration::from_secs(30), sandbox.destroy()))
            });
            if !matches!(done, Ok(Ok(()))) {
                eprintln!("destroying sandbox {} failed: {done:?}", sandbox.id());
            }
        }
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    backend: GvisorBackend,
    agent: AgentRuntime,
    image: sandpool_image::Image,
}

async fn setup(prefix: &str) -> Setup {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(test_data())
        .unwrap();
    let bundle = dir.path().join("agent");
    sandpool_agent::install_bundle(&bundle, Path::new(env!("CARGO_BIN_EXE_sandpool-agent"))).unwrap();
    std::fs::write(
        bundle.join("test_server.py"),
        include_str!("custom/test_server.py"),
    )
    .unwrap();
    let image = tokio::task::spawn_blocking(|| {
        sandpool_image::ImageStore::new(test_data())
            .ensure(&sandpool_image::recipes::python(), &mut |line| {
                eprintln!("image: {line}")
            })
            .unwrap()
    })
    .await
    .unwrap();
    let platform = std::env::var("SANDPOOL_GVISOR_PLATFORM").unwrap_or_else(|_| "ptrace".into());
    let backend = GvisorBackend::new(GvisorConfig {
        state_dir: dir.path().join("state"),
        runsc: "runsc".into(),
        platform: Some(platform),
    })
    .await
    .unwrap();
    Setup {
        backend,
        agent: AgentRuntime {
            host_dir: bundle,
            argv: vec!["/opt/sandpool/sandpool-agent".into()],
        },
        image,
        _dir: dir,
    }
}

impl Setup {
    /// A custom sandbox running the test server as the image's `sandbox` user.
    async fn boot(&self, id: &str, label: &str) -> Guard {
        let spec = SandboxSpec {
            id: SandboxId::new(id).unwrap(),
            rootfs: self.image.rootfs.clone(),
            image_digest: self.image.digest.clone(),
            kind: SandboxKind::Custom,
            limits: Limits::default(),
            network: NetworkPolicy::Disabled,
            agent: self.agent.clone(),
            env: vec![("LABEL".into(), label.into())],
            workload: Some(Workload {
                argv: vec![
                    "python3".into(),
                    "-u".into(),
                    "/opt/sandpool/test_server.py".into(),
                ],
                env: vec![("PATH".into(), "/opt/venv/bin:/usr/bin:/bin".into())],
                cwd: Some("/opt/sandpool".into()),
                user: Some("sandbox".into()),
            }),
        };
        let started = Instant::now();
        let sandbox = tokio::time::timeout(WAIT, self.backend.create(&spec, None))
            .await
            .expect("sandbox start timed out")
            .unwrap();
        let guard = Guard(Some(sandbox));
        // Ready once the workload accepts connections.
        loop {
            match guard.agent().connect(8000).await {
                Ok(_) => break,
                Err(SandboxError::Agent(e)) if e.kind == ErrorKind::Unreachable => {
                    assert!(started.elapsed() < WAIT, "the workload never listened: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("connect: {e}"),
            }
        }
        eprintln!("figure: custom sandbox {id} ready in {:?}", started.elapsed());
        guard
    }
}

async fn http(stream: AgentStream) -> hyper::client::conn::http1::SendRequest<UploadBody> {
    let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn.with_upgrades());
    sender
}

async fn get(agent: &AgentClient, path: &str) -> String {
    let mut sender = http(agent.connect(8000).await.unwrap()).await;
    let req = hyper::Request::get(path)
        .header("host", "sandbox")
        .body(UploadBody::empty())
        .unwrap();
    let resp = tokio::time::timeout(WAIT, sender.send_request(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

/// A request body generated chunk by chunk, never held whole in memory.
struct UploadBody {
    remaining: u64,
    counter: u64,
}

impl UploadBody {
    fn empty() -> Self {
        UploadBody {
            remaining: 0,
            counter: 0,
        }
    }
    fn next_chunk(&mut self) -> Vec<u8> {
        let n = self.remaining.min(64 << 10) as usize;
        let chunk: Vec<u8> = (0..n).map(|i| ((self.counter + i as u64) % 251) as u8).collect();
        self.counter += n as u64;
        self.remaining -= n as u64;
        chunk
    }
}

impl hyper::body::Body for UploadBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(self.next_chunk())))))
    }
    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.remaining)
    }
}

async fn shell(agent: &AgentClient, command: &str) -> String {
    let req = Request::Shell {
        command: command.into(),
        timeout_ms: 30_000,
    };
    match tokio::time::timeout(WAIT, agent.call(req)).await {
        Ok(Ok(Response::Shell(r))) if r.exit_code == 0 => r.stdout,
        other => panic!("shell {command:?}: {other:?}"),
    }
}

/// Peak resident memory of the agent (PID 1 in the sandbox), in KiB.
async fn agent_peak_rss_kib(agent: &AgentClient) -> u64 {
    let out = shell(agent, "grep -E '^Vm(HWM|RSS)' /proc/1/status").await;
    out.lines()
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .max()
        .unwrap_or_else(|| panic!("no VmHWM/VmRSS in {out:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_workload_is_reached_only_through_the_agent_channel() {
    let setup = setup("custom-http-").await;
    let a = setup.boot("custom-a", "alpha").await;
    let b = setup.boot("custom-b", "beta").await;

    // Each sandbox answers with its own state, as the image's user, in the image's cwd.
    let (ra, rb) = (get(a.agent(), "/").await, get(b.agent(), "/").await);
    assert!(ra.starts_with("label=alpha token="), "{ra}");
    assert!(rb.starts_with("label=beta token="), "{rb}");
    assert!(ra.ends_with("uid=1000 cwd=/opt/sandpool"), "{ra}");
    let token = |r: &str| r.split_whitespace().nth(1).unwrap().to_string();
    assert_ne!(token(&ra), token(&rb));

    // Shell and health still work next to the workload.
    assert_eq!(shell(a.agent(), "id -u").await.trim(), "1000");
    match a.agent().call(Request::Health).await.unwrap() {
        Response::Health(h) => assert!(matches!(h.workload, Some(WorkloadState::Running { .. })), "{h:?}"),
        other => panic!("{other:?}"),
    }

    // 50 MB streamed through with bounded memory in the agent.
    let rss_before = agent_peak_rss_kib(a.agent()).await;
    let mut expected = Sha256::new();
    let mut gen = UploadBody {
        remaining: UPLOAD_BYTES,
        counter: 0,
    };
    while gen.remaining > 0 {
        expected.update(gen.next_chunk());
    }
    let mut sender = http(a.agent().connect(8000).await.unwrap()).await;
    let req = hyper::Request::post("/upload")
        .header("host", "sandbox")
        .body(UploadBody {
            remaining: UPLOAD_BYTES,
            counter: 0,
        })
        .unwrap();
    let started = Instant::now();
    let resp = tokio::time::timeout(WAIT, sender.send_request(req))
        .await
        .unwrap()
        .unwrap();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let took = started.elapsed();
    eprintln!(
        "figure: 50 MiB POST through the agent channel in {took:?} ({:.1} MiB/s)",
        50.0 / took.as_secs_f64()
    );
    assert_eq!(
        String::from_utf8(body.to_vec()).unwrap(),
        format!("bytes={UPLOAD_BYTES} sha256={}", hex::encode(expected.finalize()))
    );
    let rss_after = agent_peak_rss_kib(a.agent()).await;
    eprintln!("figure: agent peak RSS {rss_before} KiB before, {rss_after} KiB after the upload");
    assert!(
        rss_after < rss_before + 16 * 1024,
        "the agent's memory grew from {rss_before} KiB to {rss_after} KiB for a 50 MiB upload"
    );

    // Raw TCP with half-close: everything written comes back, then EOF.
    let mut echo = a.agent().connect(8001).await.unwrap();
    let payload: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    let (mut r, mut w) = tokio::io::split(&mut echo);
    let write = async {
        w.write_all(&payload).await.unwrap();
        w.shutdown().await.unwrap();
    };
    let mut back = Vec::new();
    let read = r.read_to_end(&mut back);
    let (_, read) = tokio::time::timeout(WAIT, async { tokio::join!(write, read) })
        .await
        .unwrap();
    read.unwrap();
    assert!(
        back == payload,
        "echo returned {} of {} bytes",
        back.len(),
        payload.len()
    );
    drop(echo);

    // An HTTP upgrade (as WebSocket uses) hands hyper the raw stream both ways.
    let mut sender = http(a.agent().connect(8000).await.unwrap()).await;
    let req = hyper::Request::get("/upgrade")
        .header("host", "sandbox")
        .header("connection", "upgrade")
        .header("upgrade", "echo")
        .body(UploadBody::empty())
        .unwrap();
    let resp = tokio::time::timeout(WAIT, sender.send_request(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 101);
    let upgraded = tokio::time::timeout(WAIT, hyper::upgrade::on(resp))
        .await
        .unwrap()
        .unwrap();
    let mut raw = hyper_util::rt::TokioIo::new(upgraded);
    for message in [&b"hello"[..], &b"upgraded world"[..]] {
        raw.write_all(message).await.unwrap();
        let mut back = vec![0u8; message.len()];
        tokio::time::timeout(WAIT, raw.read_exact(&mut back))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(back, message);
    }
    drop(raw);

    // A port nobody listens on is a clear error, not a hang.
    match a.agent().connect(8999).await {
        Err(SandboxError::Agent(e)) => {
            assert_eq!(e.kind, ErrorKind::Unreachable);
            assert!(e.message.contains("8999"), "{e}");
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("connected to a closed port"),
    }

    // The workload's exit is reported to the host, and in health checks.
    assert!(a.agent().workload_exit().is_none());
    assert_eq!(get(a.agent(), "/exit").await, "bye");
    let exit = tokio::time::timeout(WAIT, a.agent().workload_exited())
        .await
        .unwrap()
        .expect("the channel closed before the exit was reported");
    assert_eq!(exit.code, Some(7), "{exit:?}");
    match a.agent().call(Request::Health).await.unwrap() {
        Response::Health(h) => assert_eq!(h.workload, Some(WorkloadState::Exited(exit))),
        other => panic!("{other:?}"),
    }
    // The other sandbox is unaffected, and carries 64 concurrent streams.
    assert!(get(b.agent(), "/").await.starts_with("label=beta"));
    let started = Instant::now();
    let clients = (0..64u32).map(|i| {
        let agent = b.agent();
        async move {
            let mut s = agent.connect(8001).await.unwrap();
            let msg = vec![(i % 256) as u8; 100_000 + i as usize];
            s.write_all(&msg).await.unwrap();
            s.shutdown().await.unwrap();
            let mut back = Vec::new();
            s.read_to_end(&mut back).await.unwrap();
            back == msg
        }
    });
    let results = tokio::time::timeout(WAIT, futures_join_all(clients))
        .await
        .unwrap();
    assert!(results.iter().all(|ok| *ok), "{results:?}");
    eprintln!(
        "figure: 64 concurrent 100 kB echo streams in {:?}",
        started.elapsed()
    );
    let threads = shell(b.agent(), "grep Threads /proc/1/status").await;
    eprintln!("figure: agent threads after 64 streams: {}", threads.trim());
}

/// Runs futures concurrently on this task and collects their outputs in order.
async fn futures_join_all<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futures {
        set.push(Box::pin(f));
    }
    let mut out: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, f) in out.iter_mut().zip(set.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *slot = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(Option::unwrap).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_that_cannot_start_is_reported() {
    let setup = setup("custom-bad-").await;
    let spec = SandboxSpec {
        id: SandboxId::new("custom-missing").unwrap(),
        rootfs: setup.image.rootfs.clone(),
        image_digest: setup.image.digest.clone(),
        kind: SandboxKind::Custom,
        limits: Limits::default(),
        network: NetworkPolicy::Disabled,
        agent: setup.agent.clone(),
        env: vec![],
        workload: Some(Workload {
            argv: vec!["/no/such/program".into()],
            env: vec![],
            cwd: None,
            user: None,
        }),
    };
    let sandbox = Guard(Some(
        tokio::time::timeout(WAIT, setup.backend.create(&spec, None))
            .await
            .unwrap()
            .unwrap(),
    ));
    let exit = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(exit) = sandbox.agent().workload_exit() {
                return exit;
            }
            if let Response::Health(h) = sandbox.agent().call(Request::Health).await.unwrap() {
                if let Some(WorkloadState::Exited(exit)) = h.workload {
                    return exit;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap();
    assert!(
        exit.detail.contains("could not start") && exit.detail.contains("/no/such/program"),
        "{exit:?}"
    );
    // Root by default (no image user), without capabilities.
    let out = shell(sandbox.agent(), "id -u; grep CapEff /proc/self/status").await;
    assert!(
        out.starts_with("0\n") && out.trim_end().ends_with("0000000000000000"),
        "{out}"
    );
}

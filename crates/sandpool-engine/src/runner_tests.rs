//! Unit tests of live pool changes with an in-memory backend (no IO, no sandboxes):
//! scale changes move the ready set at once; a new factory rolls ready sandboxes
//! and leaves allocated sessions alone.

use super::*;
use crate::clock::SystemClock;
use crate::recorder::Recorder;
use crate::service::ContainerType;
use async_trait::async_trait;
use sandpool_sandbox::{
    AgentClient, AgentRuntime, Backend, SandboxError, SandboxId, SandboxKind, SandboxSpec, SandboxStats,
    Template,
};
use std::sync::atomic::AtomicUsize;

struct FakeSandbox {
    id: SandboxId,
    memory: u64,
    agent: AgentClient,
    destroyed: tokio::sync::watch::Sender<bool>,
    log: Arc<Mutex<Vec<String>>>,
}

#[async_trait]
impl Sandbox for FakeSandbox {
    fn id(&self) -> &SandboxId {
        &self.id
    }
    fn agent(&self) -> &AgentClient {
        &self.agent
    }
    fn restored(&self) -> bool {
        false
    }
    async fn stats(&self) -> Result<SandboxStats, SandboxError> {
        Ok(SandboxStats::default())
    }
    async fn wait_exit(&self) -> ExitReason {
        let mut rx = self.destroyed.subscribe();
        let _ = rx.wait_for(|d| *d).await;
        ExitReason::Destroyed
    }
    async fn destroy(&self) -> Result<(), SandboxError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("destroy {} {}", self.id, self.memory));
        let _ = self.destroyed.send(true);
        Ok(())
    }
}

/// The far end of a fake agent channel: answers every request with `Done`.
async fn answer_everything(end: tokio::io::DuplexStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut r, mut w) = tokio::io::split(end);
    loop {
        let mut len = [0u8; 4];
        if r.read_exact(&mut len).await.is_err() {
            return;
        }
        let mut payload = vec![0u8; u32::from_be_bytes(len) as usize];
        if r.read_exact(&mut payload).await.is_err() {
            return;
        }
        let Ok(req) = sandpool_proto::decode::<sandpool_proto::Envelope<sandpool_proto::Request>>(&payload)
        else {
            return;
        };
        let frame = sandpool_proto::encode_frame(&sandpool_proto::Envelope {
            id: req.id,
            body: sandpool_proto::Response::Done,
        })
        .unwrap();
        if w.write_all(&frame).await.is_err() {
            return;
        }
    }
}

#[derive(Default)]
struct FakeBackend {
    created: AtomicUsize,
    log: Arc<Mutex<Vec<String>>>,
}

#[async_trait]
impl Backend for FakeBackend {
    fn name(&self) -> &'static str {
        "fake"
    }
    fn supports_checkpoint(&self) -> bool {
        false
    }
    async fn build_template(&self, _: &SandboxSpec, _: &[String]) -> Result<Template, SandboxError> {
        Err(SandboxError::InvalidSpec("no templates".into()))
    }
    async fn create(
        &self,
        spec: &SandboxSpec,
        _: Option<&Template>,
    ) -> Result<Box<dyn Sandbox>, SandboxError> {
        self.created.fetch_add(1, Ordering::SeqCst);
        let (a, b) = tokio::io::duplex(1 << 16);
        tokio::spawn(answer_everything(b));
        let (r, w) = tokio::io::split(a);
        Ok(Box::new(FakeSandbox {
            id: spec.id.clone(),
            memory: spec.limits.memory_bytes,
            agent: AgentClient::new(r, w),
            destroyed: tokio::sync::watch::channel(false).0,
            log: self.log.clone(),
        }))
    }
    async fn leftovers(&self) -> Result<Vec<SandboxId>, SandboxError> {
        Ok(Vec::new())
    }
    async fn remove_leftover(&self, _: &SandboxId) -> Result<(), SandboxError> {
        Ok(())
    }
}

fn factory(backend: &Arc<FakeBackend>, memory_mib: u64) -> SandboxFactory {
    let mut base = SandboxSpec {
        id: SandboxId::new("sp-t-template").unwrap(),
        rootfs: "/nonexistent".into(),
        image_digest: "d".into(),
        kind: SandboxKind::Shell,
        limits: Default::default(),
        network: Default::default(),
        agent: AgentRuntime {
            host_dir: "/nonexistent".into(),
            argv: vec![],
        },
        env: vec![],
        workload: None,
    };
    base.limits.memory_bytes = memory_mib << 20;
    SandboxFactory {
        backend: backend.clone(),
        base,
        template: None,
        custom: None,
    }
}

/// A runner of `spec` on `backend` (256 MiB sandboxes), an in-memory store and the real clock.
fn start_runner(spec: PoolSpec, backend: &Arc<FakeBackend>) -> Arc<PoolRunner> {
    let store = Arc::new(sandpool_store::Store::open_in_memory().unwrap());
    PoolRunner::start(
        spec,
        factory(backend, 256),
        Arc::new(SystemClock),
        Recorder::start(store),
        Arc::new(Metrics::new()),
    )
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_applies_at_once_and_new_templates_roll_only_ready_sandboxes() {
    let backend = Arc::new(FakeBackend::default());
    let mut spec = PoolSpec::with_defaults("t", ContainerType::Shell);
    spec.ready_instances = 2;
    spec.max_concurrent = 5;
    let runner = start_runner(spec.clone(), &backend);
    let counts = |r: &Arc<PoolRunner>| r.lock().core.counts();
    until("2 ready", || counts(&runner).ready == 2).await;

    let id = Identifier::parse("keeper-session").unwrap();
    let lease = runner.acquire(&id, AllocateMode::FailFast).await.unwrap();
    let kept = lease.sandbox.id().clone();
    drop(lease);
    until("refilled", || counts(&runner).ready == 2).await;

    spec.ready_instances = 3;
    runner.reconfigure(spec.clone());
    until("3 ready", || counts(&runner).ready == 3).await;
    spec.ready_instances = 1;
    runner.reconfigure(spec.clone());
    until("1 ready", || {
        counts(&runner).ready == 1 && counts(&runner).deleting == 0
    })
    .await;
    assert_eq!(runner.spec().ready_instances, 1);

    let made_before = backend.created.load(Ordering::SeqCst);
    runner.swap_factory(factory(&backend, 512));
    until("the ready sandbox replaced", || {
        counts(&runner).ready == 1 && backend.created.load(Ordering::SeqCst) == made_before + 1
    })
    .await;
    let st = runner.lock();
    let ready: Vec<u64> = st
        .sandboxes
        .iter()
        .filter(|(_, sb)| sb.id() != &kept)
        .map(|(slot, _)| st.made_by[slot])
        .collect();
    assert_eq!(ready, [1], "every ready sandbox comes from the new factory");
    assert!(
        st.sandboxes.values().any(|sb| sb.id() == &kept),
        "the session keeps its sandbox"
    );
    assert_eq!(st.core.counts().allocated, 1);
    drop(st);
    let log = backend.log.lock().unwrap().clone();
    assert!(log.iter().all(|l| !l.contains(kept.as_str())), "{log:?}");
    assert!(
        log.iter().all(|l| l.ends_with(&(256u64 << 20).to_string())),
        "{log:?}"
    );
}

/// Paused tokio time: it only moves when every task waits for a timer, so the deferral
/// is observed exactly rather than raced against.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn refills_let_the_triggering_request_run_first_but_never_delay_a_waiting_one() {
    let backend = Arc::new(FakeBackend::default());
    let mut spec = PoolSpec::with_defaults("t", ContainerType::Shell);
    spec.ready_instances = 1;
    spec.max_concurrent = 5;
    let runner = start_runner(spec, &backend);
    let counts = |r: &Arc<PoolRunner>| r.lock().core.counts();
    until("1 ready", || counts(&runner).ready == 1).await;
    let created = || backend.created.load(Ordering::SeqCst);
    let before = created();

    let first = Identifier::parse("first-session").unwrap();
    let _first = runner.acquire(&first, AllocateMode::FailFast).await.unwrap();
    tokio::time::sleep(REFILL_DEFER / 2).await;
    assert_eq!(created(), before, "the refill started within the deferral");
    assert_eq!(counts(&runner).ready, 0);

    let waiting_since = tokio::time::Instant::now();
    let second = Identifier::parse("second-session").unwrap();
    let _second = runner.acquire(&second, AllocateMode::FailFast).await.unwrap();
    assert!(
        waiting_since.elapsed() < REFILL_DEFER / 2,
        "a request waiting for a sandbox waited for the deferral ({:?})",
        waiting_since.elapsed()
    );
    assert!(created() > before);
}

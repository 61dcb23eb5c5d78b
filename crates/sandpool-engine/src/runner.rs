//! One running pool: the pool core behind a lock, the sandboxes of its started slots,
//! the requests waiting for a session, and the translation of core actions into tasks.

use crate::clock::Clock;
use crate::custom_spec::Lifecycle;
use crate::factory::{CustomRuntime, SandboxFactory};
use crate::metrics::{AllocationKind, Metrics};
use crate::probe::{self, Decision, Verdict};
use crate::recorder::{Record, Recorder};
use crate::service::{EngineError, SessionInfo, SessionState};
use crate::PoolSpec;
use sandpool_pool::{
    Acquire, Action, AllocateMode, EndReason, Identifier, Millis, PoolConfig, PoolCore, PoolError,
    SessionPhase, SlotId,
};
use sandpool_sandbox::{ExitReason, Sandbox};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{oneshot, Notify};

type Waiter = oneshot::Sender<Result<SlotId, PoolError>>;

/// How long a sandbox start nobody waits for (a refill of the ready set) lets the
/// request that triggered it run first. A restore's first CPU burst (spawning `runsc`,
/// decompressing the checkpoint) on a 2-core machine otherwise lands on the new
/// session's first execution: `service-bench` measured its `print(1)` at 10.7 ms p50
/// with the refill starting at once and 8.6 ms with it deferred by 150 ms.
const REFILL_DEFER: Duration = Duration::from_millis(150);

pub(crate) struct State {
    pub(crate) core: PoolCore,
    pub(crate) sandboxes: HashMap<SlotId, Arc<dyn Sandbox>>,
    /// Which factory generation made each started sandbox.
    made_by: HashMap<SlotId, u64>,
    waiters: HashMap<Identifier, Vec<Waiter>>,
}

pub(crate) struct PoolRunner {
    pub(crate) name: String,
    spec: RwLock<Arc<PoolSpec>>,
    factory: RwLock<Arc<SandboxFactory>>,
    /// Bumped whenever the factory is swapped; older sandboxes are rolled.
    generation: AtomicU64,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
    recorder: Recorder,
    state: Mutex<State>,
    /// Wakes the ticker when the next deadline may have moved.
    pub(crate) wake: Notify,
    origin: Instant,
    wall_origin: SystemTime,
}

/// A session held for the duration of one request: its cooldown does not run while
/// any lease is alive. Dropping the lease releases it.
pub(crate) struct Lease {
    runner: Arc<PoolRunner>,
    identifier: Identifier,
    slot: SlotId,
    pub(crate) sandbox: Arc<dyn Sandbox>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let now = self.runner.millis();
        self.runner.lock().core.release(&self.identifier, self.slot, now);
        self.runner.wake.notify_one();
    }
}

pub(crate) fn core_config(spec: &PoolSpec) -> PoolConfig {
    let mut config = PoolConfig::new(
        spec.ready_instances,
        spec.max_concurrent,
        spec.cooldown,
        spec.allocation_timeout,
    );
    config.max_alive = spec.max_alive;
    config
}

impl PoolRunner {
    pub(crate) fn start(
        spec: PoolSpec,
        factory: SandboxFactory,
        clock: Arc<dyn Clock>,
        recorder: Recorder,
        metrics: Arc<Metrics>,
    ) -> Arc<PoolRunner> {
        let origin = clock.now();
        let wall_origin = clock.wall();
        let outcome = PoolCore::new(core_config(&spec), Millis(0));
        let runner = Arc::new(PoolRunner {
            name: spec.name.clone(),
            spec: RwLock::new(Arc::new(spec)),
            factory: RwLock::new(Arc::new(factory)),
            generation: AtomicU64::new(0),
            metrics,
            clock,
            recorder,
            state: Mutex::new(State {
                core: outcome.value,
                sandboxes: HashMap::new(),
                made_by: HashMap::new(),
                waiters: HashMap::new(),
            }),
            wake: Notify::new(),
            origin,
            wall_origin,
        });
        {
            let mut st = runner.lock();
            runner.apply(&mut st, outcome.actions);
        }
        tokio::spawn(runner.clone().run_ticker());
        runner
    }

    /// The pool's current spec.
    pub(crate) fn spec(&self) -> Arc<PoolSpec> {
        self.spec.read().expect("spec poisoned").clone()
    }

    /// Applies a new spec's sizing and timing at once (the ready set follows now).
    pub(crate) fn reconfigure(self: &Arc<Self>, spec: PoolSpec) {
        let config = core_config(&spec);
        *self.spec.write().expect("spec poisoned") = Arc::new(spec);
        let mut st = self.lock();
        let actions = st.core.reconfigure(config, self.millis());
        self.apply(&mut st, actions);
        drop(st);
        self.wake.notify_one();
    }

    /// Makes sandboxes from `factory` from now on and replaces the ready sandboxes made
    /// by the previous one. Allocated sessions keep their sandboxes until they end.
    pub(crate) fn swap_factory(self: &Arc<Self>, factory: SandboxFactory) {
        *self.factory.write().expect("factory poisoned") = Arc::new(factory);
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let mut st = self.lock();
        let allocated: std::collections::HashSet<SlotId> =
            st.core.sessions().into_iter().filter_map(|s| s.slot).collect();
        let old: Vec<SlotId> = st
            .sandboxes
            .keys()
            .filter(|slot| !allocated.contains(slot))
            .filter(|slot| st.made_by.get(slot).copied().unwrap_or(0) < generation)
            .copied()
            .collect();
        tracing::info!(pool = %self.name, rolled = old.len(), "new sandbox template; replacing ready sandboxes");
        for slot in old {
            let actions = st.core.slot_died(slot, EndReason::Stopped, self.millis());
            self.apply(&mut st, actions);
        }
        drop(st);
        self.wake.notify_one();
    }

    /// Every started sandbox of the pool, ready or allocated.
    pub(crate) fn sandboxes(&self) -> Vec<Arc<dyn Sandbox>> {
        self.lock().sandboxes.values().cloned().collect()
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("pool state poisoned")
    }

    pub(crate) fn millis(&self) -> Millis {
        Millis::from_instant(self.origin, self.clock.now())
    }

    pub(crate) fn wall(&self, t: Millis) -> SystemTime {
        self.wall_origin + Duration::from_millis(t.0)
    }

    pub(crate) fn unix_ms(&self, t: Millis) -> i64 {
        self.wall(t)
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }

    /// The session of `identifier`, allocating one for an unknown identifier (from the
    /// ready set when possible, otherwise waiting for a start, bounded by the pool's
    /// allocation timeout), held until the returned lease is dropped.
    pub(crate) async fn acquire(
        self: &Arc<Self>,
        identifier: &Identifier,
        mode: AllocateMode,
    ) -> Result<Lease, EngineError> {
        let began = Instant::now();
        let waiting = {
            let mut st = self.lock();
            let is_new = st.core.session(identifier).is_none();
            let outcome = st.core.request(identifier, mode, self.millis());
            self.apply(&mut st, outcome.actions);
            match outcome.value {
                Ok(Acquire::Ready { slot }) => {
                    if is_new {
                        self.metrics
                            .allocation(&self.name, AllocationKind::WarmHit, began.elapsed());
                    }
                    return self.hold(&mut st, identifier, slot);
                }
                Ok(Acquire::Wait { .. }) => {
                    let (tx, rx) = oneshot::channel();
                    st.waiters.entry(identifier.clone()).or_default().push(tx);
                    rx
                }
                Err(e) => return Err(self.pool_error(e)),
            }
        };
        self.wake.notify_one();
        let slot = waiting
            .await
            .map_err(|_| EngineError::Internal("the pool stopped while the request waited".into()))?
            .map_err(|e| self.pool_error(e))?;
        let mut st = self.lock();
        let lease = self.hold(&mut st, identifier, slot)?;
        let kind = if lease.sandbox.restored() {
            AllocationKind::Restore
        } else {
            AllocationKind::ColdStart
        };
        self.metrics.allocation(&self.name, kind, began.elapsed());
        Ok(lease)
    }

    fn hold(
        self: &Arc<Self>,
        st: &mut State,
        identifier: &Identifier,
        slot: SlotId,
    ) -> Result<Lease, EngineError> {
        let sandbox = st.sandboxes.get(&slot).cloned();
        match sandbox {
            Some(sandbox) if st.core.hold(identifier, slot, self.millis()) => Ok(Lease {
                runner: self.clone(),
                identifier: identifier.clone(),
                slot,
                sandbox,
            }),
            _ => Err(EngineError::SessionLost(format!(
                "the session of {identifier} ended while the request waited"
            ))),
        }
    }

    fn pool_error(&self, e: PoolError) -> EngineError {
        match e {
            PoolError::AtCapacity { max, retry_after } => EngineError::AtCapacity {
                pool: self.name.clone(),
                max,
                retry_after,
            },
            PoolError::AllocationTimeout {
                waited,
                last_start_error,
            } => {
                if let Some(err) = last_start_error {
                    tracing::warn!(pool = %self.name, error = %err, "allocation timed out after failed starts");
                }
                EngineError::AllocationTimeout {
                    pool: self.name.clone(),
                    waited,
                }
            }
            PoolError::SessionEnded(reason) => EngineError::SessionLost(format!(
                "the session ended ({}) before it was allocated",
                reason.as_str()
            )),
            PoolError::ShuttingDown => EngineError::Internal(format!("pool {} is shutting down", self.name)),
        }
    }

    /// Ends a session with `reason`; false when there was none.
    pub(crate) fn end_session(self: &Arc<Self>, identifier: &Identifier, reason: EndReason) -> bool {
        let mut st = self.lock();
        let outcome = st.core.end_session(identifier, reason, self.millis());
        self.apply(&mut st, outcome.actions);
        outcome.value
    }

    /// Resets an existing session's cooldown; false if unknown.
    pub(crate) fn touch(&self, identifier: &Identifier) -> bool {
        let now = self.millis();
        self.lock().core.touch(identifier, now)
    }

    /// Allocated sessions, as the API shows them.
    pub(crate) fn sessions(&self) -> Vec<SessionInfo> {
        let cooldown = self.spec().cooldown;
        let st = self.lock();
        st.core
            .sessions()
            .into_iter()
            .filter(|s| s.phase == SessionPhase::Allocated)
            .map(|s| {
                let sandbox_id = s
                    .slot
                    .and_then(|slot| st.sandboxes.get(&slot))
                    .map(|sb| sb.id().to_string())
                    .unwrap_or_default();
                SessionInfo {
                    identifier: s.identifier,
                    state: SessionState::Allocated,
                    created_at: self.wall(s.created_at),
                    last_accessed_at: self.wall(s.last_access_at),
                    expires_at: self.wall(s.expires_at.unwrap_or(s.last_access_at.plus(cooldown))),
                    sandbox_id,
                    end_reason: None,
                }
            })
            .collect()
    }

    /// Carries out core actions. Runs under the state lock, so it never blocks: sandbox
    /// work is spawned, history is queued to the recorder.
    pub(crate) fn apply(self: &Arc<Self>, st: &mut State, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::StartSandbox { slot } => {
                    tokio::spawn(self.clone().start_slot(slot));
                }
                Action::DestroySandbox { slot, reason } => {
                    let sandbox = st.sandboxes.remove(&slot);
                    st.made_by.remove(&slot);
                    tracing::debug!(pool = %self.name, %slot, ?reason, "destroying sandbox");
                    tokio::spawn(self.clone().destroy_slot(slot, sandbox));
                }
                Action::NotifyAllocated { identifier, slot } => {
                    let sandbox_id = st
                        .sandboxes
                        .get(&slot)
                        .map(|s| s.id().to_string())
                        .unwrap_or_default();
                    tracing::info!(pool = %self.name, %identifier, sandbox = %sandbox_id, "session allocated");
                    self.recorder.record(Record::SessionStarted {
                        pool: self.name.clone(),
                        identifier: identifier.to_string(),
                        sandbox_id,
                        at: self.unix_ms(self.millis()),
                    });
                    for w in st.waiters.remove(&identifier).unwrap_or_default() {
                        let _ = w.send(Ok(slot));
                    }
                }
                Action::FailWaiters { identifier, error } => {
                    for w in st.waiters.remove(&identifier).unwrap_or_default() {
                        let _ = w.send(Err(error.clone()));
                    }
                }
                Action::SessionEnded {
                    identifier,
                    slot,
                    reason,
                } => {
                    let sandbox_id = st
                        .sandboxes
                        .get(&slot)
                        .map(|s| s.id().to_string())
                        .unwrap_or_default();
                    tracing::info!(pool = %self.name, %identifier, reason = reason.as_str(), "session ended");
                    self.metrics.session_ended(&self.name, reason.as_str());
                    self.recorder.record(Record::SessionEnded {
                        pool: self.name.clone(),
                        identifier: identifier.to_string(),
                        sandbox_id,
                        reason: reason.as_str(),
                        at: self.unix_ms(self.millis()),
                    });
                }
            }
        }
    }

    /// Whether a request of this pool waits for a sandbox now. A waiter registers under
    /// the state lock in the same step that asks for its start, so that start sees it.
    fn waited_for(&self) -> bool {
        !self.lock().waiters.is_empty()
    }

    async fn start_slot(self: Arc<Self>, slot: SlotId) {
        // A start nobody waits for (a refill) lets the request that triggered it run
        // first, then warms up fully; one somebody waits for goes at once with a short
        // warm-up. A request arriving during a deferral gets a start of its own from the
        // core (one per waiting session, within the pool's slot cap).
        let urgent = self.waited_for();
        if !urgent {
            tokio::time::sleep(REFILL_DEFER).await;
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let factory = self.factory.read().expect("factory poisoned").clone();
        let started = factory.start(&self.name, slot, urgent).await;
        let mut st = self.lock();
        let now = self.millis();
        let actions = match started {
            Ok(started) => {
                self.metrics
                    .sandbox_started(&self.name, started.sandbox.restored(), started.took);
                tracing::info!(
                    pool = %self.name, sandbox = %started.sandbox.id(),
                    restored = started.sandbox.restored(), took_ms = started.took.as_millis() as u64,
                    "sandbox ready"
                );
                st.sandboxes.insert(slot, started.sandbox.clone());
                st.made_by.insert(slot, generation);
                if let Some(custom) = factory.custom.clone() {
                    tokio::spawn(self.clone().watch_custom(slot, started.sandbox.clone(), custom));
                }
                tokio::spawn(self.clone().watch_slot(slot, started.sandbox));
                let mut actions = st.core.slot_ready(slot, now);
                let stays_ready = !actions.iter().any(|a| match a {
                    Action::NotifyAllocated { slot: s, .. } | Action::DestroySandbox { slot: s, .. } => {
                        *s == slot
                    }
                    _ => false,
                });
                if stays_ready && generation < self.generation.load(Ordering::SeqCst) {
                    // Started from a template replaced meanwhile: roll it at once.
                    self.apply(&mut st, std::mem::take(&mut actions));
                    actions = st.core.slot_died(slot, EndReason::Stopped, now);
                }
                actions
            }
            Err(e) => {
                self.metrics.sandbox_failed(&self.name, "start-failed");
                tracing::warn!(pool = %self.name, %slot, error = %e, "sandbox failed to start");
                st.core.slot_start_failed(slot, e.to_string(), now)
            }
        };
        self.apply(&mut st, actions);
        drop(st);
        self.wake.notify_one();
    }

    async fn watch_slot(self: Arc<Self>, slot: SlotId, sandbox: Arc<dyn Sandbox>) {
        let reason = match sandbox.wait_exit().await {
            ExitReason::Destroyed => return,
            ExitReason::OutOfMemory => {
                self.metrics.sandbox_failed(&self.name, "oom");
                EndReason::Oom
            }
            ExitReason::Crashed { detail } => {
                tracing::warn!(pool = %self.name, sandbox = %sandbox.id(), %detail, "sandbox died");
                self.metrics.sandbox_failed(&self.name, "crashed");
                EndReason::Crashed
            }
        };
        let mut st = self.lock();
        let actions = st.core.slot_died(slot, reason, self.millis());
        self.apply(&mut st, actions);
        drop(st);
        self.wake.notify_one();
    }

    /// Liveness probe and workload exit of a custom container: either ends the slot's
    /// session (`liveness-failed`; `container-exited` for `OnContainerExit` pools,
    /// `crashed` for `Timed` ones) and replaces the sandbox.
    async fn watch_custom(self: Arc<Self>, slot: SlotId, sandbox: Arc<dyn Sandbox>, custom: CustomRuntime) {
        let agent = sandbox.agent();
        let liveness = async {
            let Some(p) = &custom.liveness else {
                return std::future::pending::<String>().await;
            };
            tokio::time::sleep(p.initial_delay).await;
            let mut verdict = Verdict::default();
            loop {
                let outcome = probe::check_once(agent, &p.check, p.timeout).await;
                if verdict.record(p, outcome.is_ok()) == Decision::Fail {
                    return outcome.err().unwrap_or_default();
                }
                tokio::time::sleep(p.period).await;
            }
        };
        let reason = tokio::select! {
            why = liveness => {
                tracing::warn!(pool = %self.name, sandbox = %sandbox.id(), %why, "liveness probe failed; replacing the container");
                self.metrics.sandbox_failed(&self.name, "liveness-failed");
                EndReason::LivenessFailed
            }
            exit = agent.workload_exited() => {
                let Some(exit) = exit else { return };
                tracing::info!(pool = %self.name, sandbox = %sandbox.id(), detail = %exit.detail, "container exited");
                match custom.lifecycle {
                    Lifecycle::OnContainerExit => EndReason::ContainerExited,
                    Lifecycle::Timed => {
                        self.metrics.sandbox_failed(&self.name, "crashed");
                        EndReason::Crashed
                    }
                }
            }
        };
        let mut st = self.lock();
        if !st.sandboxes.get(&slot).is_some_and(|s| Arc::ptr_eq(s, &sandbox)) {
            return;
        }
        let actions = st.core.slot_died(slot, reason, self.millis());
        self.apply(&mut st, actions);
        drop(st);
        self.wake.notify_one();
    }

    async fn destroy_slot(self: Arc<Self>, slot: SlotId, sandbox: Option<Arc<dyn Sandbox>>) {
        if let Some(sandbox) = sandbox {
            if let Err(e) = sandbox.destroy().await {
                tracing::warn!(pool = %self.name, sandbox = %sandbox.id(), error = %e, "destroy failed");
            }
        }
        let mut st = self.lock();
        let actions = st.core.slot_destroyed(slot, self.millis());
        self.apply(&mut st, actions);
    }

    /// Calls the core's `tick` whenever its next deadline passes (or something changed).
    async fn run_ticker(self: Arc<Self>) {
        loop {
            let next = self.lock().core.next_deadline();
            // A floor keeps a deadline that stays in the past from spinning the loop.
            let sleep = next
                .map(|t| t.since(self.millis()))
                .unwrap_or(Duration::from_secs(60))
                .max(Duration::from_millis(2));
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = self.wake.notified() => {}
            }
            let mut st = self.lock();
            let actions = st.core.tick(self.millis());
            self.apply(&mut st, actions);
            if st.core.is_drained() {
                return;
            }
        }
    }
}

#[cfg(test)]
#[path = "runner_tests.rs"]
mod tests;

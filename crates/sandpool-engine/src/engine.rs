//! The engine: every running pool, and the [`SessionService`] the HTTP layer calls.

use crate::admin::{PoolCodec, ProvisioningState};
use crate::agent_ops;
use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::pool_admin::drain_runners;
use crate::pool_entry::PoolEntry;
use crate::recorder::{Record, Recorder};
use crate::runner::{Lease, PoolRunner};
use crate::service::*;
use crate::PoolSpec;
use async_trait::async_trait;
use sandpool_pool::AllocateMode;
use sandpool_sandbox::Backend;
use sandpool_store::Store;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What the engine is built from.
pub struct EngineConfig {
    pub data_dir: PathBuf,
    /// The executable installed into every sandbox as the agent.
    pub agent_exe: PathBuf,
    /// Available isolation backends; the first is the default.
    pub backends: Vec<Arc<dyn Backend>>,
    pub store: Arc<Store>,
    pub clock: Arc<dyn Clock>,
    /// How pool specs are kept in the store.
    pub codec: Arc<dyn PoolCodec>,
    /// Per-session networks of `EgressEnabled` pools, if the host supports them; used to
    /// apply allow-list changes to running sessions.
    pub network: Option<sandpool_net::NetworkManager>,
}

pub struct Engine {
    pub(crate) config: EngineConfig,
    pub(crate) pools: RwLock<HashMap<String, Arc<PoolEntry>>>,
    pub(crate) recorder: Recorder,
    pub(crate) metrics: Arc<Metrics>,
    /// The engine itself, for background work started from `&self` methods.
    pub(crate) me: Weak<Engine>,
}

/// A prepared pool, for one data-plane request.
struct RunningPool {
    runner: Arc<PoolRunner>,
    metadata: PoolMetadata,
}

/// Extra time past an execution's own timeout before the engine gives up on the agent.
const AGENT_GRACE: Duration = Duration::from_secs(15);

pub(crate) fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub(crate) fn from_unix_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

fn new_execution_id() -> String {
    let b: [u8; 16] = rand::random();
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Runs blocking store work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, sandpool_store::StoreError> + Send + 'static,
) -> Result<T, EngineError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| EngineError::Internal(e.to_string()))?
        .map_err(|e| EngineError::Internal(format!("store: {e}")))
}

impl Engine {
    /// Cleans up what a previous run left, records its open sessions as ended with
    /// `server-restart`, then prepares (images, templates) and starts every pool: the
    /// pools kept in the store, with `pools` (from the config file) upserted over them.
    pub async fn start(config: EngineConfig, pools: Vec<PoolSpec>) -> Result<Arc<Engine>, EngineError> {
        if config.backends.is_empty() {
            return Err(EngineError::Internal("no isolation backend configured".into()));
        }
        for spec in &pools {
            spec.validate()?;
        }
        for backend in &config.backends {
            let leftovers = backend
                .leftovers()
                .await
                .map_err(|e| EngineError::Internal(e.to_string()))?;
            for id in leftovers {
                tracing::info!(backend = backend.name(), sandbox = %id, "removing sandbox left by a previous run");
                if let Err(e) = backend.remove_leftover(&id).await {
                    tracing::warn!(sandbox = %id, error = %e, "could not remove leftover sandbox");
                }
            }
        }
        let now = unix_ms(config.clock.wall());
        let store = config.store.clone();
        let stored = blocking(move || {
            let ended = store.end_all_open("server-restart", now)?;
            let failed = store.fail_running_executions("the server restarted during the execution", now)?;
            if ended + failed > 0 {
                tracing::info!(
                    sessions = ended,
                    executions = failed,
                    "recorded state left by the previous run"
                );
            }
            store.list_pools()
        })
        .await?;

        let recorder = Recorder::start(config.store.clone());
        let engine = Arc::new_cyclic(|me| Engine {
            config,
            pools: RwLock::new(HashMap::new()),
            recorder,
            metrics: Arc::new(Metrics::new()),
            me: me.clone(),
        });
        if let Some(net) = engine.config.network.clone() {
            tokio::spawn(crate::egress_metrics::run(Arc::downgrade(&engine), net));
        }
        let mut specs: Vec<PoolSpec> = Vec::new();
        for record in stored {
            if pools.iter().any(|p| p.name == record.name) {
                continue;
            }
            match engine.config.codec.decode(&record.name, &record.spec) {
                Ok(spec) => specs.push(spec),
                Err(e) => {
                    tracing::error!(pool = %record.name, error = %e, "stored pool definition is invalid; not started")
                }
            }
        }
        for spec in pools {
            engine.persist_pool(&spec).await?;
            specs.push(spec);
        }
        for spec in specs {
            let entry = engine.insert_entry(spec.clone());
            engine.clone().provision(entry, spec, 0).await;
        }
        Ok(engine)
    }

    /// The engine's metrics registry.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Sandbox id to identifier of every allocated session, in every pool.
    pub(crate) fn allocated_sandboxes(&self) -> HashMap<String, String> {
        let runners: Vec<Arc<PoolRunner>> = self
            .pools
            .read()
            .expect("pools poisoned")
            .values()
            .filter_map(|entry| entry.runner())
            .collect();
        runners
            .iter()
            .flat_map(|runner| runner.sessions())
            .filter(|s| !s.sandbox_id.is_empty())
            .map(|s| (s.sandbox_id, s.identifier.to_string()))
            .collect()
    }

    /// Names of the pools.
    pub fn pool_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .pools
            .read()
            .expect("pools poisoned")
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    }

    /// Ready/pending/allocated counts of a pool.
    pub fn counts(&self, pool: &str) -> Result<sandpool_pool::Counts, EngineError> {
        Ok(self.running(pool)?.runner.lock().core.counts())
    }

    /// Ends every session with `reason` and destroys every sandbox, waiting (bounded) for it.
    pub async fn shutdown(&self, reason: EndReason, within: Duration) {
        let entries: Vec<Arc<PoolEntry>> = self
            .pools
            .write()
            .expect("pools poisoned")
            .drain()
            .map(|(_, p)| p)
            .collect();
        let runners: Vec<Arc<PoolRunner>> = entries.iter().filter_map(|e| e.runner()).collect();
        drain_runners(&runners, reason, within).await;
    }

    fn running(&self, pool: &str) -> Result<Arc<RunningPool>, EngineError> {
        let entry = self
            .pools
            .read()
            .expect("pools poisoned")
            .get(pool)
            .cloned()
            .ok_or_else(|| EngineError::PoolNotFound(pool.to_owned()))?;
        let st = entry.lock();
        match (&st.runner, &st.metadata) {
            (Some(runner), Some(metadata)) => Ok(Arc::new(RunningPool {
                runner: runner.clone(),
                metadata: metadata.clone(),
            })),
            _ => Err(EngineError::PoolNotReady {
                pool: pool.to_owned(),
                state: match st.state {
                    ProvisioningState::Failed => format!(
                        "preparation failed: {}",
                        st.error.as_deref().unwrap_or("unknown error")
                    ),
                    other => other.as_str().to_owned(),
                },
            }),
        }
    }

    async fn lease(&self, pool: &str, id: &Identifier) -> Result<(Arc<RunningPool>, Lease), EngineError> {
        let p = self.running(pool)?;
        let lease = p.runner.acquire(id, allocate_mode(&p.runner.spec())).await?;
        Ok((p, lease))
    }

    async fn run(
        p: &RunningPool,
        lease: &Lease,
        input: ExecutionInput,
        timeout: Duration,
    ) -> Result<ExecutionOutput, EngineError> {
        let timeout = timeout.min(p.runner.spec().max_execution_timeout);
        let agent = lease.sandbox.agent();
        let work = async {
            match (input, p.runner.spec().container_type) {
                (ExecutionInput::Python { code }, ContainerType::PythonLts) => {
                    agent_ops::execute_python(agent, code, timeout)
                        .await
                        .map(ExecutionOutput::Python)
                }
                (ExecutionInput::Shell { command }, _) => agent_ops::run_shell(agent, command, timeout)
                    .await
                    .map(ExecutionOutput::Shell),
                (ExecutionInput::Python { .. }, ctype) => Err(EngineError::WrongPoolType(ctype)),
            }
        };
        tokio::time::timeout(timeout + AGENT_GRACE, work)
            .await
            .map_err(|_| {
                EngineError::Internal(format!(
                    "the sandbox did not answer within {:?}",
                    timeout + AGENT_GRACE
                ))
            })?
    }

    fn finish_record(
        &self,
        pool: &str,
        id: &Identifier,
        execution_id: String,
        created_at: SystemTime,
        result: Result<ExecutionOutput, EngineError>,
        inserted: bool,
    ) -> ExecutionRecord {
        finish_record(
            &self.recorder,
            &self.metrics,
            self.config.clock.as_ref(),
            pool,
            id,
            execution_id,
            created_at,
            result,
            inserted,
        )
    }
}

#[allow(clippy::too_many_arguments)]
fn finish_record(
    recorder: &Recorder,
    metrics: &Metrics,
    clock: &dyn Clock,
    pool: &str,
    id: &Identifier,
    execution_id: String,
    created_at: SystemTime,
    result: Result<ExecutionOutput, EngineError>,
    inserted: bool,
) -> ExecutionRecord {
    let took = clock.wall().duration_since(created_at).unwrap_or_default();
    let (state, output, error) = match result {
        Ok(out) => {
            let ok = match &out {
                ExecutionOutput::Python(r) => r.status == ExecutionStatus::Ok,
                ExecutionOutput::Shell(r) => r.exit_code == 0,
            };
            (
                if ok {
                    ExecutionState::Succeeded
                } else {
                    ExecutionState::Failed
                },
                Some(out),
                None,
            )
        }
        Err(e) => (ExecutionState::Failed, None, Some(e.to_string())),
    };
    metrics.execution(
        pool,
        match state {
            ExecutionState::Succeeded => "succeeded",
            _ if error.is_some() => "error",
            _ => "failed",
        },
        took,
    );
    recorder.record(Record::ExecutionFinished {
        pool: pool.to_owned(),
        identifier: id.to_string(),
        id: execution_id.clone(),
        state: match state {
            ExecutionState::Succeeded => sandpool_store::ExecutionState::Succeeded,
            _ => sandpool_store::ExecutionState::Failed,
        },
        output: output.as_ref().and_then(|o| rmp_serde::to_vec_named(o).ok()),
        error: error.clone(),
        created_at: (!inserted).then(|| unix_ms(created_at)),
        at: unix_ms(clock.wall()),
    });
    ExecutionRecord {
        id: execution_id,
        identifier: id.clone(),
        state,
        output,
        error,
        created_at,
    }
}

#[async_trait]
impl SessionService for Engine {
    async fn pool(&self, pool: &str) -> Result<PoolInfo, EngineError> {
        let p = self.running(pool)?;
        let spec = p.runner.spec();
        Ok(PoolInfo {
            name: spec.name.clone(),
            container_type: spec.container_type,
            max_upload_bytes: spec.max_upload_bytes,
            max_execution_timeout: spec.max_execution_timeout,
        })
    }

    async fn execute(
        &self,
        pool: &str,
        id: &Identifier,
        input: ExecutionInput,
        timeout: Duration,
        execution_id: Option<String>,
    ) -> Result<ExecutionRecord, EngineError> {
        let (p, lease) = self.lease(pool, id).await?;
        let created_at = self.config.clock.wall();
        let result = Self::run(&p, &lease, input, timeout).await;
        drop(lease);
        if let Err(e @ (EngineError::WrongPoolType(_) | EngineError::SessionLost(_))) = result {
            return Err(e);
        }
        Ok(self.finish_record(
            pool,
            id,
            execution_id.unwrap_or_else(new_execution_id),
            created_at,
            result,
            false,
        ))
    }

    async fn submit(
        &self,
        pool: &str,
        id: &Identifier,
        input: ExecutionInput,
        timeout: Duration,
        execution_id: Option<String>,
    ) -> Result<ExecutionRecord, EngineError> {
        let (p, lease) = self.lease(pool, id).await?;
        let execution_id = execution_id.unwrap_or_else(new_execution_id);
        let created_at = self.config.clock.wall();
        let store = self.config.store.clone();
        let (pool_s, id_s, exec_s) = (pool.to_owned(), id.to_string(), execution_id.clone());
        tokio::task::spawn_blocking(move || {
            store.insert_execution(&pool_s, &id_s, &exec_s, unix_ms(created_at))
        })
        .await
        .map_err(|e| EngineError::Internal(e.to_string()))?
        .map_err(|e| match e {
            sandpool_store::StoreError::Conflict { .. } => {
                EngineError::InvalidInput(format!("operation-id: execution {execution_id:?} already exists"))
            }
            other => EngineError::Internal(other.to_string()),
        })?;
        let (recorder, clock, metrics) = (
            self.recorder.clone(),
            self.config.clock.clone(),
            self.metrics.clone(),
        );
        let (pool_s, id_c, exec_c) = (pool.to_owned(), id.clone(), execution_id.clone());
        tokio::spawn(async move {
            let result = Self::run(&p, &lease, input, timeout).await;
            drop(lease);
            finish_record(
                &recorder,
                &metrics,
                clock.as_ref(),
                &pool_s,
                &id_c,
                exec_c,
                created_at,
                result,
                true,
            );
        });
        Ok(ExecutionRecord {
            id: execution_id,
            identifier: id.clone(),
            state: ExecutionState::Running,
            output: None,
            error: None,
            created_at,
        })
    }

    async fn execution(
        &self,
        pool: &str,
        id: &Identifier,
        execution_id: &str,
    ) -> Result<ExecutionRecord, EngineError> {
        self.running(pool)?;
        let store = self.config.store.clone();
        let (pool_s, id_s, exec_s) = (pool.to_owned(), id.to_string(), execution_id.to_owned());
        let rec = tokio::task::spawn_blocking(move || store.get_execution(&pool_s, &id_s, &exec_s))
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))?
            .map_err(|e| EngineError::Internal(e.to_string()))?
            .ok_or_else(|| EngineError::ExecutionNotFound(execution_id.to_owned()))?;
        let output: Option<ExecutionOutput> = match &rec.output {
            Some(bytes) => Some(
                rmp_serde::from_slice(bytes)
                    .map_err(|e| EngineError::Internal(format!("stored output unreadable: {e}")))?,
            ),
            None => None,
        };
        Ok(ExecutionRecord {
            id: rec.id,
            identifier: id.clone(),
            state: match rec.state {
                sandpool_store::ExecutionState::Running => ExecutionState::Running,
                sandpool_store::ExecutionState::Succeeded => ExecutionState::Succeeded,
                _ => ExecutionState::Failed,
            },
            output,
            error: rec.error,
            created_at: UNIX_EPOCH + Duration::from_millis(rec.created_at.max(0) as u64),
        })
    }

    async fn write_file(
        &self,
        pool: &str,
        id: &Identifier,
        path: &str,
        data: Vec<u8>,
    ) -> Result<FileEntry, EngineError> {
        let (p, lease) = self.lease(pool, id).await?;
        let limit = p.runner.spec().max_upload_bytes;
        if data.len() as u64 > limit {
            return Err(EngineError::TooLarge {
                size: data.len() as u64,
                limit,
            });
        }
        agent_ops::write_file(lease.sandbox.agent(), path, data).await
    }

    async fn read_file(&self, pool: &str, id: &Identifier, path: &str) -> Result<Vec<u8>, EngineError> {
        let (p, lease) = self.lease(pool, id).await?;
        agent_ops::read_file(
            lease.sandbox.agent(),
            path,
            p.runner.spec().limits.data_bytes.max(1 << 30),
        )
        .await
    }

    async fn stat_file(&self, pool: &str, id: &Identifier, path: &str) -> Result<FileEntry, EngineError> {
        let (_p, lease) = self.lease(pool, id).await?;
        agent_ops::stat_file(lease.sandbox.agent(), path).await
    }

    async fn list_files(
        &self,
        pool: &str,
        id: &Identifier,
        dir: &str,
        recursive: bool,
    ) -> Result<Vec<FileEntry>, EngineError> {
        let (_p, lease) = self.lease(pool, id).await?;
        agent_ops::list_files(lease.sandbox.agent(), dir, recursive).await
    }

    async fn delete_file(&self, pool: &str, id: &Identifier, path: &str) -> Result<(), EngineError> {
        let (_p, lease) = self.lease(pool, id).await?;
        agent_ops::delete_file(lease.sandbox.agent(), path).await
    }

    async fn session(&self, pool: &str, id: &Identifier) -> Result<SessionInfo, EngineError> {
        let p = self.running(pool)?;
        p.runner.touch(id);
        p.runner
            .sessions()
            .into_iter()
            .find(|s| &s.identifier == id)
            .ok_or_else(|| EngineError::SessionNotFound(id.to_string()))
    }

    async fn end_session(&self, pool: &str, id: &Identifier, reason: EndReason) -> Result<bool, EngineError> {
        Ok(self.running(pool)?.runner.end_session(id, reason))
    }

    async fn list_sessions(&self, pool: &str) -> Result<Vec<SessionInfo>, EngineError> {
        Ok(self.running(pool)?.runner.sessions())
    }

    async fn metadata(&self, pool: &str) -> Result<PoolMetadata, EngineError> {
        Ok(self.running(pool)?.metadata.clone())
    }

    async fn connect(&self, pool: &str, id: &Identifier) -> Result<SessionConnection, EngineError> {
        let p = self.running(pool)?;
        let spec = p.runner.spec();
        let Some(port) = spec.custom.as_ref().map(|c| c.target_port) else {
            return Err(EngineError::WrongPoolType(spec.container_type));
        };
        let lease = p.runner.acquire(id, allocate_mode(&spec)).await?;
        let stream =
            lease
                .sandbox
                .agent()
                .connect(port)
                .await
                .map_err(|e| EngineError::ContainerUnreachable {
                    port,
                    detail: e.to_string(),
                })?;
        Ok(SessionConnection {
            stream,
            port,
            lease: Box::new(lease),
        })
    }
}

/// How a pool's requests for new identifiers behave at capacity.
fn allocate_mode(spec: &PoolSpec) -> AllocateMode {
    if spec.wait_for_capacity {
        AllocateMode::Wait
    } else {
        AllocateMode::FailFast
    }
}

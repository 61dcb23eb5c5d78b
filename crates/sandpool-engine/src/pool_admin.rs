//! Live pool administration: preparing pools in the background, applying scale
//! changes at once, rolling ready sandboxes to a new template, draining deleted pools,
//! and the store-backed keys, audit log and session history behind [`AdminService`].

use crate::admin::*;
use crate::custom_prepare::prepare_custom_pool;
use crate::engine::{blocking, from_unix_ms, unix_ms, Engine};
use crate::factory::SandboxFactory;
use crate::pool_entry::PoolEntry;
use crate::prepare::{ensure_image, install_agent, prepare_pool};
use crate::runner::PoolRunner;
use crate::service::*;
use crate::PoolSpec;
use async_trait::async_trait;
use sandpool_sandbox::Backend;
use sandpool_sandbox::NetworkPolicy;
use std::sync::Arc;
use std::time::Duration;

/// How long deleting a pool waits for its sandboxes to be gone.
const DELETE_DRAIN: Duration = Duration::from_secs(60);

/// Ends every session of `runners` with `reason` and waits (bounded) until their
/// sandboxes are destroyed.
pub(crate) async fn drain_runners(runners: &[Arc<PoolRunner>], reason: EndReason, within: Duration) {
    for r in runners {
        let mut st = r.lock();
        let actions = st.core.shutdown(reason, r.millis());
        r.apply(&mut st, actions);
    }
    let deadline = tokio::time::Instant::now() + within;
    for r in runners {
        while !r.lock().core.is_drained() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // Let the recorder flush the last session ends.
    tokio::time::sleep(Duration::from_millis(100)).await;
}

fn key_info(r: sandpool_store::ApiKeyRecord) -> ApiKeyInfo {
    ApiKeyInfo {
        id: r.id,
        name: r.name,
        role: r.role,
        created_at: from_unix_ms(r.created_at),
        revoked_at: r.revoked_at.map(from_unix_ms),
    }
}

impl Engine {
    pub(crate) fn backend_for(&self, spec: &PoolSpec) -> Result<Arc<dyn Backend>, EngineError> {
        match &spec.backend {
            None => Ok(self.config.backends[0].clone()),
            Some(name) => self
                .config
                .backends
                .iter()
                .find(|b| b.name() == name)
                .cloned()
                .ok_or_else(|| {
                    let known: Vec<&str> = self.config.backends.iter().map(|b| b.name()).collect();
                    EngineError::InvalidInput(format!(
                        "properties.isolation: unknown or unavailable isolation backend {name:?} (available: {})",
                        known.join(", ")
                    ))
                }),
        }
    }

    pub(crate) async fn persist_pool(&self, spec: &PoolSpec) -> Result<(), EngineError> {
        let text = self.config.codec.encode(spec);
        let (store, name, now) = (
            self.config.store.clone(),
            spec.name.clone(),
            unix_ms(self.config.clock.wall()),
        );
        blocking(move || store.upsert_pool(&name, &text, now).map(drop)).await
    }

    pub(crate) fn insert_entry(&self, spec: PoolSpec) -> Arc<PoolEntry> {
        let entry = Arc::new(PoolEntry::new(spec.clone(), self.config.clock.wall()));
        self.pools
            .write()
            .expect("pools poisoned")
            .insert(spec.name.clone(), entry.clone());
        entry
    }

    /// Image, agent bundle and template for `spec`, and the image's metadata.
    async fn prepare(
        &self,
        spec: &PoolSpec,
        generation: u64,
    ) -> Result<(SandboxFactory, PoolMetadata), EngineError> {
        let backend = self.backend_for(spec)?;
        if spec.container_type == ContainerType::CustomContainer {
            let agent = install_agent(&self.config.data_dir, &self.config.agent_exe)?;
            return prepare_custom_pool(
                spec,
                &self.config.data_dir,
                agent,
                backend,
                generation,
                self.config.clock.wall(),
            )
            .await;
        }
        let image = ensure_image(self.config.data_dir.clone(), spec.container_type).await?;
        let agent = install_agent(&self.config.data_dir, &self.config.agent_exe)?;
        let factory = prepare_pool(spec, &image, agent, backend, generation).await?;
        let metadata = PoolMetadata {
            runtimes: match spec.container_type {
                ContainerType::PythonLts => image
                    .package_version("python3", sandpool_image::PackageKind::Deb)
                    .map(|v| vec![("python".to_owned(), v.to_owned())])
                    .unwrap_or_default(),
                ContainerType::Shell => image
                    .package_version("bash", sandpool_image::PackageKind::Deb)
                    .map(|v| vec![("bash".to_owned(), v.to_owned())])
                    .unwrap_or_default(),
                ContainerType::CustomContainer => Vec::new(),
            },
            packages: image
                .manifest
                .iter()
                .filter(|e| {
                    spec.container_type == ContainerType::Shell || e.kind == sandpool_image::PackageKind::Pip
                })
                .map(|e| (e.name.clone(), e.version.clone()))
                .collect(),
            created_at: self.config.clock.wall(),
        };
        Ok((factory, metadata))
    }

    /// Prepares `spec` (generation `generation` of the entry) and starts the pool, or
    /// swaps the running pool's template; records failure with its reason.
    pub(crate) async fn provision(self: Arc<Self>, entry: Arc<PoolEntry>, spec: PoolSpec, generation: u64) {
        let result = self.prepare(&spec, generation).await;
        let mut st = entry.lock();
        if st.generation != generation || st.state == ProvisioningState::Deleting {
            tracing::info!(pool = %spec.name, "discarding a stale pool preparation");
            return;
        }
        match result {
            Ok((factory, metadata)) => {
                let latest = st.spec.clone();
                match &st.runner {
                    Some(runner) => {
                        runner.reconfigure(latest);
                        runner.swap_factory(factory);
                    }
                    None => {
                        st.runner = Some(PoolRunner::start(
                            latest,
                            factory,
                            self.config.clock.clone(),
                            self.recorder.clone(),
                            self.metrics.clone(),
                        ));
                    }
                }
                st.metadata = Some(metadata);
                st.state = ProvisioningState::Succeeded;
                st.error = None;
                tracing::info!(pool = %spec.name, "pool ready");
            }
            Err(e) => {
                tracing::error!(pool = %spec.name, error = %e, "pool preparation failed");
                st.state = ProvisioningState::Failed;
                st.error = Some(e.to_string());
            }
        }
    }

    fn entry(&self, name: &str) -> Result<Arc<PoolEntry>, EngineError> {
        self.pools
            .read()
            .expect("pools poisoned")
            .get(name)
            .cloned()
            .ok_or_else(|| EngineError::PoolNotFound(name.to_owned()))
    }

    fn me(&self) -> Result<Arc<Engine>, EngineError> {
        self.me
            .upgrade()
            .ok_or_else(|| EngineError::Internal("the engine is shutting down".into()))
    }
}

#[async_trait]
impl AdminService for Engine {
    async fn put_pool(&self, spec: PoolSpec) -> Result<(PoolStatus, bool), EngineError> {
        spec.validate()?;
        self.backend_for(&spec)?;
        let me = self.me()?;
        self.persist_pool(&spec).await?;
        let existing = self
            .pools
            .read()
            .expect("pools poisoned")
            .get(&spec.name)
            .cloned();
        let Some(entry) = existing else {
            let entry = self.insert_entry(spec.clone());
            tracing::info!(pool = %spec.name, "creating pool");
            tokio::spawn(me.provision(entry.clone(), spec, 0));
            return Ok((entry.status(), true));
        };
        {
            let mut st = entry.lock();
            let prepared_for = st.runner.as_ref().map(|r| r.spec());
            let template_changed = match &prepared_for {
                Some(running) => spec.template_differs(running),
                None => spec.template_differs(&st.spec) || st.state == ProvisioningState::Failed,
            };
            st.spec = spec.clone();
            st.updated_at = self.config.clock.wall();
            if template_changed || st.state == ProvisioningState::Failed {
                st.generation += 1;
                st.state = ProvisioningState::InProgress;
                st.error = None;
                tracing::info!(pool = %spec.name, "pool template changed; preparing the new one");
                tokio::spawn(me.provision(entry.clone(), spec.clone(), st.generation));
            }
            if let (Some(runner), Some(net), NetworkPolicy::Enabled(egress)) =
                (&st.runner, &self.config.network, &spec.network)
            {
                // Allow-list changes reach running sessions at once; ready sandboxes are
                // also replaced by the roll below.
                if matches!(&runner.spec().network, NetworkPolicy::Enabled(old) if old != egress) {
                    tokio::spawn(update_egress(net.clone(), runner.sandboxes(), egress.clone()));
                }
            }
            if let Some(runner) = &st.runner {
                // Sizing and timing apply at once; a new template follows when ready.
                let mut live = spec.clone();
                if template_changed {
                    let running = runner.spec();
                    live.container_type = running.container_type;
                    live.limits = running.limits;
                    live.network = running.network.clone();
                    live.backend = running.backend.clone();
                }
                runner.reconfigure(live);
            }
        }
        Ok((entry.status(), false))
    }

    async fn get_pool(&self, name: &str) -> Result<PoolStatus, EngineError> {
        Ok(self.entry(name)?.status())
    }

    async fn list_pools(&self) -> Vec<PoolStatus> {
        let mut entries: Vec<Arc<PoolEntry>> = self
            .pools
            .read()
            .expect("pools poisoned")
            .values()
            .cloned()
            .collect();
        entries.sort_by_key(|e| e.lock().spec.name.clone());
        entries.iter().map(|e| e.status()).collect()
    }

    async fn delete_pool(&self, name: &str) -> Result<(), EngineError> {
        let entry = self
            .pools
            .write()
            .expect("pools poisoned")
            .remove(name)
            .ok_or_else(|| EngineError::PoolNotFound(name.to_owned()))?;
        let runner = {
            let mut st = entry.lock();
            st.state = ProvisioningState::Deleting;
            st.generation += 1;
            st.runner.clone()
        };
        tracing::info!(pool = %name, "deleting pool: draining its sessions");
        if let Some(runner) = runner {
            drain_runners(&[runner], EndReason::PoolDeleted, DELETE_DRAIN).await;
        }
        self.metrics.forget_pool(name);
        let (store, n) = (self.config.store.clone(), name.to_owned());
        blocking(move || store.forget_pool(&n)).await?;
        Ok(())
    }

    async fn pool_sessions(&self, name: &str) -> Result<Vec<SessionInfo>, EngineError> {
        let live = match self.entry(name) {
            Ok(entry) => Some(entry.runner().map(|r| r.sessions()).unwrap_or_default()),
            Err(_) => None,
        };
        let (store, n) = (self.config.store.clone(), name.to_owned());
        let ended =
            blocking(move || store.list_sessions(&n, Some(sandpool_store::SessionState::Ended))).await?;
        if live.is_none() && ended.is_empty() {
            return Err(EngineError::PoolNotFound(name.to_owned()));
        }
        let mut out = live.unwrap_or_default();
        for r in ended {
            let Ok(identifier) = Identifier::parse(&r.identifier) else {
                continue;
            };
            let ended_at = from_unix_ms(r.ended_at.unwrap_or(r.last_access_at));
            out.push(SessionInfo {
                identifier,
                state: SessionState::Ended,
                created_at: from_unix_ms(r.created_at),
                last_accessed_at: from_unix_ms(r.last_access_at),
                expires_at: ended_at,
                sandbox_id: r.sandbox_id,
                end_reason: r.end_reason.as_deref().and_then(EndReason::parse),
            });
        }
        Ok(out)
    }

    async fn create_api_key(&self, name: &str, role: &str) -> Result<(ApiKeyInfo, String), EngineError> {
        if name.is_empty() || name.len() > 100 {
            return Err(EngineError::InvalidInput("name: must be 1-100 characters".into()));
        }
        if !matches!(role, "admin" | "executor" | "metrics") {
            return Err(EngineError::InvalidInput(format!(
                "role: {role:?} is not admin, executor or metrics"
            )));
        }
        let key = format!("sp-{}", hex::encode(rand::random::<[u8; 24]>()));
        let id = format!("key-{}", hex::encode(rand::random::<[u8; 6]>()));
        let now = unix_ms(self.config.clock.wall());
        let (store, n, r, k) = (
            self.config.store.clone(),
            name.to_owned(),
            role.to_owned(),
            key.clone(),
        );
        let record = blocking(move || store.create_api_key(&id, &n, &r, &k, now)).await?;
        Ok((key_info(record), key))
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKeyInfo>, EngineError> {
        let store = self.config.store.clone();
        Ok(blocking(move || store.list_api_keys())
            .await?
            .into_iter()
            .map(key_info)
            .collect())
    }

    async fn revoke_api_key(&self, id: &str) -> Result<bool, EngineError> {
        let (store, id, now) = (
            self.config.store.clone(),
            id.to_owned(),
            unix_ms(self.config.clock.wall()),
        );
        blocking(move || store.revoke_api_key(&id, now)).await
    }

    fn lookup_api_key(&self, key: &str) -> Result<Option<ApiKeyInfo>, EngineError> {
        self.config
            .store
            .lookup_api_key(key)
            .map(|r| r.map(key_info))
            .map_err(|e| EngineError::Internal(format!("store: {e}")))
    }

    async fn audit(&self, actor: &str, action: &str, target: &str, detail: &str) -> Result<(), EngineError> {
        let now = unix_ms(self.config.clock.wall());
        let store = self.config.store.clone();
        let (a, b, c, d) = (
            actor.to_owned(),
            action.to_owned(),
            target.to_owned(),
            detail.to_owned(),
        );
        blocking(move || store.append_audit(now, Some(&a), &b, &c, &d).map(drop)).await
    }

    async fn audit_log(&self, before: Option<i64>, limit: u32) -> Result<Vec<AuditRecord>, EngineError> {
        let store = self.config.store.clone();
        let entries = blocking(move || store.list_audit(before, limit)).await?;
        Ok(entries
            .into_iter()
            .map(|e| AuditRecord {
                seq: e.seq,
                at: from_unix_ms(e.ts),
                actor: e.actor,
                action: e.action,
                target: e.target,
                detail: e.detail,
            })
            .collect())
    }

    fn render_metrics(&self) -> String {
        let entries: Vec<(String, Arc<PoolEntry>)> = self
            .pools
            .read()
            .expect("pools poisoned")
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (name, entry) in entries {
            self.metrics.set_counts(&name, entry.status().counts);
        }
        self.metrics.render()
    }

    fn http_request(&self, method: &str, status: u16) {
        self.metrics.http_request(method, status);
    }
}

/// Applies a pool's new egress allow-list to its running sandboxes.
async fn update_egress(
    net: sandpool_net::NetworkManager,
    sandboxes: Vec<Arc<dyn sandpool_sandbox::Sandbox>>,
    egress: sandpool_sandbox::EgressConfig,
) {
    for sandbox in sandboxes {
        if let Err(e) = net.update_egress(sandbox.id(), &egress).await {
            tracing::warn!(sandbox = %sandbox.id(), error = %e, "applying a new egress allow-list");
        }
    }
}

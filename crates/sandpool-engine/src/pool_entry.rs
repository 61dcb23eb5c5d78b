//! One pool as the engine holds it: the declared spec, where its preparation stands,
//! and (once prepared) its runner and image metadata.

use crate::admin::{PoolStatus, ProvisioningState};
use crate::runner::PoolRunner;
use crate::service::PoolMetadata;
use crate::PoolSpec;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

pub(crate) struct EntryState {
    /// The latest declared spec (the runner follows it once prepared).
    pub(crate) spec: PoolSpec,
    pub(crate) state: ProvisioningState,
    pub(crate) error: Option<String>,
    pub(crate) runner: Option<Arc<PoolRunner>>,
    pub(crate) metadata: Option<PoolMetadata>,
    pub(crate) created_at: SystemTime,
    pub(crate) updated_at: SystemTime,
    /// Bumped by every change that needs a new preparation; a preparation that finds
    /// another generation is stale and discarded.
    pub(crate) generation: u64,
}

pub(crate) struct PoolEntry {
    state: Mutex<EntryState>,
}

impl PoolEntry {
    pub(crate) fn new(spec: PoolSpec, now: SystemTime) -> PoolEntry {
        PoolEntry {
            state: Mutex::new(EntryState {
                spec,
                state: ProvisioningState::InProgress,
                error: None,
                runner: None,
                metadata: None,
                created_at: now,
                updated_at: now,
                generation: 0,
            }),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, EntryState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn runner(&self) -> Option<Arc<PoolRunner>> {
        self.lock().runner.clone()
    }

    pub(crate) fn status(&self) -> PoolStatus {
        let st = self.lock();
        PoolStatus {
            spec: st.spec.clone(),
            state: st.state,
            error: st.error.clone(),
            counts: st
                .runner
                .as_ref()
                .map(|r| r.lock().core.counts())
                .unwrap_or_default(),
            created_at: st.created_at,
            updated_at: st.updated_at,
        }
    }
}

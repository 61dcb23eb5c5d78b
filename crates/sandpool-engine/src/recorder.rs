//! Writes session and execution history to the store off the request path: callers
//! queue a [`Record`] and a background task applies it on a blocking thread.

use sandpool_store::{ExecutionState, NewSession, Store};
use std::sync::Arc;
use tokio::sync::mpsc;

/// One change to record.
#[derive(Debug)]
pub(crate) enum Record {
    SessionStarted {
        pool: String,
        identifier: String,
        sandbox_id: String,
        at: i64,
    },
    SessionEnded {
        pool: String,
        identifier: String,
        sandbox_id: String,
        reason: &'static str,
        at: i64,
    },
    ExecutionFinished {
        pool: String,
        identifier: String,
        id: String,
        state: ExecutionState,
        output: Option<Vec<u8>>,
        error: Option<String>,
        /// Set for executions that were not inserted as running first.
        created_at: Option<i64>,
        at: i64,
    },
}

/// The sending side; cheap to clone.
#[derive(Clone)]
pub(crate) struct Recorder {
    tx: mpsc::UnboundedSender<Record>,
}

impl Recorder {
    pub(crate) fn start(store: Arc<Store>) -> Recorder {
        let (tx, mut rx) = mpsc::unbounded_channel::<Record>();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while let Ok(more) = rx.try_recv() {
                    batch.push(more);
                }
                let store = store.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    for record in batch {
                        if let Err(e) = apply(&store, &record) {
                            tracing::warn!(error = %e, ?record, "could not record state change");
                        }
                    }
                })
                .await;
            }
        });
        Recorder { tx }
    }

    pub(crate) fn record(&self, record: Record) {
        let _ = self.tx.send(record);
    }
}

fn apply(store: &Store, record: &Record) -> Result<(), sandpool_store::StoreError> {
    match record {
        Record::SessionStarted {
            pool,
            identifier,
            sandbox_id,
            at,
        } => store.insert_session(&NewSession {
            pool,
            identifier,
            sandbox_id,
            created_at: *at,
        }),
        Record::SessionEnded {
            pool,
            identifier,
            sandbox_id,
            reason,
            at,
        } => store
            .end_session(pool, identifier, sandbox_id, reason, *at)
            .map(drop),
        Record::ExecutionFinished {
            pool,
            identifier,
            id,
            state,
            output,
            error,
            created_at,
            at,
        } => {
            if let Some(created) = created_at {
                store.insert_execution(pool, identifier, id, *created)?;
            }
            store
                .finish_execution(
                    pool,
                    identifier,
                    id,
                    *state,
                    output.as_deref(),
                    error.as_deref(),
                    *at,
                )
                .map(drop)
        }
    }
}

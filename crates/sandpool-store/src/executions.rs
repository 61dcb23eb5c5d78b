//! Execution records: started as `running`, finished once with an output or an error.

use crate::{Store, StoreError};
use rusqlite::{params, OptionalExtension, Row};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutionState {
    Running,
    Succeeded,
    Failed,
}

impl ExecutionState {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionState::Running => "running",
            ExecutionState::Succeeded => "succeeded",
            ExecutionState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<ExecutionState, StoreError> {
        match s {
            "running" => Ok(ExecutionState::Running),
            "succeeded" => Ok(ExecutionState::Succeeded),
            "failed" => Ok(ExecutionState::Failed),
            _ => Err(StoreError::Corrupt {
                what: "execution state",
                value: s.to_owned(),
            }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionRecord {
    pub pool: String,
    pub identifier: String,
    pub id: String,
    pub state: ExecutionState,
    /// The output as the caller serialised it.
    pub output: Option<Vec<u8>>,
    pub error: Option<String>,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

const COLUMNS: &str = "pool, identifier, id, state, output, error, created_at, finished_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<(ExecutionRecord, String)> {
    let record = ExecutionRecord {
        pool: r.get(0)?,
        identifier: r.get(1)?,
        id: r.get(2)?,
        state: ExecutionState::Running,
        output: r.get(4)?,
        error: r.get(5)?,
        created_at: r.get(6)?,
        finished_at: r.get(7)?,
    };
    Ok((record, r.get(3)?))
}

impl Store {
    /// Records a started execution. `Conflict` if the id is taken in this session.
    pub fn insert_execution(
        &self,
        pool: &str,
        identifier: &str,
        id: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "INSERT INTO executions (pool, identifier, id, state, created_at)
                 VALUES (?1, ?2, ?3, 'running', ?4)",
            )?
            .execute(params![pool, identifier, id, at])
            .map_err(|e| StoreError::conflict_or(e, "execution", id))?;
        Ok(())
    }

    /// Finishes a running execution. False if it does not exist or already finished.
    #[allow(clippy::too_many_arguments)]
    pub fn finish_execution(
        &self,
        pool: &str,
        identifier: &str,
        id: &str,
        state: ExecutionState,
        output: Option<&[u8]>,
        error: Option<&str>,
        at: i64,
    ) -> Result<bool, StoreError> {
        let n = self
            .conn()
            .prepare_cached(
                "UPDATE executions SET state = ?4, output = ?5, error = ?6, finished_at = ?7
             WHERE pool = ?1 AND identifier = ?2 AND id = ?3 AND state = 'running'",
            )?
            .execute(params![pool, identifier, id, state.as_str(), output, error, at])?;
        Ok(n > 0)
    }

    pub fn get_execution(
        &self,
        pool: &str,
        identifier: &str,
        id: &str,
    ) -> Result<Option<ExecutionRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM executions WHERE pool = ?1 AND identifier = ?2 AND id = ?3");
        let row = self
            .conn()
            .query_row(&sql, [pool, identifier, id], from_row)
            .optional()?;
        row.map(|(mut record, state)| {
            record.state = ExecutionState::parse(&state)?;
            Ok(record)
        })
        .transpose()
    }

    /// Fails every running execution with `error` (at start-up, after a restart).
    /// Returns how many there were.
    pub fn fail_running_executions(&self, error: &str, at: i64) -> Result<usize, StoreError> {
        Ok(self.conn().prepare_cached("UPDATE executions SET state = 'failed', error = ?1, finished_at = ?2 WHERE state = 'running'")?.execute(params![error, at])?)
    }
}

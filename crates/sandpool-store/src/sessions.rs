//! Session history: one row per session, open until it ends with a reason.

use crate::{Store, StoreError};
use rusqlite::{params, OptionalExtension, Row};

/// A session's state as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    Allocated,
    Deleting,
    Ended,
}

impl SessionState {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::Allocated => "allocated",
            SessionState::Deleting => "deleting",
            SessionState::Ended => "ended",
        }
    }

    fn parse(s: &str) -> Result<SessionState, StoreError> {
        match s {
            "allocated" => Ok(SessionState::Allocated),
            "deleting" => Ok(SessionState::Deleting),
            "ended" => Ok(SessionState::Ended),
            _ => Err(StoreError::Corrupt {
                what: "session state",
                value: s.to_owned(),
            }),
        }
    }
}

/// A session that has just been allocated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession<'a> {
    pub pool: &'a str,
    pub identifier: &'a str,
    pub sandbox_id: &'a str,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub pool: String,
    pub identifier: String,
    pub sandbox_id: String,
    pub state: SessionState,
    pub created_at: i64,
    pub last_access_at: i64,
    pub ended_at: Option<i64>,
    /// The caller's end-reason string (e.g. `cooldown`).
    pub end_reason: Option<String>,
}

const COLUMNS: &str = "pool, identifier, sandbox_id, state, created_at, last_access_at, ended_at, end_reason";

fn from_row(r: &Row<'_>) -> rusqlite::Result<(SessionRecord, String)> {
    let record = SessionRecord {
        pool: r.get(0)?,
        identifier: r.get(1)?,
        sandbox_id: r.get(2)?,
        state: SessionState::Ended,
        created_at: r.get(4)?,
        last_access_at: r.get(5)?,
        ended_at: r.get(6)?,
        end_reason: r.get(7)?,
    };
    Ok((record, r.get(3)?))
}

fn with_state((mut record, state): (SessionRecord, String)) -> Result<SessionRecord, StoreError> {
    record.state = SessionState::parse(&state)?;
    Ok(record)
}

impl Store {
    /// Records a newly allocated session. `Conflict` if the identifier already has an
    /// open (not ended) session in the pool.
    pub fn insert_session(&self, s: &NewSession<'_>) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "INSERT INTO sessions (pool, identifier, sandbox_id, state, created_at, last_access_at)
                 VALUES (?1, ?2, ?3, 'allocated', ?4, ?4)",
            )?
            .execute(params![s.pool, s.identifier, s.sandbox_id, s.created_at])
            .map_err(|e| StoreError::conflict_or(e, "open session", s.identifier))?;
        Ok(())
    }

    /// Records a request on the open session. False if there is none.
    pub fn touch_session(&self, pool: &str, identifier: &str, at: i64) -> Result<bool, StoreError> {
        let n = self
            .conn()
            .prepare_cached(
                "UPDATE sessions SET last_access_at = max(last_access_at, ?3)
             WHERE pool = ?1 AND identifier = ?2 AND ended_at IS NULL",
            )?
            .execute(params![pool, identifier, at])?;
        Ok(n > 0)
    }

    /// Marks the open session on `sandbox_id` as being deleted. False if there is none.
    pub fn mark_session_deleting(
        &self,
        pool: &str,
        identifier: &str,
        sandbox_id: &str,
    ) -> Result<bool, StoreError> {
        let n = self
            .conn()
            .prepare_cached(
                "UPDATE sessions SET state = 'deleting'
             WHERE pool = ?1 AND identifier = ?2 AND sandbox_id = ?3 AND ended_at IS NULL",
            )?
            .execute(params![pool, identifier, sandbox_id])?;
        Ok(n > 0)
    }

    /// Ends the open session on `sandbox_id` with `reason`. False if there is none (a
    /// newer session of the same identifier, on another sandbox, is left alone).
    pub fn end_session(
        &self,
        pool: &str,
        identifier: &str,
        sandbox_id: &str,
        reason: &str,
        at: i64,
    ) -> Result<bool, StoreError> {
        let n = self
            .conn()
            .prepare_cached(
                "UPDATE sessions SET state = 'ended', ended_at = ?4, end_reason = ?5
             WHERE pool = ?1 AND identifier = ?2 AND sandbox_id = ?3 AND ended_at IS NULL",
            )?
            .execute(params![pool, identifier, sandbox_id, at, reason])?;
        Ok(n > 0)
    }

    /// Ends every open session (all pools) with `reason`, e.g. `server-restart` at
    /// start-up. Returns how many were open.
    pub fn end_all_open(&self, reason: &str, at: i64) -> Result<usize, StoreError> {
        Ok(self
            .conn()
            .prepare_cached(
                "UPDATE sessions SET state = 'ended', ended_at = ?1, end_reason = ?2 WHERE ended_at IS NULL",
            )?
            .execute(params![at, reason])?)
    }

    /// The identifier's open session in the pool, if any.
    pub fn open_session(&self, pool: &str, identifier: &str) -> Result<Option<SessionRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM sessions WHERE pool = ?1 AND identifier = ?2 AND ended_at IS NULL"
        );
        let row = self
            .conn()
            .query_row(&sql, [pool, identifier], from_row)
            .optional()?;
        row.map(with_state).transpose()
    }

    /// The pool's sessions in `state` (all states if `None`), oldest first.
    pub fn list_sessions(
        &self,
        pool: &str,
        state: Option<SessionState>,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let conn = self.conn();
        let sql = format!(
            "SELECT {COLUMNS} FROM sessions WHERE pool = ?1 AND (?2 IS NULL OR state = ?2) ORDER BY id"
        );
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(params![pool, state.map(SessionState::as_str)], from_row)?;
        rows.map(|r| with_state(r?)).collect()
    }

    /// Deletes sessions that ended before `before` and executions that finished before
    /// it. Returns (sessions, executions) deleted.
    pub fn prune_history(&self, before: i64) -> Result<(usize, usize), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let sessions = tx.execute("DELETE FROM sessions WHERE ended_at < ?1", [before])?;
        let executions = tx.execute("DELETE FROM executions WHERE finished_at < ?1", [before])?;
        tx.commit()?;
        Ok((sessions, executions))
    }
}

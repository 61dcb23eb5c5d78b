//! The append-only audit log of administrative actions.

use crate::{Store, StoreError};
use rusqlite::{params, Row};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Position in the log (increasing).
    pub seq: i64,
    pub ts: i64,
    /// Id of the API key that acted, if any.
    pub actor: Option<String>,
    pub action: String,
    pub target: String,
    pub detail: String,
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<AuditEntry> {
    Ok(AuditEntry {
        seq: r.get(0)?,
        ts: r.get(1)?,
        actor: r.get(2)?,
        action: r.get(3)?,
        target: r.get(4)?,
        detail: r.get(5)?,
    })
}

impl Store {
    /// Appends an entry; returns its sequence number.
    pub fn append_audit(
        &self,
        ts: i64,
        actor: Option<&str>,
        action: &str,
        target: &str,
        detail: &str,
    ) -> Result<i64, StoreError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO audit (ts, actor, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![ts, actor, action, target, detail],
        )?;
        Ok(conn.last_insert_rowid())
    }

    /// Up to `limit` entries with `seq` below `before` (all if `None`), newest first:
    /// pass the last `seq` of a page to get the next one.
    pub fn list_audit(&self, before: Option<i64>, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT seq, ts, actor, action, target, detail FROM audit
             WHERE (?1 IS NULL OR seq < ?1) ORDER BY seq DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![before, limit], from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

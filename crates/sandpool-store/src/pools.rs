//! Pool definitions: a name and a spec the caller serialises (opaque to the store).

use crate::{Store, StoreError};
use rusqlite::{params, OptionalExtension, Row};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolRecord {
    pub name: String,
    /// The pool's spec as the caller serialised it.
    pub spec: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl PoolRecord {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<PoolRecord> {
        Ok(PoolRecord {
            name: r.get(0)?,
            spec: r.get(1)?,
            created_at: r.get(2)?,
            updated_at: r.get(3)?,
        })
    }
}

const COLUMNS: &str = "name, spec, created_at, updated_at";

impl Store {
    /// Creates the pool or replaces its spec (keeping its creation time).
    pub fn upsert_pool(&self, name: &str, spec: &str, at: i64) -> Result<PoolRecord, StoreError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO pools (name, spec, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)
             ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at",
            params![name, spec, at],
        )?;
        let sql = format!("SELECT {COLUMNS} FROM pools WHERE name = ?1");
        Ok(conn.query_row(&sql, [name], PoolRecord::from_row)?)
    }

    pub fn get_pool(&self, name: &str) -> Result<Option<PoolRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM pools WHERE name = ?1");
        Ok(self
            .conn()
            .query_row(&sql, [name], PoolRecord::from_row)
            .optional()?)
    }

    /// Every pool, by name.
    pub fn list_pools(&self) -> Result<Vec<PoolRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM pools ORDER BY name"))?;
        let rows = stmt.query_map([], PoolRecord::from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Deletes the pool's definition only, keeping its session and execution history
    /// (a deleted pool's sessions stay listable with their end reason). False if it did
    /// not exist.
    pub fn forget_pool(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.conn().execute("DELETE FROM pools WHERE name = ?1", [name])? > 0)
    }

    /// Deletes the pool with its session and execution history. False if it did not exist.
    pub fn delete_pool(&self, name: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let deleted = tx.execute("DELETE FROM pools WHERE name = ?1", [name])?;
        tx.execute("DELETE FROM sessions WHERE pool = ?1", [name])?;
        tx.execute("DELETE FROM executions WHERE pool = ?1", [name])?;
        tx.commit()?;
        Ok(deleted > 0)
    }
}

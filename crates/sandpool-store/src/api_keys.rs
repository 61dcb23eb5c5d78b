//! API keys: only a SHA-256 of each key is stored; lookups hash the presented key.

use crate::{Store, StoreError};
use rusqlite::{params, OptionalExtension, Row};
use sha2::{Digest, Sha256};

/// An API key as recorded (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub id: String,
    pub name: String,
    /// The caller's role name (e.g. `admin`).
    pub role: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// The SHA-256 of a key, as stored.
pub fn key_hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

const COLUMNS: &str = "id, name, role, created_at, revoked_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<ApiKeyRecord> {
    Ok(ApiKeyRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        role: r.get(2)?,
        created_at: r.get(3)?,
        revoked_at: r.get(4)?,
    })
}

impl Store {
    /// Records a key under `id`, storing only the hash of `key`. `Conflict` if the id
    /// (or, astronomically unlikely, the key) is already known.
    pub fn create_api_key(
        &self,
        id: &str,
        name: &str,
        role: &str,
        key: &str,
        at: i64,
    ) -> Result<ApiKeyRecord, StoreError> {
        self.conn()
            .execute(
                "INSERT INTO api_keys (id, name, role, key_sha256, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, name, role, key_hash(key).as_slice(), at],
            )
            .map_err(|e| StoreError::conflict_or(e, "API key", id))?;
        Ok(ApiKeyRecord {
            id: id.to_owned(),
            name: name.to_owned(),
            role: role.to_owned(),
            created_at: at,
            revoked_at: None,
        })
    }

    /// Every key, revoked ones included, oldest first.
    pub fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM api_keys ORDER BY created_at, id"))?;
        let rows = stmt.query_map([], from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Revokes a key. False if there is no such key or it was already revoked.
    pub fn revoke_api_key(&self, id: &str, at: i64) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            params![id, at],
        )?;
        Ok(n > 0)
    }

    /// The live (not revoked) key whose hash is `hash`.
    pub fn lookup_api_key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<ApiKeyRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE key_sha256 = ?1 AND revoked_at IS NULL");
        Ok(self
            .conn()
            .query_row(&sql, [hash.as_slice()], from_row)
            .optional()?)
    }

    /// The live key a client presented, if it is one.
    pub fn lookup_api_key(&self, key: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.lookup_api_key_by_hash(&key_hash(key))
    }
}

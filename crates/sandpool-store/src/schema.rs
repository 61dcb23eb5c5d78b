//! The schema, as migrations numbered by SQLite's `user_version`.

use crate::StoreError;
use rusqlite::Connection;

/// Migration `i` takes the schema from version `i` to `i + 1`. Append only; never edit one
/// that has shipped.
const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    "CREATE TABLE pools (
        name TEXT PRIMARY KEY NOT NULL,
        spec TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE sessions (
        id INTEGER PRIMARY KEY,
        pool TEXT NOT NULL,
        identifier TEXT NOT NULL,
        sandbox_id TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('allocated', 'deleting', 'ended')),
        created_at INTEGER NOT NULL,
        last_access_at INTEGER NOT NULL,
        ended_at INTEGER,
        end_reason TEXT,
        CHECK ((state = 'ended') = (ended_at IS NOT NULL))
    ) STRICT;
    CREATE UNIQUE INDEX sessions_open ON sessions (pool, identifier) WHERE ended_at IS NULL;
    CREATE INDEX sessions_by_pool_state ON sessions (pool, state);
    CREATE TABLE executions (
        pool TEXT NOT NULL,
        identifier TEXT NOT NULL,
        id TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('running', 'succeeded', 'failed')),
        output BLOB,
        error TEXT,
        created_at INTEGER NOT NULL,
        finished_at INTEGER,
        PRIMARY KEY (pool, identifier, id)
    ) STRICT;
    CREATE INDEX executions_running ON executions (state) WHERE state = 'running';
    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY NOT NULL,
        name TEXT NOT NULL,
        role TEXT NOT NULL,
        key_sha256 BLOB NOT NULL UNIQUE CHECK (length(key_sha256) = 32),
        created_at INTEGER NOT NULL,
        revoked_at INTEGER
    ) STRICT;
    CREATE TABLE audit (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        ts INTEGER NOT NULL,
        actor TEXT,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        detail TEXT NOT NULL
    ) STRICT;
    CREATE INDEX audit_by_ts ON audit (ts);",
];

/// The schema version this build creates and understands.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database up to [`SCHEMA_VERSION`], one transaction per migration.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        let version = index as i64 + 1;
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
        tracing::info!(version, "migrated the database schema");
    }
    Ok(())
}

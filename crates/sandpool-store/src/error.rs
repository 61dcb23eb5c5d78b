//! Why a store operation failed.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database {path}: {source}")]
    Open { path: PathBuf, source: std::io::Error },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the database has schema version {found}, newer than the {supported} this build knows; upgrade sandpool")]
    NewerSchema { found: i64, supported: i64 },
    #[error("{what} {key:?} already exists")]
    Conflict { what: &'static str, key: String },
    #[error("the database holds an invalid {what}: {value:?}")]
    Corrupt { what: &'static str, value: String },
}

impl StoreError {
    /// Maps a uniqueness violation to [`StoreError::Conflict`], anything else to `Sqlite`.
    pub(crate) fn conflict_or(e: rusqlite::Error, what: &'static str, key: &str) -> StoreError {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::ConstraintViolation) => StoreError::Conflict {
                what,
                key: key.to_owned(),
            },
            _ => StoreError::Sqlite(e),
        }
    }
}

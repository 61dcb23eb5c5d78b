//! A database file: WAL mode, private permissions, data surviving a reopen, schema checks.

use sandpool_store::{ExecutionState, NewSession, Store, StoreError, SCHEMA_VERSION};
use std::os::unix::fs::PermissionsExt;

#[test]
fn data_survives_closing_and_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        store.upsert_pool("py", "spec-v1", 1).unwrap();
        store
            .insert_session(&NewSession {
                pool: "py",
                identifier: "alice",
                sandbox_id: "sb-1",
                created_at: 2,
            })
            .unwrap();
        store.insert_execution("py", "alice", "ex-1", 3).unwrap();
        store
            .finish_execution(
                "py",
                "alice",
                "ex-1",
                ExecutionState::Failed,
                None,
                Some("boom"),
                4,
            )
            .unwrap();
        store
            .create_api_key("key-1", "ci", "admin", "secret-value", 5)
            .unwrap();
        store
            .append_audit(6, Some("key-1"), "key.create", "key-1", "")
            .unwrap();
    }
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the database is private to its owner");
    let raw = std::fs::read(&path).unwrap();
    assert!(
        !raw.windows(12).any(|w| w == b"secret-value"),
        "the key itself is never written"
    );

    let store = Store::open(&path).unwrap();
    assert_eq!(store.get_pool("py").unwrap().unwrap().spec, "spec-v1");
    assert_eq!(
        store.open_session("py", "alice").unwrap().unwrap().sandbox_id,
        "sb-1"
    );
    assert_eq!(
        store
            .get_execution("py", "alice", "ex-1")
            .unwrap()
            .unwrap()
            .error
            .as_deref(),
        Some("boom")
    );
    assert_eq!(store.lookup_api_key("secret-value").unwrap().unwrap().id, "key-1");
    assert_eq!(store.list_audit(None, 10).unwrap().len(), 1);
    assert_eq!(store.end_all_open("server-restart", 7).unwrap(), 1);
}

#[test]
fn the_file_is_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let _store = Store::open(&path).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn a_database_from_a_newer_build_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    drop(Store::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(conn);
    match Store::open(&path) {
        Err(StoreError::NewerSchema { found, supported }) => {
            assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION))
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }
}

#[test]
fn a_missing_directory_or_a_non_database_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = Store::open(&dir.path().join("no/such/dir/state.db")).unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(err.to_string().contains("no/such/dir"), "{err}");
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, vec![0x42u8; 8192]).unwrap();
    let err = Store::open(&junk).unwrap_err();
    assert!(matches!(err, StoreError::Sqlite(_)), "{err:?}");
}

#[test]
fn one_store_serves_many_threads() {
    let store = std::sync::Arc::new(Store::open_in_memory().unwrap());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    store
                        .append_audit(i, None, "test", &format!("thread-{t}"), "")
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(store.list_audit(None, 1000).unwrap().len(), 200);
}

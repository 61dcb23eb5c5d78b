//! Executions, API keys and the audit log against a real in-memory SQLite database.

use sandpool_store::{key_hash, ExecutionState, Store, StoreError};

#[test]
fn an_execution_runs_then_finishes_once() {
    let store = Store::open_in_memory().unwrap();
    store.insert_execution("py", "alice", "ex-1", 100).unwrap();
    let dup = store.insert_execution("py", "alice", "ex-1", 101);
    assert!(
        matches!(
            dup,
            Err(StoreError::Conflict {
                what: "execution",
                ..
            })
        ),
        "{dup:?}"
    );
    store.insert_execution("py", "bob1", "ex-1", 101).unwrap(); // ids are per session
    let running = store.get_execution("py", "alice", "ex-1").unwrap().unwrap();
    assert_eq!(
        (running.state, running.output.as_ref(), running.finished_at),
        (ExecutionState::Running, None, None)
    );
    let output = [0x82u8, 0xa1, b'x', 0x00, 0xff];
    assert!(store
        .finish_execution(
            "py",
            "alice",
            "ex-1",
            ExecutionState::Succeeded,
            Some(&output),
            None,
            150
        )
        .unwrap());
    assert!(!store
        .finish_execution(
            "py",
            "alice",
            "ex-1",
            ExecutionState::Failed,
            None,
            Some("late"),
            160
        )
        .unwrap());
    let done = store.get_execution("py", "alice", "ex-1").unwrap().unwrap();
    assert_eq!(done.state, ExecutionState::Succeeded);
    assert_eq!(
        done.output.as_deref(),
        Some(&output[..]),
        "binary output survives byte for byte"
    );
    assert_eq!((done.error, done.finished_at), (None, Some(150)));
    assert_eq!(store.get_execution("py", "alice", "nope").unwrap(), None);
    assert!(!store
        .finish_execution("py", "alice", "nope", ExecutionState::Failed, None, None, 1)
        .unwrap());
}

#[test]
fn running_executions_fail_after_a_restart() {
    let store = Store::open_in_memory().unwrap();
    store.insert_execution("py", "alice", "ex-1", 1).unwrap();
    store.insert_execution("py", "alice", "ex-2", 1).unwrap();
    store
        .finish_execution(
            "py",
            "alice",
            "ex-2",
            ExecutionState::Succeeded,
            Some(b"ok"),
            None,
            2,
        )
        .unwrap();
    assert_eq!(
        store.fail_running_executions("the server restarted", 9).unwrap(),
        1
    );
    let ex = store.get_execution("py", "alice", "ex-1").unwrap().unwrap();
    assert_eq!(
        (ex.state, ex.error.as_deref(), ex.finished_at),
        (ExecutionState::Failed, Some("the server restarted"), Some(9))
    );
    assert_eq!(
        store.get_execution("py", "alice", "ex-2").unwrap().unwrap().state,
        ExecutionState::Succeeded
    );
}

#[test]
fn api_keys_are_stored_as_hashes_and_revoked_keys_stop_working() {
    let store = Store::open_in_memory().unwrap();
    let secret = "sp_live_0123456789abcdef";
    store.create_api_key("key-1", "ci", "admin", secret, 10).unwrap();
    store
        .create_api_key("key-2", "app", "user", "another-secret", 11)
        .unwrap();
    let dup = store.create_api_key("key-1", "again", "user", "third-secret", 12);
    assert!(matches!(dup, Err(StoreError::Conflict { .. })), "{dup:?}");
    let same_secret = store.create_api_key("key-3", "copy", "user", secret, 12);
    assert!(
        matches!(same_secret, Err(StoreError::Conflict { .. })),
        "{same_secret:?}"
    );

    let found = store.lookup_api_key(secret).unwrap().unwrap();
    assert_eq!((found.id.as_str(), found.role.as_str()), ("key-1", "admin"));
    assert_eq!(
        store.lookup_api_key_by_hash(&key_hash(secret)).unwrap(),
        Some(found)
    );
    assert_eq!(store.lookup_api_key("sp_live_wrong").unwrap(), None);
    assert_eq!(store.list_api_keys().unwrap().len(), 2);

    assert!(store.revoke_api_key("key-1", 20).unwrap());
    assert!(!store.revoke_api_key("key-1", 21).unwrap());
    assert!(!store.revoke_api_key("key-404", 21).unwrap());
    assert_eq!(
        store.lookup_api_key(secret).unwrap(),
        None,
        "revoked keys fail closed"
    );
    let listed = store.list_api_keys().unwrap();
    assert_eq!(listed[0].revoked_at, Some(20));
    assert!(store.lookup_api_key("another-secret").unwrap().is_some());
}

#[test]
fn the_audit_log_pages_newest_first() {
    let store = Store::open_in_memory().unwrap();
    for i in 0..5 {
        let actor = (i % 2 == 0).then_some("key-1");
        store
            .append_audit(100 + i, actor, "pool.update", "py", &format!("change {i}"))
            .unwrap();
    }
    let page = store.list_audit(None, 2).unwrap();
    let details: Vec<_> = page.iter().map(|e| e.detail.as_str()).collect();
    assert_eq!(details, ["change 4", "change 3"]);
    assert_eq!(page[0].actor.as_deref(), Some("key-1"));
    assert_eq!(page[1].actor, None);
    let next = store.list_audit(Some(page[1].seq), 10).unwrap();
    assert_eq!(next.iter().map(|e| e.ts).collect::<Vec<_>>(), [102, 101, 100]);
}

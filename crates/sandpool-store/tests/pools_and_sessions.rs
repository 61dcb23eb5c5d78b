//! Pools and sessions against a real in-memory SQLite database.

use sandpool_store::{NewSession, SessionState, Store, StoreError};

fn session<'a>(identifier: &'a str, sandbox_id: &'a str, at: i64) -> NewSession<'a> {
    NewSession {
        pool: "py",
        identifier,
        sandbox_id,
        created_at: at,
    }
}

#[test]
fn pools_upsert_keeps_creation_time_and_delete_takes_history_along() {
    let store = Store::open_in_memory().unwrap();
    let created = store.upsert_pool("py", r#"{"v":1}"#, 100).unwrap();
    assert_eq!((created.created_at, created.updated_at), (100, 100));
    let updated = store.upsert_pool("py", r#"{"v":2}"#, 200).unwrap();
    assert_eq!(
        (updated.spec.as_str(), updated.created_at, updated.updated_at),
        (r#"{"v":2}"#, 100, 200)
    );
    store.upsert_pool("bash", "{}", 300).unwrap();
    let names: Vec<_> = store.list_pools().unwrap().into_iter().map(|p| p.name).collect();
    assert_eq!(names, ["bash", "py"]);
    store.insert_session(&session("alice", "sb-1", 10)).unwrap();
    store.insert_execution("py", "alice", "ex-1", 11).unwrap();
    assert!(store.delete_pool("py").unwrap());
    assert!(!store.delete_pool("py").unwrap());
    assert_eq!(store.get_pool("py").unwrap(), None);
    assert!(store.list_sessions("py", None).unwrap().is_empty());
    assert_eq!(store.get_execution("py", "alice", "ex-1").unwrap(), None);
    assert!(store.get_pool("bash").unwrap().is_some());
}

#[test]
fn a_session_is_inserted_touched_and_ended_once() {
    let store = Store::open_in_memory().unwrap();
    store.insert_session(&session("alice", "sb-1", 1_000)).unwrap();
    let open = store.open_session("py", "alice").unwrap().unwrap();
    assert_eq!(
        (open.state, open.created_at, open.last_access_at),
        (SessionState::Allocated, 1_000, 1_000)
    );
    assert!(store.touch_session("py", "alice", 2_000).unwrap());
    assert!(
        store.touch_session("py", "alice", 1_500).unwrap(),
        "an older touch is a no-op, not an error"
    );
    assert_eq!(
        store.open_session("py", "alice").unwrap().unwrap().last_access_at,
        2_000
    );
    assert!(!store.touch_session("py", "nobody", 2_000).unwrap());

    assert!(store.mark_session_deleting("py", "alice", "sb-1").unwrap());
    assert_eq!(
        store
            .list_sessions("py", Some(SessionState::Deleting))
            .unwrap()
            .len(),
        1
    );
    assert!(
        !store
            .end_session("py", "alice", "sb-other", "cooldown", 3_000)
            .unwrap(),
        "wrong sandbox"
    );
    assert!(store
        .end_session("py", "alice", "sb-1", "cooldown", 3_000)
        .unwrap());
    assert!(
        !store
            .end_session("py", "alice", "sb-1", "stopped", 3_001)
            .unwrap(),
        "ends once"
    );
    assert_eq!(store.open_session("py", "alice").unwrap(), None);
    let ended = store.list_sessions("py", Some(SessionState::Ended)).unwrap();
    assert_eq!(ended.len(), 1);
    assert_eq!(
        (ended[0].ended_at, ended[0].end_reason.as_deref()),
        (Some(3_000), Some("cooldown"))
    );
}

#[test]
fn one_open_session_per_identifier_but_history_is_kept() {
    let store = Store::open_in_memory().unwrap();
    store.insert_session(&session("alice", "sb-1", 1)).unwrap();
    let dup = store.insert_session(&session("alice", "sb-2", 2));
    assert!(matches!(dup, Err(StoreError::Conflict { .. })), "{dup:?}");
    store
        .insert_session(&NewSession {
            pool: "other",
            ..session("alice", "sb-3", 2)
        })
        .unwrap();
    store.end_session("py", "alice", "sb-1", "oom", 3).unwrap();
    store.insert_session(&session("alice", "sb-2", 4)).unwrap();
    let all = store.list_sessions("py", None).unwrap();
    let ids: Vec<_> = all.iter().map(|s| (s.sandbox_id.as_str(), s.state)).collect();
    assert_eq!(
        ids,
        [("sb-1", SessionState::Ended), ("sb-2", SessionState::Allocated)]
    );
    assert_eq!(
        store
            .list_sessions("py", Some(SessionState::Allocated))
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn end_all_open_closes_every_pool_and_pruning_drops_old_history() {
    let store = Store::open_in_memory().unwrap();
    store.insert_session(&session("alice", "sb-1", 1)).unwrap();
    store.insert_session(&session("bob1", "sb-2", 1)).unwrap();
    store
        .insert_session(&NewSession {
            pool: "sh",
            ..session("carol", "sb-3", 1)
        })
        .unwrap();
    store.end_session("py", "bob1", "sb-2", "deleted", 5).unwrap();
    assert_eq!(store.end_all_open("server-restart", 10).unwrap(), 2);
    assert_eq!(store.end_all_open("server-restart", 11).unwrap(), 0);
    let carol = &store.list_sessions("sh", None).unwrap()[0];
    assert_eq!(carol.end_reason.as_deref(), Some("server-restart"));
    assert_eq!(
        store.prune_history(6).unwrap(),
        (1, 0),
        "only bob's session ended before 6"
    );
    assert_eq!(store.list_sessions("py", None).unwrap().len(), 1);
}

//! max_concurrent: failing fast, the opt-in wait queue, and retry-after hints.

use super::*;

#[test]
fn at_max_concurrent_a_new_identifier_fails_at_once_with_a_retry_hint() {
    let mut h = Harness::ready(config(1, 2));
    h.request("alice").unwrap();
    h.finish_starts();
    h.advance(Duration::from_secs(10));
    h.request("bob1").unwrap();
    h.finish_starts();
    h.advance(Duration::from_secs(5));
    let (got, actions) = h.request_mode("carol", AllocateMode::FailFast);
    assert_eq!(
        got,
        Err(PoolError::AtCapacity {
            max: 2,
            retry_after: COOLDOWN - Duration::from_secs(15)
        })
    );
    assert!(actions.is_empty());
    assert!(h.core.session(&id("carol")).is_none());
    // Existing sessions are still served.
    assert!(matches!(h.request("alice"), Ok(Acquire::Ready { .. })));
    // A ready sandbox stays ready: capacity counts sessions, not sandboxes.
    assert_eq!(h.core.counts().ready, 1);
}

#[test]
fn sessions_waiting_for_a_sandbox_count_against_capacity() {
    let mut h = Harness::ready(config(0, 1));
    assert!(matches!(h.request("alice"), Ok(Acquire::Wait { .. })));
    assert!(matches!(
        h.request("bob1"),
        Err(PoolError::AtCapacity { max: 1, .. })
    ));
    assert_eq!(h.starting.len(), 1);
}

#[test]
fn wait_mode_queues_until_a_session_ends() {
    let mut h = Harness::ready(config(1, 1));
    let Ok(Acquire::Ready { slot: alice_slot }) = h.request("alice") else {
        panic!()
    };
    h.finish_starts();
    let (got, actions) = h.request_mode("bob1", AllocateMode::Wait);
    assert_eq!(
        got,
        Ok(Acquire::Wait {
            deadline: h.now.plus(ALLOC_TIMEOUT)
        })
    );
    assert!(actions.is_empty());
    assert_eq!(h.phase_of("bob1"), Some(SessionPhase::Queued));
    assert_eq!(h.core.counts().queued, 1);
    // A second request for the queued identifier joins the same wait.
    assert_eq!(h.request_mode("bob1", AllocateMode::Wait).0, got);
    h.advance(Duration::from_secs(1));
    let out = h.core.end_session(&id("alice"), EndReason::Deleted, h.now);
    assert!(out.value);
    let actions = h.track(out.actions);
    assert!(actions.contains(&Action::SessionEnded {
        identifier: id("alice"),
        slot: alice_slot,
        reason: EndReason::Deleted
    }));
    let bob_slot = h.slot_of("bob1").expect("bob is promoted onto the ready sandbox");
    assert!(actions.contains(&Action::NotifyAllocated {
        identifier: id("bob1"),
        slot: bob_slot
    }));
    assert_eq!(starts(&actions).len(), 1, "the ready set is replenished");
}

#[test]
fn the_wait_queue_is_bounded_in_length_and_time() {
    let mut cfg = config(0, 1);
    cfg.max_queued = 1;
    let mut h = Harness::ready(cfg);
    h.request("alice").unwrap();
    h.finish_starts();
    assert!(matches!(
        h.request_mode("bob1", AllocateMode::Wait).0,
        Ok(Acquire::Wait { .. })
    ));
    let (got, _) = h.request_mode("carol", AllocateMode::Wait);
    assert!(
        matches!(got, Err(PoolError::AtCapacity { max: 1, .. })),
        "queue full: {got:?}"
    );
    h.advance(ALLOC_TIMEOUT);
    let actions = h.tick();
    let retry_after = COOLDOWN - ALLOC_TIMEOUT;
    assert_eq!(
        actions,
        vec![Action::FailWaiters {
            identifier: id("bob1"),
            error: PoolError::AtCapacity { max: 1, retry_after }
        }]
    );
    assert_eq!(h.core.counts().queued, 0);
    assert!(h.core.session(&id("bob1")).is_none());
}

#[test]
fn a_queued_request_is_admitted_when_capacity_grows() {
    let mut h = Harness::ready(config(0, 1));
    h.request("alice").unwrap();
    h.finish_starts();
    h.request_mode("bob1", AllocateMode::Wait).0.unwrap();
    let actions = h.core.reconfigure(config(0, 2), h.now);
    let actions = h.track(actions);
    assert_eq!(starts(&actions).len(), 1);
    assert_eq!(h.phase_of("bob1"), Some(SessionPhase::Allocating));
    h.finish_starts();
    assert_eq!(h.phase_of("bob1"), Some(SessionPhase::Allocated));
}

#[test]
fn lowering_max_concurrent_keeps_live_sessions_and_refuses_new_ones() {
    let mut h = Harness::ready(config(0, 3));
    for who in ["alice", "bob1", "carol"] {
        h.request(who).unwrap();
        h.finish_starts();
    }
    let actions = h.core.reconfigure(config(0, 1), h.now);
    assert!(
        actions.is_empty(),
        "allocated sandboxes are never destroyed: {actions:?}"
    );
    assert_eq!(h.core.counts().allocated, 3);
    assert!(matches!(h.request("dave"), Err(PoolError::AtCapacity { .. })));
    h.core.end_session(&id("alice"), EndReason::Stopped, h.now);
    assert!(
        matches!(h.request("dave"), Err(PoolError::AtCapacity { .. })),
        "still 2 > 1"
    );
}

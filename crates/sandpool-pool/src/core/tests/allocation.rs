//! Allocation: ready set, cold starts, the same-identifier race, replenishment.

use super::*;

#[test]
fn a_new_pool_starts_its_ready_set() {
    let mut h = Harness::starting(config(3, 10));
    assert_eq!(h.starting.len(), 3);
    assert_eq!(h.core.counts().pending, 3);
    h.finish_starts();
    let c = h.core.counts();
    assert_eq!((c.ready, c.pending, c.allocated, c.deleting), (3, 0, 0, 0));
}

#[test]
fn an_unknown_identifier_takes_a_ready_sandbox_at_once_and_the_set_is_replenished() {
    let mut h = Harness::ready(config(2, 10));
    let (got, actions) = h.request_mode("alice", AllocateMode::FailFast);
    let Ok(Acquire::Ready { slot }) = got else {
        panic!("expected a ready slot, got {got:?}")
    };
    assert!(actions.contains(&Action::NotifyAllocated {
        identifier: id("alice"),
        slot
    }));
    assert_eq!(starts(&actions).len(), 1, "one replacement sandbox is started");
    let c = h.core.counts();
    assert_eq!((c.ready, c.pending, c.allocated), (1, 1, 1));
    // The same identifier gets the same sandbox again.
    assert_eq!(h.request("alice"), Ok(Acquire::Ready { slot }));
    assert_eq!(h.core.counts().allocated, 1);
}

#[test]
fn with_nothing_ready_a_request_starts_a_sandbox_and_waits_for_it() {
    let mut h = Harness::ready(config(0, 10));
    let (got, actions) = h.request_mode("alice", AllocateMode::FailFast);
    assert_eq!(
        got,
        Ok(Acquire::Wait {
            deadline: h.now.plus(ALLOC_TIMEOUT)
        })
    );
    let started = starts(&actions);
    assert_eq!(started.len(), 1);
    assert_eq!(h.phase_of("alice"), Some(SessionPhase::Allocating));
    h.advance(Duration::from_millis(300));
    let actions = h.finish_starts();
    assert_eq!(
        actions,
        vec![Action::NotifyAllocated {
            identifier: id("alice"),
            slot: started[0]
        }]
    );
    assert_eq!(h.request("alice"), Ok(Acquire::Ready { slot: started[0] }));
    assert_eq!(h.core.session(&id("alice")).unwrap().last_access_at, h.now);
}

#[test]
fn concurrent_first_requests_for_one_identifier_share_one_sandbox() {
    let mut h = Harness::ready(config(0, 10));
    let (first, a1) = h.request_mode("alice", AllocateMode::FailFast);
    h.advance(Duration::from_millis(10));
    let (second, a2) = h.request_mode("alice", AllocateMode::FailFast);
    assert!(matches!(first, Ok(Acquire::Wait { .. })));
    assert_eq!(first, second, "the second request waits for the same allocation");
    assert_eq!(
        starts(&a1).len() + starts(&a2).len(),
        1,
        "only one sandbox is started"
    );
    let actions = h.finish_starts();
    let notified: Vec<_> = actions
        .iter()
        .filter(|a| matches!(a, Action::NotifyAllocated { .. }))
        .collect();
    assert_eq!(notified.len(), 1);
    assert_eq!(h.core.counts().allocated, 1);
    assert_eq!(h.core.sessions().len(), 1);
}

#[test]
fn waiting_sessions_get_sandboxes_first_come_first_served_and_the_ready_target_is_kept() {
    let mut h = Harness::starting(config(1, 10));
    let first_pending = h.starting[0];
    assert!(matches!(h.request("alice"), Ok(Acquire::Wait { .. })));
    assert!(matches!(h.request("bob1"), Ok(Acquire::Wait { .. })));
    assert_eq!(
        h.core.counts().pending,
        3,
        "one for the ready target and one per waiter"
    );
    let actions = h.core.slot_ready(first_pending, h.now);
    assert_eq!(
        actions,
        vec![Action::NotifyAllocated {
            identifier: id("alice"),
            slot: first_pending
        }]
    );
    h.starting.retain(|s| *s != first_pending);
    h.finish_starts();
    assert_eq!(h.phase_of("bob1"), Some(SessionPhase::Allocated));
    let c = h.core.counts();
    assert_eq!((c.ready, c.pending, c.allocated, c.allocating), (1, 0, 2, 0));
}

#[test]
fn a_waiter_times_out_and_its_late_sandbox_is_not_kept_beyond_the_target() {
    let mut h = Harness::ready(config(0, 10));
    assert!(matches!(h.request("alice"), Ok(Acquire::Wait { .. })));
    h.advance(ALLOC_TIMEOUT - Duration::from_millis(1));
    assert!(h.tick().is_empty(), "not yet");
    h.advance(Duration::from_millis(1));
    let actions = h.tick();
    assert_eq!(
        actions,
        vec![Action::FailWaiters {
            identifier: id("alice"),
            error: PoolError::AllocationTimeout {
                waited: ALLOC_TIMEOUT,
                last_start_error: None
            },
        }]
    );
    assert!(h.core.session(&id("alice")).is_none());
    let actions = h.finish_starts();
    assert!(matches!(destroys(&actions)[..], [(_, DestroyReason::Surplus)]));
}

#[test]
fn failed_starts_back_off_and_the_timeout_quotes_the_failure() {
    let mut h = Harness::ready(config(0, 10));
    h.request("alice").unwrap();
    let slot = h.starting.remove(0);
    let actions = h.core.slot_start_failed(slot, "image missing".into(), h.now);
    assert!(actions.is_empty(), "no immediate retry");
    assert_eq!(
        h.core.next_deadline(),
        Some(h.now.plus(Duration::from_millis(250)))
    );
    h.advance(Duration::from_millis(250));
    assert_eq!(starts(&h.tick()).len(), 1, "retried after the backoff");
    let slot = h.starting.remove(0);
    h.core
        .slot_start_failed(slot, "image still missing".into(), h.now);
    assert_eq!(
        h.core.next_deadline(),
        Some(h.now.plus(Duration::from_millis(500))),
        "doubled"
    );
    h.advance(ALLOC_TIMEOUT);
    let actions = h.tick();
    let failed = actions.iter().find_map(|a| match a {
        Action::FailWaiters { error, .. } => Some(error.clone()),
        _ => None,
    });
    let Some(PoolError::AllocationTimeout {
        ref last_start_error, ..
    }) = failed
    else {
        panic!("{actions:?}")
    };
    assert_eq!(last_start_error.as_deref(), Some("image still missing"));
    assert!(failed.unwrap().to_string().contains("image still missing"));
}

#[test]
fn a_successful_start_resets_the_backoff() {
    let mut h = Harness::starting(config(2, 10));
    let (a, b) = (h.starting[0], h.starting[1]);
    h.starting.clear();
    assert!(h.core.slot_start_failed(a, "flaky".into(), h.now).is_empty());
    let actions = h.core.slot_ready(b, h.now);
    assert_eq!(
        starts(&actions).len(),
        1,
        "the missing sandbox is started without waiting"
    );
    assert_eq!(h.core.last_start_error, None);
    assert_eq!(h.core.start_failures, 0);
}

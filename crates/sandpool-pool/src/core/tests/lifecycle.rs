//! Session ends: cooldown, holds, lifetime, dead sandboxes, explicit ends, scaling, shutdown.

use super::*;

#[test]
fn idle_sessions_end_after_the_cooldown_and_requests_reset_it() {
    let mut h = Harness::ready(config(1, 10));
    let Ok(Acquire::Ready { slot }) = h.request("alice") else {
        panic!()
    };
    h.finish_starts();
    h.advance(COOLDOWN - Duration::from_secs(1));
    assert!(h.tick().is_empty());
    h.request("alice").unwrap(); // touch
    h.advance(COOLDOWN - Duration::from_secs(1));
    assert!(h.tick().is_empty(), "the request reset the cooldown");
    assert_eq!(h.core.next_deadline(), Some(h.now.plus(Duration::from_secs(1))));
    h.advance(Duration::from_secs(1));
    let actions = h.tick();
    assert_eq!(
        actions,
        vec![
            Action::SessionEnded {
                identifier: id("alice"),
                slot,
                reason: EndReason::Cooldown
            },
            Action::DestroySandbox {
                slot,
                reason: DestroyReason::SessionEnded(EndReason::Cooldown)
            },
        ]
    );
    assert_eq!(h.core.counts().deleting, 1);
    assert!(h.core.slot_destroyed(slot, h.now).is_empty());
    let c = h.core.counts();
    assert_eq!((c.ready, c.allocated, c.deleting), (1, 0, 0));
}

#[test]
fn a_held_session_does_not_cool_down_until_released() {
    let mut h = Harness::ready(config(1, 10));
    let Ok(Acquire::Ready { slot }) = h.request("alice") else {
        panic!()
    };
    assert!(h.core.hold(&id("alice"), slot, h.now));
    assert!(!h.core.hold(&id("alice"), SlotId(999), h.now), "wrong slot");
    h.advance(COOLDOWN * 3);
    assert!(h.tick().iter().all(|a| !matches!(a, Action::SessionEnded { .. })));
    assert_eq!(h.core.session(&id("alice")).unwrap().expires_at, None);
    h.core.release(&id("alice"), slot, h.now);
    assert_eq!(
        h.core.session(&id("alice")).unwrap().expires_at,
        Some(h.now.plus(COOLDOWN))
    );
    h.advance(COOLDOWN);
    assert!(h.tick().contains(&Action::SessionEnded {
        identifier: id("alice"),
        slot,
        reason: EndReason::Cooldown
    }));
    assert!(!h.core.hold(&id("alice"), slot, h.now), "the session is gone");
}

#[test]
fn sessions_end_at_their_maximum_lifetime_even_when_busy() {
    let mut cfg = config(0, 10);
    cfg.max_alive = Some(Duration::from_secs(30));
    let mut h = Harness::ready(cfg);
    h.request("alice").unwrap();
    h.finish_starts();
    let slot = h.slot_of("alice").unwrap();
    h.core.hold(&id("alice"), slot, h.now);
    h.advance(Duration::from_secs(30));
    assert_eq!(
        h.tick()[0],
        Action::SessionEnded {
            identifier: id("alice"),
            slot,
            reason: EndReason::MaxAlive
        }
    );
}

#[test]
fn a_dead_sandbox_ends_its_session_with_the_reason_and_is_replaced() {
    let mut h = Harness::ready(config(1, 10));
    let Ok(Acquire::Ready { slot }) = h.request("alice") else {
        panic!()
    };
    h.finish_starts();
    let actions = h.core.slot_died(slot, EndReason::Oom, h.now);
    let actions = h.track(actions);
    assert_eq!(
        actions,
        vec![
            Action::SessionEnded {
                identifier: id("alice"),
                slot,
                reason: EndReason::Oom
            },
            Action::DestroySandbox {
                slot,
                reason: DestroyReason::SessionEnded(EndReason::Oom)
            },
        ]
    );
    assert!(h.core.session(&id("alice")).is_none());
    assert!(
        h.core.slot_died(slot, EndReason::Crashed, h.now).is_empty(),
        "reported twice"
    );
    // The next request gets a fresh session on another sandbox.
    let Ok(Acquire::Ready { slot: again }) = h.request("alice") else {
        panic!()
    };
    assert_ne!(again, slot);
    // A ready sandbox that dies is cleaned up and replaced.
    h.finish_starts();
    let ready = *h
        .core
        .slots
        .iter()
        .find(|(_, s)| **s == SlotState::Ready)
        .unwrap()
        .0;
    let actions = h.core.slot_died(ready, EndReason::Crashed, h.now);
    assert_eq!(
        destroys(&actions),
        vec![(ready, DestroyReason::Died(EndReason::Crashed))]
    );
    assert_eq!(starts(&actions).len(), 1);
}

#[test]
fn a_sandbox_that_vanishes_ends_its_session_as_crashed_without_a_destroy() {
    let mut h = Harness::ready(config(0, 10));
    h.request("alice").unwrap();
    h.finish_starts();
    let slot = h.slot_of("alice").unwrap();
    let actions = h.core.slot_destroyed(slot, h.now);
    assert_eq!(
        actions,
        vec![Action::SessionEnded {
            identifier: id("alice"),
            slot,
            reason: EndReason::Crashed
        }]
    );
    assert!(h.core.slots.is_empty());
}

#[test]
fn ending_a_waiting_session_fails_its_waiters() {
    let mut h = Harness::ready(config(0, 10));
    h.request("alice").unwrap();
    let out = h.core.end_session(&id("alice"), EndReason::Deleted, h.now);
    assert!(out.value);
    assert_eq!(
        out.actions,
        vec![Action::FailWaiters {
            identifier: id("alice"),
            error: PoolError::SessionEnded(EndReason::Deleted)
        }]
    );
    assert!(!h.core.end_session(&id("alice"), EndReason::Deleted, h.now).value);
    assert_eq!(h.core.counts().allocating, 0);
}

#[test]
fn scaling_up_starts_sandboxes_and_scaling_down_destroys_only_ready_ones() {
    let mut h = Harness::ready(config(1, 10));
    h.request("alice").unwrap();
    h.finish_starts();
    let actions = h.core.reconfigure(config(3, 10), h.now);
    let actions = h.track(actions);
    assert_eq!(starts(&actions).len(), 2);
    h.finish_starts();
    assert_eq!(h.core.counts().ready, 3);
    let actions = h.core.reconfigure(config(1, 10), h.now);
    let destroyed = destroys(&actions);
    assert_eq!(destroyed.len(), 2);
    assert!(destroyed.iter().all(|(_, r)| *r == DestroyReason::Surplus));
    assert!(destroyed.iter().all(|(s, _)| Some(*s) != h.slot_of("alice")));
    let c = h.core.counts();
    assert_eq!((c.ready, c.allocated, c.deleting), (1, 1, 2));
}

#[test]
fn scaling_down_while_sandboxes_start_destroys_the_surplus_when_it_comes_up() {
    let mut h = Harness::starting(config(3, 10));
    assert!(
        h.core.reconfigure(config(1, 10), h.now).is_empty(),
        "starting sandboxes are not cancelled"
    );
    let actions = h.finish_starts();
    assert_eq!(destroys(&actions).len(), 2);
    assert_eq!(h.core.counts().ready, 1);
}

#[test]
fn shutdown_ends_everything_and_refuses_new_requests() {
    let mut h = Harness::ready(config(1, 10));
    h.request("alice").unwrap();
    let alice = h.slot_of("alice").unwrap();
    h.core.reconfigure(config(0, 10), h.now); // leaves one pending from the replenish
    h.request("bob1").unwrap(); // waits for a sandbox
    let actions = h.core.shutdown(EndReason::PoolDeleted, h.now);
    assert!(actions.contains(&Action::SessionEnded {
        identifier: id("alice"),
        slot: alice,
        reason: EndReason::PoolDeleted
    }));
    assert!(actions.contains(&Action::FailWaiters {
        identifier: id("bob1"),
        error: PoolError::ShuttingDown
    }));
    assert_eq!(h.request("carol"), Err(PoolError::ShuttingDown));
    assert!(h.core.sessions().is_empty());
    let late = h.finish_starts();
    assert!(!late.is_empty() && destroys(&late).iter().all(|(_, r)| *r == DestroyReason::Shutdown));
    assert!(starts(&late).is_empty());
    assert!(!h.core.is_drained());
    let gone: Vec<SlotId> = h.core.slots.keys().copied().collect();
    for slot in gone {
        h.core.slot_destroyed(slot, h.now);
    }
    assert!(h.core.is_drained());
    assert!(h.tick().is_empty());
}

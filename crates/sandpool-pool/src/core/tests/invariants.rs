//! Random operation sequences (seeded, reproducible) checked against the core's invariants.

use super::*;

/// xorshift64*: a tiny deterministic generator, so failures replay from the seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

fn check(h: &Harness, seed: u64, step: usize, max_seen: u32) {
    let core = &h.core;
    let ctx = format!(
        "seed {seed} step {step}: {:?} {:?} {:?}",
        core.counts(),
        core.config,
        core.slots
    );
    let c = core.counts();
    // Every allocated slot and session point at each other.
    for (slot, state) in &core.slots {
        if let SlotState::Allocated(who) = state {
            let s = core
                .sessions
                .get(who)
                .unwrap_or_else(|| panic!("{ctx}: orphan slot {slot}"));
            assert_eq!(s.phase, Phase::Allocated { slot: *slot }, "{ctx}");
        }
    }
    for (who, s) in &core.sessions {
        match s.phase {
            Phase::Allocated { slot } => {
                assert_eq!(
                    core.slots.get(&slot),
                    Some(&SlotState::Allocated(who.clone())),
                    "{ctx}"
                )
            }
            Phase::Allocating { .. } => assert!(core.allocating.contains(who), "{ctx}"),
            Phase::Queued { .. } => assert!(core.queued.contains(who), "{ctx}"),
        }
    }
    assert_eq!(
        core.allocating.len() + core.queued.len() + c.allocated as usize,
        core.sessions.len(),
        "{ctx}"
    );
    // Nobody waits for a sandbox while one is ready.
    assert!(c.allocating == 0 || c.ready == 0, "{ctx}");
    // Live sessions never exceed the largest max_concurrent the pool has had.
    assert!(c.allocated + c.allocating <= max_seen, "{ctx}");
    // Ready sandboxes never exceed the target (a surplus is destroyed at once).
    assert!(c.ready <= core.config.ready_instances, "{ctx}");
    // Starts only cover the ready target (at most 3 here) plus waiting sessions.
    assert!(c.ready + c.pending + c.allocated <= 2 * max_seen + 3, "{ctx}");
    // Outside a start backoff, the ready target plus the waiters are covered.
    if core.shutting_down.is_none() && h.now >= core.next_start_at {
        let want = core.config.ready_instances + c.allocating;
        assert!(c.ready + c.pending >= want, "{ctx}: want {want}");
    }
}

#[test]
fn random_operation_sequences_keep_the_invariants() {
    let names = ["alice", "bob1", "carol", "dave", "erin", "frank", "grace"];
    for seed in 1..=200u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut h = Harness::starting(config(rng.below(3) as u32, 1 + rng.below(3) as u32));
        let mut max_seen = h.core.config.max_concurrent;
        for step in 0..300 {
            let who = names[rng.below(names.len() as u64) as usize];
            match rng.below(10) {
                0..=2 => {
                    let mode = if rng.below(2) == 0 {
                        AllocateMode::Wait
                    } else {
                        AllocateMode::FailFast
                    };
                    let _ = h.request_mode(who, mode);
                }
                3 | 4 if !h.starting.is_empty() => {
                    let slot = h.starting.remove(rng.below(h.starting.len() as u64) as usize);
                    let actions = if rng.below(5) == 0 {
                        h.core.slot_start_failed(slot, "boom".into(), h.now)
                    } else {
                        h.core.slot_ready(slot, h.now)
                    };
                    h.track(actions);
                }
                5 => {
                    let slots: Vec<SlotId> = h.core.slots.keys().copied().collect();
                    if !slots.is_empty() {
                        let slot = slots[rng.below(slots.len() as u64) as usize];
                        let actions = if h.core.slots[&slot] == SlotState::Deleting {
                            h.core.slot_destroyed(slot, h.now)
                        } else if h.starting.contains(&slot) {
                            continue;
                        } else {
                            h.core.slot_died(slot, EndReason::Crashed, h.now)
                        };
                        h.track(actions);
                    }
                }
                6 => {
                    let out = h.core.end_session(&id(who), EndReason::Deleted, h.now);
                    h.track(out.actions);
                }
                7 if rng.below(10) == 0 => {
                    let cfg = config(rng.below(4) as u32, 1 + rng.below(3) as u32);
                    max_seen = max_seen.max(cfg.max_concurrent);
                    let actions = h.core.reconfigure(cfg, h.now);
                    h.track(actions);
                }
                _ => {
                    h.advance(Duration::from_millis(rng.below(20_000)));
                    h.tick();
                }
            }
            check(&h, seed, step, max_seen);
        }
        // Whatever happened, shutting down drains the pool.
        h.core.shutdown(EndReason::ServerRestart, h.now);
        h.finish_starts();
        let left: Vec<SlotId> = h.core.slots.keys().copied().collect();
        for slot in left {
            h.core.slot_destroyed(slot, h.now);
        }
        assert!(h.core.is_drained(), "seed {seed}");
    }
}

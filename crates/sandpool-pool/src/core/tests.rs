//! Unit tests of the pool core, driven by a fake clock and a scripted driver.

mod allocation;
mod capacity;
mod invariants;
mod lifecycle;

use super::*;
use crate::{AllocateMode, SessionPhase};

pub(super) const COOLDOWN: Duration = Duration::from_secs(60);
pub(super) const ALLOC_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) fn id(s: &str) -> Identifier {
    Identifier::parse(s).unwrap()
}

pub(super) fn config(ready: u32, max: u32) -> PoolConfig {
    PoolConfig::new(ready, max, COOLDOWN, ALLOC_TIMEOUT)
}

pub(super) fn starts(actions: &[Action]) -> Vec<SlotId> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::StartSandbox { slot } => Some(*slot),
            _ => None,
        })
        .collect()
}

pub(super) fn destroys(actions: &[Action]) -> Vec<(SlotId, DestroyReason)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::DestroySandbox { slot, reason } => Some((*slot, *reason)),
            _ => None,
        })
        .collect()
}

/// A pool plus a fake clock and the slots it has asked to start but not yet heard of.
pub(super) struct Harness {
    pub core: PoolCore,
    pub now: Millis,
    pub starting: Vec<SlotId>,
}

impl Harness {
    /// A pool whose initial ready set is up.
    pub fn ready(cfg: PoolConfig) -> Harness {
        let mut h = Harness::starting(cfg);
        h.finish_starts();
        h
    }

    /// A pool whose initial sandboxes are still starting.
    pub fn starting(cfg: PoolConfig) -> Harness {
        let out = PoolCore::new(cfg, Millis(1_000));
        let starting = starts(&out.actions);
        Harness {
            core: out.value,
            now: Millis(1_000),
            starting,
        }
    }

    pub fn advance(&mut self, d: Duration) {
        self.now = self.now.plus(d);
    }

    /// Records the slots an action list starts; returns the actions for inspection.
    pub fn track(&mut self, actions: Vec<Action>) -> Vec<Action> {
        self.starting.extend(starts(&actions));
        actions
    }

    pub fn request(&mut self, who: &str) -> Result<Acquire, PoolError> {
        self.request_mode(who, AllocateMode::FailFast).0
    }

    pub fn request_mode(
        &mut self,
        who: &str,
        mode: AllocateMode,
    ) -> (Result<Acquire, PoolError>, Vec<Action>) {
        let out = self.core.request(&id(who), mode, self.now);
        let actions = self.track(out.actions);
        (out.value, actions)
    }

    /// Reports every started slot ready; returns all resulting actions.
    pub fn finish_starts(&mut self) -> Vec<Action> {
        let mut all = Vec::new();
        while !self.starting.is_empty() {
            let slot = self.starting.remove(0);
            let actions = self.core.slot_ready(slot, self.now);
            all.extend(self.track(actions));
        }
        all
    }

    pub fn tick(&mut self) -> Vec<Action> {
        let actions = self.core.tick(self.now);
        self.track(actions)
    }

    pub fn slot_of(&self, who: &str) -> Option<SlotId> {
        self.core.session(&id(who)).and_then(|s| s.slot)
    }

    pub fn phase_of(&self, who: &str) -> Option<SessionPhase> {
        self.core.session(&id(who)).map(|s| s.phase)
    }
}

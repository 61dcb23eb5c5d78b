//! [`PoolCore`]: the state of one pool (slots, sessions, waiters) and the bookkeeping
//! shared by its operations. Requests, sandbox events and maintenance live in submodules.

mod events;
mod maintenance;
mod requests;
#[cfg(test)]
mod tests;

use crate::{Action, Counts, DestroyReason, EndReason, Identifier, Millis, PoolConfig, PoolError, SlotId};
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// Result of a core operation: a value for the caller and work for the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome<T> {
    pub value: T,
    pub actions: Vec<Action>,
}

/// How a request for a session stands once the core has seen it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquire {
    /// The session runs on `slot`: go ahead.
    Ready { slot: SlotId },
    /// Wait for `NotifyAllocated` or `FailWaiters` for this identifier. The core itself
    /// fails the wait (from `tick`) once `deadline` has passed.
    Wait { deadline: Millis },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SlotState {
    Pending,
    Ready,
    Allocated(Identifier),
    Deleting,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Queued { deadline: Millis },
    Allocating { deadline: Millis },
    Allocated { slot: SlotId },
}

#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) phase: Phase,
    pub(crate) created_at: Millis,
    pub(crate) last_access_at: Millis,
    pub(crate) in_flight: u32,
}

/// The first start after a failed one waits this long; each further failure doubles it.
const START_BACKOFF_BASE: Duration = Duration::from_millis(250);
const START_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// The state machine of one pool. It performs no IO and reads no clock: every call
/// takes `now`, and the driver carries out the returned [`Action`]s in order, reporting
/// sandbox events back (`slot_ready`, `slot_start_failed`, `slot_died`, `slot_destroyed`)
/// and calling [`PoolCore::tick`] no later than [`PoolCore::next_deadline`].
#[derive(Debug)]
pub struct PoolCore {
    pub(crate) config: PoolConfig,
    pub(crate) slots: BTreeMap<SlotId, SlotState>,
    pub(crate) sessions: BTreeMap<Identifier, Session>,
    /// Sessions waiting for a sandbox, first come first served.
    pub(crate) allocating: VecDeque<Identifier>,
    /// Requests waiting for capacity (wait mode), first come first served.
    pub(crate) queued: VecDeque<Identifier>,
    pub(crate) next_slot: u64,
    pub(crate) shutting_down: Option<EndReason>,
    pub(crate) start_failures: u32,
    pub(crate) next_start_at: Millis,
    pub(crate) last_start_error: Option<String>,
}

impl PoolCore {
    /// A pool with no sandboxes yet; the returned actions start its ready set.
    pub fn new(config: PoolConfig, now: Millis) -> Outcome<PoolCore> {
        let mut core = PoolCore {
            config,
            slots: BTreeMap::new(),
            sessions: BTreeMap::new(),
            allocating: VecDeque::new(),
            queued: VecDeque::new(),
            next_slot: 1,
            shutting_down: None,
            start_failures: 0,
            next_start_at: Millis(0),
            last_start_error: None,
        };
        let mut actions = Vec::new();
        core.replenish(now, &mut actions);
        Outcome { value: core, actions }
    }

    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// Whether [`PoolCore::shutdown`] was called (and with which reason).
    pub fn shutting_down(&self) -> Option<EndReason> {
        self.shutting_down
    }

    /// True once the pool is shutting down and every sandbox is gone.
    pub fn is_drained(&self) -> bool {
        self.shutting_down.is_some() && self.slots.is_empty()
    }

    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for state in self.slots.values() {
            match state {
                SlotState::Pending => c.pending += 1,
                SlotState::Ready => c.ready += 1,
                SlotState::Allocated(_) => c.allocated += 1,
                SlotState::Deleting => c.deleting += 1,
            }
        }
        c.allocating = self.allocating.len() as u32;
        c.queued = self.queued.len() as u32;
        c
    }

    /// The earliest instant at which [`PoolCore::tick`] has work (an expiry, a waiter's
    /// deadline, the end of a start backoff), if any.
    pub fn next_deadline(&self) -> Option<Millis> {
        let mut next: Option<Millis> = None;
        let mut consider = |t: Millis| next = Some(next.map_or(t, |n| n.min(t)));
        for s in self.sessions.values() {
            match s.phase {
                Phase::Queued { deadline } | Phase::Allocating { deadline } => consider(deadline),
                Phase::Allocated { .. } => {
                    if let Some(t) = self.expiry(s) {
                        consider(t)
                    }
                }
            }
        }
        if self.shutting_down.is_none() && self.starts_wanted() > 0 {
            consider(self.next_start_at);
        }
        next
    }

    /// When an allocated session ends if it stays idle (`None` while held, unless a
    /// lifetime limit applies).
    pub(crate) fn expiry(&self, s: &Session) -> Option<Millis> {
        let max_alive = self.config.max_alive.map(|d| s.created_at.plus(d));
        let cooldown = (s.in_flight == 0).then(|| s.last_access_at.plus(self.config.cooldown));
        match (max_alive, cooldown) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Sessions that count against `max_concurrent` (allocated or waiting for a sandbox).
    pub(crate) fn live_sessions(&self) -> usize {
        self.sessions.len() - self.queued.len()
    }

    fn count_slots(&self, pred: impl Fn(&SlotState) -> bool) -> usize {
        self.slots.values().filter(|s| pred(s)).count()
    }

    /// How many more sandboxes the pool wants started right now (ignoring backoff).
    fn starts_wanted(&self) -> usize {
        let want = self.config.ready_instances as usize + self.allocating.len();
        let have = self.count_slots(|s| matches!(s, SlotState::Ready | SlotState::Pending));
        // Belt and braces: never more than the sessions allowed (or kept after a lowered
        // limit) plus the ready target, whatever the counts above say.
        let allocated = self.count_slots(|s| matches!(s, SlotState::Allocated(_)));
        let sessions = self.live_sessions().max(self.config.max_concurrent as usize);
        let cap = sessions + self.config.ready_instances as usize;
        let live = allocated + have;
        want.saturating_sub(have).min(cap.saturating_sub(live))
    }

    /// Starts sandboxes until ready + pending covers the ready target plus the waiting
    /// sessions, within `max_concurrent + ready_instances` slots and outside any backoff.
    pub(crate) fn replenish(&mut self, now: Millis, actions: &mut Vec<Action>) {
        if self.shutting_down.is_some() || now < self.next_start_at {
            return;
        }
        for _ in 0..self.starts_wanted() {
            let slot = SlotId(self.next_slot);
            self.next_slot += 1;
            self.slots.insert(slot, SlotState::Pending);
            actions.push(Action::StartSandbox { slot });
        }
    }

    pub(crate) fn note_start_failure(&mut self, error: String, now: Millis) {
        self.start_failures = self.start_failures.saturating_add(1);
        let doublings = (self.start_failures - 1).min(16);
        let backoff = START_BACKOFF_BASE
            .saturating_mul(1 << doublings)
            .min(START_BACKOFF_MAX);
        self.next_start_at = now.plus(backoff);
        self.last_start_error = Some(error);
    }

    /// Puts `id`'s session (already in `sessions`) on a ready sandbox, or makes it wait
    /// for one until `deadline`.
    pub(crate) fn place(
        &mut self,
        id: &Identifier,
        deadline: Millis,
        now: Millis,
        actions: &mut Vec<Action>,
    ) -> Acquire {
        let ready = self
            .slots
            .iter()
            .find(|(_, s)| **s == SlotState::Ready)
            .map(|(k, _)| *k);
        let acquire = match ready {
            Some(slot) => {
                self.allocate(id, slot, now, actions);
                Acquire::Ready { slot }
            }
            None => {
                if let Some(s) = self.sessions.get_mut(id) {
                    s.phase = Phase::Allocating { deadline };
                }
                self.allocating.push_back(id.clone());
                Acquire::Wait { deadline }
            }
        };
        self.replenish(now, actions);
        acquire
    }

    /// Binds `slot` to `id`'s session; the session's cooldown starts now.
    pub(crate) fn allocate(&mut self, id: &Identifier, slot: SlotId, now: Millis, actions: &mut Vec<Action>) {
        self.slots.insert(slot, SlotState::Allocated(id.clone()));
        if let Some(s) = self.sessions.get_mut(id) {
            s.phase = Phase::Allocated { slot };
            s.last_access_at = s.last_access_at.max(now);
        }
        actions.push(Action::NotifyAllocated {
            identifier: id.clone(),
            slot,
        });
    }

    /// Removes `id`'s session, whatever its phase, with the actions that go with it:
    /// an allocated one ends (`SessionEnded`, and its sandbox is destroyed unless
    /// `sandbox_gone`); a waiting one fails its waiters with `wait_error`.
    pub(crate) fn remove_session(
        &mut self,
        id: &Identifier,
        reason: EndReason,
        wait_error: PoolError,
        sandbox_gone: bool,
        actions: &mut Vec<Action>,
    ) -> bool {
        let Some(session) = self.sessions.remove(id) else {
            return false;
        };
        match session.phase {
            Phase::Allocated { slot } => {
                actions.push(Action::SessionEnded {
                    identifier: id.clone(),
                    slot,
                    reason,
                });
                if sandbox_gone {
                    self.slots.remove(&slot);
                } else {
                    self.slots.insert(slot, SlotState::Deleting);
                    actions.push(Action::DestroySandbox {
                        slot,
                        reason: DestroyReason::SessionEnded(reason),
                    });
                }
            }
            Phase::Allocating { .. } => {
                self.allocating.retain(|q| q != id);
                actions.push(Action::FailWaiters {
                    identifier: id.clone(),
                    error: wait_error,
                });
            }
            Phase::Queued { .. } => {
                self.queued.retain(|q| q != id);
                actions.push(Action::FailWaiters {
                    identifier: id.clone(),
                    error: wait_error,
                });
            }
        }
        true
    }

    /// Moves queued requests into sessions while the pool is below `max_concurrent`.
    pub(crate) fn promote_queued(&mut self, now: Millis, actions: &mut Vec<Action>) {
        while self.live_sessions() < self.config.max_concurrent as usize {
            let Some(id) = self.queued.pop_front() else { break };
            let Some(Phase::Queued { deadline }) = self.sessions.get(&id).map(|s| s.phase) else {
                continue;
            };
            self.place(&id, deadline, now, actions);
        }
    }

    /// How long until the first idle allocated session could end by cooldown or lifetime.
    pub(crate) fn retry_after(&self, now: Millis) -> Duration {
        self.sessions
            .values()
            .filter(|s| matches!(s.phase, Phase::Allocated { .. }))
            .filter_map(|s| self.expiry(s))
            .min()
            .map_or(self.config.cooldown, |t| t.since(now))
    }
}

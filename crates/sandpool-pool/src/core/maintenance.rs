//! Time- and operator-driven work: expiries and timeouts (`tick`), resizing, shutdown.

use super::{Phase, PoolCore, SlotState};
use crate::{Action, DestroyReason, EndReason, Identifier, Millis, PoolConfig, PoolError};

impl PoolCore {
    /// Ends sessions idle for the cooldown (or past their lifetime), fails requests
    /// whose wait has run out, and starts sandboxes whose start backoff has ended.
    pub fn tick(&mut self, now: Millis) -> Vec<Action> {
        let mut actions = Vec::new();
        let mut expired: Vec<(Identifier, EndReason)> = Vec::new();
        let mut timed_out: Vec<(Identifier, PoolError)> = Vec::new();
        let retry_after = self.retry_after(now);
        for (id, s) in &self.sessions {
            match s.phase {
                Phase::Allocated { .. } => {
                    let over_age = self.config.max_alive.is_some_and(|d| now >= s.created_at.plus(d));
                    if over_age {
                        expired.push((id.clone(), EndReason::MaxAlive));
                    } else if s.in_flight == 0 && now >= s.last_access_at.plus(self.config.cooldown) {
                        expired.push((id.clone(), EndReason::Cooldown));
                    }
                }
                Phase::Allocating { deadline } if now >= deadline => {
                    let waited = now.since(s.created_at);
                    let last_start_error = self.last_start_error.clone();
                    timed_out.push((
                        id.clone(),
                        PoolError::AllocationTimeout {
                            waited,
                            last_start_error,
                        },
                    ));
                }
                Phase::Queued { deadline } if now >= deadline => {
                    let max = self.config.max_concurrent;
                    timed_out.push((id.clone(), PoolError::AtCapacity { max, retry_after }));
                }
                _ => {}
            }
        }
        for (id, reason) in expired {
            self.remove_session(&id, reason, PoolError::SessionEnded(reason), false, &mut actions);
        }
        for (id, error) in timed_out {
            self.remove_session(&id, EndReason::Stopped, error, false, &mut actions);
        }
        self.promote_queued(now, &mut actions);
        self.replenish(now, &mut actions);
        actions
    }

    /// Applies new sizing at once: surplus ready sandboxes are destroyed (allocated
    /// ones never are), missing ones started, queued requests admitted if there is room.
    /// Live sessions above a lowered `max_concurrent` keep running.
    pub fn reconfigure(&mut self, config: PoolConfig, now: Millis) -> Vec<Action> {
        let mut actions = Vec::new();
        self.config = config;
        if self.shutting_down.is_none() {
            let want = self.config.ready_instances as usize + self.allocating.len();
            let mut spare = self.count_slots(|s| matches!(s, SlotState::Ready | SlotState::Pending));
            let ready: Vec<_> = self
                .slots
                .iter()
                .filter(|(_, s)| **s == SlotState::Ready)
                .map(|(k, _)| *k)
                .collect();
            for slot in ready.into_iter().rev() {
                if spare <= want {
                    break;
                }
                self.slots.insert(slot, SlotState::Deleting);
                actions.push(Action::DestroySandbox {
                    slot,
                    reason: DestroyReason::Surplus,
                });
                spare -= 1;
            }
            self.promote_queued(now, &mut actions);
            self.replenish(now, &mut actions);
        }
        actions
    }

    /// Stops the pool: every session ends with `reason` (`PoolDeleted`,
    /// `ServerRestart`), waiters fail, ready sandboxes are destroyed, and pending ones
    /// are destroyed as they come up. New requests fail with `ShuttingDown`.
    pub fn shutdown(&mut self, reason: EndReason, _now: Millis) -> Vec<Action> {
        let mut actions = Vec::new();
        self.shutting_down = Some(reason);
        let ids: Vec<Identifier> = self.sessions.keys().cloned().collect();
        for id in ids {
            self.remove_session(&id, reason, PoolError::ShuttingDown, false, &mut actions);
        }
        let ready: Vec<_> = self
            .slots
            .iter()
            .filter(|(_, s)| **s == SlotState::Ready)
            .map(|(k, _)| *k)
            .collect();
        for slot in ready {
            self.slots.insert(slot, SlotState::Deleting);
            actions.push(Action::DestroySandbox {
                slot,
                reason: DestroyReason::Shutdown,
            });
        }
        actions
    }
}

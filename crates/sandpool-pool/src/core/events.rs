//! Sandbox events the driver reports: started, failed to start, died, destroyed.

use super::{PoolCore, SlotState};
use crate::{Action, DestroyReason, EndReason, Millis, PoolError, SlotId};

impl PoolCore {
    /// The sandbox of a pending slot is up. It goes to the longest-waiting session,
    /// else into the ready set, else (surplus or shutting down) is destroyed.
    pub fn slot_ready(&mut self, slot: SlotId, now: Millis) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.slots.get(&slot) != Some(&SlotState::Pending) {
            return actions;
        }
        self.start_failures = 0;
        self.last_start_error = None;
        self.next_start_at = Millis(0);
        if self.shutting_down.is_some() {
            self.slots.insert(slot, SlotState::Deleting);
            actions.push(Action::DestroySandbox {
                slot,
                reason: DestroyReason::Shutdown,
            });
        } else if let Some(id) = self.allocating.pop_front() {
            self.allocate(&id, slot, now, &mut actions);
        } else {
            let spare = self.count_slots(|s| matches!(s, SlotState::Ready | SlotState::Pending));
            if spare > self.config.ready_instances as usize {
                self.slots.insert(slot, SlotState::Deleting);
                actions.push(Action::DestroySandbox {
                    slot,
                    reason: DestroyReason::Surplus,
                });
            } else {
                self.slots.insert(slot, SlotState::Ready);
            }
        }
        self.replenish(now, &mut actions);
        actions
    }

    /// A pending slot's sandbox could not be started (the driver has cleaned up).
    /// Further starts back off exponentially; waiting sessions keep waiting until
    /// their deadline, then fail quoting `error`.
    pub fn slot_start_failed(&mut self, slot: SlotId, error: String, now: Millis) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.slots.get(&slot) != Some(&SlotState::Pending) {
            return actions;
        }
        self.slots.remove(&slot);
        self.note_start_failure(error, now);
        self.replenish(now, &mut actions);
        actions
    }

    /// A started sandbox died (out of memory, crashed, failed liveness). Its session,
    /// if any, ends with `reason`; the driver is asked to clean up what is left; the
    /// ready set is replenished.
    pub fn slot_died(&mut self, slot: SlotId, reason: EndReason, now: Millis) -> Vec<Action> {
        let mut actions = Vec::new();
        match self.slots.get(&slot).cloned() {
            None | Some(SlotState::Deleting) => return actions,
            Some(SlotState::Pending) => {
                return self.slot_start_failed(slot, format!("sandbox died while starting ({reason})"), now)
            }
            Some(SlotState::Ready) => {
                self.slots.insert(slot, SlotState::Deleting);
                actions.push(Action::DestroySandbox {
                    slot,
                    reason: DestroyReason::Died(reason),
                });
            }
            Some(SlotState::Allocated(id)) => {
                self.remove_session(&id, reason, PoolError::SessionEnded(reason), false, &mut actions);
                self.promote_queued(now, &mut actions);
            }
        }
        self.replenish(now, &mut actions);
        actions
    }

    /// The slot's sandbox is gone for good. Normally it was `Deleting`; if it vanished
    /// on its own, its session ends as `crashed` (a pending one counts as a failed start).
    pub fn slot_destroyed(&mut self, slot: SlotId, now: Millis) -> Vec<Action> {
        let mut actions = Vec::new();
        match self.slots.get(&slot).cloned() {
            None => return actions,
            Some(SlotState::Deleting) | Some(SlotState::Ready) => {
                self.slots.remove(&slot);
            }
            Some(SlotState::Pending) => {
                return self.slot_start_failed(slot, "sandbox vanished while starting".into(), now)
            }
            Some(SlotState::Allocated(id)) => {
                let reason = EndReason::Crashed;
                self.remove_session(&id, reason, PoolError::SessionEnded(reason), true, &mut actions);
                self.promote_queued(now, &mut actions);
            }
        }
        self.replenish(now, &mut actions);
        actions
    }
}

//! Client-driven operations: asking for a session, holding it during a request,
//! touching it, ending it.

use super::{Acquire, Outcome, Phase, PoolCore, Session};
use crate::{AllocateMode, EndReason, Identifier, Millis, PoolError, SessionPhase, SessionView, SlotId};

impl PoolCore {
    /// A request for `id`'s session: touches an existing session (resetting its
    /// cooldown) or creates one, taking a ready sandbox at once when there is one.
    /// Concurrent first requests for one identifier share one session and one sandbox.
    pub fn request(
        &mut self,
        id: &Identifier,
        mode: AllocateMode,
        now: Millis,
    ) -> Outcome<Result<Acquire, PoolError>> {
        let mut actions = Vec::new();
        let value = self.request_inner(id, mode, now, &mut actions);
        Outcome { value, actions }
    }

    fn request_inner(
        &mut self,
        id: &Identifier,
        mode: AllocateMode,
        now: Millis,
        actions: &mut Vec<crate::Action>,
    ) -> Result<Acquire, PoolError> {
        if self.shutting_down.is_some() {
            return Err(PoolError::ShuttingDown);
        }
        if let Some(s) = self.sessions.get_mut(id) {
            s.last_access_at = s.last_access_at.max(now);
            return Ok(match s.phase {
                Phase::Allocated { slot } => Acquire::Ready { slot },
                Phase::Allocating { deadline } | Phase::Queued { deadline } => Acquire::Wait { deadline },
            });
        }
        let deadline = now.plus(self.config.allocation_timeout);
        let fresh = |phase| Session {
            phase,
            created_at: now,
            last_access_at: now,
            in_flight: 0,
        };
        if self.live_sessions() >= self.config.max_concurrent as usize {
            let retry_after = self.retry_after(now);
            if mode == AllocateMode::Wait && self.queued.len() < self.config.max_queued as usize {
                self.sessions
                    .insert(id.clone(), fresh(Phase::Queued { deadline }));
                self.queued.push_back(id.clone());
                return Ok(Acquire::Wait { deadline });
            }
            return Err(PoolError::AtCapacity {
                max: self.config.max_concurrent,
                retry_after,
            });
        }
        self.sessions
            .insert(id.clone(), fresh(Phase::Allocating { deadline }));
        Ok(self.place(id, deadline, now, actions))
    }

    /// Marks a request as running on `id`'s session on `slot`: the session does not
    /// cool down until the matching [`PoolCore::release`]. False when the session is no
    /// longer on that slot (it ended); the caller then reports the session lost.
    pub fn hold(&mut self, id: &Identifier, slot: SlotId, now: Millis) -> bool {
        match self.sessions.get_mut(id) {
            Some(s) if s.phase == (Phase::Allocated { slot }) => {
                s.in_flight += 1;
                s.last_access_at = s.last_access_at.max(now);
                true
            }
            _ => false,
        }
    }

    /// Ends a [`PoolCore::hold`]; the cooldown restarts from `now`.
    pub fn release(&mut self, id: &Identifier, slot: SlotId, now: Millis) {
        if let Some(s) = self.sessions.get_mut(id) {
            if s.phase == (Phase::Allocated { slot }) {
                s.in_flight = s.in_flight.saturating_sub(1);
                s.last_access_at = s.last_access_at.max(now);
            }
        }
    }

    /// Resets an existing session's cooldown without allocating. False if unknown.
    pub fn touch(&mut self, id: &Identifier, now: Millis) -> bool {
        match self.sessions.get_mut(id) {
            Some(s) => {
                s.last_access_at = s.last_access_at.max(now);
                true
            }
            None => false,
        }
    }

    /// Ends `id`'s session (allocated or still waiting) with `reason`. The value is
    /// false when there was no such session.
    pub fn end_session(&mut self, id: &Identifier, reason: EndReason, now: Millis) -> Outcome<bool> {
        let mut actions = Vec::new();
        let value = self.remove_session(id, reason, PoolError::SessionEnded(reason), false, &mut actions);
        if value {
            self.promote_queued(now, &mut actions);
            self.replenish(now, &mut actions);
        }
        Outcome { value, actions }
    }

    /// One live session, without touching it.
    pub fn session(&self, id: &Identifier) -> Option<SessionView> {
        self.sessions.get(id).map(|s| self.view(id, s))
    }

    /// Every live session (allocated, allocating or queued), ordered by identifier.
    pub fn sessions(&self) -> Vec<SessionView> {
        self.sessions.iter().map(|(id, s)| self.view(id, s)).collect()
    }

    fn view(&self, id: &Identifier, s: &Session) -> SessionView {
        let (phase, slot) = match s.phase {
            Phase::Queued { .. } => (SessionPhase::Queued, None),
            Phase::Allocating { .. } => (SessionPhase::Allocating, None),
            Phase::Allocated { slot } => (SessionPhase::Allocated, Some(slot)),
        };
        SessionView {
            identifier: id.clone(),
            phase,
            slot,
            created_at: s.created_at,
            last_access_at: s.last_access_at,
            expires_at: slot.and_then(|_| self.expiry(s)),
            in_flight: s.in_flight,
        }
    }
}

//! Pool core: the state machine of one session pool (ready, allocated and pending
//! sandboxes, sessions by identifier, cooldowns), with no IO and no clock of its own:
//! every call takes `now`, and the caller carries out the [`Action`]s it returns.
//! The async driver that owns real sandboxes lives in `sandpool-engine`.

mod action;
mod config;
mod core;
mod error;
mod identifier;
mod reason;
mod time;
mod view;

pub use action::{Action, SlotId};
pub use config::{AllocateMode, PoolConfig};
pub use core::{Acquire, Outcome, PoolCore};
pub use error::PoolError;
pub use identifier::{Identifier, IdentifierError};
pub use reason::{DestroyReason, EndReason};
pub use time::Millis;
pub use view::{Counts, SessionPhase, SessionView};

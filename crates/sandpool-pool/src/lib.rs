//! Pool core: the state machine of one session pool (ready, allocated and pending
//! sandboxes, sessions by identifier, cooldowns), with no IO and no clock of its own:
//! every call takes `now`, and the caller carries out the [`Action`]s it returns.
//! The async driver that owns real sandboxes lives in `sandpool-engine`.

mod identifier;

pub use identifier::{Identifier, IdentifierError};

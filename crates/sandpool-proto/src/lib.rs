//! The wire protocol spoken between the host and the agent inside every sandbox.
//!
//! A frame is a 4-byte big-endian payload length followed by a MessagePack payload
//! (`rmp-serde`, structs as maps so fields can be added without breaking older peers).
//! Every frame carries an [`Envelope`] with a request id chosen by the host; the agent
//! answers each request with exactly one response frame carrying the same id, so
//! several requests may be in flight at once. The first exchange is always
//! [`Request::Hello`], which checks [`PROTOCOL_VERSION`].

mod codec;
mod messages;

pub use codec::{decode, encode_frame, read_frame, write_frame, FrameError, MAX_FRAME_BYTES};
pub use messages::*;

/// Bumped whenever a change is not backwards compatible.
pub const PROTOCOL_VERSION: u32 = 1;

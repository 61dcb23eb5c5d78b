//! The wire protocol spoken between the host and the agent inside every sandbox.
//!
//! A frame is a 4-byte big-endian payload length followed by a MessagePack payload
//! (`rmp-serde`, structs as maps so fields can be added without breaking older peers).
//! Every frame carries an [`Envelope`] with a request id chosen by the host; the agent
//! answers each request with exactly one response frame carrying the same id, so
//! several requests may be in flight at once. The first exchange is always
//! [`Request::Hello`], which checks [`PROTOCOL_VERSION`].
//!
//! ## Unpaired frames and streams
//! Envelope id [`EVENT_ID`] (0) is reserved for frames that are not paired: the host's
//! stream notifications ([`Request::is_notification`]: `StreamData`, `StreamCredit`,
//! `StreamShutdown`, `StreamClose`), which get no response, and the agent's
//! [`Response::Event`]s (stream data, credit, EOF and reset, workload exit).
//!
//! [`Request::Connect`] opens a TCP connection to `127.0.0.1:<port>` inside the sandbox;
//! its envelope id becomes the stream id, so the host can route the stream's events
//! before the `Connected` answer arrives. Bytes then flow both ways as `StreamData` in
//! chunks of at most [`STREAM_CHUNK`], with credit-based flow control: each side may
//! have at most [`STREAM_WINDOW`] bytes per stream sent and not yet credited back, and
//! credits are returned once the bytes are written to the socket (agent) or read by
//! the consumer (host). A slow reader or a large upload thus pins at most one window
//! per direction and stream, never an unbounded buffer.
mod codec;
mod events;
mod messages;

pub use codec::{decode, encode_frame, read_frame, write_frame, FrameError, MAX_FRAME_BYTES};
pub use events::*;
pub use messages::*;

/// Bumped whenever a change is not backwards compatible. Version 2 reserved envelope id
/// 0 for unpaired frames (streams, events); both ends must agree exactly.
pub const PROTOCOL_VERSION: u32 = 2;

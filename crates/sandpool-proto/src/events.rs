//! Unpaired frames: the constants of byte streams and what the agent reports on its own.

use serde::{Deserialize, Serialize};

/// Envelope id of every frame that is not paired with another: host stream
/// notifications and agent [`Event`]s. Host requests never use it.
pub const EVENT_ID: u64 = 0;

/// Most stream bytes either side may have sent and not yet had credited back, per stream
/// and direction: what bounds the memory a stream can pin in the agent or the host.
pub const STREAM_WINDOW: u32 = 256 << 10;

/// Largest `data` of one [`Request::StreamData`](crate::Request::StreamData) or [`Event::StreamData`].
pub const STREAM_CHUNK: usize = 64 << 10;

/// Something the agent reports on its own, in a [`Response::Event`](crate::Response::Event) with envelope id
/// [`EVENT_ID`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// Bytes read from the stream's socket, within the credit the host granted.
    StreamData {
        stream: u64,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    /// The agent wrote `bytes` of the host's [`Request::StreamData`](crate::Request::StreamData) to the socket.
    StreamCredit { stream: u64, bytes: u32 },
    /// The socket's peer closed its write side: no more data will follow.
    StreamEof { stream: u64 },
    /// The stream failed (connection reset, write error, window violated); it is
    /// finished in both directions.
    StreamReset { stream: u64, message: String },
    /// The workload of a custom sandbox exited. Sent once.
    WorkloadExited(WorkloadExit),
}

/// How the workload of a custom sandbox ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadExit {
    /// Exit code when it exited normally.
    pub code: Option<i32>,
    /// Signal number when it was killed by one.
    pub signal: Option<i32>,
    /// Human-readable summary, e.g. `exit status 3` or `could not start: …`.
    pub detail: String,
}

/// The workload of a custom sandbox, as reported by [`Request::Health`](crate::Request::Health).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkloadState {
    Running { pid: u32 },
    Exited(WorkloadExit),
}

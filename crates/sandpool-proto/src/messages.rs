//! Requests the host sends to the agent and the responses it gets back.

use crate::events::{Event, WorkloadState};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A request or response with the id that pairs them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub id: u64,
    pub body: T,
}

/// What the host asks of the agent. Paths are relative to `/mnt/data`
/// (a leading `/mnt/data/` is accepted); anything escaping it is refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// First request on a channel: the agent answers with its own version.
    Hello { version: u32 },
    /// Reseeds every user-visible pseudo-random generator (Python `random`, NumPy's
    /// global state, `tempfile` names). Sent right after a sandbox is restored from a
    /// template, since every copy would otherwise share the template's PRNG state.
    Reseed {
        #[serde(with = "serde_bytes")]
        seed: Vec<u8>,
    },
    /// Imports `modules` in the Python driver so a checkpoint taken afterwards
    /// already has them loaded (warm start).
    Warm { modules: Vec<String> },
    /// Runs a cell in the persistent Python driver.
    Execute { code: String, timeout_ms: u64 },
    /// Runs `command` with `/bin/bash -c` in `/mnt/data`.
    Shell { command: String, timeout_ms: u64 },
    /// Writes (or appends) bytes to a file, creating parent directories.
    WriteFile {
        path: String,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
        append: bool,
    },
    /// Reads up to `len` bytes at `offset`.
    ReadFile { path: String, offset: u64, len: u32 },
    /// Lists a directory (`""` is `/mnt/data` itself).
    ListFiles { path: String, recursive: bool },
    /// Metadata of one file or directory.
    StatFile { path: String },
    /// Removes a file (or an empty directory).
    DeleteFile { path: String },
    /// Liveness of the agent and its driver.
    Health,
    /// Resource usage as seen inside the sandbox.
    Stats,
    /// Opens a TCP connection to `127.0.0.1:port` inside the sandbox. The stream id is
    /// this request's envelope id; the agent answers [`Response::Connected`] (or an error
    /// of kind [`ErrorKind::Unreachable`]) before it sends any event for the stream.
    Connect { port: u16 },
    /// Stream notification (no response): bytes for the stream's socket. The host keeps
    /// the bytes it sent but the agent has not yet credited back at or below
    /// [`STREAM_WINDOW`](crate::STREAM_WINDOW); an agent receiving more resets the stream.
    StreamData {
        stream: u64,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    /// Stream notification (no response): the host consumed `bytes` of the stream's
    /// [`Event::StreamData`], so the agent may send that many more.
    StreamCredit { stream: u64, bytes: u32 },
    /// Stream notification (no response): half-close; the agent shuts down the socket's
    /// write side once the bytes before it are written. Reading goes on.
    StreamShutdown { stream: u64 },
    /// Stream notification (no response): the host is done with the stream; the agent
    /// closes the socket and forgets the stream. Events already in flight are dropped.
    StreamClose { stream: u64 },
}

impl Request {
    /// Stream notifications get no response; the host sends them with envelope id
    /// [`EVENT_ID`](crate::EVENT_ID).
    pub fn is_notification(&self) -> bool {
        matches!(
            self,
            Request::StreamData { .. }
                | Request::StreamCredit { .. }
                | Request::StreamShutdown { .. }
                | Request::StreamClose { .. }
        )
    }
}

/// The agent's answer to one [`Request`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Response {
    Hello {
        version: u32,
        agent_version: String,
    },
    /// The request succeeded and has nothing to return.
    Done,
    Execution(ExecutionResult),
    Shell(ShellResult),
    /// Bytes read from a file; `eof` is true when the file has no bytes after them.
    FileChunk {
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
        eof: bool,
    },
    Files(Vec<FileEntry>),
    File(FileEntry),
    Health(Health),
    Stats(AgentStats),
    /// The stream of a [`Request::Connect`] is open.
    Connected {
        stream: u64,
    },
    /// An unsolicited report, always with envelope id [`EVENT_ID`](crate::EVENT_ID).
    Event(Event),
    Error(AgentError),
}

/// A Jupyter MIME bundle: MIME type → data. Binary types (`image/png`, `image/jpeg`)
/// are base64 text, as in Jupyter's own messages.
pub type MimeBundle = BTreeMap<String, String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExecutionStatus {
    /// The cell ran to completion.
    Ok,
    /// The cell raised; see [`ExecutionResult::error`].
    Error,
    /// The cell exceeded its timeout and was interrupted (or the driver was restarted:
    /// see [`ExecutionResult::state_lost`]).
    Timeout,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionResult {
    pub status: ExecutionStatus,
    pub stdout: String,
    pub stderr: String,
    /// The `execute_result` bundle of the cell's last expression, if it had a value.
    pub result: Option<MimeBundle>,
    /// `display_data` bundles in order (including matplotlib figures as `image/png`).
    pub displays: Vec<MimeBundle>,
    pub error: Option<ExecutionError>,
    pub duration_ms: u64,
    /// True when the driver had to be killed and restarted: every variable is gone.
    pub state_lost: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionError {
    pub ename: String,
    pub evalue: String,
    /// Traceback lines with ANSI escapes removed.
    pub traceback: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShellResult {
    /// Exit status; `128 + signal` when killed by a signal, `124` on timeout (as `timeout(1)`).
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
    pub duration_ms: u64,
    pub timed_out: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path relative to `/mnt/data`, `/`-separated.
    pub path: String,
    pub is_dir: bool,
    pub size: u64,
    /// Last modification, milliseconds since the Unix epoch.
    pub modified_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DriverState {
    /// This sandbox has no Python driver (e.g. a shell image).
    Absent,
    Starting,
    Ready,
    /// The driver exited and could not be restarted.
    Dead,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub driver: DriverState,
    pub uptime_ms: u64,
    /// The workload of a custom sandbox; `None` for other kinds.
    #[serde(default)]
    pub workload: Option<WorkloadState>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentStats {
    /// Sum of resident memory of the processes in the sandbox.
    pub memory_bytes: u64,
    pub processes: u32,
    pub data_used_bytes: u64,
    pub data_total_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorKind {
    /// The path is absolute outside `/mnt/data`, contains `..`, or crosses a symlink
    /// leading out of `/mnt/data`.
    InvalidPath,
    NotFound,
    /// `/mnt/data` (or the sandbox's memory) is full.
    NoSpace,
    /// The request is well-formed but this sandbox cannot do it (e.g. `Execute`
    /// without a Python driver).
    Unsupported,
    /// The request itself is malformed (e.g. wrong protocol version).
    BadRequest,
    /// The Python driver is not running and could not be started.
    DriverUnavailable,
    /// Nothing accepts connections on the port of a [`Request::Connect`].
    Unreachable,
    Internal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentError {
    pub kind: ErrorKind,
    pub message: String,
}

impl std::fmt::Display for AgentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

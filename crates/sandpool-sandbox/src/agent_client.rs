//! The host end of the agent channel: frames requests onto the sandbox's stdin and
//! pairs the responses read from its stdout with the requests by id, so many calls
//! can be in flight at once; routes the agent's unsolicited events to the byte streams
//! opened with [`AgentClient::connect`] and records the workload's exit.

use crate::agent_stream::{fail_all_streams, route_stream_event, AgentStream, StreamStates};
use crate::SandboxError;
use sandpool_proto::{
    decode, encode_frame, Envelope, Event, Request, Response, WorkloadExit, EVENT_ID, MAX_FRAME_BYTES,
    PROTOCOL_VERSION,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch};

type Pending = Arc<Mutex<Option<HashMap<u64, oneshot::Sender<Response>>>>>;

/// A connection to one agent. Cheap to share behind an `Arc`.
pub struct AgentClient {
    /// Encoded frames, written in order by the writer task.
    outbound: mpsc::UnboundedSender<Vec<u8>>,
    pending: Pending,
    streams: StreamStates,
    next_id: AtomicU64,
    closed: watch::Receiver<bool>,
    workload_exit: watch::Receiver<Option<WorkloadExit>>,
    reader_task: tokio::task::JoinHandle<()>,
    writer_task: tokio::task::JoinHandle<()>,
}

impl AgentClient {
    /// Starts reading responses from `from_agent` and writing frames to `to_agent` in
    /// background tasks.
    pub fn new(
        from_agent: impl AsyncRead + Send + Unpin + 'static,
        to_agent: impl AsyncWrite + Send + Unpin + 'static,
    ) -> Self {
        let pending: Pending = Arc::new(Mutex::new(Some(HashMap::new())));
        let streams: StreamStates = Arc::new(Mutex::new(Some(HashMap::new())));
        let (closed_tx, closed) = watch::channel(false);
        let (exit_tx, workload_exit) = watch::channel(None);
        let (outbound, frames) = mpsc::unbounded_channel();
        let reader_task = tokio::spawn(read_responses(
            from_agent,
            pending.clone(),
            streams.clone(),
            exit_tx,
            closed_tx,
        ));
        let writer_task = tokio::spawn(write_frames(to_agent, frames, pending.clone()));
        AgentClient {
            outbound,
            pending,
            streams,
            next_id: AtomicU64::new(1),
            closed,
            workload_exit,
            reader_task,
            writer_task,
        }
    }

    /// Sends `request` and waits for its response. An agent-side error becomes
    /// [`SandboxError::Agent`]. Stream notifications are sent by [`AgentStream`], never
    /// through here.
    pub async fn call(&self, request: Request) -> Result<Response, SandboxError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.call_with_id(id, request).await
    }

    async fn call_with_id(&self, id: u64, request: Request) -> Result<Response, SandboxError> {
        if request.is_notification() {
            return Err(SandboxError::Protocol(
                "stream notifications have no response; use AgentStream".into(),
            ));
        }
        let frame = encode_frame(&Envelope { id, body: request })?;
        let (tx, rx) = oneshot::channel();
        match self.pending.lock().expect("pending map poisoned").as_mut() {
            Some(map) => map.insert(id, tx),
            None => return Err(SandboxError::AgentGone),
        };
        if self.outbound.send(frame).is_err() {
            if let Some(map) = self.pending.lock().expect("pending map poisoned").as_mut() {
                map.remove(&id);
            }
            return Err(SandboxError::AgentGone);
        }
        match rx.await {
            Ok(Response::Error(e)) => Err(SandboxError::Agent(e)),
            Ok(resp) => Ok(resp),
            Err(_) => Err(SandboxError::AgentGone),
        }
    }

    /// Opens a TCP connection to `127.0.0.1:port` inside the sandbox. Nothing listening
    /// there gives [`SandboxError::Agent`] with [`sandpool_proto::ErrorKind::Unreachable`].
    pub async fn connect(&self, port: u16) -> Result<AgentStream, SandboxError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        // Registered first: the agent may send data before its answer is read, and a
        // cancelled connect still closes the stream (on drop).
        let stream =
            AgentStream::register(id, &self.streams, self.outbound.clone()).ok_or(SandboxError::AgentGone)?;
        match self.call_with_id(id, Request::Connect { port }).await? {
            Response::Connected { stream: s } if s == id => Ok(stream),
            other => Err(unexpected_response("Connected", &other)),
        }
    }

    /// Checks the protocol version; the first call on every new channel.
    pub async fn hello(&self) -> Result<String, SandboxError> {
        match self
            .call(Request::Hello {
                version: PROTOCOL_VERSION,
            })
            .await?
        {
            Response::Hello {
                version,
                agent_version,
            } if version == PROTOCOL_VERSION => Ok(agent_version),
            Response::Hello { version, .. } => Err(SandboxError::Protocol(format!(
                "agent speaks protocol {version}, host speaks {PROTOCOL_VERSION}"
            ))),
            other => Err(unexpected_response("Hello", &other)),
        }
    }

    /// True once the channel has closed (the sandbox is gone).
    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// Resolves when the channel closes.
    pub async fn closed(&self) {
        let mut rx = self.closed.clone();
        let _ = rx.wait_for(|c| *c).await;
    }

    /// How the workload of a custom sandbox ended, once the agent has reported it.
    pub fn workload_exit(&self) -> Option<WorkloadExit> {
        self.workload_exit.borrow().clone()
    }

    /// Resolves when the agent reports the workload's exit, or with `None` when the
    /// channel closes first.
    pub async fn workload_exited(&self) -> Option<WorkloadExit> {
        let mut exit = self.workload_exit.clone();
        let mut closed = self.closed.clone();
        tokio::select! {
            r = exit.wait_for(Option::is_some) => r.ok().and_then(|e| e.clone()),
            _ = closed.wait_for(|c| *c) => self.workload_exit(),
        }
    }
}

impl Drop for AgentClient {
    fn drop(&mut self) {
        self.reader_task.abort();
        self.writer_task.abort();
        fail_all_streams(&self.streams);
    }
}

/// Builds the error for a response of the wrong kind.
pub fn unexpected_response(expected: &str, got: &Response) -> SandboxError {
    let name = format!("{got:?}");
    let name: String = name.chars().take_while(|c| c.is_alphanumeric()).collect();
    SandboxError::Protocol(format!("expected a {expected} response, got {name}"))
}

async fn write_frames(
    mut to_agent: impl AsyncWrite + Unpin,
    mut frames: mpsc::UnboundedReceiver<Vec<u8>>,
    pending: Pending,
) {
    while let Some(frame) = frames.recv().await {
        let written = match to_agent.write_all(&frame).await {
            Ok(()) if frames.is_empty() => to_agent.flush().await,
            other => other,
        };
        if let Err(e) = written {
            tracing::debug!(error = %e, "cannot write to the agent");
            // Every waiter learns the sandbox is gone; the reader closes the rest.
            pending.lock().expect("pending map poisoned").take();
            return;
        }
    }
}

async fn read_responses(
    mut from_agent: impl AsyncRead + Unpin,
    pending: Pending,
    streams: StreamStates,
    workload_exit: watch::Sender<Option<WorkloadExit>>,
    closed: watch::Sender<bool>,
) {
    let mut len = [0u8; 4];
    loop {
        if from_agent.read_exact(&mut len).await.is_err() {
            break;
        }
        let n = u32::from_be_bytes(len) as usize;
        if n > MAX_FRAME_BYTES {
            tracing::warn!(bytes = n, "agent sent an oversized frame; closing the channel");
            break;
        }
        let mut payload = vec![0u8; n];
        if from_agent.read_exact(&mut payload).await.is_err() {
            break;
        }
        let envelope: Envelope<Response> = match decode(&payload) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "undecodable frame from agent; closing the channel");
                break;
            }
        };
        if envelope.id == EVENT_ID {
            match envelope.body {
                Response::Event(mut event) => {
                    if !route_stream_event(&streams, &mut event) {
                        if let Event::WorkloadExited(exit) = event {
                            tracing::info!(detail = %exit.detail, "workload exited");
                            workload_exit.send_replace(Some(exit));
                        }
                    }
                }
                other => {
                    let name = format!("{other:?}")
                        .chars()
                        .take_while(|c| c.is_alphanumeric())
                        .collect::<String>();
                    tracing::warn!(response = %name, "agent sent an unpaired frame that is not an event");
                }
            }
            continue;
        }
        let waiter = pending
            .lock()
            .expect("pending map poisoned")
            .as_mut()
            .and_then(|m| m.remove(&envelope.id));
        match waiter {
            Some(tx) => {
                let _ = tx.send(envelope.body);
            }
            None => tracing::warn!(id = envelope.id, "agent answered a request nobody is waiting for"),
        }
    }
    // Dropping every sender wakes all waiters with AgentGone.
    pending.lock().expect("pending map poisoned").take();
    fail_all_streams(&streams);
    let _ = closed.send(true);
}

#[cfg(test)]
mod tests {
    use super::*;
    use sandpool_proto::{read_frame, write_frame};

    /// A fake agent on the other end of an in-memory duplex pipe, answering in reverse
    /// order to show that responses are paired by id, not by arrival.
    #[tokio::test]
    async fn concurrent_calls_are_paired_by_id() {
        let (host_side, agent_side) = tokio::io::duplex(1 << 16);
        let (host_r, host_w) = tokio::io::split(host_side);
        let client = Arc::new(AgentClient::new(host_r, host_w));
        let agent = tokio::task::spawn_blocking(move || {
            let rt = tokio::runtime::Handle::current();
            let (mut r, mut w) = tokio::io::split(agent_side);
            let mut reqs = Vec::new();
            for _ in 0..2 {
                let mut len = [0u8; 4];
                rt.block_on(r.read_exact(&mut len)).unwrap();
                let mut p = vec![0u8; u32::from_be_bytes(len) as usize];
                rt.block_on(r.read_exact(&mut p)).unwrap();
                reqs.push(decode::<Envelope<Request>>(&p).unwrap());
            }
            for req in reqs.into_iter().rev() {
                let body = match req.body {
                    Request::Shell { command, .. } => Response::Shell(sandpool_proto::ShellResult {
                        exit_code: 0,
                        stdout: command,
                        stderr: String::new(),
                        duration_ms: 0,
                        timed_out: false,
                    }),
                    _ => unreachable!(),
                };
                let frame = encode_frame(&Envelope { id: req.id, body }).unwrap();
                rt.block_on(w.write_all(&frame)).unwrap();
            }
        });
        let a = client.call(Request::Shell {
            command: "a".into(),
            timeout_ms: 1,
        });
        let b = client.call(Request::Shell {
            command: "b".into(),
            timeout_ms: 1,
        });
        let (a, b) = tokio::join!(a, b);
        agent.await.unwrap();
        match (a.unwrap(), b.unwrap()) {
            (Response::Shell(a), Response::Shell(b)) => {
                assert_eq!((a.stdout.as_str(), b.stdout.as_str()), ("a", "b"))
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_closed_channel_fails_pending_and_later_calls() {
        let (host_side, agent_side) = tokio::io::duplex(1 << 16);
        let (host_r, host_w) = tokio::io::split(host_side);
        let client = AgentClient::new(host_r, host_w);
        drop(agent_side);
        client.closed().await;
        assert!(client.is_closed());
        assert!(matches!(
            client.call(Request::Health).await,
            Err(SandboxError::AgentGone)
        ));
    }

    #[test]
    fn sync_codec_interoperates() {
        let mut buf = Vec::new();
        write_frame(
            &mut buf,
            &Envelope {
                id: 3,
                body: Response::Done,
            },
        )
        .unwrap();
        let p = read_frame(&mut std::io::Cursor::new(buf)).unwrap().unwrap();
        assert_eq!(decode::<Envelope<Response>>(&p).unwrap().body, Response::Done);
    }
}

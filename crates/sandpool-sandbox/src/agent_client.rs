//! The host end of the agent channel: frames requests onto the sandbox's stdin and
//! pairs the responses read from its stdout with the requests by id, so many calls
//! can be in flight at once.

use crate::SandboxError;
use sandpool_proto::{decode, encode_frame, Envelope, Request, Response, MAX_FRAME_BYTES, PROTOCOL_VERSION};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{oneshot, watch};

type Pending = Arc<Mutex<Option<HashMap<u64, oneshot::Sender<Response>>>>>;

/// A connection to one agent. Cheap to share behind an `Arc`.
pub struct AgentClient {
    writer: tokio::sync::Mutex<Box<dyn AsyncWrite + Send + Unpin>>,
    pending: Pending,
    next_id: AtomicU64,
    closed: watch::Receiver<bool>,
    reader_task: tokio::task::JoinHandle<()>,
}

impl AgentClient {
    /// Starts reading responses from `from_agent` in a background task.
    pub fn new(
        from_agent: impl AsyncRead + Send + Unpin + 'static,
        to_agent: impl AsyncWrite + Send + Unpin + 'static,
    ) -> Self {
        let pending: Pending = Arc::new(Mutex::new(Some(HashMap::new())));
        let (closed_tx, closed) = watch::channel(false);
        let reader_task = tokio::spawn(read_responses(from_agent, pending.clone(), closed_tx));
        AgentClient {
            writer: tokio::sync::Mutex::new(Box::new(to_agent)),
            pending,
            next_id: AtomicU64::new(1),
            closed,
            reader_task,
        }
    }

    /// Sends `request` and waits for its response. An agent-side error becomes
    /// [`SandboxError::Agent`].
    pub async fn call(&self, request: Request) -> Result<Response, SandboxError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = encode_frame(&Envelope { id, body: request })?;
        let (tx, rx) = oneshot::channel();
        match self.pending.lock().expect("pending map poisoned").as_mut() {
            Some(map) => map.insert(id, tx),
            None => return Err(SandboxError::AgentGone),
        };
        let written = {
            let mut w = self.writer.lock().await;
            match w.write_all(&frame).await {
                Ok(()) => w.flush().await,
                Err(e) => Err(e),
            }
        };
        if written.is_err() {
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
}

impl Drop for AgentClient {
    fn drop(&mut self) {
        self.reader_task.abort();
    }
}

/// Builds the error for a response of the wrong kind.
pub fn unexpected_response(expected: &str, got: &Response) -> SandboxError {
    let name = format!("{got:?}");
    let name: String = name.chars().take_while(|c| c.is_alphanumeric()).collect();
    SandboxError::Protocol(format!("expected a {expected} response, got {name}"))
}

async fn read_responses(
    mut from_agent: impl AsyncRead + Unpin,
    pending: Pending,
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

//! A TCP stream to `127.0.0.1:<port>` inside a sandbox, carried over the agent channel:
//! [`AgentStream`] is tokio `AsyncRead + AsyncWrite`, so hyper (or anything else) can
//! speak HTTP, WebSocket or raw bytes over it. Flow control follows the protocol's
//! credits: at most [`STREAM_WINDOW`] unread bytes are buffered here per stream, and
//! writes wait once [`STREAM_WINDOW`] bytes are in flight to the agent.

use sandpool_proto::{encode_frame, Envelope, Event, Request, EVENT_ID, STREAM_CHUNK, STREAM_WINDOW};
use std::collections::{HashMap, VecDeque};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc::UnboundedSender;

/// Consumed bytes are credited back to the agent in batches of this size.
const CREDIT_BATCH: u32 = STREAM_WINDOW / 4;

/// One stream's buffers and wakers, shared by the channel reader and the [`AgentStream`].
#[derive(Debug)]
pub(crate) struct StreamState {
    incoming: VecDeque<Vec<u8>>,
    /// Bytes of `incoming.front()` already read.
    front_read: usize,
    buffered: usize,
    eof: bool,
    error: Option<String>,
    read_waker: Option<Waker>,
    /// Bytes the agent still accepts before crediting some back.
    send_credit: u32,
    write_waker: Option<Waker>,
    /// Bytes read by the consumer and not yet credited to the agent.
    uncredited: u32,
}

impl StreamState {
    fn new() -> StreamState {
        StreamState {
            incoming: VecDeque::new(),
            front_read: 0,
            buffered: 0,
            eof: false,
            error: None,
            read_waker: None,
            send_credit: STREAM_WINDOW,
            write_waker: None,
            uncredited: 0,
        }
    }

    /// Fails the stream in both directions.
    pub(crate) fn fail(&mut self, message: String) {
        if self.error.is_none() {
            self.error = Some(message);
        }
        self.wake_all();
    }

    fn wake_all(&mut self) {
        if let Some(w) = self.read_waker.take() {
            w.wake();
        }
        if let Some(w) = self.write_waker.take() {
            w.wake();
        }
    }
}

pub(crate) type StreamStates = Arc<Mutex<Option<HashMap<u64, Arc<Mutex<StreamState>>>>>>;

/// Applies one stream event from the agent; returns false if it was not a stream event.
pub(crate) fn route_stream_event(streams: &StreamStates, event: &mut Event) -> bool {
    let (id, action) = match event {
        Event::StreamData { stream, data } => (*stream, Some(std::mem::take(data))),
        Event::StreamCredit { stream, .. }
        | Event::StreamEof { stream }
        | Event::StreamReset { stream, .. } => (*stream, None),
        Event::WorkloadExited(_) => return false,
    };
    let state = streams
        .lock()
        .expect("stream table poisoned")
        .as_ref()
        .and_then(|m| m.get(&id).cloned());
    let Some(state) = state else {
        tracing::debug!(stream = id, "event for a closed stream dropped");
        return true;
    };
    let mut s = state.lock().expect("stream lock poisoned");
    match (event, action) {
        (Event::StreamData { .. }, Some(data)) => {
            s.buffered += data.len();
            // Sent by the agent and not yet credited back to it: at most one window.
            if s.buffered + s.uncredited as usize > STREAM_WINDOW as usize {
                s.fail("the agent exceeded the stream's flow-control window".into());
                return true;
            }
            if !data.is_empty() {
                s.incoming.push_back(data);
            }
            if let Some(w) = s.read_waker.take() {
                w.wake();
            }
        }
        (Event::StreamCredit { bytes, .. }, _) => {
            s.send_credit = s.send_credit.saturating_add(*bytes).min(STREAM_WINDOW);
            if let Some(w) = s.write_waker.take() {
                w.wake();
            }
        }
        (Event::StreamEof { .. }, _) => {
            s.eof = true;
            if let Some(w) = s.read_waker.take() {
                w.wake();
            }
        }
        (Event::StreamReset { message, .. }, _) => {
            let message = std::mem::take(message);
            s.fail(format!("the connection in the sandbox was reset: {message}"));
        }
        _ => {}
    }
    true
}

/// Fails every open stream (the channel closed) and refuses new ones.
pub(crate) fn fail_all_streams(streams: &StreamStates) {
    if let Some(map) = streams.lock().expect("stream table poisoned").take() {
        for state in map.values() {
            state
                .lock()
                .expect("stream lock poisoned")
                .fail("the sandbox is gone (agent channel closed)".into());
        }
    }
}

/// A byte stream to a TCP port inside the sandbox; see [`crate::AgentClient::connect`].
/// Dropping it closes the connection inside the sandbox.
#[derive(Debug)]
pub struct AgentStream {
    id: u64,
    state: Arc<Mutex<StreamState>>,
    streams: StreamStates,
    outbound: UnboundedSender<Vec<u8>>,
    shutdown_sent: bool,
}

impl AgentStream {
    /// Registers stream `id` so events routed to it are kept from now on.
    pub(crate) fn register(
        id: u64,
        streams: &StreamStates,
        outbound: UnboundedSender<Vec<u8>>,
    ) -> Option<AgentStream> {
        let state = Arc::new(Mutex::new(StreamState::new()));
        streams
            .lock()
            .expect("stream table poisoned")
            .as_mut()?
            .insert(id, Arc::clone(&state));
        Some(AgentStream {
            id,
            state,
            streams: Arc::clone(streams),
            outbound,
            shutdown_sent: false,
        })
    }

    /// The stream id (the `Connect` request's envelope id).
    pub fn id(&self) -> u64 {
        self.id
    }

    fn notify(&self, body: Request) -> bool {
        match encode_frame(&Envelope { id: EVENT_ID, body }) {
            Ok(frame) => self.outbound.send(frame).is_ok(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot encode a stream notification");
                false
            }
        }
    }
}

fn gone(kind: io::ErrorKind, message: &str) -> io::Error {
    io::Error::new(kind, message.to_string())
}

impl AsyncRead for AgentStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let mut s = this.state.lock().expect("stream lock poisoned");
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        if s.incoming.is_empty() {
            if let Some(message) = &s.error {
                return Poll::Ready(Err(gone(io::ErrorKind::ConnectionReset, message)));
            }
            if s.eof {
                return Poll::Ready(Ok(()));
            }
            s.read_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let mut read = 0;
        while buf.remaining() > 0 {
            let start = s.front_read;
            let Some(front) = s.incoming.front() else { break };
            let n = (front.len() - start).min(buf.remaining());
            buf.put_slice(&front[start..start + n]);
            read += n;
            if start + n == front.len() {
                s.incoming.pop_front();
                s.front_read = 0;
            } else {
                s.front_read = start + n;
            }
        }
        s.buffered -= read;
        s.uncredited += read as u32;
        if s.uncredited >= CREDIT_BATCH {
            let bytes = std::mem::take(&mut s.uncredited);
            drop(s);
            this.notify(Request::StreamCredit {
                stream: this.id,
                bytes,
            });
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for AgentStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let mut s = this.state.lock().expect("stream lock poisoned");
        if let Some(message) = &s.error {
            return Poll::Ready(Err(gone(io::ErrorKind::BrokenPipe, message)));
        }
        if this.shutdown_sent {
            return Poll::Ready(Err(gone(io::ErrorKind::BrokenPipe, "write after shutdown")));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if s.send_credit == 0 {
            s.write_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = buf.len().min(s.send_credit as usize).min(STREAM_CHUNK);
        s.send_credit -= n as u32;
        drop(s);
        let sent = this.notify(Request::StreamData {
            stream: this.id,
            data: buf[..n].to_vec(),
        });
        if !sent {
            return Poll::Ready(Err(gone(io::ErrorKind::BrokenPipe, "the sandbox is gone")));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.shutdown_sent {
            this.shutdown_sent = true;
            this.notify(Request::StreamShutdown { stream: this.id });
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for AgentStream {
    fn drop(&mut self) {
        if let Some(map) = self.streams.lock().expect("stream table poisoned").as_mut() {
            map.remove(&self.id);
        }
        self.notify(Request::StreamClose { stream: self.id });
    }
}

#[cfg(test)]
#[path = "agent_stream_tests.rs"]
mod tests;

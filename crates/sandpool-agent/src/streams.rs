//! TCP streams the host opens to `127.0.0.1:<port>` inside the sandbox, carried over the
//! agent channel with credit-based flow control: per stream, one thread writes the host's
//! bytes to the socket (crediting them back once written) and one reads the socket within
//! the credit the host granted, so neither direction buffers more than one window.

use crate::outbox::Outbox;
use sandpool_proto::{AgentError, ErrorKind, Event, Response, STREAM_CHUNK, STREAM_WINDOW};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// How long a connect to the workload may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

enum Outgoing {
    Data(Vec<u8>),
    Shutdown,
}

struct Credit {
    available: u32,
    closed: bool,
}

struct Stream {
    socket: TcpStream,
    to_socket: Mutex<Option<Sender<Outgoing>>>,
    /// Bytes received from the host and not yet written to the socket.
    queued: AtomicU64,
    credit: Mutex<Credit>,
    credit_changed: Condvar,
}

impl Stream {
    /// Stops both threads: the reader wakes from its wait or its blocked read.
    fn stop(&self) {
        self.credit.lock().expect("credit lock poisoned").closed = true;
        self.credit_changed.notify_all();
        self.to_socket.lock().expect("stream lock poisoned").take();
        let _ = self.socket.shutdown(Shutdown::Both);
    }
}

/// Every open stream of this agent, by stream id (the `Connect` request's id).
pub struct Streams {
    table: Mutex<HashMap<u64, Arc<Stream>>>,
    outbox: Arc<Outbox>,
}

impl Streams {
    pub fn new(outbox: Arc<Outbox>) -> Arc<Streams> {
        Arc::new(Streams {
            table: Mutex::new(HashMap::new()),
            outbox,
        })
    }

    /// Connects to `127.0.0.1:port` and starts carrying the stream `id`.
    pub fn connect(self: &Arc<Self>, id: u64, port: u16) -> Response {
        if port == 0 {
            return error(ErrorKind::BadRequest, "port 0 cannot be connected to".into());
        }
        if self
            .table
            .lock()
            .expect("stream table poisoned")
            .contains_key(&id)
        {
            return error(ErrorKind::BadRequest, format!("stream {id} is already open"));
        }
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let socket = match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                return error(
                    ErrorKind::Unreachable,
                    format!("nothing accepts connections on port {port} in the sandbox (connection refused)"),
                )
            }
            Err(e) => {
                return error(
                    ErrorKind::Unreachable,
                    format!("cannot connect to port {port} in the sandbox: {e}"),
                )
            }
        };
        let _ = socket.set_nodelay(true);
        let (reader_socket, writer_socket) = match (socket.try_clone(), socket.try_clone()) {
            (Ok(r), Ok(w)) => (r, w),
            (Err(e), _) | (_, Err(e)) => {
                return error(ErrorKind::Internal, format!("cannot duplicate the socket: {e}"))
            }
        };
        let (tx, rx) = mpsc::channel();
        let stream = Arc::new(Stream {
            socket,
            to_socket: Mutex::new(Some(tx)),
            queued: AtomicU64::new(0),
            credit: Mutex::new(Credit {
                available: STREAM_WINDOW,
                closed: false,
            }),
            credit_changed: Condvar::new(),
        });
        self.table
            .lock()
            .expect("stream table poisoned")
            .insert(id, Arc::clone(&stream));
        let (me, s) = (Arc::clone(self), Arc::clone(&stream));
        let writer = std::thread::Builder::new()
            .name("stream-write".into())
            .spawn(move || me.write_loop(id, &s, writer_socket, rx));
        let (me, s) = (Arc::clone(self), Arc::clone(&stream));
        let reader = std::thread::Builder::new()
            .name("stream-read".into())
            .spawn(move || me.read_loop(id, &s, reader_socket));
        if let Err(e) = writer.and(reader) {
            self.close(id);
            return error(ErrorKind::Internal, format!("cannot start stream threads: {e}"));
        }
        Response::Connected { stream: id }
    }

    /// Queues host bytes for the socket; a host exceeding its window resets the stream.
    pub fn data(&self, id: u64, data: Vec<u8>) {
        let Some(stream) = self.get(id) else {
            tracing::debug!(stream = id, "data for a closed stream dropped");
            return;
        };
        let len = data.len() as u64;
        let queued = stream.queued.fetch_add(len, Ordering::SeqCst) + len;
        if queued > u64::from(STREAM_WINDOW) || data.len() > STREAM_CHUNK {
            self.reset(id, "the host exceeded the stream's flow-control window".into());
            return;
        }
        let sent = match stream.to_socket.lock().expect("stream lock poisoned").as_ref() {
            Some(tx) => tx.send(Outgoing::Data(data)).is_ok(),
            None => false,
        };
        if !sent {
            tracing::debug!(stream = id, "data after shutdown dropped");
        }
    }

    /// The host read `bytes` more of this stream.
    pub fn credit(&self, id: u64, bytes: u32) {
        if let Some(stream) = self.get(id) {
            let mut credit = stream.credit.lock().expect("credit lock poisoned");
            credit.available = credit.available.saturating_add(bytes).min(STREAM_WINDOW);
            stream.credit_changed.notify_all();
        }
    }

    /// Half-close: shut the socket's write side once the queued bytes are written.
    pub fn shutdown(&self, id: u64) {
        if let Some(stream) = self.get(id) {
            if let Some(tx) = stream.to_socket.lock().expect("stream lock poisoned").take() {
                let _ = tx.send(Outgoing::Shutdown);
            }
        }
    }

    /// Forgets the stream and closes its socket.
    pub fn close(&self, id: u64) {
        let removed = self.table.lock().expect("stream table poisoned").remove(&id);
        if let Some(stream) = removed {
            stream.stop();
        }
    }

    /// Closes every stream (on shutdown).
    pub fn close_all(&self) {
        let all: Vec<_> = self
            .table
            .lock()
            .expect("stream table poisoned")
            .drain()
            .collect();
        for (_, stream) in all {
            stream.stop();
        }
    }

    fn get(&self, id: u64) -> Option<Arc<Stream>> {
        self.table
            .lock()
            .expect("stream table poisoned")
            .get(&id)
            .cloned()
    }

    /// Fails the stream in both directions and tells the host, once.
    fn reset(&self, id: u64, message: String) {
        let removed = self.table.lock().expect("stream table poisoned").remove(&id);
        if let Some(stream) = removed {
            stream.stop();
            self.outbox.event(Event::StreamReset { stream: id, message });
        }
    }

    fn write_loop(&self, id: u64, stream: &Stream, mut socket: TcpStream, rx: mpsc::Receiver<Outgoing>) {
        for outgoing in rx {
            match outgoing {
                Outgoing::Data(data) => {
                    if let Err(e) = socket.write_all(&data) {
                        self.reset(id, format!("writing to the connection failed: {e}"));
                        return;
                    }
                    stream.queued.fetch_sub(data.len() as u64, Ordering::SeqCst);
                    self.outbox.event(Event::StreamCredit {
                        stream: id,
                        bytes: data.len() as u32,
                    });
                }
                Outgoing::Shutdown => {
                    let _ = socket.shutdown(Shutdown::Write);
                    return;
                }
            }
        }
    }

    fn read_loop(&self, id: u64, stream: &Stream, mut socket: TcpStream) {
        let mut buf = vec![0u8; STREAM_CHUNK];
        loop {
            let allowed = {
                let mut credit = stream.credit.lock().expect("credit lock poisoned");
                while credit.available == 0 && !credit.closed {
                    credit = stream.credit_changed.wait(credit).expect("credit lock poisoned");
                }
                if credit.closed {
                    return;
                }
                (credit.available as usize).min(STREAM_CHUNK)
            };
            match socket.read(&mut buf[..allowed]) {
                Ok(0) => {
                    if !stream.credit.lock().expect("credit lock poisoned").closed {
                        self.outbox.event(Event::StreamEof { stream: id });
                    }
                    return;
                }
                Ok(n) => {
                    stream.credit.lock().expect("credit lock poisoned").available -= n as u32;
                    self.outbox.event(Event::StreamData {
                        stream: id,
                        data: buf[..n].to_vec(),
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.reset(id, format!("reading from the connection failed: {e}"));
                    return;
                }
            }
        }
    }
}

fn error(kind: ErrorKind, message: String) -> Response {
    Response::Error(AgentError { kind, message })
}

//! TCP streams the host opens to `127.0.0.1:<port>` inside the sandbox, carried over the
//! agent channel with credit-based flow control. One poller thread reads every socket
//! that has credit left (non-blocking reads after `poll(2)`), and host bytes are written
//! by short-lived jobs on the request pool (at most one per stream at a time), which
//! credit them back once written; so neither direction buffers more than one window, and
//! an idle stream costs no thread.

use crate::outbox::Outbox;
use crate::workers::Workers;
use sandpool_proto::{AgentError, ErrorKind, Event, Response, STREAM_CHUNK, STREAM_WINDOW};
use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Write;
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// How long a connect to the workload may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

enum Outgoing {
    Data(Vec<u8>),
    Shutdown,
}

#[derive(Default)]
struct ToSocket {
    queue: VecDeque<Outgoing>,
    /// Bytes in `queue`: what the host sent and the agent has not written yet.
    queued: usize,
    /// A job is writing this stream's queue.
    draining: bool,
    /// Shutdown was requested: later data is dropped.
    shut: bool,
}

struct Stream {
    socket: TcpStream,
    to_socket: Mutex<ToSocket>,
    /// Bytes the host still accepts; the poller reads only while this is positive.
    credit: Mutex<u32>,
}

/// Every open stream of this agent, by stream id (the `Connect` request's id).
pub struct Streams {
    table: Mutex<HashMap<u64, Arc<Stream>>>,
    outbox: Arc<Outbox>,
    workers: Workers,
    /// Write end of the pipe that wakes the poller; set when it starts.
    wake: OnceLock<OwnedFd>,
    /// Streams whose peer sent EOF: no longer polled.
    ended: Mutex<HashSet<u64>>,
    /// `Connect`s received and not answered yet; a close removes its id, so a connect
    /// the host gave up on is dropped instead of leaking an open socket.
    connecting: Mutex<HashSet<u64>>,
}

impl Streams {
    pub fn new(outbox: Arc<Outbox>, workers: Workers) -> Arc<Streams> {
        Arc::new(Streams {
            table: Mutex::new(HashMap::new()),
            outbox,
            workers,
            wake: OnceLock::new(),
            ended: Mutex::new(HashSet::new()),
            connecting: Mutex::new(HashSet::new()),
        })
    }

    /// Records a `Connect` as soon as it is read, before [`Streams::connect`] runs on a
    /// request thread, so a `StreamClose` that overtakes it cancels it.
    pub fn begin_connect(&self, id: u64) {
        self.connecting.lock().expect("connect set poisoned").insert(id);
    }

    /// Connects to `127.0.0.1:port` and starts carrying the stream `id`.
    pub fn connect(self: &Arc<Self>, id: u64, port: u16) -> Response {
        let response = self.open(id, port);
        if !self.connecting.lock().expect("connect set poisoned").remove(&id) {
            // The host closed the stream while it was being opened.
            self.close(id);
        }
        response
    }

    fn open(self: &Arc<Self>, id: u64, port: u16) -> Response {
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
        if let Err(e) = self.start_poller() {
            return error(
                ErrorKind::Internal,
                format!("cannot start the stream poller: {e}"),
            );
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
        let stream = Arc::new(Stream {
            socket,
            to_socket: Mutex::new(ToSocket::default()),
            credit: Mutex::new(STREAM_WINDOW),
        });
        self.table
            .lock()
            .expect("stream table poisoned")
            .insert(id, stream);
        self.wake_poller();
        Response::Connected { stream: id }
    }

    /// Queues host bytes for the socket; a host exceeding its window resets the stream.
    pub fn data(self: &Arc<Self>, id: u64, data: Vec<u8>) {
        self.enqueue(id, Outgoing::Data(data));
    }

    /// Half-close: shut the socket's write side once the queued bytes are written.
    pub fn shutdown(self: &Arc<Self>, id: u64) {
        self.enqueue(id, Outgoing::Shutdown);
    }

    /// The host read `bytes` more of this stream.
    pub fn credit(&self, id: u64, bytes: u32) {
        if let Some(stream) = self.get(id) {
            let mut credit = stream.credit.lock().expect("credit lock poisoned");
            let was_blocked = *credit == 0;
            *credit = credit.saturating_add(bytes).min(STREAM_WINDOW);
            drop(credit);
            if was_blocked {
                self.wake_poller();
            }
        }
    }

    /// Forgets the stream and closes its socket.
    pub fn close(&self, id: u64) {
        self.connecting.lock().expect("connect set poisoned").remove(&id);
        let removed = self.table.lock().expect("stream table poisoned").remove(&id);
        if let Some(stream) = removed {
            let _ = stream.socket.shutdown(Shutdown::Both);
            self.ended.lock().expect("ended set poisoned").remove(&id);
            self.wake_poller();
        }
    }

    /// Closes every stream (on shutdown).
    pub fn close_all(&self) {
        let ids: Vec<u64> = self
            .table
            .lock()
            .expect("stream table poisoned")
            .keys()
            .copied()
            .collect();
        for id in ids {
            self.close(id);
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
            let _ = stream.socket.shutdown(Shutdown::Both);
            self.ended.lock().expect("ended set poisoned").remove(&id);
            self.wake_poller();
            self.outbox.event(Event::StreamReset { stream: id, message });
        }
    }

    fn enqueue(self: &Arc<Self>, id: u64, outgoing: Outgoing) {
        let Some(stream) = self.get(id) else {
            tracing::debug!(stream = id, "data for a closed stream dropped");
            return;
        };
        let mut q = stream.to_socket.lock().expect("stream lock poisoned");
        if q.shut {
            return;
        }
        if let Outgoing::Data(data) = &outgoing {
            q.queued += data.len();
            if q.queued > STREAM_WINDOW as usize || data.len() > STREAM_CHUNK {
                drop(q);
                self.reset(id, "the host exceeded the stream's flow-control window".into());
                return;
            }
        } else {
            q.shut = true;
        }
        q.queue.push_back(outgoing);
        if !q.draining {
            q.draining = true;
            let (me, stream) = (Arc::clone(self), Arc::clone(&stream));
            self.workers.submit(move || me.drain(id, &stream));
        }
    }

    /// Writes the stream's queue to its socket until it is empty.
    fn drain(&self, id: u64, stream: &Stream) {
        loop {
            let next = {
                let mut q = stream.to_socket.lock().expect("stream lock poisoned");
                match q.queue.pop_front() {
                    Some(o) => o,
                    None => {
                        q.draining = false;
                        return;
                    }
                }
            };
            match next {
                Outgoing::Data(data) => {
                    if let Err(e) = (&stream.socket).write_all(&data) {
                        stream.to_socket.lock().expect("stream lock poisoned").draining = false;
                        self.reset(id, format!("writing to the connection failed: {e}"));
                        return;
                    }
                    stream.to_socket.lock().expect("stream lock poisoned").queued -= data.len();
                    self.outbox.event(Event::StreamCredit {
                        stream: id,
                        bytes: data.len() as u32,
                    });
                }
                Outgoing::Shutdown => {
                    let _ = stream.socket.shutdown(Shutdown::Write);
                }
            }
        }
    }

    fn wake_poller(&self) {
        if let Some(fd) = self.wake.get() {
            // SAFETY: writes one byte from a valid buffer to a non-blocking pipe; a full
            // pipe (EAGAIN) already guarantees a wake-up.
            unsafe { libc::write(fd.as_raw_fd(), [1u8].as_ptr().cast(), 1) };
        }
    }

    fn start_poller(self: &Arc<Self>) -> std::io::Result<()> {
        if self.wake.get().is_some() {
            return Ok(());
        }
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills two descriptors; the result is checked.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: both descriptors were just created and are owned by nobody else.
        let (read_end, write_end) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        if self.wake.set(write_end).is_err() {
            return Ok(()); // Another connect started it first.
        }
        let me = Arc::clone(self);
        std::thread::Builder::new()
            .name("stream-poll".into())
            .spawn(move || me.poll_loop(read_end))?;
        Ok(())
    }

    /// Reads every stream that has credit and data, forever.
    fn poll_loop(&self, wake: OwnedFd) {
        let mut buf = vec![0u8; STREAM_CHUNK];
        loop {
            let readable: Vec<(u64, Arc<Stream>)> = {
                let ended = self.ended.lock().expect("ended set poisoned");
                self.table
                    .lock()
                    .expect("stream table poisoned")
                    .iter()
                    .filter(|(id, s)| {
                        !ended.contains(id) && *s.credit.lock().expect("credit lock poisoned") > 0
                    })
                    .map(|(id, s)| (*id, Arc::clone(s)))
                    .collect()
            };
            let mut pollfds: Vec<libc::pollfd> = std::iter::once(wake.as_raw_fd())
                .chain(readable.iter().map(|(_, s)| s.socket.as_raw_fd()))
                .map(|fd| libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect();
            // SAFETY: pollfds is a valid array of its length.
            let n = unsafe { libc::poll(pollfds.as_mut_ptr(), pollfds.len() as libc::nfds_t, -1) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    tracing::error!(error = %e, "stream poll failed; streams stop reading");
                    return;
                }
                continue;
            }
            if pollfds[0].revents != 0 {
                // SAFETY: drains the non-blocking wake pipe into a local buffer.
                while unsafe { libc::read(wake.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
            }
            for ((id, stream), pfd) in readable.iter().zip(&pollfds[1..]) {
                if pfd.revents != 0 {
                    self.read_some(*id, stream, &mut buf);
                }
            }
        }
    }

    /// One non-blocking read within the stream's credit.
    fn read_some(&self, id: u64, stream: &Stream, buf: &mut [u8]) {
        let allowed = (*stream.credit.lock().expect("credit lock poisoned") as usize).min(buf.len());
        // SAFETY: recv into a valid buffer of at least `allowed` bytes.
        let n = unsafe {
            libc::recv(
                stream.socket.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                allowed,
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
            ) {
                self.reset(id, format!("reading from the connection failed: {e}"));
            }
            return;
        }
        if !self
            .table
            .lock()
            .expect("stream table poisoned")
            .contains_key(&id)
        {
            return; // Closed meanwhile.
        }
        if n == 0 {
            self.ended.lock().expect("ended set poisoned").insert(id);
            self.outbox.event(Event::StreamEof { stream: id });
            return;
        }
        let n = n as usize;
        *stream.credit.lock().expect("credit lock poisoned") -= n as u32;
        self.outbox.event(Event::StreamData {
            stream: id,
            data: buf[..n].to_vec(),
        });
    }
}

fn error(kind: ErrorKind, message: String) -> Response {
    Response::Error(AgentError { kind, message })
}

#[cfg(test)]
#[path = "streams_tests.rs"]
mod tests;

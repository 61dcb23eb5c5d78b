//! Unit tests of [`AgentStream`] against an in-memory fake agent.

use crate::{AgentClient, SandboxError};
use sandpool_proto::{
    decode, encode_frame, AgentError, Envelope, ErrorKind, Event, Request, Response, WorkloadExit, EVENT_ID,
    STREAM_WINDOW,
};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(10);

/// The agent end of an in-memory channel: frames in, frames out.
struct FakeAgent {
    r: ReadHalf<DuplexStream>,
    w: WriteHalf<DuplexStream>,
}

impl FakeAgent {
    fn pair() -> (AgentClient, FakeAgent) {
        let (host, agent) = tokio::io::duplex(1 << 20);
        let (hr, hw) = tokio::io::split(host);
        let (r, w) = tokio::io::split(agent);
        (AgentClient::new(hr, hw), FakeAgent { r, w })
    }

    async fn recv(&mut self) -> Option<Envelope<Request>> {
        let mut len = [0u8; 4];
        self.r.read_exact(&mut len).await.ok()?;
        let mut p = vec![0u8; u32::from_be_bytes(len) as usize];
        self.r.read_exact(&mut p).await.ok()?;
        Some(decode(&p).unwrap())
    }

    async fn send(&mut self, id: u64, body: Response) {
        let frame = encode_frame(&Envelope { id, body }).unwrap();
        self.w.write_all(&frame).await.unwrap();
    }

    async fn event(&mut self, event: Event) {
        self.send(EVENT_ID, Response::Event(event)).await;
    }

    /// Answers the first request, which must be a Connect, and returns the stream id.
    async fn accept(&mut self) -> u64 {
        let req = self.recv().await.unwrap();
        assert!(matches!(req.body, Request::Connect { port: 8000 }), "{req:?}");
        self.send(req.id, Response::Connected { stream: req.id }).await;
        req.id
    }
}

async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f).await.expect("timed out")
}

/// An echo server: every byte written comes back (within the credit the host grants),
/// half-close becomes EOF, and the host's writes are credited as they are "written to
/// the socket".
async fn echo(mut agent: FakeAgent) -> (u64, u64) {
    let stream = agent.accept().await;
    let (mut echoed, mut credited_to_agent) = (0u64, 0u64);
    let mut queue: std::collections::VecDeque<u8> = Default::default();
    let mut credit = STREAM_WINDOW as usize;
    let mut eof_pending = false;
    while let Some(req) = agent.recv().await {
        match req.body {
            Request::StreamData { stream: s, data } => {
                assert_eq!((req.id, s), (EVENT_ID, stream));
                echoed += data.len() as u64;
                agent
                    .event(Event::StreamCredit {
                        stream,
                        bytes: data.len() as u32,
                    })
                    .await;
                queue.extend(data);
            }
            Request::StreamCredit { bytes, .. } => {
                credited_to_agent += u64::from(bytes);
                credit += bytes as usize;
            }
            Request::StreamShutdown { .. } => eof_pending = true,
            Request::StreamClose { .. } => break,
            other => panic!("unexpected {other:?}"),
        }
        while credit > 0 && !queue.is_empty() {
            let n = credit.min(queue.len()).min(sandpool_proto::STREAM_CHUNK);
            let data: Vec<u8> = queue.drain(..n).collect();
            credit -= n;
            agent.event(Event::StreamData { stream, data }).await;
        }
        if eof_pending && queue.is_empty() {
            eof_pending = false;
            agent.event(Event::StreamEof { stream }).await;
        }
    }
    (echoed, credited_to_agent)
}

#[tokio::test]
async fn bytes_round_trip_and_half_close_ends_the_read_side() {
    let (client, agent) = FakeAgent::pair();
    let server = tokio::spawn(echo(agent));
    let mut stream = within(client.connect(8000)).await.unwrap();
    let (mut r, mut w) = tokio::io::split(stream);
    let payload: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let expected = payload.clone();
    let writer = tokio::spawn(async move {
        w.write_all(&payload).await.unwrap();
        w.shutdown().await.unwrap();
        w
    });
    let mut back = Vec::new();
    within(r.read_to_end(&mut back)).await.unwrap();
    assert_eq!(back, expected);
    stream = r.unsplit(writer.await.unwrap());
    drop(stream);
    let (echoed, credited) = within(server).await.unwrap();
    assert_eq!(echoed, 1_000_000);
    // Credits go back in batches as the consumer reads.
    assert!(credited >= 1_000_000 - u64::from(STREAM_WINDOW), "{credited}");
}

#[tokio::test]
async fn writes_stop_at_the_window_until_the_agent_credits() {
    let (client, mut agent) = FakeAgent::pair();
    let (got_tx, mut got) = mpsc::unbounded_channel();
    let connect = tokio::spawn(async move { client.connect(8000).await.map(|s| (client, s)) });
    let stream_id = agent.accept().await;
    let (_client, mut stream) = within(connect).await.unwrap().unwrap();
    let reader = tokio::spawn(async move {
        while let Some(req) = agent.recv().await {
            if let Request::StreamData { data, .. } = req.body {
                got_tx.send(data.len()).unwrap();
            }
        }
        agent
    });
    let big = vec![7u8; STREAM_WINDOW as usize + 1000];
    let write = tokio::time::timeout(Duration::from_millis(500), stream.write_all(&big)).await;
    assert!(write.is_err(), "a write past the window completed without credit");
    let mut received = 0;
    while let Ok(n) = got.try_recv() {
        received += n;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    while let Ok(n) = got.try_recv() {
        received += n;
    }
    assert_eq!(received, STREAM_WINDOW as usize);
    reader.abort();
    let _ = stream_id;
}

#[tokio::test]
async fn unread_data_is_not_credited_until_it_is_read() {
    let (client, mut agent) = FakeAgent::pair();
    let connect = tokio::spawn(async move { client.connect(8000).await.map(|s| (client, s)) });
    let stream = agent.accept().await;
    let (_client, mut s) = within(connect).await.unwrap().unwrap();
    for _ in 0..4 {
        agent
            .event(Event::StreamData {
                stream,
                data: vec![1; STREAM_WINDOW as usize / 4],
            })
            .await;
    }
    let mut buf = vec![0u8; STREAM_WINDOW as usize / 4];
    within(s.read_exact(&mut buf)).await.unwrap();
    match within(agent.recv()).await.unwrap().body {
        Request::StreamCredit { stream: id, bytes } => {
            assert_eq!((id, bytes), (stream, STREAM_WINDOW / 4))
        }
        other => panic!("expected a credit, got {other:?}"),
    }
    // The agent overrunning its window fails the stream instead of buffering more:
    // 192 KiB are outstanding, so 64 KiB + 1 more is one byte too many.
    agent
        .event(Event::StreamData {
            stream,
            data: vec![2; STREAM_WINDOW as usize / 4 + 1],
        })
        .await;
    within(async {
        while s.state.lock().unwrap().error.is_none() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let mut rest = Vec::new();
    let err = within(s.read_to_end(&mut rest)).await.unwrap_err();
    assert_eq!(
        rest.len(),
        3 * STREAM_WINDOW as usize / 4,
        "buffered data is still delivered"
    );
    assert!(err.to_string().contains("flow-control window"), "{err}");
}

#[tokio::test]
async fn refused_connections_and_resets_are_reported() {
    let (client, mut agent) = FakeAgent::pair();
    let fake = tokio::spawn(async move {
        let req = agent.recv().await.unwrap();
        let err = AgentError {
            kind: ErrorKind::Unreachable,
            message: "nothing accepts connections on port 9".into(),
        };
        agent.send(req.id, Response::Error(err)).await;
        // The failed connect's stream is closed right away.
        let close = agent.recv().await.unwrap();
        assert_eq!(close.body, Request::StreamClose { stream: req.id });
        let stream = agent.accept().await;
        agent
            .event(Event::StreamReset {
                stream,
                message: "connection reset by peer".into(),
            })
            .await;
        agent
    });
    // The fake answers the first connect with an error regardless of port.
    match within(client.connect(8000)).await {
        Err(SandboxError::Agent(e)) => assert_eq!(e.kind, ErrorKind::Unreachable),
        other => panic!("unexpected {other:?}"),
    }
    let mut s = within(client.connect(8000)).await.unwrap();
    let mut buf = [0u8; 16];
    let err = within(s.read(&mut buf)).await.unwrap_err();
    assert!(err.to_string().contains("connection reset by peer"), "{err}");
    assert!(s.write_all(b"x").await.is_err());
    let _agent = within(fake).await.unwrap();
}

#[tokio::test]
async fn a_closed_channel_fails_open_streams() {
    let (client, mut agent) = FakeAgent::pair();
    let connect = tokio::spawn(async move { client.connect(8000).await.map(|s| (client, s)) });
    agent.accept().await;
    let (client, mut s) = within(connect).await.unwrap().unwrap();
    drop(agent);
    let mut buf = [0u8; 4];
    let err = within(s.read(&mut buf)).await.unwrap_err();
    assert!(err.to_string().contains("gone"), "{err}");
    assert!(matches!(
        within(client.connect(8000)).await,
        Err(SandboxError::AgentGone)
    ));
    assert_eq!(within(client.workload_exited()).await, None);
}

#[tokio::test]
async fn the_workload_exit_event_is_recorded() {
    let (client, mut agent) = FakeAgent::pair();
    let exit = WorkloadExit {
        code: Some(3),
        signal: None,
        detail: "exit status 3".into(),
    };
    agent.event(Event::WorkloadExited(exit.clone())).await;
    assert_eq!(within(client.workload_exited()).await, Some(exit.clone()));
    assert_eq!(client.workload_exit(), Some(exit));
}

#[tokio::test]
async fn hyper_speaks_http_over_a_stream() {
    use http_body_util::{BodyExt, Empty};
    let (client, mut agent) = FakeAgent::pair();
    let server = tokio::spawn(async move {
        let stream = agent.accept().await;
        let mut request = Vec::new();
        while !request.ends_with(b"\r\n\r\n") {
            match agent.recv().await.unwrap().body {
                Request::StreamData { data, .. } => request.extend(data),
                Request::StreamCredit { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        let body = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-sandbox: fake\r\n\r\nhello".to_vec();
        agent.event(Event::StreamData { stream, data: body }).await;
        (String::from_utf8(request).unwrap(), agent)
    });
    let stream = within(client.connect(8000)).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::get("/status?identifier=a")
        .header("host", "sandbox")
        .body(Empty::<hyper::body::Bytes>::new())
        .unwrap();
    let resp = within(sender.send_request(req)).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-sandbox"], "fake");
    let body = within(resp.into_body().collect()).await.unwrap().to_bytes();
    assert_eq!(&body[..], b"hello");
    let (request, _agent) = within(server).await.unwrap();
    assert!(
        request.starts_with("GET /status?identifier=a HTTP/1.1\r\n"),
        "{request}"
    );
}

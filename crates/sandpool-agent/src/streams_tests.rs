//! Unit tests of the agent's streams against real loopback sockets on the host.

use super::*;
use sandpool_proto::{decode, read_frame, Envelope};
use std::io::Read;
use std::net::TcpListener;
use std::sync::mpsc;

/// An outbox whose frames are decoded into a channel.
fn outbox() -> (Arc<Outbox>, mpsc::Receiver<Envelope<Response>>) {
    let (r, w) = std::os::unix::net::UnixStream::pair().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut r = r;
        while let Ok(Some(p)) = read_frame(&mut r) {
            if tx.send(decode(&p).unwrap()).is_err() {
                return;
            }
        }
    });
    (Arc::new(Outbox::new(w)), rx)
}

fn next_event(rx: &mpsc::Receiver<Envelope<Response>>) -> Event {
    match rx.recv_timeout(Duration::from_secs(10)).unwrap().body {
        Response::Event(e) => e,
        other => panic!("expected an event, got {other:?}"),
    }
}

#[test]
fn bytes_flow_both_ways_within_credit() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (out, rx) = outbox();
    let streams = Streams::new(out, Workers::default());
    streams.begin_connect(5);
    assert_eq!(streams.connect(5, port), Response::Connected { stream: 5 });
    let (mut peer, _) = listener.accept().unwrap();

    streams.data(5, b"ping".to_vec());
    let mut buf = [0u8; 4];
    peer.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");
    assert_eq!(next_event(&rx), Event::StreamCredit { stream: 5, bytes: 4 });

    // The peer sends more than a window: only one window arrives until credit is granted.
    let big = vec![9u8; STREAM_WINDOW as usize * 2];
    let writer = std::thread::spawn(move || {
        peer.write_all(&big).unwrap();
        peer
    });
    let mut got = 0usize;
    while got < STREAM_WINDOW as usize {
        match next_event(&rx) {
            Event::StreamData { data, .. } => got += data.len(),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(got, STREAM_WINDOW as usize);
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "data sent beyond the credit"
    );
    streams.credit(5, STREAM_WINDOW);
    while got < 2 * STREAM_WINDOW as usize {
        if let Event::StreamData { data, .. } = next_event(&rx) {
            got += data.len();
        }
    }
    streams.credit(5, STREAM_WINDOW);
    drop(writer.join().unwrap());
    assert_eq!(next_event(&rx), Event::StreamEof { stream: 5 });
    streams.close(5);
    assert!(streams.get(5).is_none());
}

#[test]
fn a_host_overrunning_its_window_resets_the_stream() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (out, rx) = outbox();
    let streams = Streams::new(out, Workers::default());
    streams.begin_connect(1);
    streams.connect(1, port);
    let (_peer, _) = listener.accept().unwrap(); // never reads
    let mut sent = 0;
    while streams.get(1).is_some() && sent < 64 * STREAM_WINDOW as usize {
        streams.data(1, vec![0; STREAM_CHUNK]);
        sent += STREAM_CHUNK;
    }
    assert!(streams.get(1).is_none(), "an overrun was accepted");
    loop {
        match next_event(&rx) {
            Event::StreamReset { stream: 1, message } => {
                assert!(message.contains("window"), "{message}");
                break;
            }
            Event::StreamCredit { .. } => {}
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_connect_closed_before_it_completes_is_dropped() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (out, _rx) = outbox();
    let streams = Streams::new(out, Workers::default());
    streams.begin_connect(3);
    streams.close(3);
    streams.connect(3, port);
    assert!(streams.get(3).is_none());
    let (mut peer, _) = listener.accept().unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(peer.read(&mut [0u8; 1]).unwrap(), 0, "the socket was left open");
}

#[test]
fn closed_ports_are_unreachable() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (out, _rx) = outbox();
    let streams = Streams::new(out, Workers::default());
    streams.begin_connect(1);
    match streams.connect(1, port) {
        Response::Error(e) => {
            assert_eq!(e.kind, ErrorKind::Unreachable);
            assert!(e.message.contains(&port.to_string()), "{e}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(streams.connect(2, 0), Response::Error(e) if e.kind == ErrorKind::BadRequest));
}

//! The router behind a real hyper server on loopback, driven with raw HTTP/1.1 so the
//! exact bytes clients send (unencoded identifiers) reach the server unchanged.

use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Server {
    addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start() -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Harness::new().app;
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Server { addr, task }
}

/// Sends `head` (request line and headers, no trailing blank line) and `body`;
/// returns status, headers text and body.
async fn raw(server: &Server, head: &str, body: &str) -> (u16, String, String) {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let request = format!(
            "{head}\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        String::from_utf8(response).unwrap()
    };
    let response = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("loopback timed out");
    let (headers, body) = response.split_once("\r\n\r\n").unwrap();
    let status = headers[9..12].parse().unwrap();
    (status, headers.to_owned(), body.to_owned())
}

#[tokio::test]
async fn unencoded_identifiers_from_autogen_and_sk_reach_the_handler() {
    let server = start().await;
    let body = r#"{"properties":{"codeInputType":"inline","executionType":"synchronous","code":"1"}}"#;
    for identifier in [
        "a|b{c}[d]^e",
        "user@x.io;(1)",
        "q`~!*x",
        "%3Ca%22b%3E",
        "0f8fad5b-d9cb-469f-a165-70867728950e",
    ] {
        let head = format!(
            "POST /pools/demo/code/execute?api-version=2024-02-02-preview&identifier={identifier} HTTP/1.1\r\n\
             Authorization: Bearer {EXEC_KEY}\r\nContent-Type: application/json"
        );
        let (status, headers, response) = raw(&server, &head, body).await;
        assert_eq!(status, 200, "{identifier}: {headers}\n{response}");
        assert!(headers.to_ascii_lowercase().contains("x-request-id:"));
        schema::check_response(
            "POST",
            "/pools/demo/code/execute",
            status,
            Some("application/json"),
            response.as_bytes(),
        );
    }
    // Raw `"`, `<` and `>` are refused by hyper's request-line parser before routing
    // (400, empty body); clients must percent-encode them, as the URL spec requires.
    let head = format!("GET /pools/demo/files?identifier=ab&api-version=2024-02-02-preview HTTP/1.1\r\nauthorization: Bearer {EXEC_KEY}");
    let (status, _, response) = raw(&server, &head, "").await;
    assert_eq!(status, 400);
    schema::check_response(
        "GET",
        "/pools/demo/files",
        status,
        Some("application/json"),
        response.as_bytes(),
    );
}

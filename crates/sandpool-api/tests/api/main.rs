//! Tests of the HTTP API through the real router with an in-memory session service;
//! every response is checked against openapi.json.

mod auth;
mod executions;
mod fake;
mod files;
mod loopback;
mod schema;
mod sessions;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use fake::FakeService;
use sandpool_api::{router, ApiState, Authenticator, Role};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

pub const EXEC_KEY: &str = "exec-key-123";
pub const ADMIN_KEY: &str = "admin-key-456";
pub const METRICS_KEY: &str = "metrics-key-789";
pub const OLD: &str = "api-version=2024-02-02-preview";
pub const NEW: &str = "api-version=2025-02-02-preview";
pub const ID: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";

pub fn authenticator() -> Authenticator {
    Authenticator::new()
        .with_key(EXEC_KEY, Role::Executor)
        .with_key(ADMIN_KEY, Role::Admin)
        .with_key(METRICS_KEY, Role::Metrics)
}

pub struct Harness {
    pub app: Router,
    pub fake: Arc<FakeService>,
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
    pub fn text(&self) -> String {
        String::from_utf8(self.body.to_vec()).unwrap()
    }
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
    }
    /// Asserts an Azure error with this status and code.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "{:?}", self.text());
        assert_eq!(self.json()["error"]["code"], code);
        assert_eq!(self.header("x-ms-error-code"), code);
        assert!(!self.json()["error"]["message"].as_str().unwrap().is_empty());
    }
}

impl Default for Harness {
    fn default() -> Self {
        let fake = Arc::new(FakeService::default());
        let app = router(ApiState::new(fake.clone(), authenticator()));
        Harness { app, fake }
    }
}

impl Harness {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends a request, checks the request id and validates the response against
    /// openapi.json (every response of these tests goes through here).
    pub async fn send(&self, request: Request<Body>) -> Reply {
        let method = request.method().to_string();
        let path = request.uri().path().to_owned();
        let response = tokio::time::timeout(Duration::from_secs(10), self.app.clone().oneshot(request))
            .await
            .expect("request timed out")
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        assert!(
            headers.contains_key("x-request-id"),
            "no x-request-id on {method} {path}"
        );
        let normalized: String = path
            .split('/')
            .filter(|s| !s.is_empty())
            .flat_map(|s| ["/", s])
            .collect();
        let content_type = headers.get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap());
        if path.starts_with("/pools/") || path == "/openapi.json" || path == "/healthz" {
            schema::check_response(&method, &normalized, status.as_u16(), content_type, &body);
        } else {
            schema::validate(
                &serde_json::json!({"$ref": "#/components/schemas/ErrorResponse"}),
                &serde_json::from_slice(&body).unwrap(),
                &path,
            );
        }
        Reply {
            status,
            headers,
            body,
        }
    }

    pub fn request(method: Method, uri: &str, key: Option<&str>) -> axum::http::request::Builder {
        let mut b = Request::builder().method(method).uri(uri);
        if let Some(key) = key {
            b = b.header(header::AUTHORIZATION, format!("Bearer {key}"));
        }
        b
    }

    pub async fn get(&self, uri: &str) -> Reply {
        self.send(
            Self::request(Method::GET, uri, Some(EXEC_KEY))
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    pub async fn delete(&self, uri: &str) -> Reply {
        self.send(
            Self::request(Method::DELETE, uri, Some(EXEC_KEY))
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    pub async fn post_json(&self, uri: &str, body: Value) -> Reply {
        let request = Self::request(Method::POST, uri, Some(EXEC_KEY))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        self.send(request).await
    }

    pub async fn upload(&self, uri: &str, filename: &str, data: &[u8]) -> Reply {
        let (content_type, body) = multipart(filename, data);
        let request = Self::request(Method::POST, uri, Some(EXEC_KEY))
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .unwrap();
        self.send(request).await
    }
}

pub fn multipart(filename: &str, data: &[u8]) -> (String, Vec<u8>) {
    let boundary = "sandpool-test-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nignored\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

//! A keep-alive HTTP/1.1 client for the data plane: execute `print(1)`, end a session,
//! look one up, and `GET /healthz` as the bare HTTP baseline.

use crate::error::BenchError;
use crate::server::API_KEY;
use std::time::{Duration, Instant};

const OLD: &str = "api-version=2024-02-02-preview";
const NEW: &str = "api-version=2025-02-02-preview";
const REQUEST_TIMEOUT: Duration = Duration::from_secs(180);
const PRINT_ONE: &str =
    r#"{"properties":{"codeInputType":"inline","executionType":"synchronous","code":"print(1)"}}"#;

/// One client keeps one connection alive while it is used sequentially.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
}

/// A successful `print(1)`.
#[derive(Debug, Clone, Copy)]
pub struct Executed {
    /// Request sent to body read, on the client.
    pub latency: Duration,
}

impl Client {
    pub fn new(base: &str) -> Result<Client, BenchError> {
        let http = reqwest::Client::builder()
            .http1_only()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(4)
            .pool_idle_timeout(Duration::from_secs(600))
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|source| BenchError::Http {
                method: "BUILD",
                path: base.into(),
                source,
            })?;
        Ok(Client {
            http,
            base: base.to_owned(),
        })
    }

    async fn send(
        &self,
        method: &'static str,
        path: String,
        body: Option<&'static str>,
    ) -> Result<(u16, Vec<u8>), BenchError> {
        let url = format!("{}{}", self.base, path);
        let mut req = match method {
            "POST" => self.http.post(&url),
            "DELETE" => self.http.delete(&url),
            _ => self.http.get(&url),
        };
        req = req.header("Authorization", format!("Bearer {API_KEY}"));
        if let Some(b) = body {
            req = req.header("Content-Type", "application/json").body(b);
        }
        let fail = |source| BenchError::Http {
            method,
            path: path.clone(),
            source,
        };
        let resp = req.send().await.map_err(fail)?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(fail)?;
        Ok((status, bytes.to_vec()))
    }

    fn expect(
        method: &'static str,
        path: String,
        want: &[u16],
        (status, body): (u16, Vec<u8>),
    ) -> Result<Vec<u8>, BenchError> {
        if want.contains(&status) {
            Ok(body)
        } else {
            Err(BenchError::Status {
                method,
                path,
                status,
                body: String::from_utf8_lossy(&body).chars().take(500).collect(),
            })
        }
    }

    /// Runs `print(1)` as `identifier` (allocating a session for a new one) and checks
    /// that the answer is `1\n` on stdout.
    pub async fn print_one(&self, pool: &str, identifier: &str) -> Result<Executed, BenchError> {
        let path = format!("/pools/{pool}/code/execute?identifier={identifier}&{OLD}");
        let began = Instant::now();
        let reply = self.send("POST", path.clone(), Some(PRINT_ONE)).await?;
        let latency = began.elapsed();
        let body = Self::expect("POST", path, &[200], reply)?;
        let value: serde_json::Value = serde_json::from_slice(&body).map_err(|e| BenchError::BadResult {
            identifier: identifier.into(),
            detail: format!("not JSON ({e})"),
        })?;
        let props = &value["properties"];
        if props["status"] != "Success" || props["stdout"] != "1\n" {
            return Err(BenchError::BadResult {
                identifier: identifier.into(),
                detail: props.to_string(),
            });
        }
        Ok(Executed { latency })
    }

    /// `DELETE session` (204 also when there was none).
    pub async fn delete_session(&self, pool: &str, identifier: &str) -> Result<(), BenchError> {
        let path = format!("/pools/{pool}/session?identifier={identifier}&{NEW}");
        let reply = self.send("DELETE", path.clone(), None).await?;
        Self::expect("DELETE", path, &[204], reply).map(|_| ())
    }

    /// `GET session` of a live session: auth, routing and an engine lookup, no agent.
    pub async fn get_session(&self, pool: &str, identifier: &str) -> Result<Duration, BenchError> {
        let path = format!("/pools/{pool}/session?identifier={identifier}&{NEW}");
        let began = Instant::now();
        let reply = self.send("GET", path.clone(), None).await?;
        let took = began.elapsed();
        Self::expect("GET", path, &[200], reply).map(|_| took)
    }

    /// `GET /healthz`: the HTTP stack alone.
    pub async fn healthz(&self) -> Result<Duration, BenchError> {
        let began = Instant::now();
        let reply = self.send("GET", "/healthz".into(), None).await?;
        let took = began.elapsed();
        Self::expect("GET", "/healthz".into(), &[200], reply).map(|_| took)
    }
}

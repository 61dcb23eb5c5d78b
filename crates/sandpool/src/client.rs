//! The CLI's HTTP client: bearer auth, JSON in and out, and API errors turned into
//! messages and exit codes that mean something.

use serde_json::Value;
use std::io::Read;
use std::time::Duration;

/// Exit codes of the client commands.
pub mod exit {
    /// The server refused the request as invalid (400, 409, 413).
    pub const INVALID: u8 = 2;
    /// The key is missing, unknown (401) or not allowed (403).
    pub const AUTH: u8 = 3;
    /// No such pool, session, file or key (404).
    pub const NOT_FOUND: u8 = 4;
    /// The server could not be reached, or failed (5xx).
    pub const UNAVAILABLE: u8 = 5;
    /// The code ran and failed (exception, non-zero exit).
    pub const EXECUTION_FAILED: u8 = 6;
}

/// A failed command: what to print on stderr and the exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    pub message: String,
    pub code: u8,
}

impl CliError {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            code,
        }
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::new(1, e.to_string())
    }
}

pub struct Client {
    base: String,
    key: Option<String>,
    agent: ureq::Agent,
}

/// A successful answer's body.
pub struct Answer {
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Result<Value, CliError> {
        if self.body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&self.body)
            .map_err(|e| CliError::new(exit::UNAVAILABLE, format!("the server's answer is not JSON: {e}")))
    }
}

impl Client {
    pub fn new(base: &str, key: Option<String>) -> Client {
        Client {
            base: base.trim_end_matches('/').to_owned(),
            key,
            agent: ureq::AgentBuilder::new()
                .timeout_connect(Duration::from_secs(10))
                .timeout(Duration::from_secs(600))
                .build(),
        }
    }

    /// Sends a request; non-2xx answers become [`CliError`]s with the API's message.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<&[u8]>,
    ) -> Result<Answer, CliError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.agent.request(method, &url);
        if let Some(k) = &self.key {
            req = req.set("Authorization", &format!("Bearer {k}"));
        }
        if let Some(ct) = content_type {
            req = req.set("Content-Type", ct);
        }
        let result = match body {
            Some(b) => req.send_bytes(b),
            None => req.call(),
        };
        let (status, response) = match result {
            Ok(r) => (r.status(), r),
            Err(ureq::Error::Status(code, r)) => (code, r),
            Err(e) => {
                return Err(CliError::new(
                    exit::UNAVAILABLE,
                    format!("cannot reach {}: {e}", self.base),
                ))
            }
        };
        let mut bytes = Vec::new();
        response.into_reader().read_to_end(&mut bytes)?;
        if (200..300).contains(&status) {
            return Ok(Answer { body: bytes });
        }
        let message = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| {
                let e = &v["error"];
                Some(format!("{} ({})", e["message"].as_str()?, e["code"].as_str()?))
            })
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).trim().to_owned());
        let code = match status {
            400 | 409 | 413 => exit::INVALID,
            401 | 403 => exit::AUTH,
            404 => exit::NOT_FOUND,
            _ => exit::UNAVAILABLE,
        };
        Err(CliError::new(
            code,
            format!("{method} {path}: HTTP {status}: {message}"),
        ))
    }

    pub fn get(&self, path: &str) -> Result<Value, CliError> {
        self.send("GET", path, None, None)?.json()
    }

    pub fn json(&self, method: &str, path: &str, body: &Value) -> Result<Value, CliError> {
        let bytes = body.to_string();
        self.send(method, path, Some("application/json"), Some(bytes.as_bytes()))?
            .json()
    }
}

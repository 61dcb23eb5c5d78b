//! A real `sandpool serve` started once per test binary, and a small blocking HTTP client.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const ADMIN_KEY: &str = "test-admin-key-0123456789abcdef";
pub const EXECUTOR_KEY: &str = "test-executor-key-0123456789abcd";

pub struct Server {
    pub base: String,
    /// The server's data directory (its runsc state is under `gvisor/runsc`).
    pub data_dir: PathBuf,
    _child: Child,
}

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Images are shared across test runs (content-addressed, slow to build).
pub fn test_data() -> PathBuf {
    std::env::var_os("SANDPOOL_TEST_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/test-data"))
}

const CONFIG: &str = r#"
[[pools]]
name = "python"
[pools.properties]
containerType = "PythonLTS"
scaleConfiguration = { maxConcurrentSessions = 20, readySessionInstances = 2 }

[[pools]]
name = "shell"
[pools.properties]
containerType = "Shell"
scaleConfiguration = { maxConcurrentSessions = 10, readySessionInstances = 1 }

[[pools]]
name = "quick"
[pools.properties]
containerType = "PythonLTS"
scaleConfiguration = { maxConcurrentSessions = 2, readySessionInstances = 1 }
dynamicPoolConfiguration = { lifecycleConfiguration = { lifecycleType = "Timed", cooldownPeriodInSeconds = 4 } }

[[pools]]
name = "tiny"
[pools.properties]
containerType = "Shell"
scaleConfiguration = { maxConcurrentSessions = 1, readySessionInstances = 1, waitForCapacity = true }
dynamicPoolConfiguration = { lifecycleConfiguration = { lifecycleType = "Timed", cooldownPeriodInSeconds = 300 } }

[[keys]]
name = "executor"
role = "executor"
sha256 = "EXECUTOR_HASH"
"#;

/// The shared server; started on first use and stopped (SIGTERM) when the test process exits.
pub fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(start_server)
}

fn start_server() -> Server {
    let dir = test_data().join(format!("server-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // Share the image cache.
    let images = test_data().join("images");
    std::fs::create_dir_all(&images).unwrap();
    std::os::unix::fs::symlink(&images, dir.join("images")).unwrap();
    let hash = {
        use std::process::Command;
        let out = Command::new(env!("CARGO_BIN_EXE_sandpool"))
            .args(["hash-key", EXECUTOR_KEY])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let config = dir.join("config.toml");
    std::fs::write(&config, CONFIG.replace("EXECUTOR_HASH", &hash)).unwrap();
    // The first run builds both images (minutes); later runs only restore templates.
    let (child, base) = sandpool_testkit::serve::spawn_serve(
        Path::new(env!("CARGO_BIN_EXE_sandpool")),
        &dir,
        &config,
        ADMIN_KEY,
        Duration::from_secs(1500),
    );
    Server {
        base,
        data_dir: dir,
        _child: child,
    }
}

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(120))
            .build()
    })
}

/// Sends a request; any status is a reply (no error for 4xx/5xx).
pub fn send(
    method: &str,
    path: &str,
    key: Option<&str>,
    content_type: Option<&str>,
    body: Option<&[u8]>,
) -> Reply {
    let url = format!("{}{}", server().base, path);
    let mut req = agent().request(method, &url);
    if let Some(k) = key {
        req = req.set("Authorization", &format!("Bearer {k}"));
    }
    if let Some(ct) = content_type {
        req = req.set("Content-Type", ct);
    }
    let result = match body {
        Some(b) => req.send_bytes(b),
        None => req.call(),
    };
    let resp = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {path}: {e}"),
    };
    let status = resp.status();
    let headers = resp
        .headers_names()
        .into_iter()
        .map(|n| {
            let v = resp.header(&n).unwrap_or("").to_owned();
            (n, v)
        })
        .collect();
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut resp.into_reader(), &mut body).unwrap();
    Reply {
        status,
        headers,
        body,
    }
}

pub fn get(path: &str) -> Reply {
    send("GET", path, Some(ADMIN_KEY), None, None)
}

pub fn post_json(path: &str, body: &serde_json::Value) -> Reply {
    send(
        "POST",
        path,
        Some(ADMIN_KEY),
        Some("application/json"),
        Some(body.to_string().as_bytes()),
    )
}

pub fn delete(path: &str) -> Reply {
    send("DELETE", path, Some(ADMIN_KEY), None, None)
}

/// A multipart/form-data body with one `file` part.
pub fn multipart(filename: &str, data: &[u8]) -> (String, Vec<u8>) {
    let boundary = "sandpoolboundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes());
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

pub const OLD: &str = "api-version=2024-02-02-preview";
pub const NEW: &str = "api-version=2025-02-02-preview";

/// A fresh identifier for one test.
pub fn ident(tag: &str) -> String {
    format!("{tag}-{}", rand_hex())
}

fn rand_hex() -> String {
    let t = Instant::now().elapsed().as_nanos() ^ (std::process::id() as u128) << 20;
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        ^ t;
    format!("{:x}", n & 0xffff_ffff_ffff)
}

/// Runs Python in the `python` pool (old contract) and returns `properties`.
pub fn run_py(pool: &str, id: &str, code: &str) -> serde_json::Value {
    let r = post_json(
        &format!("/pools/{pool}/code/execute?identifier={id}&{OLD}"),
        &serde_json::json!({"properties": {"codeInputType": "inline", "executionType": "synchronous", "code": code}}),
    );
    assert_eq!(r.status, 200, "execute {code:?}: {}", r.text());
    r.json()["properties"].clone()
}

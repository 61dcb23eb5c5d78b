//! A `sandpool serve` of the management tests' own (own data dir and config, shared
//! image cache), and a blocking HTTP client that checks every response against
//! openapi.json.

use crate::schema;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const ADMIN_KEY: &str = "mgmt-admin-key-0123456789abcdef";
pub const METRICS_KEY: &str = "mgmt-metrics-key-0123456789abcd";

/// One pool from the config file, so config-file pools are covered too.
const CONFIG: &str = r#"
[[pools]]
name = "metered"
[pools.properties]
containerType = "Shell"
scaleConfiguration = { maxConcurrentSessions = 3, readySessionInstances = 1 }

[[keys]]
name = "scraper"
role = "metrics"
sha256 = "METRICS_HASH"
"#;

pub struct Server {
    pub base: String,
    child: Child,
}

impl Server {
    /// Stops the server with SIGTERM (graceful shutdown) and waits for it.
    pub fn stop(mut self) {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn test_data() -> PathBuf {
    std::env::var_os("SANDPOOL_TEST_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/test-data"))
}

pub fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| start(&fresh_dir("mgmt"), CONFIG))
}

/// An empty data directory sharing the image cache.
pub fn fresh_dir(tag: &str) -> PathBuf {
    let dir = test_data().join(format!("{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let images = test_data().join("images");
    std::fs::create_dir_all(&images).unwrap();
    std::os::unix::fs::symlink(&images, dir.join("images")).unwrap();
    dir
}

/// Starts `sandpool serve` on `dir` with `config` (`METRICS_HASH` filled in).
pub fn start(dir: &std::path::Path, config_text: &str) -> Server {
    let dir = dir.to_owned();
    let hash = String::from_utf8(
        Command::new(env!("CARGO_BIN_EXE_sandpool"))
            .args(["hash-key", METRICS_KEY])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_owned();
    let config = dir.join("config.toml");
    std::fs::write(&config, config_text.replace("METRICS_HASH", &hash)).unwrap();
    let (child, base) = sandpool_testkit::serve::spawn_serve(
        std::path::Path::new(env!("CARGO_BIN_EXE_sandpool")),
        &dir,
        &config,
        ADMIN_KEY,
        Duration::from_secs(1500),
    );
    Server { base, child }
}

pub struct Reply {
    pub status: u16,
    pub content_type: Option<String>,
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
}

fn agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(180))
            .build()
    })
}

/// Sends a request to the shared server and validates the response against openapi.json.
pub fn send(method: &str, path: &str, key: Option<&str>, body: Option<&serde_json::Value>) -> Reply {
    send_to(&server().base, method, path, key, body)
}

/// Sends a request to the server at `base`, validating the response.
pub fn send_to(
    base: &str,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&serde_json::Value>,
) -> Reply {
    let url = format!("{base}{path}");
    let mut req = agent().request(method, &url);
    if let Some(k) = key {
        req = req.set("Authorization", &format!("Bearer {k}"));
    }
    let result = match body {
        Some(b) => req
            .set("Content-Type", "application/json")
            .send_string(&b.to_string()),
        None => req.call(),
    };
    let resp = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {path}: {e}"),
    };
    let status = resp.status();
    let content_type = resp.header("content-type").map(str::to_owned);
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut resp.into_reader(), &mut body).unwrap();
    let bare = path.split('?').next().unwrap();
    schema::check_response(method, bare, status, content_type.as_deref(), &body);
    Reply {
        status,
        content_type,
        body,
    }
}

pub fn admin(method: &str, path: &str, body: Option<&serde_json::Value>) -> Reply {
    send(method, path, Some(ADMIN_KEY), body)
}

/// Polls `f` every 250 ms until it returns `Some`, failing after `within`.
pub fn wait_for<T>(what: &str, within: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {within:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The pool's resource once its provisioning state is `Succeeded` and it has `ready`
/// ready sandboxes.
pub fn wait_ready(pool: &str, ready: u64) -> serde_json::Value {
    wait_ready_at(&server().base, pool, ready)
}

/// [`wait_ready`] on the server at `base`.
pub fn wait_ready_at(base: &str, pool: &str, ready: u64) -> serde_json::Value {
    wait_for(
        &format!("pool {pool} with {ready} ready"),
        Duration::from_secs(600),
        || {
            let r = send_to(
                base,
                "GET",
                &format!("/sessionPools/{pool}"),
                Some(ADMIN_KEY),
                None,
            );
            assert_eq!(r.status, 200, "{}", r.text());
            let v = r.json();
            let p = &v["properties"];
            assert_ne!(p["provisioningState"], "Failed", "{v}");
            (p["provisioningState"] == "Succeeded" && p["sessionCounts"]["ready"] == ready).then_some(v)
        },
    )
}

pub const OLD: &str = "api-version=2024-02-02-preview";

/// Runs `code` in a session over the data plane; returns `properties`.
pub fn execute(pool: &str, identifier: &str, code: &str) -> serde_json::Value {
    let r = admin(
        "POST",
        &format!("/pools/{pool}/code/execute?identifier={identifier}&{OLD}"),
        Some(
            &serde_json::json!({"properties": {"codeInputType": "inline", "executionType": "synchronous", "code": code}}),
        ),
    );
    assert_eq!(r.status, 200, "execute {code:?}: {}", r.text());
    r.json()["properties"].clone()
}

/// The value of the Prometheus sample `name{labels}` (labels in rendered order).
pub fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        let (k, v) = l.rsplit_once(' ')?;
        (k == series).then(|| v.parse().ok())?
    })
}

pub fn metrics() -> String {
    let r = send("GET", "/metrics", Some(METRICS_KEY), None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.content_type.as_deref().unwrap_or("").starts_with("text/plain"));
    r.text()
}

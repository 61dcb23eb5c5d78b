//! Custom container pools end to end: Debian's `docker-registry` on loopback (with and
//! without basic auth), images built here (several layers, a whiteout, busybox httpd with
//! CGI scripts, websocketd), pushed, pulled by a real `sandpool serve` under gVisor and
//! reached through the per-identifier proxy: two identifiers reach two containers, a
//! 50 MB POST streams through, a WebSocket echoes, a failing liveness endpoint gets the
//! container replaced, OnContainerExit ends the session when the process exits, a
//! malicious layer fails its pool with the reason, and secrets never reach the log.
//!
//! Needs `docker-registry`, `busybox-static` and `websocketd` (Debian packages).

#[path = "../../sandpool-registry/tests/support/mod.rs"]
mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};
use support::image::{Image, Layer};
use support::push::Pusher;
use support::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEY: &str = "custom-admin-key-0123456789abcdef";
const REG_USER: &str = "puller";
const REG_PASSWORD: &str = "registry-pw-never-logged-7f3a";
const WAIT: Duration = Duration::from_secs(240);
const BUSYBOX: &str = "/bin/busybox";
const WEBSOCKETD: &str = "/usr/bin/websocketd";

// ---------------------------------------------------------------- images

enum Item {
    Dir(&'static str),
    File(String, u32, Vec<u8>),
    Link(&'static str, &'static str),
}

fn tar_layer(items: &[Item]) -> Layer {
    let mut b = tar::Builder::new(Vec::new());
    for item in items {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        match item {
            Item::Dir(name) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, name, std::io::empty()).unwrap();
            }
            Item::File(name, mode, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, name, data.as_slice()).unwrap();
            }
            Item::Link(name, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, name, target).unwrap();
            }
        }
    }
    let tar = b.into_inner().unwrap();
    Layer {
        diff_id: sandpool_registry::Digest::of(&tar),
        blob: support::image::gzip(&tar),
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip",
    }
}

fn file(name: &str, mode: u32, data: impl Into<Vec<u8>>) -> Item {
    Item::File(name.to_owned(), mode, data.into())
}

fn oci_image(layers: Vec<Layer>, entrypoint: &[&str]) -> Image {
    let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.to_string()).collect();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"User": "1000:1000", "Env": ["PATH=/bin", "GREETING=from-image"],
                   "Entrypoint": entrypoint, "WorkingDir": "/www"},
        "rootfs": {"type": "layers", "diff_ids": diff_ids}
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sandpool_registry::Digest::of(&config).to_string(), "size": config.len()},
        "layers": layers.iter().map(|l| serde_json::json!({
            "mediaType": l.media_type, "digest": sandpool_registry::Digest::of(&l.blob).to_string(),
            "size": l.blob.len()})).collect::<Vec<_>>()
    }))
    .unwrap();
    Image {
        layers,
        config,
        manifest,
    }
}

/// The base layer: static busybox with its applets, the mount points sandboxes need.
fn base_layer(extra: Vec<Item>) -> Layer {
    let busybox = std::fs::read(BUSYBOX).expect("install busybox-static (apt-get install busybox-static)");
    let mut items = vec![
        Item::Dir("bin/"),
        file("bin/busybox", 0o755, busybox),
        Item::Dir("etc/"),
        file(
            "etc/passwd",
            0o644,
            "root:x:0:0::/:/bin/sh\nsandbox:x:1000:1000::/tmp:/bin/sh\n",
        ),
        file("etc/group", 0o644, "root:x:0:\nsandbox:x:1000:\n"),
        Item::Dir("tmp/"),
        Item::Dir("mnt/"),
        Item::Dir("mnt/data/"),
        Item::Dir("opt/"),
        Item::Dir("opt/sandpool/"),
        Item::Dir("proc/"),
        Item::Dir("dev/"),
        Item::Dir("sys/"),
    ];
    for applet in [
        "sh", "cat", "wc", "hostname", "touch", "sleep", "od", "head", "tr", "rm", "kill",
    ] {
        items.push(Item::Link(
            Box::leak(format!("bin/{applet}").into_boxed_str()),
            "busybox",
        ));
    }
    items.extend(extra);
    tar_layer(&items)
}

const CGI_HEAD: &str = "#!/bin/sh\necho 'Content-Type: text/plain'\necho\n";

/// busybox httpd on 8080 serving /www with CGI scripts; layer 2 whites out a file of layer 1.
fn web_image() -> Image {
    let state = format!(
        "{CGI_HEAD}[ -e /tmp/id ] || head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \\n' > /tmp/id\n\
         n=$(cat /tmp/count 2>/dev/null || echo 0); n=$((n+1)); echo $n > /tmp/count\n\
         echo \"id=$(cat /tmp/id) count=$n greeting=$GREETING mode=$MODE token=$TOKEN query=$QUERY_STRING\"\n"
    );
    let health = "#!/bin/sh\nif [ -e /tmp/sick ]; then echo 'Status: 500 Sick'; echo; echo sick; \
                  else echo 'Content-Type: text/plain'; echo; echo ok; fi\n";
    let sicken = format!("{CGI_HEAD}touch /tmp/sick\necho sickened\n");
    let count = format!("{CGI_HEAD}wc -c\n");
    let stop = format!("{CGI_HEAD}touch /tmp/stop\necho stopping\n");
    let teapot =
        "#!/bin/sh\necho 'Status: 418 Teapot'\necho 'Content-Type: text/plain'\necho\necho short and stout\n";
    let layer1 = base_layer(vec![
        Item::Dir("www/"),
        Item::Dir("www/cgi-bin/"),
        file("www/cgi-bin/old", 0o755, format!("{CGI_HEAD}echo old layer\n")),
        file("www/index.html", 0o644, "layer one\n"),
    ]);
    let layer2 = tar_layer(&[
        Item::Dir("www/"),
        Item::Dir("www/cgi-bin/"),
        file("www/cgi-bin/.wh.old", 0o644, ""),
        file("www/cgi-bin/state", 0o755, state),
        file("www/cgi-bin/health", 0o755, health),
        file("www/cgi-bin/sicken", 0o755, sicken),
        file("www/cgi-bin/count", 0o755, count),
        file("www/cgi-bin/stop", 0o755, stop),
        file("www/cgi-bin/teapot", 0o755, teapot),
    ]);
    let layer3 = tar_layer(&[Item::Dir("www/"), file("www/index.html", 0o644, "layer three\n")]);
    oci_image(
        vec![layer1, layer2, layer3],
        &["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"],
    )
}

/// websocketd (dynamically linked: the host's libc and loader go into the image) echoing with cat.
fn websocket_image() -> Image {
    let mut libs = vec![
        Item::Dir("www/"),
        Item::Dir("lib/"),
        Item::Dir("lib64/"),
        Item::Dir("usr/"),
        Item::Dir("usr/bin/"),
    ];
    libs.push(file(
        "usr/bin/websocketd",
        0o755,
        std::fs::read(WEBSOCKETD).expect("install websocketd (apt-get install websocketd)"),
    ));
    for (host, inside) in [
        (
            "/lib/x86_64-linux-gnu/libc.so.6",
            "lib/x86_64-linux-gnu/libc.so.6",
        ),
        ("/lib64/ld-linux-x86-64.so.2", "lib64/ld-linux-x86-64.so.2"),
    ] {
        if inside.starts_with("lib/x86_64") {
            libs.push(Item::Dir("lib/x86_64-linux-gnu/"));
        }
        libs.push(file(inside, 0o755, std::fs::read(host).unwrap()));
    }
    oci_image(
        vec![base_layer(vec![]), tar_layer(&libs)],
        &["/usr/bin/websocketd", "--port=8080", "/bin/cat"],
    )
}

/// A layer with an entry that climbs out of the root.
fn malicious_image() -> Image {
    let mut tar = support::image::tar_of(&[support::image::file("../../escaped", 0o644, "owned\n")]);
    tar.truncate(tar.len());
    let layer = Layer {
        diff_id: sandpool_registry::Digest::of(&tar),
        blob: tar,
        media_type: "application/vnd.oci.image.layer.v1.tar",
    };
    oci_image(vec![base_layer(vec![]), layer], &["/bin/busybox", "true"])
}

// ---------------------------------------------------------------- server

struct Server {
    base: String,
    dir: PathBuf,
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn test_data() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap();
    std::env::var_os("SANDPOOL_TEST_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/test-data"))
}

fn start_server(config: &str) -> Server {
    let dir = test_data().join(format!("custom-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config_path = dir.join("config.toml");
    std::fs::write(&config_path, config).unwrap();
    let (child, base) = sandpool_testkit::serve::spawn_serve(
        Path::new(env!("CARGO_BIN_EXE_sandpool")),
        &dir,
        &config_path,
        KEY,
        Duration::from_secs(300),
    );
    Server { base, dir, child }
}

impl Server {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(180))
        .build()
        .unwrap()
}

async fn get(base: &str, path: &str) -> (u16, String) {
    let r = http()
        .get(format!("{base}{path}"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

/// Polls the pool until its provisioning state leaves InProgress.
async fn settled(server: &Server, pool: &str) -> serde_json::Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, text) = get(&server.base, &format!("/sessionPools/{pool}")).await;
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let state = v["properties"]["provisioningState"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        if state != "InProgress" {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "pool {pool} still InProgress; log:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The ready count of `pool` reaches `n`.
async fn ready(server: &Server, pool: &str, n: u64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let v = settled(server, pool).await;
        assert_eq!(
            v["properties"]["provisioningState"],
            "Succeeded",
            "{pool}: {v}\nlog:\n{}",
            server.log()
        );
        if v["properties"]["sessionCounts"]["ready"].as_u64() >= Some(n) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "pool {pool} never had {n} ready; log:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn end_reason(server: &Server, pool: &str, identifier: &str) -> Option<String> {
    let (_, text) = get(&server.base, &format!("/sessionPools/{pool}/sessions")).await;
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["identifier"] == identifier)
        .find_map(|s| s["endReason"].as_str().map(str::to_owned))
}

// ---------------------------------------------------------------- websocket (RFC 6455, minimal)

async fn websocket_echo(addr: &str, path: &str, text: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {KEY}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        assert_eq!(
            s.read(&mut b).await.unwrap(),
            1,
            "closed during handshake: {head:?}"
        );
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "handshake answer: {head}");
    assert!(
        head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "accept key: {head}"
    );
    let payload = format!("{text}\n");
    let mask = [0x11u8, 0x22, 0x33, 0x44];
    let mut frame = vec![0x81, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(payload.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    s.write_all(&frame).await.unwrap();
    let mut h = [0u8; 2];
    s.read_exact(&mut h).await.unwrap();
    assert_eq!(h[0] & 0x0f, 1, "text frame expected: {h:?}");
    let mut body = vec![0u8; (h[1] & 0x7f) as usize];
    s.read_exact(&mut body).await.unwrap();
    String::from_utf8(body).unwrap()
}

// ---------------------------------------------------------------- the test

fn config(auth_registry: &str, anon_registry: &str) -> String {
    format!(
        r#"
[[pools]]
name = "web"
[pools.properties]
containerType = "CustomContainer"
scaleConfiguration = {{ maxConcurrentSessions = 3, readySessionInstances = 2 }}
secrets = [{{ name = "regpass", value = "{REG_PASSWORD}" }}, {{ name = "tok", value = "secret-token-value" }}]
[pools.properties.customContainerTemplate]
registryCredentials = {{ server = "{auth_registry}", username = "{REG_USER}", passwordSecretRef = "regpass" }}
insecureRegistry = true
ingress = {{ targetPort = 8080 }}
[[pools.properties.customContainerTemplate.containers]]
image = "{auth_registry}/web:1"
env = [{{ name = "MODE", value = "m1" }}, {{ name = "TOKEN", secretRef = "tok" }}]
resources = {{ cpu = 0.5, memory = "256Mi" }}
probes = [
  {{ type = "Startup", httpGet = {{ path = "/index.html" }}, periodSeconds = 1 }},
  {{ type = "Liveness", httpGet = {{ path = "/cgi-bin/health" }}, periodSeconds = 1, failureThreshold = 2 }},
]

[[pools]]
name = "exits"
[pools.properties]
containerType = "CustomContainer"
scaleConfiguration = {{ maxConcurrentSessions = 2, readySessionInstances = 1 }}
dynamicPoolConfiguration = {{ lifecycleConfiguration = {{ lifecycleType = "OnContainerExit", maxAlivePeriodInSeconds = 600 }} }}
[pools.properties.customContainerTemplate]
insecureRegistry = true
ingress = {{ targetPort = 8080 }}
[[pools.properties.customContainerTemplate.containers]]
image = "{anon_registry}/web:1"
command = ["/bin/sh", "-c"]
args = ["httpd -p 8080 -h /www; while [ ! -e /tmp/stop ]; do sleep 1; done"]

[[pools]]
name = "wsecho"
[pools.properties]
containerType = "CustomContainer"
scaleConfiguration = {{ maxConcurrentSessions = 1, readySessionInstances = 1 }}
[pools.properties.customContainerTemplate]
insecureRegistry = true
ingress = {{ targetPort = 8080 }}
[[pools.properties.customContainerTemplate.containers]]
image = "{anon_registry}/ws:1"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn custom_containers_through_the_proxy() {
    let auth = Registry::start(Some((REG_USER, REG_PASSWORD))).await;
    let anon = Registry::start(None).await;
    let web = web_image();
    Pusher::new(&auth.addr, Some((REG_USER, REG_PASSWORD)))
        .image("web", "1", &web)
        .await;
    let anon_push = Pusher::new(&anon.addr, None);
    anon_push.image("web", "1", &web).await;
    anon_push.image("ws", "1", &websocket_image()).await;
    anon_push.image("evil", "1", &malicious_image()).await;

    let server = start_server(&config(&auth.addr, &anon.addr));
    let base = server.base.clone();
    ready(&server, "web", 2).await;

    // Two identifiers, two containers, each with its own state; the whiteout and the
    // last layer's file are in effect; env from the image, the pool and a secret.
    let (s, a1) = get(&base, "/pools/web/cgi-bin/state?identifier=alice&x=1").await;
    assert_eq!(s, 200, "{a1}\nlog:\n{}", server.log());
    let (_, a2) = get(&base, "/pools/web/cgi-bin/state?identifier=alice").await;
    let (_, b1) = get(&base, "/pools/web/cgi-bin/state?identifier=bobby").await;
    let id = |s: &str| s.split_whitespace().next().unwrap().to_owned();
    assert!(
        a1.contains("count=1") && a2.contains("count=2") && b1.contains("count=1"),
        "{a1}{a2}{b1}"
    );
    assert_eq!(id(&a1), id(&a2));
    assert_ne!(id(&a1), id(&b1), "two identifiers reached the same container");
    assert!(
        a1.contains("greeting=from-image mode=m1 token=secret-token-value"),
        "{a1}"
    );
    assert!(
        a1.contains("query=identifier=alice&x=1"),
        "identifier kept in the query: {a1}"
    );
    assert_eq!(
        get(&base, "/pools/web/index.html?identifier=alice").await.1,
        "layer three\n"
    );
    assert_eq!(
        get(&base, "/pools/web/cgi-bin/old?identifier=alice").await.0,
        404,
        "whiteout ignored"
    );
    // The container's own errors pass through.
    let (s, body) = get(&base, "/pools/web/cgi-bin/teapot?identifier=alice").await;
    assert_eq!((s, body.as_str()), (418, "short and stout\n"));

    // A 50 MB POST streams through to the container.
    let big = vec![b'x'; 50 << 20];
    let began = Instant::now();
    let r = http()
        .post(format!("{base}/pools/web/cgi-bin/count?identifier=bobby"))
        .bearer_auth(KEY)
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.text().await.unwrap().trim(), (50u64 << 20).to_string());
    eprintln!("50 MiB POST through the proxy: {:?}", began.elapsed());

    // Liveness: alice's container starts failing its health check and is replaced.
    get(&base, "/pools/web/cgi-bin/sicken?identifier=alice").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while end_reason(&server, "web", "alice").await.is_none() {
        assert!(
            Instant::now() < deadline,
            "liveness never ended alice; log:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        end_reason(&server, "web", "alice").await.as_deref(),
        Some("liveness-failed")
    );
    let (_, again) = get(&base, "/pools/web/cgi-bin/state?identifier=alice").await;
    assert!(again.contains("count=1") && id(&again) != id(&a1), "{again}");

    // stopSession ends a session; at capacity (3) a new identifier gets 404.
    get(&base, "/pools/web/cgi-bin/state?identifier=carol").await;
    let (s, _) = get(&base, "/pools/web/cgi-bin/state?identifier=dave").await;
    assert_eq!(s, 404, "at capacity");
    let r = http()
        .post(format!(
            "{base}/pools/web/.management/stopSession?identifier=carol&api-version=2025-02-02-preview"
        ))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        end_reason(&server, "web", "carol").await.as_deref(),
        Some("stopped")
    );

    // WebSocket echo through the proxy.
    ready(&server, "wsecho", 1).await;
    let addr = base.trim_start_matches("http://").to_owned();
    let echoed = websocket_echo(&addr, "/pools/wsecho/?identifier=wsuser", "hello over websocket").await;
    assert_eq!(echoed.trim_end(), "hello over websocket");

    // OnContainerExit: the session ends when the container's process exits.
    ready(&server, "exits", 1).await;
    let (s, text) = get(&base, "/pools/exits/cgi-bin/state?identifier=evelyn").await;
    assert_eq!(s, 200, "{text}");
    get(&base, "/pools/exits/cgi-bin/stop?identifier=evelyn").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while end_reason(&server, "exits", "evelyn").await.is_none() {
        assert!(
            Instant::now() < deadline,
            "exit did not end the session; log:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(
        end_reason(&server, "exits", "evelyn").await.as_deref(),
        Some("container-exited")
    );

    // A malicious layer fails its pool with the reason; a missing image too.
    for (pool, image, want) in [
        ("evil", format!("{}/evil:1", anon.addr), "escaped"),
        ("missing", format!("{}/nothing:1", anon.addr), "nothing"),
    ] {
        let body = serde_json::json!({"properties": {
            "containerType": "CustomContainer",
            "scaleConfiguration": {"maxConcurrentSessions": 1, "readySessionInstances": 1},
            "customContainerTemplate": {"insecureRegistry": true, "ingress": {"targetPort": 8080},
                "containers": [{"image": image}]}}});
        let r = http()
            .put(format!("{base}/sessionPools/{pool}"))
            .bearer_auth(KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
        let v = settled(&server, pool).await;
        assert_eq!(v["properties"]["provisioningState"], "Failed", "{v}");
        let error = v["properties"]["provisioningError"].as_str().unwrap_or("");
        assert!(error.contains(want), "{pool}: {error}");
    }
    assert!(!test_data().join("escaped").exists());

    // Secrets are stored but never returned or logged.
    let (_, shown) = get(&base, "/sessionPools/web").await;
    assert!(
        !shown.contains(REG_PASSWORD) && !shown.contains("secret-token-value"),
        "{shown}"
    );
    let log = server.log();
    assert!(
        !log.contains(REG_PASSWORD) && !log.contains("secret-token-value"),
        "a secret was logged"
    );
    let _ = std::io::stderr().flush();
}

// ---------------------------------------------------------------- benchmark

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn summary(mut samples: Vec<Duration>) -> String {
    samples.sort();
    format!(
        "p50 {:.2} ms, p99 {:.2} ms (n={})",
        percentile(&samples, 0.5).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
        samples.len()
    )
}

/// One `GET /index.html` over a fresh agent-channel connection (what the proxy does per request).
async fn direct_get(agent: &sandpool_sandbox::AgentClient) -> Duration {
    use http_body_util::BodyExt;
    let began = Instant::now();
    let stream = agent.connect(8080).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let request = hyper::Request::get("/index.html")
        .header("host", "127.0.0.1")
        .body(http_body_util::Empty::<hyper::body::Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    response.into_body().collect().await.unwrap();
    began.elapsed()
}

/// Figures for BENCHMARKS.md ("Custom containers"): proxy overhead per request against
/// the same request sent straight through the agent channel, and throughput with 64
/// concurrent clients on one session. Run with `--ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark: prints figures"]
async fn custom_container_proxy_bench() {
    use sandpool_sandbox::Backend;
    let registry = Registry::start(None).await;
    Pusher::new(&registry.addr, None)
        .image("web", "1", &web_image())
        .await;
    let server = start_server(&format!(
        r#"
[[pools]]
name = "bench"
[pools.properties]
containerType = "CustomContainer"
scaleConfiguration = {{ maxConcurrentSessions = 2, readySessionInstances = 1 }}
[pools.properties.customContainerTemplate]
insecureRegistry = true
ingress = {{ targetPort = 8080 }}
[[pools.properties.customContainerTemplate.containers]]
image = "{}/web:1"
"#,
        registry.addr
    ));
    ready(&server, "bench", 1).await;
    let base = server.base.clone();
    const N: usize = 300;

    // Through the proxy (keep-alive client, as applications use it).
    let client = http();
    let url = format!("{base}/pools/bench/index.html?identifier=benchuser");
    for _ in 0..20 {
        client
            .get(&url)
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
    }
    let mut proxied = Vec::new();
    for _ in 0..N {
        let began = Instant::now();
        let r = client.get(&url).bearer_auth(KEY).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
        proxied.push(began.elapsed());
    }

    // Straight through the agent channel, to a sandbox of the same image and bundle.
    let find = |dir: PathBuf| std::fs::read_dir(dir).unwrap().next().unwrap().unwrap().path();
    let rootfs = find(server.dir.join("registry/rootfs")).join("rootfs");
    let bundle = find(server.dir.join("agent"));
    let loader = std::fs::read_dir(bundle.join("lib"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("ld-linux"))
        .unwrap();
    let backend = sandpool_gvisor::GvisorBackend::new(sandpool_gvisor::GvisorConfig {
        state_dir: server.dir.join("bench-gvisor"),
        runsc: "runsc".into(),
        platform: Some("ptrace".into()),
    })
    .await
    .unwrap();
    let spec = sandpool_sandbox::SandboxSpec {
        id: sandpool_sandbox::SandboxId::new(format!("sp-bench-direct-{}", std::process::id())).unwrap(),
        rootfs,
        image_digest: "bench".into(),
        kind: sandpool_sandbox::SandboxKind::Custom,
        limits: Default::default(),
        network: Default::default(),
        agent: sandpool_sandbox::AgentRuntime {
            host_dir: bundle,
            argv: vec![
                format!("/opt/sandpool/lib/{loader}"),
                "--library-path".into(),
                "/opt/sandpool/lib".into(),
                "/opt/sandpool/sandpool-agent".into(),
            ],
        },
        env: vec![],
        workload: Some(sandpool_sandbox::Workload {
            argv: ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]
                .map(String::from)
                .to_vec(),
            env: vec![],
            cwd: Some("/www".into()),
            user: Some("1000:1000".into()),
        }),
    };
    let sandbox = backend.create(&spec, None).await.unwrap();
    let direct = async {
        let deadline = Instant::now() + Duration::from_secs(60);
        while sandbox.agent().connect(8080).await.is_err() {
            assert!(Instant::now() < deadline, "direct sandbox never listened");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for _ in 0..20 {
            direct_get(sandbox.agent()).await;
        }
        let mut samples = Vec::new();
        for _ in 0..N {
            samples.push(direct_get(sandbox.agent()).await);
        }
        let began = Instant::now();
        let stream = sandbox.agent().connect(8080).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let request = hyper::Request::post("/cgi-bin/count")
            .header("host", "127.0.0.1")
            .header("content-length", (50u64 << 20).to_string())
            .body(http_body_util::Full::new(hyper::body::Bytes::from(vec![
                b'x';
                50 << 20
            ])))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        use http_body_util::BodyExt;
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(String::from_utf8_lossy(&body).trim(), (50u64 << 20).to_string());
        eprintln!(
            "figure: 50 MiB POST to the CGI straight through AgentStream: {:?}",
            began.elapsed()
        );
        samples
    }
    .await;
    let big = vec![b'x'; 50 << 20];
    let began = Instant::now();
    let r = client
        .post(format!("{base}/pools/bench/cgi-bin/count?identifier=benchuser"))
        .bearer_auth(KEY)
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap().trim(), (50u64 << 20).to_string());
    eprintln!(
        "figure: 50 MiB POST to the CGI through the proxy: {:?}",
        began.elapsed()
    );
    let _ = sandbox.destroy().await;
    eprintln!("figure: GET /index.html through the proxy: {}", summary(proxied));
    eprintln!(
        "figure: GET /index.html straight through AgentStream: {}",
        summary(direct)
    );

    // 64 concurrent clients on one session for 10 s.
    let window = Duration::from_secs(10);
    let began = Instant::now();
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (client, url) = (http(), url.clone());
            tokio::spawn(async move {
                let mut samples = Vec::new();
                let mut errors = 0u32;
                while began.elapsed() < window {
                    let t = Instant::now();
                    match client.get(&url).bearer_auth(KEY).send().await {
                        Ok(r) if r.status() == 200 => {
                            r.bytes().await.unwrap();
                            samples.push(t.elapsed());
                        }
                        _ => errors += 1,
                    }
                }
                (samples, errors)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (s, e) = t.await.unwrap();
        all.extend(s);
        errors += e;
    }
    let took = began.elapsed();
    eprintln!(
        "figure: 64 concurrent clients, one session: {:.0} requests/s, {errors} errors, {}",
        all.len() as f64 / took.as_secs_f64(),
        summary(all)
    );
}

//! Session networks through the real server against a test "internet" built on this
//! machine (no packet leaves it): an `EgressEnabled` pool reaches it, an
//! `EgressDisabled` one does not, neither reaches the host's listeners, and the bytes a
//! session moved show in `/metrics` per session and per pool.

use crate::harness::*;
use sandpool_testkit::internet::*;
use serde_json::json;
use std::net::TcpListener;
use std::time::Duration;

const CONFIG: &str = r#"
[server]
egressUplink = "UPLINK"
egressSubnet = "10.205.0.0/16"

[[pools]]
name = "open"
[pools.properties]
containerType = "Shell"
scaleConfiguration = { maxConcurrentSessions = 2, readySessionInstances = 1 }
sessionNetworkConfiguration = { status = "EgressEnabled" }

[[pools]]
name = "closed"
[pools.properties]
containerType = "Shell"
scaleConfiguration = { maxConcurrentSessions = 2, readySessionInstances = 1 }
"#;

struct Egress {
    base: String,
}

impl Egress {
    fn admin(&self, method: &str, path: &str, body: Option<&serde_json::Value>) -> Reply {
        send_to(&self.base, method, path, Some(ADMIN_KEY), body)
    }

    /// Runs a shell command in `identifier`'s session of `pool`; returns its stdout,
    /// or `Err(stderr)` when it failed.
    fn shell(&self, pool: &str, identifier: &str, command: &str) -> Result<String, String> {
        let r = self.admin(
            "POST",
            &format!("/pools/{pool}/code/execute?identifier={identifier}&{OLD}"),
            Some(&json!({"properties": {"codeInputType": "inline", "executionType": "synchronous", "code": command}})),
        );
        assert_eq!(r.status, 200, "{command:?}: {}", r.text());
        let p = r.json()["properties"].clone();
        let out = |k: &str| p[k].as_str().unwrap_or_default().to_owned();
        if p["status"] == "Success" {
            Ok(out("stdout"))
        } else {
            Err(format!("{}{}", out("stdout"), out("stderr")))
        }
    }

    fn metrics(&self) -> String {
        let r = self.admin("GET", "/metrics", None);
        assert_eq!(r.status, 200, "{}", r.text());
        r.text()
    }
}

#[test]
fn egress_enabled_sessions_reach_the_test_internet_and_their_bytes_are_metered() {
    let internet = TestInternet::start();
    let dir = fresh_dir("egress");
    let server = start(&dir, &CONFIG.replace("UPLINK", &internet.uplink));
    let api = Egress {
        base: server.base.clone(),
    };
    wait_ready_at(&api.base, "open", 1);
    wait_ready_at(&api.base, "closed", 1);
    let api_port = server
        .base
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_owned();
    let host_listener = TcpListener::bind("0.0.0.0:0").unwrap();
    host_listener.set_nonblocking(true).unwrap();
    let host_port = host_listener.local_addr().unwrap().port();
    let curl =
        |url: &str| format!("curl -sS --connect-timeout 3 -m 60 -o /dev/null -w '%{{size_download}}' {url}");

    let id = format!("egress-{}", std::process::id());
    let got = api.shell("open", &id, &curl(&format!("http://{WEB_ALLOWED}/big.bin")));
    assert_eq!(
        got.as_deref(),
        Ok(BIG_FILE_BYTES.to_string().as_str()),
        "open pool download"
    );
    for target in [
        format!("{UPLINK_HOST}:{api_port}"),
        format!("{UPLINK_HOST}:{host_port}"),
        format!("{WEB_PRIVATE}:80"),
        "169.254.169.254:80".to_owned(),
    ] {
        let reached = api.shell("open", &id, &curl(&format!("http://{target}/")));
        assert!(reached.is_err(), "the open pool reached {target}: {reached:?}");
    }
    assert!(
        host_listener.accept().is_err(),
        "the host listener saw a connection"
    );
    let closed = api.shell("closed", &id, &curl(&format!("http://{WEB_ALLOWED}/")));
    assert!(closed.is_err(), "the closed pool reached the web: {closed:?}");

    // The download shows in the session's gauge and the pool's total (sampled every 5 s).
    let received =
        format!("sandpool_session_egress_bytes{{pool=\"open\",identifier=\"{id}\",direction=\"received\"}}");
    let total = "sandpool_egress_bytes_total{pool=\"open\",direction=\"received\"}";
    let big = BIG_FILE_BYTES as f64;
    let m = wait_for("the session's egress bytes", Duration::from_secs(30), || {
        let m = api.metrics();
        (sample(&m, &received).unwrap_or(0.0) >= big).then_some(m)
    });
    assert!(sample(&m, total).unwrap_or(0.0) >= big, "{m}");
    assert!(
        sample(
            &m,
            &format!("sandpool_session_egress_bytes{{pool=\"open\",identifier=\"{id}\",direction=\"sent\"}}")
        )
        .unwrap_or(0.0)
            > 0.0,
        "{m}"
    );
    assert!(!m.contains("pool=\"closed\",identifier"), "{m}");

    // The session ends: its gauge goes, the pool's total keeps the bytes.
    let r = api.admin("POST", &format!("/sessionPools/open/sessions/{id}/stop"), None);
    assert!(r.status < 300, "{}", r.text());
    let m = wait_for("the ended session's gauge to go", Duration::from_secs(30), || {
        let m = api.metrics();
        sample(&m, &received).is_none().then_some(m)
    });
    assert!(sample(&m, total).unwrap_or(0.0) >= big, "{m}");
    server.stop();
}

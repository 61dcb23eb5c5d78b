//! Session networking with real runsc and runc sandboxes against a small "internet"
//! built in network namespaces on this machine: egress disabled and enabled, allow-lists
//! of CIDRs and domains (changed on running sessions), isolation from the host and from
//! other sessions, byte counters, cleanup, and the benchmark figures.

mod support;

use sandpool_gvisor::{GvisorBackend, GvisorConfig};
use sandpool_net::{NetConfig, NetworkManager};
use sandpool_runc::{RuncBackend, RuncConfig};
use sandpool_sandbox::{Backend, EgressConfig, NetworkPolicy, Sandbox, SandboxId, SandboxKind};
use sandpool_testkit::internet::*;
use std::net::{Ipv4Addr, TcpListener};
use std::time::Instant;
use support::*;

/// Destroys the sandbox when the test ends, even on a failed assertion.
struct Guard(Option<Box<dyn Sandbox>>);

impl Guard {
    fn get(&self) -> &dyn Sandbox {
        self.0.as_deref().unwrap()
    }
    async fn destroy(mut self) {
        if let Some(s) = self.0.take() {
            s.destroy().await.unwrap();
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // Dropping a backend sandbox removes it (and its network) synchronously.
        self.0.take();
    }
}

async fn fetch(sandbox: &dyn Sandbox, url: &str) -> Result<String, String> {
    let r = shell(sandbox, &format!("curl -sS --connect-timeout 3 -m 6 {url}")).await;
    if r.exit_code == 0 {
        Ok(r.stdout)
    } else {
        Err(format!("exit {}: {}", r.exit_code, r.stderr.trim()))
    }
}

async fn reaches(sandbox: &dyn Sandbox, target: &str) -> bool {
    match fetch(sandbox, &format!("http://{target}/")).await {
        Ok(body) => body.contains("hello from the test internet"),
        Err(e) => {
            eprintln!("{target}: {e}");
            false
        }
    }
}

/// Download and upload rates (MiB/s) of `bytes` between the sandbox and the test web
/// host, measured inside the sandbox.
async fn transfer_rates(sandbox: &dyn Sandbox, bytes: usize) -> (f64, f64) {
    let script = format!(
        r#"python3 -c "
import socket, time, urllib.request
n = {bytes}
t = time.monotonic(); r = urllib.request.urlopen('http://{WEB_ALLOWED}/big.bin', timeout=60); got = 0
while got < n:
    b = r.read(min(1 << 16, n - got))
    if not b: break
    got += len(b)
down = got / (time.monotonic() - t) / 1048576; r.close()
s = socket.create_connection(('{WEB_ALLOWED}', {SINK_PORT}), timeout=60); t = time.monotonic()
s.sendall(bytes(n)); s.shutdown(socket.SHUT_WR); sunk = int(s.recv(64))
up = sunk / (time.monotonic() - t) / 1048576
assert got == n and sunk == n, (got, sunk)
print(down, up)
""#
    );
    let r = shell(sandbox, &script).await;
    let rates: Vec<f64> = r
        .stdout
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    assert_eq!(rates.len(), 2, "transfer: {r:?}");
    (rates[0], rates[1])
}

fn egress(cidrs: &[&str], domains: &[&str]) -> NetworkPolicy {
    NetworkPolicy::Enabled(EgressConfig {
        allow_cidrs: cidrs.iter().map(|s| s.to_string()).collect(),
        allow_domains: domains.iter().map(|s| s.to_string()).collect(),
        ..EgressConfig::default()
    })
}

struct Setup {
    agent: sandpool_sandbox::AgentRuntime,
    image: sandpool_image::Image,
}

impl Setup {
    async fn create(&self, backend: &dyn Backend, id: &str, network: NetworkPolicy) -> Guard {
        let mut s = spec(id, SandboxKind::Shell, &self.image, &self.agent);
        s.network = network;
        Guard(Some(backend.create(&s, None).await.unwrap()))
    }
}

#[tokio::test]
async fn sessions_reach_exactly_what_their_policy_allows() {
    init_tracing();
    let dir = scratch("net-policy-");
    let internet = TestInternet::start();
    let manager = NetworkManager::start(NetConfig {
        instance: "sandpool-net-test-policy".into(),
        uplink: Some(internet.uplink.clone()),
        session_subnet: "10.203.0.0/16".parse().unwrap(),
        upstream_dns: Some(internet.dns()),
        state_dir: dir.path().join("net"),
    })
    .await
    .unwrap();
    let setup = Setup {
        agent: agent_bundle(&dir.path().join("agent")),
        image: image(SandboxKind::Shell).await,
    };
    let gvisor = GvisorBackend::new(GvisorConfig {
        state_dir: dir.path().join("gvisor"),
        runsc: "runsc".into(),
        platform: Some(std::env::var("SANDPOOL_GVISOR_PLATFORM").unwrap_or_else(|_| "ptrace".into())),
    })
    .await
    .unwrap()
    .with_network(manager.clone());
    let runc = RuncBackend::new(RuncConfig {
        state_dir: dir.path().join("runc"),
        runc: "runc".into(),
    })
    .await
    .unwrap()
    .with_network(manager.clone());
    let host_listener = TcpListener::bind("0.0.0.0:0").unwrap();
    host_listener.set_nonblocking(true).unwrap();
    let host_port = host_listener.local_addr().unwrap().port();
    let backends: [(&str, &dyn Backend); 2] = [("gvisor", &gvisor), ("runc", &runc)];

    for (name, backend) in backends {
        // EgressDisabled: loopback only.
        let off = setup
            .create(backend, &format!("{name}-off"), NetworkPolicy::Disabled)
            .await;
        assert!(
            !reaches(off.get(), &WEB_ALLOWED.to_string()).await,
            "{name}: disabled reached the web"
        );
        let lo = shell(off.get(), "python3 -c \"import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); c=socket.create_connection(s.getsockname(), 2); print('lo up')\"").await;
        assert!(lo.stdout.contains("lo up"), "{name}: loopback: {lo:?}");
        off.destroy().await;

        // EgressEnabled without lists: public addresses and names, nothing private,
        // link-local, on the host or in another session.
        let id = format!("{name}-open");
        let open = setup.create(backend, &id, egress(&[], &[])).await;
        let (gateway, own) = manager.addresses(&SandboxId::new(&id).unwrap()).unwrap();
        assert!(
            reaches(open.get(), &WEB_ALLOWED.to_string()).await,
            "{name}: open did not reach the web"
        );
        assert!(
            reaches(open.get(), "www.allowed.test").await,
            "{name}: open did not resolve"
        );
        assert!(reaches(open.get(), "other.test").await);
        assert!(
            !reaches(open.get(), &WEB_PRIVATE.to_string()).await,
            "{name}: reached a private range"
        );
        assert!(
            !reaches(open.get(), "private.test").await,
            "{name}: reached a private range by name"
        );
        assert!(fetch(open.get(), "http://169.254.169.254/").await.is_err());
        for host in [gateway, UPLINK_HOST, Ipv4Addr::LOCALHOST] {
            let url = format!("http://{host}:{host_port}/");
            assert!(
                fetch(open.get(), &url).await.is_err(),
                "{name}: reached host listener at {url}"
            );
        }
        assert!(
            host_listener.accept().is_err(),
            "{name}: the host listener saw a connection"
        );

        // Sessions cannot reach each other.
        let peer = setup
            .create(backend, &format!("{name}-peer"), egress(&[], &[]))
            .await;
        let served = shell(peer.get(), "setsid nohup python3 -m http.server 8080 --bind 0.0.0.0 >/dev/null 2>&1 & for i in $(seq 50); do curl -s -o /dev/null 127.0.0.1:8080/ && echo up && break; sleep 0.1; done").await;
        assert!(served.stdout.contains("up"), "{name}: peer server: {served:?}");
        let (_, peer_ip) = manager
            .addresses(&SandboxId::new(format!("{name}-peer")).unwrap())
            .unwrap();
        assert!(
            fetch(open.get(), &format!("http://{peer_ip}:8080/"))
                .await
                .is_err(),
            "{name}: sessions reached each other"
        );
        assert!(fetch(peer.get(), &format!("http://{own}:8080/")).await.is_err());
        peer.destroy().await;

        // Download through the NAT: throughput figure and byte counter.
        let id_ = SandboxId::new(&id).unwrap();
        let before = manager.counters(&id_).await.unwrap();
        let started = Instant::now();
        let got = shell(
            open.get(),
            &format!("curl -sS -m 120 -o /dev/null -w '%{{size_download}}' http://{WEB_ALLOWED}/big.bin"),
        )
        .await;
        let took = started.elapsed();
        assert_eq!(got.stdout.trim(), BIG_FILE_BYTES.to_string(), "{name}: {got:?}");
        let after = manager.counters(&id_).await.unwrap();
        eprintln!(
            "figure: {name} download of {} MiB through the NAT: {:.1} MiB/s ({took:?})",
            BIG_FILE_BYTES >> 20,
            BIG_FILE_BYTES as f64 / (1 << 20) as f64 / took.as_secs_f64()
        );
        assert!(
            after.rx_bytes - before.rx_bytes >= BIG_FILE_BYTES as u64,
            "{before:?} {after:?}"
        );
        assert!(after.tx_bytes > before.tx_bytes);

        // Bandwidth: a lower limit applied to the running session holds both ways.
        let slow = EgressConfig {
            bandwidth_bytes_per_sec: 2 << 20,
            ..EgressConfig::default()
        };
        manager.update_egress(&id_, &slow).await.unwrap();
        let (down, up) = transfer_rates(open.get(), 8 << 20).await;
        eprintln!("figure: {name} with a 2 MiB/s limit: download {down:.2} MiB/s, upload {up:.2} MiB/s");
        assert!(
            down < 3.0,
            "{name}: download {down:.2} MiB/s passed a 2 MiB/s limit"
        );
        assert!(up < 3.0, "{name}: upload {up:.2} MiB/s passed a 2 MiB/s limit");
        // Connection limit: with 3 allowed, 3 of 5 concurrent connections open.
        let few = EgressConfig {
            max_connections: 3,
            ..EgressConfig::default()
        };
        manager.update_egress(&id_, &few).await.unwrap();
        let opened = shell(
            open.get(),
            &format!(
                r#"python3 -c "
import socket
held = []
for _ in range(5):
    try:
        held.append(socket.create_connection(('{WEB_ALLOWED}', {SINK_PORT}), timeout=3))
    except OSError:
        pass
print(len(held))
""#
            ),
        )
        .await;
        assert_eq!(opened.stdout.trim(), "3", "{name}: connection limit: {opened:?}");
        let live = manager.sample().await.unwrap();
        let (_, sampled) = live.live.iter().find(|(s, _)| *s == id_).expect("sampled");
        assert!(sampled.rx_bytes >= after.rx_bytes + (8 << 20), "{sampled:?}");
        assert!(sampled.tx_bytes >= after.tx_bytes + (8 << 20), "{sampled:?}");
        open.destroy().await;
        // The final counters of an ended session are reported once.
        let ended = manager.sample().await.unwrap();
        assert!(ended.live.iter().all(|(s, _)| *s != id_));
        let (_, last) = ended
            .ended
            .iter()
            .find(|(s, _)| *s == id_)
            .expect("final counters");
        assert!(last.rx_bytes >= sampled.rx_bytes, "{last:?} {sampled:?}");
        assert!(manager.sample().await.unwrap().ended.is_empty());

        // Allow-list: exactly the listed CIDR and domains (and names below `*.`).
        let id = format!("{name}-list");
        let listed = setup
            .create(
                backend,
                &id,
                egress(&["198.18.2.0/24"], &["www.allowed.test", "*.wild.test"]),
            )
            .await;
        assert!(
            reaches(listed.get(), &WEB_IN_CIDR.to_string()).await,
            "{name}: allowed CIDR refused"
        );
        assert!(
            !reaches(listed.get(), &WEB_ALLOWED.to_string()).await,
            "{name}: unresolved address reached"
        );
        assert!(!reaches(listed.get(), &WEB_OTHER.to_string()).await);
        assert!(
            reaches(listed.get(), "www.allowed.test").await,
            "{name}: allowed name refused"
        );
        assert!(reaches(listed.get(), "api.wild.test").await);
        assert!(reaches(listed.get(), "deep.x.wild.test").await);
        assert!(!reaches(listed.get(), "other.test").await);
        assert!(
            !reaches(listed.get(), "wild.test").await,
            "{name}: *.wild.test admitted wild.test"
        );
        assert!(!reaches(listed.get(), &WEB_PRIVATE.to_string()).await);
        let lookup = shell(listed.get(), "getent hosts other.test; echo rc=$?").await;
        assert!(
            lookup.stdout.contains("rc=2"),
            "{name}: other.test resolved: {lookup:?}"
        );

        // A changed list applies to the running session.
        manager
            .update_egress(
                &SandboxId::new(&id).unwrap(),
                &EgressConfig {
                    allow_domains: vec!["other.test".into()],
                    ..EgressConfig::default()
                },
            )
            .await
            .unwrap();
        assert!(
            reaches(listed.get(), "other.test").await,
            "{name}: updated list not applied"
        );
        assert!(
            !reaches(listed.get(), &WEB_IN_CIDR.to_string()).await,
            "{name}: removed CIDR still open"
        );
        assert!(!reaches(listed.get(), "www.allowed.test").await);
        listed.destroy().await;
    }

    // Nothing of the sessions is left on the host; shutdown removes the table too.
    let left = manager.host_objects().await.unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].starts_with("nft table"), "{left:?}");
    manager.shutdown().await.unwrap();
    assert!(manager.host_objects().await.unwrap().is_empty());
}

#[tokio::test]
async fn egress_adds_little_to_a_cold_start() {
    init_tracing();
    let dir = scratch("net-bench-");
    let internet = TestInternet::start();
    let manager = NetworkManager::start(NetConfig {
        instance: "sandpool-net-test-bench".into(),
        uplink: Some(internet.uplink.clone()),
        session_subnet: "10.205.0.0/16".parse().unwrap(),
        upstream_dns: Some(internet.dns()),
        state_dir: dir.path().join("net"),
    })
    .await
    .unwrap();
    let setup = Setup {
        agent: agent_bundle(&dir.path().join("agent")),
        image: image(SandboxKind::Shell).await,
    };
    let gvisor = GvisorBackend::new(GvisorConfig {
        state_dir: dir.path().join("gvisor"),
        runsc: "runsc".into(),
        platform: Some(std::env::var("SANDPOOL_GVISOR_PLATFORM").unwrap_or_else(|_| "ptrace".into())),
    })
    .await
    .unwrap()
    .with_network(manager.clone());
    let runc = RuncBackend::new(RuncConfig {
        state_dir: dir.path().join("runc"),
        runc: "runc".into(),
    })
    .await
    .unwrap()
    .with_network(manager.clone());
    let backends: [(&str, &dyn Backend); 2] = [("gvisor", &gvisor), ("runc", &runc)];
    for (name, backend) in backends {
        for (label, policy) in [
            ("EgressDisabled", NetworkPolicy::Disabled),
            ("EgressEnabled", egress(&[], &[])),
        ] {
            let mut times = Vec::new();
            for i in 0..5 {
                let started = Instant::now();
                let sandbox = setup
                    .create(backend, &format!("{name}-b{i}"), policy.clone())
                    .await;
                times.push(started.elapsed().as_secs_f64() * 1000.0);
                sandbox.destroy().await;
            }
            times.sort_by(|a, b| a.partial_cmp(b).unwrap());
            eprintln!(
                "figure: {name} cold start {label}: median {:.0} ms (min {:.0}, max {:.0}, n=5)",
                times[2], times[0], times[4]
            );
        }
    }
    manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_restarted_manager_removes_what_a_crashed_one_left() {
    init_tracing();
    let dir = scratch("net-leftover-");
    let config = NetConfig {
        instance: "sandpool-net-test-leftover".into(),
        uplink: Some("lo".into()),
        session_subnet: "10.204.0.0/16".parse().unwrap(),
        upstream_dns: Some("127.0.0.1:53".parse().unwrap()),
        state_dir: dir.path().join("net"),
    };
    let crashed = NetworkManager::start(config.clone()).await.unwrap();
    for i in 0..3 {
        crashed
            .attach(
                &SandboxId::new(format!("left-{i}")).unwrap(),
                &EgressConfig::default(),
            )
            .await
            .unwrap();
    }
    let objects = crashed.host_objects().await.unwrap();
    assert_eq!(objects.len(), 7, "{objects:?}");
    // The crashed manager never cleans up; a new one with the same instance does.
    std::mem::forget(crashed);
    let restarted = NetworkManager::start(config).await.unwrap();
    assert_eq!(
        restarted.host_objects().await.unwrap(),
        vec![format!("nft table sandpool_{}", restarted.tag())]
    );
    restarted.shutdown().await.unwrap();
    assert!(restarted.host_objects().await.unwrap().is_empty());
}

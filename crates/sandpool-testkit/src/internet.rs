//! A small "internet" on this machine for the network tests: a network namespace the
//! test creates, joined to the host by a veth pair (the sessions' uplink), holding a web
//! server on several test addresses and a DNS zone. Only test-only ranges are used
//! (198.18.0.0/15 benchmarking addresses and 10.250.0.0/24 as a "private" host), so
//! no packet ever leaves the machine. Everything is removed on drop.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Host end of the uplink.
pub const UPLINK_HOST: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// The internet's router and DNS server.
pub const ROUTER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
/// `www.allowed.test`.
pub const WEB_ALLOWED: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 10);
/// `api.wild.test` and `deep.x.wild.test`.
pub const WEB_WILD: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 11);
/// `other.test` and `wild.test`.
pub const WEB_OTHER: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 12);
/// Inside the allowed CIDR 198.18.2.0/24.
pub const WEB_IN_CIDR: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 10);
/// A "private" web server.
pub const WEB_PRIVATE: Ipv4Addr = Ipv4Addr::new(10, 250, 0, 10);
pub const BIG_FILE_BYTES: usize = 64 << 20;
/// A TCP sink on every test host: reads until EOF, answers with the byte count.
pub const SINK_PORT: u16 = 9;

const SINK: &str = r#"
import socket, threading
def serve(c):
    n = 0
    while True:
        b = c.recv(1 << 20)
        if not b:
            break
        n += len(b)
    c.sendall(str(n).encode()); c.close()
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 9)); s.listen(64)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

const ZONE: &str = r#"
import socket, struct
ZONE = {
    "www.allowed.test": "198.18.1.10",
    "api.wild.test": "198.18.1.11",
    "deep.x.wild.test": "198.18.1.11",
    "other.test": "198.18.1.12",
    "wild.test": "198.18.1.12",
    "private.test": "10.250.0.10",
}
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("198.18.0.2", 53))
while True:
    q, addr = s.recvfrom(1500)
    i, labels = 12, []
    while q[i]:
        labels.append(q[i + 1:i + 1 + q[i]].decode().lower()); i += 1 + q[i]
    qtype = struct.unpack(">H", q[i + 1:i + 3])[0]
    question = q[12:i + 5]
    ip = ZONE.get(".".join(labels))
    rcode = 0 if ip else 3
    answers = b""
    if ip and qtype == 1:
        answers = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton(ip)
    header = q[:2] + struct.pack(">HHHHH", 0x8180 | rcode, 1, 1 if answers else 0, 0, 0)
    s.sendto(header + question + answers, addr)
"#;

pub struct TestInternet {
    pub netns: String,
    /// The host end of the uplink: give it to the network manager.
    pub uplink: String,
    children: Vec<Child>,
    _web_root: tempfile::TempDir,
}

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().unwrap();
    assert!(status.success(), "ip {args:?}: {status}");
}

impl TestInternet {
    pub fn start() -> Self {
        let suffix = format!("{:05x}", std::process::id() & 0xfffff);
        let netns = format!("spt{suffix}i");
        let uplink = format!("spt{suffix}u");
        let web_root = tempfile::tempdir().unwrap();
        std::fs::write(
            web_root.path().join("index.html"),
            "hello from the test internet\n",
        )
        .unwrap();
        std::fs::write(web_root.path().join("big.bin"), vec![7u8; BIG_FILE_BYTES]).unwrap();
        let mut net = TestInternet {
            netns: netns.clone(),
            uplink: uplink.clone(),
            children: Vec::new(),
            _web_root: web_root,
        };
        ip(&["netns", "add", &netns]);
        ip(&[
            "link", "add", &uplink, "type", "veth", "peer", "name", "inet0", "netns", &netns,
        ]);
        ip(&["addr", "add", &format!("{UPLINK_HOST}/24"), "dev", &uplink]);
        ip(&["link", "set", &uplink, "up"]);
        let inside = format!(
            "link set lo up\nlink set inet0 up\naddr add {ROUTER}/24 dev inet0\n{}",
            [WEB_ALLOWED, WEB_WILD, WEB_OTHER, WEB_IN_CIDR, WEB_PRIVATE]
                .iter()
                .map(|a| format!("addr add {a}/32 dev lo\n"))
                .collect::<String>()
        );
        let mut batch = Command::new("ip")
            .args(["-n", &netns, "-batch", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        batch.stdin.take().unwrap().write_all(inside.as_bytes()).unwrap();
        assert!(batch.wait().unwrap().success());
        for net_route in ["198.18.1.0/24", "198.18.2.0/24", "10.250.0.0/24"] {
            ip(&[
                "route",
                "replace",
                net_route,
                "via",
                &ROUTER.to_string(),
                "dev",
                &uplink,
            ]);
        }
        let web_dir = net._web_root.path().to_str().unwrap().to_string();
        net.spawn(&[
            "/usr/bin/python3",
            "-m",
            "http.server",
            "80",
            "--bind",
            "0.0.0.0",
            "--directory",
            &web_dir,
        ]);
        net.spawn(&["/usr/bin/python3", "-c", ZONE]);
        net.spawn(&["/usr/bin/python3", "-c", SINK]);
        net.wait_ready();
        net
    }

    fn spawn(&mut self, argv: &[&str]) {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.netns])
            .args(argv)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.children.push(child);
    }

    /// Waits (bounded) until the web server answers inside the namespace.
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ok = Command::new("ip")
                .args(["netns", "exec", &self.netns, "/usr/bin/python3", "-c"])
                .arg("import urllib.request as u; u.urlopen('http://198.18.1.10/', timeout=1).read()")
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return;
            }
            assert!(Instant::now() < deadline, "the test internet did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn dns(&self) -> SocketAddr {
        SocketAddr::from((ROUTER, 53))
    }
}

impl Drop for TestInternet {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new("ip").args(["link", "del", &self.uplink]).status();
        let _ = Command::new("ip").args(["netns", "del", &self.netns]).status();
    }
}

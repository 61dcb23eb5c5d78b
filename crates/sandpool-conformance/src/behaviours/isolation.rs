//! What a sandbox must not see: the host's files, the host's network, other sandboxes.

use crate::ops::{execute_ok, shell_ok};
use crate::TestEnv;
use sandpool_sandbox::Backend;
use std::net::TcpListener;

/// Python that prints, one per line, whether each path in `paths` exists.
fn exists_code(paths: &[String]) -> String {
    format!("import os\nfor p in {paths:?}:\n    print(os.path.lexists(p))")
}

/// Marker files the test creates on the host (in /tmp and in the data dir) are
/// invisible inside, both by path and by name anywhere in the sandbox's writable dirs.
pub async fn host_files_are_invisible(backend: &dyn Backend, env: &TestEnv) {
    let name = format!("sandpool-marker-{}-{}", std::process::id(), rand::random::<u32>());
    let in_tmp = std::env::temp_dir().join(&name);
    let in_data = env.data_dir.join(&name);
    let _cleanup = RemoveOnDrop(vec![in_tmp.clone(), in_data.clone()]);
    std::fs::write(&in_tmp, b"host secret").expect("write host /tmp marker");
    std::fs::write(&in_data, b"host secret").expect("write data-dir marker");

    let sb = env.python(backend, "host-files").await;
    let paths = vec![
        format!("/tmp/{name}"),
        in_tmp.display().to_string(),
        in_data.display().to_string(),
        format!("/mnt/data/{name}"),
    ];
    let out = execute_ok(sb.agent(), &exists_code(&paths)).await;
    let seen: Vec<&str> = out.lines().collect();
    assert_eq!(seen, ["False"; 4], "paths {paths:?} -> {out:?}");
    let found = shell_ok(
        sb.agent(),
        &format!("find / -maxdepth 2 -name '{name}' 2>/dev/null; find /tmp /mnt/data -name '{name}' 2>/dev/null; true"),
    )
    .await;
    assert_eq!(found.trim(), "", "host marker visible inside the sandbox");
    // Positive control: a file the sandbox writes itself is visible to it.
    execute_ok(sb.agent(), &format!("open('/tmp/{name}', 'w').write('inside')")).await;
    let out = execute_ok(sb.agent(), &exists_code(&[format!("/tmp/{name}")])).await;
    assert_eq!(out.trim(), "True");
    // ... and does not land in the host's /tmp.
    assert_eq!(std::fs::read(&in_tmp).expect("host marker"), b"host secret");
    sb.destroy().await;
}

/// Only `lo` exists, loopback inside works, and a listener on the host's 127.0.0.1
/// (and on the host's other addresses) cannot be reached.
pub async fn network_is_loopback_only(backend: &dyn Backend, env: &TestEnv) {
    let listener = TcpListener::bind("0.0.0.0:0").expect("host listener");
    listener.set_nonblocking(true).expect("nonblocking listener");
    let port = listener.local_addr().expect("listener address").port();
    let mut targets = vec!["127.0.0.1".to_string()];
    targets.extend(host_ipv4_addresses());

    let sb = env.python(backend, "network").await;
    let interfaces = execute_ok(
        sb.agent(),
        "import os\nnames = set()\n\
         if os.path.isdir('/sys/class/net'): names |= set(os.listdir('/sys/class/net'))\n\
         names |= {l.split(':')[0].strip() for l in open('/proc/net/dev').read().splitlines()[2:]}\n\
         print(sorted(names))",
    )
    .await;
    assert_eq!(interfaces.trim(), "['lo']", "interfaces inside the sandbox");

    let code = format!(
        "import socket\n\
         srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(1)\n\
         socket.create_connection(srv.getsockname(), timeout=5).close()\n\
         print('loopback-ok')\n\
         for host in {targets:?}:\n\
         \x20   try:\n\
         \x20       socket.create_connection((host, {port}), timeout=3).close()\n\
         \x20       print('REACHED', host)\n\
         \x20   except OSError as e:\n\
         \x20       print('blocked', host, type(e).__name__)"
    );
    let out = execute_ok(sb.agent(), &code).await;
    assert!(
        out.starts_with("loopback-ok"),
        "loopback inside the sandbox broken: {out}"
    );
    assert!(!out.contains("REACHED"), "sandbox reached the host: {out}");
    assert_eq!(out.matches("blocked").count(), targets.len(), "{out}");
    assert!(
        listener.accept().is_err(),
        "the host listener accepted a connection"
    );
    sb.destroy().await;
}

/// Two sandboxes cannot see each other's files (in /mnt/data and /tmp) or processes.
pub async fn sandboxes_cannot_see_each_other(backend: &dyn Backend, env: &TestEnv) {
    let a = env.python(backend, "peer-a").await;
    let b = env.python(backend, "peer-b").await;
    let marker = format!("peer-marker-{}", rand::random::<u32>());
    execute_ok(
        a.agent(),
        &format!(
            "import subprocess, sys\n\
             open('/mnt/data/{marker}', 'w').write('a')\nopen('/tmp/{marker}', 'w').write('a')\n\
             keep = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)', '{marker}'])"
        ),
    )
    .await;
    let probe = format!(
        "import os\n\
         print(os.path.exists('/mnt/data/{marker}'), os.path.exists('/tmp/{marker}'))\n\
         hits = 0\n\
         for pid in filter(str.isdigit, os.listdir('/proc')):\n\
         \x20   try:\n\
         \x20       hits += b'{marker}' in open(f'/proc/{{pid}}/cmdline', 'rb').read()\n\
         \x20   except OSError:\n\
         \x20       pass\n\
         print(hits)"
    );
    // Positive control: A sees its own file and process.
    let own = execute_ok(a.agent(), &probe).await;
    assert_eq!(
        own.lines().collect::<Vec<_>>(),
        ["True True", "1"],
        "sandbox A about itself: {own:?}"
    );
    let other = execute_ok(b.agent(), &probe).await;
    assert_eq!(
        other.lines().collect::<Vec<_>>(),
        ["False False", "0"],
        "sandbox B sees A: {other:?}"
    );
    let pids = execute_ok(
        b.agent(),
        "import os\nprint(len([p for p in os.listdir('/proc') if p.isdigit()]))",
    )
    .await;
    let pids: usize = pids.trim().parse().expect("pid count");
    assert!(
        pids < 30,
        "sandbox B sees {pids} processes; expected only its own few"
    );
    a.destroy().await;
    b.destroy().await;
}

/// The host's non-loopback IPv4 addresses (from `ip -4 -o addr`), best effort.
fn host_ipv4_addresses() -> Vec<String> {
    let Ok(out) = std::process::Command::new("ip")
        .args(["-4", "-o", "addr"])
        .output()
    else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().skip_while(|w| *w != "inet").nth(1))
        .filter_map(|cidr| cidr.split('/').next())
        .filter(|ip| !ip.starts_with("127."))
        .map(str::to_string)
        .collect()
}

struct RemoveOnDrop(Vec<std::path::PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

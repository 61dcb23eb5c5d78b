//! Starting the real `sandpool serve` from a test: loopback on a free port, its log in the
//! data directory, stopped when the test process dies.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Starts `exe serve` (the binary under test: `env!("CARGO_BIN_EXE_sandpool")`) on
/// `data_dir` with `config` and `admin_key`, logging to `data_dir/server.log`. Returns
/// the child and the base URL once it prints that it is ready; panics with the log's
/// tail if that takes longer than `ready_within`. The server gets SIGTERM when the test
/// process exits.
pub fn spawn_serve(
    exe: &Path,
    data_dir: &Path,
    config: &Path,
    admin_key: &str,
    ready_within: Duration,
) -> (Child, String) {
    let log = data_dir.join("server.log");
    let mut cmd = Command::new(exe);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .arg("--config")
        .arg(config)
        .env("SANDPOOL_API_KEY", admin_key)
        .env("SANDPOOL_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()));
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    // PR_SET_PDEATHSIG fires when the spawning *thread* exits, so spawn from a thread that
    // lives as long as the test process.
    let (child_tx, child_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = child_tx.send(cmd.spawn());
        loop {
            std::thread::park();
        }
    });
    let mut child = child_rx.recv().unwrap().expect("starting sandpool serve");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("sandpool ready on ") {
                let _ = tx.send(rest.trim().to_owned());
            }
        }
    });
    match rx.recv_timeout(ready_within) {
        Ok(base) => (child, base),
        Err(_) => {
            let _ = child.kill();
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let mut tail: Vec<&str> = text.lines().rev().take(60).collect();
            tail.reverse();
            panic!(
                "sandpool serve did not become ready within {ready_within:?}; end of {}:\n{}",
                log.display(),
                tail.join("\n")
            );
        }
    }
}

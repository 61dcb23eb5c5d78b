//! Test harness: runs the real `sandpool-agent` binary with a temporary data directory and
//! talks to it over its stdio with sandpool-proto frames.
#![allow(dead_code)]

use sandpool_proto::{
    decode, encode_frame, read_frame, Envelope, ExecutionResult, Request, Response, ShellResult,
};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Every wait on the agent is bounded by this.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);

type Waiters = Arc<Mutex<HashMap<u64, Sender<Response>>>>;

/// A running agent; killed (with its driver) when dropped, even if the test failed.
pub struct Agent {
    child: Child,
    stdin: Option<Mutex<ChildStdin>>,
    waiters: Waiters,
    next_id: AtomicU64,
    pub data: tempfile::TempDir,
    _driver_dir: tempfile::TempDir,
}

/// The host Python with IPython the driver tests use.
pub fn test_python() -> PathBuf {
    let python = std::env::var_os("SANDPOOL_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv-driver/bin/python3"));
    assert!(
        python.exists(),
        "no Python for driver tests at {}: run scripts/python-test-env.sh (or set SANDPOOL_TEST_PYTHON)",
        python.display()
    );
    python
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

impl Agent {
    pub fn python() -> Agent {
        Agent::start("python", Some(test_python()))
    }

    pub fn shell() -> Agent {
        Agent::start("shell", None)
    }

    fn start(kind: &str, python: Option<PathBuf>) -> Agent {
        let data = tempfile::tempdir().unwrap();
        let bundle = tempfile::tempdir().unwrap();
        sandpool_agent::install_bundle(bundle.path(), Path::new(env!("CARGO_BIN_EXE_sandpool-agent")))
            .unwrap();
        let mut cmd = Command::new(bundle.path().join(sandpool_agent::AGENT_EXE_NAME));
        cmd.env("SANDPOOL_KIND", kind)
            .env("SANDPOOL_DATA_DIR", data.path())
            .env(
                "SANDPOOL_DRIVER",
                bundle.path().join(sandpool_agent::DRIVER_FILE_NAME),
            )
            .env("MPLCONFIGDIR", data.path().join(".matplotlib"))
            .env("IPYTHONDIR", data.path().join(".ipython"))
            .env("LANG", "C.UTF-8")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(python) = python {
            cmd.env("SANDPOOL_PYTHON", python);
        }
        // The shared target directory may be relinked by a concurrent build: retry a busy exe.
        let mut attempts = 0;
        let mut child = loop {
            match cmd.spawn() {
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && attempts < 50 => {
                    attempts += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                other => break other.expect("start sandpool-agent"),
            }
        };
        let stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let waiters: Waiters = Arc::default();
        let routes = Arc::clone(&waiters);
        std::thread::spawn(move || {
            while let Ok(Some(payload)) = read_frame(&mut stdout) {
                let env: Envelope<Response> = decode(&payload).expect("agent sent an undecodable frame");
                let waiter = routes.lock().unwrap().remove(&env.id);
                match waiter {
                    Some(tx) => {
                        let _ = tx.send(env.body);
                    }
                    None => panic!("response for unknown id {}", env.id),
                }
            }
        });
        Agent {
            child,
            stdin: Some(Mutex::new(stdin)),
            waiters,
            next_id: AtomicU64::new(1),
            data,
            _driver_dir: bundle,
        }
    }

    /// Sends raw bytes on the channel (for malformed-frame tests).
    pub fn send_raw(&self, bytes: &[u8]) {
        let mut w = self.stdin.as_ref().unwrap().lock().unwrap();
        w.write_all(bytes).unwrap();
        w.flush().unwrap();
    }

    /// Registers a waiter for `id` and returns its receiver.
    pub fn expect(&self, id: u64) -> mpsc::Receiver<Response> {
        let (tx, rx) = mpsc::channel();
        self.waiters.lock().unwrap().insert(id, tx);
        rx
    }

    pub fn call(&self, request: Request) -> Response {
        self.call_within(request, CALL_TIMEOUT)
    }

    pub fn call_within(&self, request: Request, timeout: Duration) -> Response {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let rx = self.expect(id);
        self.send_raw(&encode_frame(&Envelope { id, body: request }).unwrap());
        rx.recv_timeout(timeout)
            .unwrap_or_else(|_| panic!("no response to request {id} within {timeout:?}"))
    }

    pub fn execute(&self, code: &str, timeout_ms: u64) -> ExecutionResult {
        match self.call(Request::Execute {
            code: code.into(),
            timeout_ms,
        }) {
            Response::Execution(r) => r,
            other => panic!("execute {code:?}: unexpected {other:?}"),
        }
    }

    pub fn shell_run(&self, command: &str, timeout_ms: u64) -> ShellResult {
        match self.call(Request::Shell {
            command: command.into(),
            timeout_ms,
        }) {
            Response::Shell(r) => r,
            other => panic!("shell {command:?}: unexpected {other:?}"),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Closes the channel and waits (bounded) for the agent to exit.
    pub fn close(&mut self) -> Option<std::process::ExitStatus> {
        self.stdin.take();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if self.close().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The `text/plain` of a cell's result.
pub fn text(r: &ExecutionResult) -> &str {
    r.result
        .as_ref()
        .and_then(|b| b.get("text/plain"))
        .map(String::as_str)
        .unwrap_or_else(|| panic!("no text/plain result in {r:?}"))
}

//! A real `sandpool serve` child process with its own data dir (sharing the image
//! cache), JSON logs fed to [`Events`] and to `server.log`, stopped with SIGTERM.

use crate::error::BenchError;
use crate::events::Events;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The admin key the bench gives the server through `SANDPOOL_API_KEY`.
pub const API_KEY: &str = "service-bench-admin-key-0123456789";
/// The pool with a ready set, and the pool without one.
pub const WARM_POOL: &str = "warm";
pub const COLD_POOL: &str = "cold";
/// First runs build images (minutes); later ones only restore templates.
const READY_TIMEOUT: Duration = Duration::from_secs(1500);
/// Graceful shutdown destroys every sandbox; give it time before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(90);

/// The pools of the bench: `warm` keeps `ready` sandboxes, `cold` none; both allow
/// `max` sessions and keep idle sessions for 30 minutes (longer than any phase).
pub fn config_toml(ready: u32, max: usize) -> String {
    let pool = |name: &str, ready: u32| {
        format!(
            "[[pools]]\nname = \"{name}\"\n[pools.properties]\ncontainerType = \"PythonLTS\"\n\
             scaleConfiguration = {{ maxConcurrentSessions = {max}, readySessionInstances = {ready} }}\n\
             dynamicPoolConfiguration = {{ lifecycleConfiguration = {{ lifecycleType = \"Timed\", cooldownPeriodInSeconds = 1800 }} }}\n"
        )
    };
    format!("{}\n{}", pool(WARM_POOL, ready), pool(COLD_POOL, 0))
}

pub struct Server {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub events: Events,
    pub data_dir: PathBuf,
    child: Option<Child>,
}

impl Server {
    /// Starts the server under `<test data>/service-bench-<pid>` and waits for `sandpool ready on`.
    pub fn start(sandpool: &Path, test_data: &Path, config: &str) -> Result<Server, BenchError> {
        if !sandpool.is_file() {
            return Err(BenchError::Args(format!(
                "{} not found; build it with `cargo build --release -p sandpool` or pass --sandpool",
                sandpool.display()
            )));
        }
        let dir = test_data.join(format!("service-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(BenchError::io(format!("creating {}", dir.display())))?;
        let images = test_data.join("images");
        std::fs::create_dir_all(&images).map_err(BenchError::io("creating the image cache"))?;
        std::os::unix::fs::symlink(&images, dir.join("images"))
            .map_err(BenchError::io("linking the image cache"))?;
        let config_path = dir.join("config.toml");
        std::fs::write(&config_path, config).map_err(BenchError::io("writing config.toml"))?;
        let log_path = dir.join("server.log");
        let mut log = std::fs::File::create(&log_path).map_err(BenchError::io("creating server.log"))?;

        let mut cmd = Command::new(sandpool);
        cmd.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--data-dir",
        ])
        .arg(&dir)
        .arg("--config")
        .arg(&config_path)
        .env("SANDPOOL_API_KEY", API_KEY)
        .env("SANDPOOL_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        // SAFETY: prctl is async-signal-safe; the server dies with the bench.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let mut child = spawn_from_lasting_thread(cmd)?;
        tracing::info!(pid = child.id(), dir = %dir.display(), "sandpool serve started");

        let events = Events::default();
        let stderr = child.stderr.take().expect("stderr is piped");
        let sink = events.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = writeln!(log, "{line}");
                sink.observe(&line);
            }
        });
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("sandpool ready on ") {
                    let _ = tx.send(rest.trim().to_owned());
                }
            }
        });

        let mut server = Server {
            base: String::new(),
            events,
            data_dir: dir,
            child: Some(child),
        };
        let began = Instant::now();
        loop {
            match rx.recv_timeout(Duration::from_millis(500)) {
                Ok(base) => {
                    server.base = base;
                    return Ok(server);
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) if began.elapsed() < READY_TIMEOUT => {
                    if let Some(status) = server.exited() {
                        return Err(BenchError::ServerExited {
                            status,
                            log_tail: server.events.tail(),
                        });
                    }
                }
                Err(_) => {
                    return Err(BenchError::ServerNotReady {
                        waited: began.elapsed(),
                        log_tail: server.events.tail(),
                    })
                }
            }
        }
    }

    fn exited(&mut self) -> Option<String> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            _ => None,
        }
    }

    /// SIGTERM, then SIGKILL after [`STOP_TIMEOUT`]. Returns true on a clean exit.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let pid = child.id() as libc::pid_t;
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let began = Instant::now();
        while began.elapsed() < STOP_TIMEOUT {
            if let Ok(Some(status)) = child.try_wait() {
                tracing::info!(%status, took_ms = began.elapsed().as_millis() as u64, "sandpool serve stopped");
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        tracing::warn!("sandpool serve ignored SIGTERM; killing it");
        let _ = child.kill();
        let _ = child.wait();
        false
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// PR_SET_PDEATHSIG fires when the spawning *thread* exits: spawn from a thread that
/// lives as long as the process.
fn spawn_from_lasting_thread(mut cmd: Command) -> Result<Child, BenchError> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(cmd.spawn());
        loop {
            std::thread::park();
        }
    });
    rx.recv()
        .map_err(|_| BenchError::Args("spawner thread vanished".into()))?
        .map_err(BenchError::io("starting sandpool serve"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_declares_a_warm_and_a_cold_pool() {
        let toml = config_toml(8, 64);
        assert_eq!(toml.matches("[[pools]]").count(), 2);
        assert!(toml.contains("name = \"warm\""));
        assert!(toml.contains("maxConcurrentSessions = 64, readySessionInstances = 8"));
        assert!(toml.contains("maxConcurrentSessions = 64, readySessionInstances = 0"));
    }
}

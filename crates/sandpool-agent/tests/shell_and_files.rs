//! The agent's shell commands, confined file operations and channel handling, driven over
//! its stdio like the host does (shell-kind sandbox, so no Python is needed).

mod common;

use common::Agent;
use sandpool_proto::{encode_frame, DriverState, Envelope, ErrorKind, Request, Response, PROTOCOL_VERSION};
use std::time::{Duration, Instant};

fn err_kind(r: Response) -> ErrorKind {
    match r {
        Response::Error(e) => e.kind,
        other => panic!("expected an error, got {other:?}"),
    }
}

fn write(agent: &Agent, path: &str, data: &[u8], append: bool) -> Response {
    agent.call(Request::WriteFile {
        path: path.into(),
        data: data.to_vec(),
        append,
    })
}

#[test]
fn hello_health_and_stats() {
    let agent = Agent::shell();
    match agent.call(Request::Hello {
        version: PROTOCOL_VERSION,
    }) {
        Response::Hello { version, .. } => assert_eq!(version, PROTOCOL_VERSION),
        other => panic!("unexpected {other:?}"),
    }
    match agent.call(Request::Health) {
        Response::Health(h) => assert_eq!(h.driver, DriverState::Absent),
        other => panic!("unexpected {other:?}"),
    }
    match agent.call(Request::Stats) {
        Response::Stats(s) => {
            assert!(
                s.processes >= 1 && s.memory_bytes > 0 && s.data_total_bytes > 0,
                "{s:?}"
            )
        }
        other => panic!("unexpected {other:?}"),
    }
    let r = agent.call(Request::Execute {
        code: "1".into(),
        timeout_ms: 1000,
    });
    assert_eq!(err_kind(r), ErrorKind::Unsupported);
}

#[test]
fn shell_reports_exit_codes_output_and_runs_in_the_data_dir() {
    let agent = Agent::shell();
    let r = agent.shell_run("echo out; echo err >&2; exit 7", 10_000);
    assert_eq!(
        (r.exit_code, r.stdout.as_str(), r.stderr.as_str()),
        (7, "out\n", "err\n")
    );
    assert!(!r.timed_out);
    let r = agent.shell_run("pwd", 10_000);
    assert_eq!(
        r.stdout.trim(),
        agent.data.path().canonicalize().unwrap().to_str().unwrap()
    );
    let r = agent.shell_run("kill -9 $$", 10_000);
    assert_eq!(r.exit_code, 128 + 9);
    let r = agent.shell_run("head -c 20000000 /dev/zero | tr '\\0' a", 30_000);
    assert!(
        r.stdout.len() < 17 << 20 && r.stdout.contains("output truncated"),
        "{}",
        r.stdout.len()
    );
}

#[test]
fn shell_timeouts_kill_the_whole_group() {
    let agent = Agent::shell();
    let started = Instant::now();
    let r = agent.shell_run("sleep 30 & sleep 30; echo never", 1_000);
    assert!(r.timed_out);
    assert_eq!(r.exit_code, 124);
    assert!(!r.stdout.contains("never"));
    assert!(started.elapsed() < Duration::from_secs(10));
    // No `sleep 30` of ours survived.
    let ps = std::process::Command::new("pgrep")
        .args(["-P", &agent.pid().to_string()])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&ps.stdout).trim().is_empty());
}

#[test]
fn concurrent_requests_are_answered_independently() {
    let agent = Agent::shell();
    let slow = agent.expect(1000);
    agent.send_raw(
        &encode_frame(&Envelope {
            id: 1000,
            body: Request::Shell {
                command: "sleep 1; echo slow".into(),
                timeout_ms: 10_000,
            },
        })
        .unwrap(),
    );
    let started = Instant::now();
    assert_eq!(agent.shell_run("echo fast", 10_000).stdout, "fast\n");
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "fast request waited for the slow one"
    );
    match slow.recv_timeout(Duration::from_secs(10)).unwrap() {
        Response::Shell(r) => assert_eq!(r.stdout, "slow\n"),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn files_can_be_written_read_listed_stated_and_deleted() {
    let agent = Agent::shell();
    assert_eq!(write(&agent, "dir/sub/a.txt", b"hello ", false), Response::Done);
    assert_eq!(
        write(&agent, "/mnt/data/dir/sub/a.txt", b"world", true),
        Response::Done
    );
    match agent.call(Request::ReadFile {
        path: "dir/sub/a.txt".into(),
        offset: 6,
        len: 100,
    }) {
        Response::FileChunk { data, eof } => assert_eq!((data.as_slice(), eof), (&b"world"[..], true)),
        other => panic!("unexpected {other:?}"),
    }
    match agent.call(Request::ReadFile {
        path: "dir/sub/a.txt".into(),
        offset: 0,
        len: 5,
    }) {
        Response::FileChunk { data, eof } => assert_eq!((data.as_slice(), eof), (&b"hello"[..], false)),
        other => panic!("unexpected {other:?}"),
    }
    match agent.call(Request::StatFile {
        path: "dir/sub/a.txt".into(),
    }) {
        Response::File(f) => {
            assert_eq!((f.path.as_str(), f.is_dir, f.size), ("dir/sub/a.txt", false, 11));
            assert!(f.modified_ms > 1_600_000_000_000);
        }
        other => panic!("unexpected {other:?}"),
    }
    match agent.call(Request::ListFiles {
        path: "".into(),
        recursive: true,
    }) {
        Response::Files(list) => {
            let paths: Vec<_> = list.iter().map(|f| (f.path.as_str(), f.is_dir)).collect();
            assert_eq!(
                paths,
                [("dir", true), ("dir/sub", true), ("dir/sub/a.txt", false)]
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    match agent.call(Request::ListFiles {
        path: "dir".into(),
        recursive: false,
    }) {
        Response::Files(list) => assert_eq!(list.len(), 1),
        other => panic!("unexpected {other:?}"),
    }
    let delete = |p: &str| agent.call(Request::DeleteFile { path: p.into() });
    assert_eq!(
        err_kind(delete("dir/sub")),
        ErrorKind::BadRequest,
        "non-empty directory"
    );
    assert_eq!(delete("dir/sub/a.txt"), Response::Done);
    assert_eq!(delete("dir/sub"), Response::Done);
    assert_eq!(err_kind(delete("dir/sub")), ErrorKind::NotFound);
    let r = agent.call(Request::StatFile { path: "nope".into() });
    assert_eq!(err_kind(r), ErrorKind::NotFound);
}

#[test]
fn traversal_and_symlinks_out_of_the_data_dir_are_refused() {
    let agent = Agent::shell();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), b"s3cret").unwrap();
    let data = agent.data.path();
    std::os::unix::fs::symlink("/", data.join("root")).unwrap();
    std::os::unix::fs::symlink(outside.path(), data.join("out")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret"), data.join("secret-link")).unwrap();

    let read = |p: &str| {
        agent.call(Request::ReadFile {
            path: p.into(),
            offset: 0,
            len: 100,
        })
    };
    for path in [
        "../x",
        "a/../../x",
        "/etc/passwd",
        "root/etc/passwd",
        "out/secret",
        "secret-link",
    ] {
        assert_eq!(err_kind(read(path)), ErrorKind::InvalidPath, "read {path}");
    }
    for path in [
        "../x",
        "/etc/x",
        "root/tmp/x",
        "out/new",
        "out/secret",
        "secret-link",
        "a\0b",
    ] {
        assert_eq!(
            err_kind(write(&agent, path, b"x", false)),
            ErrorKind::InvalidPath,
            "write {path}"
        );
    }
    for path in ["root", "out", "secret-link", "/etc"] {
        let r = agent.call(Request::StatFile { path: path.into() });
        assert_eq!(err_kind(r), ErrorKind::InvalidPath, "stat {path}");
    }
    let r = agent.call(Request::ListFiles {
        path: "out".into(),
        recursive: true,
    });
    assert_eq!(err_kind(r), ErrorKind::InvalidPath);
    let r = agent.call(Request::DeleteFile {
        path: "out/secret".into(),
    });
    assert_eq!(err_kind(r), ErrorKind::InvalidPath);
    // Deleting the link itself is fine and leaves its target alone.
    assert_eq!(
        agent.call(Request::DeleteFile {
            path: "secret-link".into()
        }),
        Response::Done
    );
    assert_eq!(std::fs::read(outside.path().join("secret")).unwrap(), b"s3cret");
    assert!(!outside.path().join("new").exists());
}

#[test]
fn malformed_frames_get_bad_request_and_the_agent_keeps_going() {
    let agent = Agent::shell();
    // A well-formed envelope with an unknown request body: the id is recoverable.
    #[derive(serde::Serialize)]
    struct Bogus {
        id: u64,
        body: &'static str,
    }
    let rx = agent.expect(77);
    agent.send_raw(
        &encode_frame(&Bogus {
            id: 77,
            body: "Reboot",
        })
        .unwrap(),
    );
    match rx.recv_timeout(Duration::from_secs(10)).unwrap() {
        Response::Error(e) => assert_eq!(e.kind, ErrorKind::BadRequest),
        other => panic!("unexpected {other:?}"),
    }
    // Garbage without an id is skipped.
    agent.send_raw(&[0, 0, 0, 2, 0xc1, 0xc1]);
    assert_eq!(agent.shell_run("echo ok", 10_000).stdout, "ok\n");
}

#[test]
fn closing_the_channel_stops_the_agent_cleanly() {
    let mut agent = Agent::shell();
    assert_eq!(agent.shell_run("true", 10_000).exit_code, 0);
    let status = agent.close().expect("agent exited after EOF");
    assert!(status.success(), "{status:?}");
}

#[test]
fn install_bundle_lays_out_the_agent_and_driver() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_sandpool-agent"));
    sandpool_agent::install_bundle(&bundle, exe).unwrap();
    sandpool_agent::install_bundle(&bundle, exe).unwrap(); // idempotent
    let agent = std::fs::metadata(bundle.join("sandpool-agent")).unwrap();
    assert_eq!(agent.len(), std::fs::metadata(exe).unwrap().len());
    assert_eq!(agent.permissions().mode() & 0o777, 0o755);
    let driver = std::fs::read_to_string(bundle.join("sandpool_driver.py")).unwrap();
    assert_eq!(driver, sandpool_agent::DRIVER_SOURCE);
    let names: Vec<_> = std::fs::read_dir(&bundle)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "leftover temp files: {names:?}");
}

//! The `sandpool` client commands driving the real server end to end: output, files,
//! saved images and exit codes.

use crate::harness::*;
use std::process::{Command, Output};
use std::time::Duration;

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sandpool"))
        .args(args)
        .env("SANDPOOL_URL", &server().base)
        .env("SANDPOOL_API_KEY", ADMIN_KEY)
        .output()
        .expect("running the sandpool CLI")
}

fn ok(args: &[&str]) -> String {
    let out = cli(args);
    assert!(
        out.status.success(),
        "sandpool {args:?} failed ({:?}):\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.extend(["--output", "json"]);
    serde_json::from_str(&ok(&all)).unwrap()
}

#[test]
fn cli_manages_pools_runs_code_and_moves_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let created = json(&[
        "pool",
        "create",
        "clishell",
        "--container-type",
        "Shell",
        "--max-sessions",
        "2",
        "--ready-sessions",
        "1",
    ]);
    assert_eq!(created["name"], "clishell");
    wait_for("clishell to be ready", Duration::from_secs(600), || {
        let v = json(&["pool", "show", "clishell"]);
        (v["properties"]["provisioningState"] == "Succeeded").then_some(())
    });
    let table = ok(&["pool", "list"]);
    assert!(table.starts_with("NAME") && table.contains("clishell"), "{table}");

    // exec prints stdout, and stderr on stderr; a failure has its own exit code.
    let out = cli(&[
        "exec",
        "--pool",
        "clishell",
        "--identifier",
        "cli-user",
        "echo out; echo err >&2",
    ]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    let failed = cli(&["exec", "--pool", "clishell", "--identifier", "cli-user", "exit 4"]);
    assert_eq!(failed.status.code(), Some(6));

    // files upload, list, download.
    std::fs::write(d("local.txt"), "from the host\n").unwrap();
    ok(&[
        "files",
        "upload",
        "--pool",
        "clishell",
        "--identifier",
        "cli-user",
        &d("local.txt"),
        "--name",
        "data.txt",
    ]);
    let list = ok(&["files", "list", "--pool", "clishell", "--identifier", "cli-user"]);
    assert!(list.contains("data.txt"), "{list}");
    ok(&[
        "files",
        "download",
        "--pool",
        "clishell",
        "--identifier",
        "cli-user",
        "data.txt",
        "-o",
        &d("back.txt"),
    ]);
    assert_eq!(std::fs::read_to_string(d("back.txt")).unwrap(), "from the host\n");
    let out = ok(&[
        "exec",
        "--pool",
        "clishell",
        "--identifier",
        "cli-user",
        "cat /mnt/data/data.txt",
    ]);
    assert_eq!(out, "from the host\n");

    // session list / stop.
    let sessions = json(&["session", "list", "--pool", "clishell"]);
    assert!(sessions["value"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["identifier"] == "cli-user"));
    ok(&["session", "stop", "--pool", "clishell", "cli-user"]);
    wait_for("the stop to be recorded", Duration::from_secs(20), || {
        let table = ok(&["session", "list", "--pool", "clishell"]);
        table
            .lines()
            .any(|l| l.starts_with("cli-user") && l.contains("Ended") && l.ends_with("stopped"))
            .then_some(())
    });

    // keys.
    let key = json(&["key", "create", "robot", "--role", "executor"]);
    let id = key["id"].as_str().unwrap();
    assert!(ok(&["key", "list"]).contains(id));
    ok(&["key", "revoke", id]);

    // Exit codes: not found, invalid, unauthorized, unreachable.
    let missing = cli(&["pool", "show", "nosuchpool"]);
    assert_eq!(missing.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("PoolNotFound"));
    let invalid = cli(&["pool", "update", "clishell", "--max-sessions", "0"]);
    assert_eq!(invalid.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&invalid.stderr)
        .contains("properties.scaleConfiguration.maxConcurrentSessions"));
    let unauthorized = Command::new(env!("CARGO_BIN_EXE_sandpool"))
        .args([
            "pool",
            "list",
            "--url",
            &server().base,
            "--key",
            "wrong-key-0123456789",
        ])
        .output()
        .unwrap();
    assert_eq!(unauthorized.status.code(), Some(3));
    let unreachable = Command::new(env!("CARGO_BIN_EXE_sandpool"))
        .args(["pool", "list", "--url", "http://127.0.0.1:9", "--key", ADMIN_KEY])
        .output()
        .unwrap();
    assert_eq!(unreachable.status.code(), Some(5));

    ok(&["pool", "delete", "clishell"]);
    assert_eq!(cli(&["pool", "show", "clishell"]).status.code(), Some(4));
}

#[test]
fn cli_exec_saves_images_from_a_python_pool() {
    let dir = tempfile::tempdir().unwrap();
    ok(&[
        "pool",
        "create",
        "clipython",
        "--max-sessions",
        "1",
        "--ready-sessions",
        "1",
    ]);
    wait_ready("clipython", 1);
    let code = "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()";
    let out = ok(&[
        "exec",
        "--pool",
        "clipython",
        "--identifier",
        "plotter",
        "--images-dir",
        dir.path().to_str().unwrap(),
        code,
    ]);
    let png = dir.path().join("image-1.png");
    assert!(out.contains("image saved to"), "{out}");
    assert_eq!(&std::fs::read(&png).unwrap()[..4], b"\x89PNG");
    let v = json(&["exec", "--pool", "clipython", "--identifier", "plotter", "6 * 7"]);
    assert_eq!(v["result"], 42);
    ok(&["pool", "delete", "clipython"]);
}

//! File operations are confined to /mnt/data: `..`, absolute paths elsewhere and
//! symlinks planted by user code are refused.

use crate::ops::{call, execute_ok, CALL_SLACK};
use crate::TestEnv;
use sandpool_proto::{ErrorKind, Request, Response};
use sandpool_sandbox::{Backend, SandboxError};

fn read(path: &str) -> Request {
    Request::ReadFile {
        path: path.into(),
        offset: 0,
        len: 4096,
    }
}

fn write(path: &str) -> Request {
    Request::WriteFile {
        path: path.into(),
        data: b"escaped".to_vec(),
        append: false,
    }
}

fn list(path: &str) -> Request {
    Request::ListFiles {
        path: path.into(),
        recursive: false,
    }
}

/// Every escape attempt is answered with InvalidPath, and nothing is written outside.
pub async fn path_traversal_is_refused(backend: &dyn Backend, env: &TestEnv) {
    let sb = env.python(backend, "traversal").await;
    // Positive control: ordinary paths work, with and without the /mnt/data/ prefix.
    match call(sb.agent(), write("dir/ok.txt"), CALL_SLACK).await {
        Ok(Response::Done) => {}
        other => panic!("writing dir/ok.txt: {other:?}"),
    }
    match call(sb.agent(), read("/mnt/data/dir/ok.txt"), CALL_SLACK).await {
        Ok(Response::FileChunk { data, .. }) => assert_eq!(data, b"escaped"),
        other => panic!("reading /mnt/data/dir/ok.txt: {other:?}"),
    }
    execute_ok(
        sb.agent(),
        "import os\nos.symlink('/', '/mnt/data/root')\nos.symlink('/etc', '/mnt/data/etc')\n\
         os.symlink('../../etc/passwd', '/mnt/data/dir/passwd')",
    )
    .await;
    let attempts = [
        ("read ../", read("../etc/passwd")),
        ("read dir/../../", read("dir/../../etc/passwd")),
        ("read absolute", read("/etc/passwd")),
        ("read /mnt/data/../", read("/mnt/data/../../etc/passwd")),
        ("read via / symlink", read("root/etc/passwd")),
        ("read via /etc symlink", read("etc/passwd")),
        ("read via file symlink", read("dir/passwd")),
        (
            "stat via /etc symlink",
            Request::StatFile {
                path: "etc/passwd".into(),
            },
        ),
        ("list ..", list("..")),
        ("list /", list("/")),
        ("list via / symlink", list("root")),
        ("list via /etc symlink", list("etc")),
        ("write ../", write("../escaped")),
        ("write absolute", write("/tmp/escaped")),
        ("write via / symlink", write("root/tmp/escaped")),
        ("write via /etc symlink", write("etc/escaped")),
        (
            "delete via /etc symlink",
            Request::DeleteFile {
                path: "etc/hostname".into(),
            },
        ),
        (
            "delete absolute",
            Request::DeleteFile {
                path: "/etc/hostname".into(),
            },
        ),
    ];
    let mut failures = Vec::new();
    for (what, request) in attempts {
        match call(sb.agent(), request, CALL_SLACK).await {
            Err(SandboxError::Agent(e)) if e.kind == ErrorKind::InvalidPath => {}
            Err(e) => failures.push(format!("{what}: {e}")),
            Ok(response) => failures.push(format!("{what}: succeeded ({})", summary(&response))),
        }
    }
    assert!(
        failures.is_empty(),
        "escapes not refused:\n{}",
        failures.join("\n")
    );
    let leaked = execute_ok(
        sb.agent(),
        "import os\nprint([p for p in ('/tmp/escaped', '/mnt/escaped', '/etc/escaped') if os.path.exists(p)])",
    )
    .await;
    assert_eq!(leaked.trim(), "[]", "a refused write still landed");
    sb.destroy().await;
}

/// A response without file contents, for failure messages.
fn summary(response: &Response) -> String {
    match response {
        Response::FileChunk { data, .. } => format!("read {} bytes", data.len()),
        Response::Files(entries) => format!("listed {} entries", entries.len()),
        other => format!("{other:?}"),
    }
}

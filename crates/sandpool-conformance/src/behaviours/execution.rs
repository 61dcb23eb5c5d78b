//! Code execution through the agent and the IPython driver: state, results, rich
//! output, errors, timeouts; and the shell-only image.

use crate::ops::{execute, execute_ok, shell, shell_ok};
use crate::TestEnv;
use sandpool_proto::{ErrorKind, ExecutionStatus, Request};
use sandpool_sandbox::{Backend, Limits, SandboxError, SandboxKind};
use std::time::Duration;

/// A variable set by one execution is visible to the next.
pub async fn state_persists(backend: &dyn Backend, env: &TestEnv) {
    let sb = env.python(backend, "state").await;
    execute_ok(sb.agent(), "x = 40\ndef plus(a): return a + 2").await;
    let out = execute_ok(sb.agent(), "print(plus(x))").await;
    assert_eq!(out.trim(), "42");
    sb.destroy().await;
}

/// `1+1` answers `text/plain` `2` as the cell's result, not on stdout.
pub async fn one_plus_one(backend: &dyn Backend, env: &TestEnv) {
    let sb = env.python(backend, "one-plus-one").await;
    let result = execute(sb.agent(), "1+1", Duration::from_secs(30))
        .await
        .expect("1+1");
    assert_eq!(result.status, ExecutionStatus::Ok, "{result:?}");
    let bundle = result.result.expect("1+1 has a result bundle");
    assert_eq!(
        bundle.get("text/plain").map(String::as_str),
        Some("2"),
        "{bundle:?}"
    );
    assert_eq!(result.stdout, "", "the result must not be printed to stdout");
    sb.destroy().await;
}

/// A matplotlib figure comes back as a base64 PNG display.
pub async fn matplotlib_plot_is_png(backend: &dyn Backend, env: &TestEnv) {
    let sb = env.python(backend, "plot").await;
    let code = "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [1, 4, 9])\nplt.show()";
    let result = execute(sb.agent(), code, Duration::from_secs(60))
        .await
        .expect("plot cell");
    assert_eq!(result.status, ExecutionStatus::Ok, "{result:?}");
    let png = result
        .displays
        .iter()
        .chain(result.result.iter())
        .find_map(|b| b.get("image/png"))
        .unwrap_or_else(|| panic!("no image/png among {} displays", result.displays.len()));
    // "\x89PNG\r\n\x1a\n" in base64.
    assert!(
        png.trim_start().starts_with("iVBORw0KGgo"),
        "not a base64 PNG: {:.40}",
        png
    );
    assert!(
        png.len() > 1000,
        "suspiciously small PNG ({} base64 chars)",
        png.len()
    );
    sb.destroy().await;
}

/// An exception yields status Error with its name, value and a traceback that
/// names the failing line.
pub async fn exception_has_traceback(backend: &dyn Backend, env: &TestEnv) {
    let sb = env.python(backend, "exception").await;
    let code = "def inner():\n    raise ValueError('conformance-boom')\ninner()";
    let result = execute(sb.agent(), code, Duration::from_secs(30))
        .await
        .expect("cell");
    assert_eq!(result.status, ExecutionStatus::Error, "{result:?}");
    let error = result.error.expect("an error is reported");
    assert_eq!(error.ename, "ValueError");
    assert!(error.evalue.contains("conformance-boom"), "{error:?}");
    let tb = error.traceback.join("\n");
    assert!(tb.contains("inner"), "traceback does not name the function: {tb}");
    assert!(!tb.contains('\u{1b}'), "traceback still has ANSI escapes: {tb:?}");
    // The driver survives the exception.
    assert_eq!(execute_ok(sb.agent(), "print('alive')").await.trim(), "alive");
    sb.destroy().await;
}

/// `while True: pass` with a 2 s timeout ends as Timeout, and the next execution works.
pub async fn infinite_loop_times_out(backend: &dyn Backend, env: &TestEnv) {
    let sb = env.python(backend, "timeout").await;
    let started = std::time::Instant::now();
    let result = execute(sb.agent(), "while True: pass", Duration::from_secs(2))
        .await
        .expect("loop cell");
    assert_eq!(result.status, ExecutionStatus::Timeout, "{result:?}");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "timed out before its timeout"
    );
    let after = execute(sb.agent(), "1+1", Duration::from_secs(30))
        .await
        .expect("cell after timeout");
    assert_eq!(after.status, ExecutionStatus::Ok, "{after:?}");
    let text = after.result.as_ref().and_then(|b| b.get("text/plain")).cloned();
    assert_eq!(text.as_deref(), Some("2"));
    sb.destroy().await;
}

/// User code printing to stdout (even bytes that look like frames) cannot corrupt the
/// agent channel.
pub async fn user_output_cannot_corrupt_channel(backend: &dyn Backend, env: &TestEnv) {
    let sb = env.python(backend, "stdout-noise").await;
    let code = "import os, sys\nos.write(1, b'\\x00\\x00\\x00\\x05hello' * 1000)\n\
                sys.stdout.buffer.write(b'\\xff' * 10000)\nprint('tail')";
    let result = execute(sb.agent(), code, Duration::from_secs(30))
        .await
        .expect("noisy cell");
    assert_eq!(result.status, ExecutionStatus::Ok, "{result:?}");
    let out = shell_ok(sb.agent(), "echo channel-ok").await;
    assert_eq!(out.trim(), "channel-ok");
    assert_eq!(execute_ok(sb.agent(), "print(6*7)").await.trim(), "42");
    sb.destroy().await;
}

/// The shell image runs commands in /mnt/data and refuses Python execution clearly.
pub async fn shell_sandbox_runs_commands(backend: &dyn Backend, env: &TestEnv) {
    let sb = env
        .boot(backend, "shell", SandboxKind::Shell, Limits::default())
        .await;
    let out = shell_ok(sb.agent(), "pwd; id -u; echo $SANDPOOL_KIND").await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, ["/mnt/data", "1000", "shell"], "{out:?}");
    let failing = shell(sb.agent(), "exit 3", Duration::from_secs(10))
        .await
        .expect("exit 3");
    assert_eq!(failing.exit_code, 3);
    let req = Request::Execute {
        code: "1+1".into(),
        timeout_ms: 5000,
    };
    match crate::ops::call(sb.agent(), req, Duration::from_secs(30)).await {
        Err(SandboxError::Agent(e)) => assert_eq!(e.kind, ErrorKind::Unsupported, "{e}"),
        other => panic!("Execute in a shell sandbox should be Unsupported, got {other:?}"),
    }
    sb.destroy().await;
}

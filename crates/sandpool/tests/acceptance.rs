//! The real, unmodified LangChain and LlamaIndex Azure dynamic-sessions packages (from PyPI,
//! in `.venv-accept`, made by `scripts/acceptance-env.sh`) against the real server.

mod common;
use common::*;

#[test]
fn langchain_and_llama_index_clients_work_unchanged() {
    let python = std::env::var_os("SANDPOOL_ACCEPT_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv-accept/bin/python"));
    assert!(
        python.exists(),
        "{} is missing: run scripts/acceptance-env.sh (scripts/test.sh does) to install the client packages",
        python.display()
    );
    let base = &server().base;
    let out = std::process::Command::new(&python)
        .arg(workspace_root().join("tests/acceptance/clients.py"))
        .arg(format!("{base}/pools/python"))
        .arg(format!("{base}/pools/shell"))
        .arg(EXECUTOR_KEY)
        .output()
        .expect("running the acceptance script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "acceptance script failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("passed, 0 failed"), "{stdout}");
}

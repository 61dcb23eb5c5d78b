//! Agent calls with a bound on how long the test waits, and small assertions on their
//! results shared by the behaviours.

use sandpool_proto::{ExecutionResult, ExecutionStatus, Request, Response, ShellResult};
use sandpool_sandbox::{unexpected_response, AgentClient, SandboxError};
use std::time::Duration;

/// Slack on top of a request's own timeout before the test gives up on the answer.
pub const CALL_SLACK: Duration = Duration::from_secs(30);

/// Sends `request`, failing with [`SandboxError::Timeout`] after `limit`.
pub async fn call(agent: &AgentClient, request: Request, limit: Duration) -> Result<Response, SandboxError> {
    tokio::time::timeout(limit, agent.call(request))
        .await
        .unwrap_or(Err(SandboxError::Timeout(limit, "the agent's answer")))
}

/// Runs a Python cell with `timeout` inside the sandbox.
pub async fn execute(
    agent: &AgentClient,
    code: &str,
    timeout: Duration,
) -> Result<ExecutionResult, SandboxError> {
    let request = Request::Execute {
        code: code.to_string(),
        timeout_ms: timeout.as_millis() as u64,
    };
    match call(agent, request, timeout + CALL_SLACK).await? {
        Response::Execution(result) => Ok(result),
        other => Err(unexpected_response("Execution", &other)),
    }
}

/// Runs a cell that must succeed and returns its stdout.
pub async fn execute_ok(agent: &AgentClient, code: &str) -> String {
    let result = execute(agent, code, Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("executing {code:?}: {e}"));
    assert_eq!(
        result.status,
        ExecutionStatus::Ok,
        "cell {code:?} failed: {:?}\nstderr: {}",
        result.error,
        result.stderr
    );
    result.stdout
}

/// Runs a shell command with `timeout` inside the sandbox.
pub async fn shell(
    agent: &AgentClient,
    command: &str,
    timeout: Duration,
) -> Result<ShellResult, SandboxError> {
    let request = Request::Shell {
        command: command.to_string(),
        timeout_ms: timeout.as_millis() as u64,
    };
    match call(agent, request, timeout + CALL_SLACK).await? {
        Response::Shell(result) => Ok(result),
        other => Err(unexpected_response("Shell", &other)),
    }
}

/// Runs a command that must exit 0 and returns its stdout.
pub async fn shell_ok(agent: &AgentClient, command: &str) -> String {
    let result = shell(agent, command, Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("running {command:?}: {e}"));
    assert_eq!(
        result.exit_code, 0,
        "command {command:?} exited {}: stdout {:?} stderr {:?}",
        result.exit_code, result.stdout, result.stderr
    );
    result.stdout
}

/// Asserts that the sandbox still answers `1+1` with `2` within a minute: the proof
/// that an attack on a neighbour did not spill over.
pub async fn assert_answers_one_plus_one(agent: &AgentClient, who: &str) {
    let result = execute(agent, "1+1", Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("{who} stopped answering: {e}"));
    assert_eq!(
        result.status,
        ExecutionStatus::Ok,
        "{who}: 1+1 failed: {result:?}"
    );
    let text = result
        .result
        .as_ref()
        .and_then(|b| b.get("text/plain"))
        .map(String::as_str);
    assert_eq!(text, Some("2"), "{who}: 1+1 gave {result:?}");
}

//! Session operations carried out through a sandbox's agent: executions, shell
//! commands and chunked file transfers, with agent errors turned into engine errors.

use crate::service::EngineError;
use sandpool_proto::{ErrorKind, ExecutionResult, FileEntry, Request, Response, ShellResult};
use sandpool_sandbox::{unexpected_response, AgentClient, SandboxError};
use std::time::Duration;

/// File transfers move this many bytes per frame.
pub const CHUNK_BYTES: usize = 1 << 20;

/// Maps a sandbox or agent failure onto what the API reports.
pub fn engine_error(e: SandboxError, path: &str) -> EngineError {
    match e {
        SandboxError::Agent(a) => match a.kind {
            ErrorKind::InvalidPath => EngineError::InvalidPath(path.to_owned()),
            ErrorKind::NotFound => EngineError::FileNotFound(path.to_owned()),
            ErrorKind::NoSpace => EngineError::NoSpace,
            ErrorKind::BadRequest | ErrorKind::Unsupported => EngineError::InvalidInput(a.message),
            ErrorKind::DriverUnavailable | ErrorKind::Unreachable | ErrorKind::Internal => {
                EngineError::Internal(a.message)
            }
        },
        SandboxError::AgentGone => EngineError::SessionLost("the sandbox stopped".into()),
        other => EngineError::Internal(other.to_string()),
    }
}

fn protocol(expected: &str, got: &Response) -> EngineError {
    EngineError::Internal(unexpected_response(expected, got).to_string())
}

pub async fn execute_python(
    agent: &AgentClient,
    code: String,
    timeout: Duration,
) -> Result<ExecutionResult, EngineError> {
    let req = Request::Execute {
        code,
        timeout_ms: timeout.as_millis() as u64,
    };
    match agent.call(req).await.map_err(|e| engine_error(e, ""))? {
        Response::Execution(r) => Ok(r),
        other => Err(protocol("Execution", &other)),
    }
}

pub async fn run_shell(
    agent: &AgentClient,
    command: String,
    timeout: Duration,
) -> Result<ShellResult, EngineError> {
    let req = Request::Shell {
        command,
        timeout_ms: timeout.as_millis() as u64,
    };
    match agent.call(req).await.map_err(|e| engine_error(e, ""))? {
        Response::Shell(r) => Ok(r),
        other => Err(protocol("Shell", &other)),
    }
}

/// Writes `data` in chunks (the first truncates, the rest append) and returns the
/// file's metadata.
pub async fn write_file(agent: &AgentClient, path: &str, data: Vec<u8>) -> Result<FileEntry, EngineError> {
    let mut chunks = data.chunks(CHUNK_BYTES);
    let first = chunks.next().unwrap_or(&[]);
    write_chunk(agent, path, first.to_vec(), false).await?;
    for chunk in chunks {
        write_chunk(agent, path, chunk.to_vec(), true).await?;
    }
    stat_file(agent, path).await
}

async fn write_chunk(
    agent: &AgentClient,
    path: &str,
    data: Vec<u8>,
    append: bool,
) -> Result<(), EngineError> {
    let req = Request::WriteFile {
        path: path.to_owned(),
        data,
        append,
    };
    match agent.call(req).await.map_err(|e| engine_error(e, path))? {
        Response::Done => Ok(()),
        other => Err(protocol("Done", &other)),
    }
}

/// Reads a whole file, chunk by chunk, refusing files larger than `limit`.
pub async fn read_file(agent: &AgentClient, path: &str, limit: u64) -> Result<Vec<u8>, EngineError> {
    let mut out = Vec::new();
    loop {
        let req = Request::ReadFile {
            path: path.to_owned(),
            offset: out.len() as u64,
            len: CHUNK_BYTES as u32,
        };
        match agent.call(req).await.map_err(|e| engine_error(e, path))? {
            Response::FileChunk { data, eof } => {
                out.extend_from_slice(&data);
                if out.len() as u64 > limit {
                    return Err(EngineError::TooLarge {
                        size: out.len() as u64,
                        limit,
                    });
                }
                if eof || data.is_empty() {
                    return Ok(out);
                }
            }
            other => return Err(protocol("FileChunk", &other)),
        }
    }
}

pub async fn stat_file(agent: &AgentClient, path: &str) -> Result<FileEntry, EngineError> {
    match agent
        .call(Request::StatFile {
            path: path.to_owned(),
        })
        .await
        .map_err(|e| engine_error(e, path))?
    {
        Response::File(f) => Ok(f),
        other => Err(protocol("File", &other)),
    }
}

pub async fn list_files(
    agent: &AgentClient,
    dir: &str,
    recursive: bool,
) -> Result<Vec<FileEntry>, EngineError> {
    let req = Request::ListFiles {
        path: dir.to_owned(),
        recursive,
    };
    match agent.call(req).await.map_err(|e| engine_error(e, dir))? {
        Response::Files(f) => Ok(f),
        other => Err(protocol("Files", &other)),
    }
}

pub async fn delete_file(agent: &AgentClient, path: &str) -> Result<(), EngineError> {
    match agent
        .call(Request::DeleteFile {
            path: path.to_owned(),
        })
        .await
        .map_err(|e| engine_error(e, path))?
    {
        Response::Done => Ok(()),
        other => Err(protocol("Done", &other)),
    }
}

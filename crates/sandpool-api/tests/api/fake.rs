//! An in-memory `SessionService` for these tests only: sessions, files and executions
//! kept in maps, with the next execution output and error settable by a test.

use async_trait::async_trait;
use sandpool_engine::*;
use sandpool_pool::Identifier;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

pub const MAX_UPLOAD: u64 = 1024;
pub const MAX_TIMEOUT: Duration = Duration::from_secs(220);
const MODIFIED_MS: i64 = 1_714_634_467_992;

type Key = (String, String);

#[derive(Default)]
struct State {
    sessions: BTreeMap<Key, SessionInfo>,
    files: BTreeMap<(String, String, String), Vec<u8>>,
    executions: BTreeMap<Key, ExecutionRecord>,
    next_python: Option<ExecutionResult>,
    next_error: Option<EngineError>,
    /// Inputs and timeouts the service was called with, newest last.
    calls: Vec<(ExecutionInput, Duration)>,
    ended: Vec<(String, EndReason)>,
    counter: u64,
}

#[derive(Default)]
pub struct FakeService {
    state: Mutex<State>,
}

pub fn python_ok(stdout: &str, result: Option<&[(&str, &str)]>) -> ExecutionResult {
    ExecutionResult {
        status: ExecutionStatus::Ok,
        stdout: stdout.into(),
        stderr: String::new(),
        result: result.map(|items| {
            items
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        }),
        displays: vec![],
        error: None,
        duration_ms: 7,
        state_lost: false,
    }
}

impl FakeService {
    pub fn set_next_python(&self, r: ExecutionResult) {
        self.state.lock().unwrap().next_python = Some(r);
    }
    pub fn fail_next(&self, e: EngineError) {
        self.state.lock().unwrap().next_error = Some(e);
    }
    pub fn last_call(&self) -> (ExecutionInput, Duration) {
        self.state
            .lock()
            .unwrap()
            .calls
            .last()
            .cloned()
            .expect("no execution call")
    }
    pub fn ended(&self) -> Vec<(String, EndReason)> {
        self.state.lock().unwrap().ended.clone()
    }
    pub fn file(&self, pool: &str, id: &str, path: &str) -> Option<Vec<u8>> {
        self.state
            .lock()
            .unwrap()
            .files
            .get(&(pool.into(), id.into(), path.into()))
            .cloned()
    }

    fn begin(&self, pool: &str, id: &Identifier) -> Result<std::sync::MutexGuard<'_, State>, EngineError> {
        pool_info(pool)?;
        let mut s = self.state.lock().unwrap();
        if let Some(e) = s.next_error.take() {
            return Err(e);
        }
        s.counter += 1;
        let counter = s.counter;
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        s.sessions
            .entry((pool.into(), id.to_string()))
            .or_insert_with(|| SessionInfo {
                identifier: id.clone(),
                state: SessionState::Allocated,
                created_at: now,
                last_accessed_at: now,
                expires_at: now + Duration::from_secs(300),
                sandbox_id: format!("sandbox-{counter}"),
                end_reason: None,
            });
        Ok(s)
    }

    fn run(
        &self,
        pool: &str,
        id: &Identifier,
        input: ExecutionInput,
        timeout: Duration,
        execution_id: Option<String>,
    ) -> Result<ExecutionRecord, EngineError> {
        let mut s = self.begin(pool, id)?;
        s.calls.push((input.clone(), timeout));
        let (state, output) = match input {
            ExecutionInput::Python { code } => {
                let r = s
                    .next_python
                    .take()
                    .unwrap_or_else(|| python_ok(&format!("ran {code}"), None));
                let ok = r.status == ExecutionStatus::Ok;
                (ok, ExecutionOutput::Python(r))
            }
            ExecutionInput::Shell { command } => {
                let exit_code = command
                    .strip_prefix("exit ")
                    .map_or(0, |code| code.parse().unwrap_or(1));
                let r = ShellResult {
                    exit_code,
                    stdout: format!("{command}\n"),
                    stderr: String::new(),
                    duration_ms: 2,
                    timed_out: false,
                };
                (exit_code == 0, ExecutionOutput::Shell(r))
            }
        };
        let record = ExecutionRecord {
            id: execution_id.unwrap_or_else(|| format!("exec-{}", s.counter)),
            identifier: id.clone(),
            state: if state {
                ExecutionState::Succeeded
            } else {
                ExecutionState::Failed
            },
            output: Some(output),
            error: None,
            created_at: SystemTime::UNIX_EPOCH,
        };
        s.executions
            .insert((pool.into(), record.id.clone()), record.clone());
        Ok(record)
    }
}

pub fn pool_info(pool: &str) -> Result<PoolInfo, EngineError> {
    let container_type = match pool {
        "demo" => ContainerType::PythonLts,
        "sh" => ContainerType::Shell,
        _ => return Err(EngineError::PoolNotFound(pool.into())),
    };
    Ok(PoolInfo {
        name: pool.into(),
        container_type,
        max_upload_bytes: MAX_UPLOAD,
        max_execution_timeout: MAX_TIMEOUT,
    })
}

fn entry(path: &str, is_dir: bool, size: usize) -> FileEntry {
    FileEntry {
        path: path.into(),
        is_dir,
        size: size as u64,
        modified_ms: MODIFIED_MS,
    }
}

#[async_trait]
impl SessionService for FakeService {
    async fn pool(&self, pool: &str) -> Result<PoolInfo, EngineError> {
        pool_info(pool)
    }

    async fn execute(
        &self,
        pool: &str,
        id: &Identifier,
        input: ExecutionInput,
        timeout: Duration,
        execution_id: Option<String>,
    ) -> Result<ExecutionRecord, EngineError> {
        self.run(pool, id, input, timeout, execution_id)
    }

    async fn submit(
        &self,
        pool: &str,
        id: &Identifier,
        input: ExecutionInput,
        timeout: Duration,
        execution_id: Option<String>,
    ) -> Result<ExecutionRecord, EngineError> {
        // Stored finished; handed back as it looked when it started.
        let mut record = self.run(pool, id, input, timeout, execution_id)?;
        record.state = ExecutionState::Running;
        record.output = None;
        Ok(record)
    }

    async fn execution(
        &self,
        pool: &str,
        id: &Identifier,
        execution_id: &str,
    ) -> Result<ExecutionRecord, EngineError> {
        let s = self.state.lock().unwrap();
        s.executions
            .get(&(pool.into(), execution_id.into()))
            .filter(|r| &r.identifier == id)
            .cloned()
            .ok_or_else(|| EngineError::ExecutionNotFound(execution_id.into()))
    }

    async fn write_file(
        &self,
        pool: &str,
        id: &Identifier,
        path: &str,
        data: Vec<u8>,
    ) -> Result<FileEntry, EngineError> {
        let mut s = self.begin(pool, id)?;
        if path.split('/').any(|p| p == "..") || path.starts_with('/') {
            return Err(EngineError::InvalidPath(path.into()));
        }
        let size = data.len();
        s.files.insert((pool.into(), id.to_string(), path.into()), data);
        Ok(entry(path, false, size))
    }

    async fn read_file(&self, pool: &str, id: &Identifier, path: &str) -> Result<Vec<u8>, EngineError> {
        let s = self.begin(pool, id)?;
        s.files
            .get(&(pool.into(), id.to_string(), path.into()))
            .cloned()
            .ok_or_else(|| EngineError::FileNotFound(path.into()))
    }

    async fn stat_file(&self, pool: &str, id: &Identifier, path: &str) -> Result<FileEntry, EngineError> {
        let data = self.read_file(pool, id, path).await?;
        Ok(entry(path, false, data.len()))
    }

    async fn list_files(
        &self,
        pool: &str,
        id: &Identifier,
        dir: &str,
        recursive: bool,
    ) -> Result<Vec<FileEntry>, EngineError> {
        let s = self.begin(pool, id)?;
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let mut out = Vec::new();
        let mut dirs = std::collections::BTreeSet::new();
        for ((p, i, path), data) in &s.files {
            if p != pool || i != id.as_str() {
                continue;
            }
            let Some(rest) = path.strip_prefix(&prefix) else {
                continue;
            };
            match rest.split_once('/') {
                Some((sub, _)) if !recursive => {
                    dirs.insert(format!("{prefix}{sub}"));
                }
                _ => out.push(entry(path, false, data.len())),
            }
        }
        out.extend(dirs.iter().map(|d| entry(d, true, 0)));
        Ok(out)
    }

    async fn delete_file(&self, pool: &str, id: &Identifier, path: &str) -> Result<(), EngineError> {
        let mut s = self.begin(pool, id)?;
        s.files
            .remove(&(pool.into(), id.to_string(), path.into()))
            .map(|_| ())
            .ok_or_else(|| EngineError::FileNotFound(path.into()))
    }

    async fn session(&self, pool: &str, id: &Identifier) -> Result<SessionInfo, EngineError> {
        pool_info(pool)?;
        let s = self.state.lock().unwrap();
        s.sessions
            .get(&(pool.into(), id.to_string()))
            .cloned()
            .ok_or_else(|| EngineError::SessionNotFound(id.to_string()))
    }

    async fn end_session(&self, pool: &str, id: &Identifier, reason: EndReason) -> Result<bool, EngineError> {
        pool_info(pool)?;
        let mut s = self.state.lock().unwrap();
        s.ended.push((id.to_string(), reason));
        Ok(s.sessions.remove(&(pool.into(), id.to_string())).is_some())
    }

    async fn list_sessions(&self, pool: &str) -> Result<Vec<SessionInfo>, EngineError> {
        pool_info(pool)?;
        let s = self.state.lock().unwrap();
        Ok(s.sessions
            .iter()
            .filter(|((p, _), _)| p == pool)
            .map(|(_, v)| v.clone())
            .collect())
    }

    async fn metadata(&self, pool: &str) -> Result<PoolMetadata, EngineError> {
        pool_info(pool)?;
        Ok(PoolMetadata {
            runtimes: vec![("python".into(), "3.11.2".into())],
            packages: vec![("numpy".into(), "2.1.0".into())],
            created_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        })
    }
}

//! Parsing of execution requests: either contract's body (`{"properties": …}` or
//! top-level fields), case-insensitive enums, base64 code, timeouts capped at the pool's
//! maximum, and the `operation-id` header.

use crate::error::ApiError;
use axum::http::HeaderMap;
use base64::Engine as _;
use sandpool_engine::{ContainerType, EngineError, ExecutionInput, PoolInfo};
use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// Largest JSON request body accepted.
pub const MAX_JSON_BODY: usize = 16 << 20;
/// Timeout when the request gives none (capped at the pool's maximum).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum CodeInputType {
    #[default]
    Inline,
    InlineBase64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExecutionType {
    #[default]
    Synchronous,
    Asynchronous,
}

impl ExecutionType {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionType::Synchronous => "Synchronous",
            ExecutionType::Asynchronous => "Asynchronous",
        }
    }
}

fn code_input_type<'de, D: Deserializer<'de>>(d: D) -> Result<CodeInputType, D::Error> {
    let raw = String::deserialize(d)?;
    match raw.to_ascii_lowercase().as_str() {
        "inline" | "inlinetext" => Ok(CodeInputType::Inline),
        "inlinebase64" => Ok(CodeInputType::InlineBase64),
        _ => Err(serde::de::Error::custom(format!(
            "codeInputType must be Inline, InlineBase64 or InlineText, got {raw:?}"
        ))),
    }
}

fn execution_type<'de, D: Deserializer<'de>>(d: D) -> Result<ExecutionType, D::Error> {
    let raw = String::deserialize(d)?;
    match raw.to_ascii_lowercase().as_str() {
        "synchronous" => Ok(ExecutionType::Synchronous),
        "asynchronous" => Ok(ExecutionType::Asynchronous),
        _ => Err(serde::de::Error::custom(format!(
            "executionType must be Synchronous or Asynchronous, got {raw:?}"
        ))),
    }
}

/// The fields of an execution request; unknown fields are ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExecutionRequest {
    #[serde(deserialize_with = "code_input_type")]
    code_input_type: CodeInputType,
    #[serde(deserialize_with = "execution_type")]
    pub execution_type: ExecutionType,
    code: Option<String>,
    shell_command: Option<String>,
    timeout_in_seconds: Option<f64>,
}

impl ExecutionRequest {
    /// Reads either `{"properties": {…}}` or the fields at the top level.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let value: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::InvalidRequest(format!("the body is not valid JSON: {e}")))?;
        let fields = match value.get("properties") {
            Some(p) if p.is_object() => p.clone(),
            _ => value,
        };
        if !fields.is_object() {
            return Err(ApiError::InvalidRequest("the body must be a JSON object".into()));
        }
        serde_json::from_value(fields).map_err(|e| ApiError::InvalidRequest(e.to_string()))
    }

    pub fn input(&self, pool: &PoolInfo) -> Result<ExecutionInput, ApiError> {
        let text = match (pool.container_type, &self.code, &self.shell_command) {
            (ContainerType::Shell, _, Some(cmd)) | (ContainerType::Shell, Some(cmd), None) => cmd,
            (ContainerType::Shell, None, None) => {
                return Err(ApiError::InvalidRequest("shellCommand is required".into()))
            }
            (ContainerType::PythonLts, Some(code), _) => code,
            (ContainerType::PythonLts, None, Some(_)) => {
                return Err(ApiError::InvalidRequest(
                    "shellCommand is only accepted by Shell pools".into(),
                ))
            }
            (ContainerType::PythonLts, None, None) => {
                return Err(ApiError::InvalidRequest("code is required".into()))
            }
            (ContainerType::CustomContainer, _, _) => {
                return Err(ApiError::Engine(EngineError::WrongPoolType(pool.container_type)))
            }
        };
        let text = match self.code_input_type {
            CodeInputType::Inline => text.clone(),
            CodeInputType::InlineBase64 => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(text.trim())
                    .map_err(|e| ApiError::InvalidRequest(format!("code is not valid base64: {e}")))?;
                String::from_utf8(bytes)
                    .map_err(|_| ApiError::InvalidRequest("base64 code is not UTF-8 text".into()))?
            }
        };
        Ok(match pool.container_type {
            ContainerType::Shell => ExecutionInput::Shell { command: text },
            ContainerType::PythonLts | ContainerType::CustomContainer => {
                ExecutionInput::Python { code: text }
            }
        })
    }

    pub fn timeout(&self, pool: &PoolInfo) -> Result<Duration, ApiError> {
        let requested = match self.timeout_in_seconds {
            None => DEFAULT_TIMEOUT,
            Some(s) if s.is_finite() && s > 0.0 => Duration::try_from_secs_f64(s).unwrap_or(Duration::MAX),
            Some(s) => {
                return Err(ApiError::InvalidRequest(format!(
                    "timeoutInSeconds must be positive, got {s}"
                )))
            }
        };
        Ok(requested.min(pool.max_execution_timeout))
    }
}

/// The optional `operation-id` request header (the execution id to use).
pub fn operation_id(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("operation-id") else {
        return Ok(None);
    };
    let id = value.to_str().unwrap_or("");
    let ok = (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(Some(id.to_owned()))
    } else {
        Err(ApiError::InvalidRequest(
            "operation-id must be 1 to 128 letters, digits, '-', '_' or '.'".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(kind: ContainerType) -> PoolInfo {
        PoolInfo {
            name: "p".into(),
            container_type: kind,
            max_upload_bytes: 10,
            max_execution_timeout: Duration::from_secs(220),
        }
    }

    #[test]
    fn enums_are_case_insensitive_and_unknown_fields_ignored() {
        let r = ExecutionRequest::parse(
            br#"{"properties":{"codeInputType":"INLINEbase64","executionType":"asynchronous","code":"MSsx","sanitizeInput":true}}"#,
        )
        .unwrap();
        assert_eq!(r.execution_type, ExecutionType::Asynchronous);
        assert_eq!(
            r.input(&pool(ContainerType::PythonLts)).unwrap(),
            ExecutionInput::Python { code: "1+1".into() }
        );
        assert!(ExecutionRequest::parse(br#"{"executionType":"later","code":"x"}"#).is_err());
    }

    #[test]
    fn timeouts_default_to_120_and_are_capped() {
        let p = pool(ContainerType::PythonLts);
        let r = ExecutionRequest::parse(br#"{"code":"x"}"#).unwrap();
        assert_eq!(r.timeout(&p).unwrap(), Duration::from_secs(120));
        let r = ExecutionRequest::parse(br#"{"code":"x","timeoutInSeconds":100000}"#).unwrap();
        assert_eq!(r.timeout(&p).unwrap(), Duration::from_secs(220));
        let r = ExecutionRequest::parse(br#"{"code":"x","timeoutInSeconds":0}"#).unwrap();
        assert!(r.timeout(&p).is_err());
    }

    #[test]
    fn shell_pools_take_shell_commands() {
        let r = ExecutionRequest::parse(br#"{"shellCommand":"echo hi","codeInputType":"Inline"}"#).unwrap();
        assert_eq!(
            r.input(&pool(ContainerType::Shell)).unwrap(),
            ExecutionInput::Shell {
                command: "echo hi".into()
            }
        );
        assert!(r.input(&pool(ContainerType::PythonLts)).is_err());
    }
}

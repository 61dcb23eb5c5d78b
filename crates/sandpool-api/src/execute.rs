//! Executions: `POST code/execute` (properties contract), `POST executions` (sync 200,
//! async 202 with `Operation-Location`) and `GET executions/{id}`, for Python and Shell
//! pools.

use crate::context::{encode_component, ApiState, Target};
use crate::error::ApiError;
use crate::results::{properties_body, python_execution_body, shell_execution_body};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use sandpool_engine::{ContainerType, ExecutionInput, ExecutionRecord, PoolInfo};
use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// Largest JSON request body accepted.
const MAX_JSON_BODY: usize = 16 << 20;
/// Timeout when the request gives none (capped at the pool's maximum).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum CodeInputType {
    #[default]
    Inline,
    InlineBase64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum ExecutionType {
    #[default]
    Synchronous,
    Asynchronous,
}

impl ExecutionType {
    fn as_str(self) -> &'static str {
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
struct ExecutionRequest {
    #[serde(deserialize_with = "code_input_type")]
    code_input_type: CodeInputType,
    #[serde(deserialize_with = "execution_type")]
    execution_type: ExecutionType,
    code: Option<String>,
    shell_command: Option<String>,
    timeout_in_seconds: Option<f64>,
}

impl ExecutionRequest {
    /// Reads either `{"properties": {…}}` or the fields at the top level.
    fn parse(body: &[u8]) -> Result<Self, ApiError> {
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

    fn input(&self, pool: &PoolInfo) -> Result<ExecutionInput, ApiError> {
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
            ContainerType::PythonLts => ExecutionInput::Python { code: text },
        })
    }

    fn timeout(&self, pool: &PoolInfo) -> Result<Duration, ApiError> {
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
fn operation_id(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
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

struct Prepared {
    pool: PoolInfo,
    input: ExecutionInput,
    timeout: Duration,
    execution_type: ExecutionType,
    execution_id: Option<String>,
}

async fn prepare(state: &ApiState, target: &Target, request: Request) -> Result<Prepared, ApiError> {
    target.query.contract()?;
    target.query.identifier()?;
    let execution_id = operation_id(request.headers())?;
    let body = axum::body::to_bytes(request.into_body(), MAX_JSON_BODY)
        .await
        .map_err(|_| ApiError::PayloadTooLarge {
            limit: MAX_JSON_BODY as u64,
        })?;
    let parsed = ExecutionRequest::parse(&body)?;
    let pool = state.service.pool(&target.pool).await?;
    Ok(Prepared {
        input: parsed.input(&pool)?,
        timeout: parsed.timeout(&pool)?,
        execution_type: parsed.execution_type,
        execution_id,
        pool,
    })
}

fn with_operation_headers(
    mut response: Response,
    record: &ExecutionRecord,
    location: Option<String>,
) -> Response {
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&record.id) {
        headers.insert("operation-id", v);
    }
    if let Some(Ok(v)) = location.map(|l| HeaderValue::from_str(&l)) {
        headers.insert("operation-location", v);
    }
    response
}

/// `POST code/execute`: runs synchronously, answers `{"properties": …}`.
pub async fn code_execute(
    State(state): State<ApiState>,
    target: Target,
    request: Request,
) -> Result<Response, ApiError> {
    let p = prepare(&state, &target, request).await?;
    if p.execution_type == ExecutionType::Asynchronous {
        return Err(ApiError::InvalidRequest(
            "asynchronous executions need api-version 2024-10-02-preview or later (POST executions)".into(),
        ));
    }
    let id = target.query.identifier()?;
    let record = state
        .service
        .execute(&target.pool, &id, p.input, p.timeout, p.execution_id)
        .await?;
    let response = Json(properties_body(&record)).into_response();
    Ok(with_operation_headers(response, &record, None))
}

fn execution_body(pool: &PoolInfo, record: &ExecutionRecord, execution_type: &str) -> serde_json::Value {
    match pool.container_type {
        ContainerType::PythonLts => python_execution_body(record, execution_type),
        ContainerType::Shell => shell_execution_body(record, execution_type),
    }
}

fn location(target: &Target, record: &ExecutionRecord) -> String {
    format!(
        "/pools/{}/executions/{}?api-version={}&identifier={}",
        encode_component(&target.pool),
        encode_component(&record.id),
        encode_component(target.query.get("api-version").unwrap_or_default()),
        encode_component(record.identifier.as_str()),
    )
}

/// `POST executions`: 200 with the finished execution, or 202 when asynchronous.
pub async fn post_execution(
    State(state): State<ApiState>,
    target: Target,
    request: Request,
) -> Result<Response, ApiError> {
    let p = prepare(&state, &target, request).await?;
    let id = target.query.identifier()?;
    let (status, record) = match p.execution_type {
        ExecutionType::Synchronous => (
            StatusCode::OK,
            state
                .service
                .execute(&target.pool, &id, p.input, p.timeout, p.execution_id)
                .await?,
        ),
        ExecutionType::Asynchronous => (
            StatusCode::ACCEPTED,
            state
                .service
                .submit(&target.pool, &id, p.input, p.timeout, p.execution_id)
                .await?,
        ),
    };
    let body = execution_body(&p.pool, &record, p.execution_type.as_str());
    let response = (status, Json(body)).into_response();
    Ok(with_operation_headers(
        response,
        &record,
        Some(location(&target, &record)),
    ))
}

/// `GET executions/{id}`. The engine does not record how an execution was started;
/// polled executions are reported as `Asynchronous`.
pub async fn get_execution(State(state): State<ApiState>, target: Target) -> Result<Response, ApiError> {
    target.query.contract()?;
    let id = target.query.identifier()?;
    let execution_id = target.rest.clone().unwrap_or_default();
    let pool = state.service.pool(&target.pool).await?;
    let record = state.service.execution(&target.pool, &id, &execution_id).await?;
    let body = execution_body(&pool, &record, ExecutionType::Asynchronous.as_str());
    Ok(with_operation_headers(Json(body).into_response(), &record, None))
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

//! Executions: `POST code/execute` (properties contract), `POST executions` (sync 200,
//! async 202 with `Operation-Location`) and `GET executions/{id}`, for Python and Shell
//! pools.

use crate::context::{encode_component, ApiState, Target};
use crate::error::ApiError;
use crate::execution_request::{operation_id, ExecutionRequest, ExecutionType, MAX_JSON_BODY};
use crate::results::{properties_body, python_execution_body, shell_execution_body};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sandpool_engine::{ContainerType, ExecutionInput, ExecutionRecord, PoolInfo};
use std::time::Duration;

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
        ContainerType::Shell | ContainerType::CustomContainer => shell_execution_body(record, execution_type),
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

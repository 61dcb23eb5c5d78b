//! Session administration (list with end reasons, stop), API keys, the audit log,
//! Prometheus `/metrics`, and the middleware counting answered requests.

use crate::auth::{Caller, Role};
use crate::context::ApiState;
use crate::error::ApiError;
use crate::file_json::timestamp;
use crate::management::{admin, audit};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use sandpool_engine::{ApiKeyInfo, EndReason, Identifier, SessionState};
use serde_json::{json, Value};
use std::collections::HashMap;

/// `GET /sessionPools/{name}/sessions`: live sessions, then ended ones with their reason.
pub async fn list_sessions(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let sessions = admin(&state)?.pool_sessions(&name).await?;
    let value: Vec<Value> = sessions
        .iter()
        .map(|s| {
            let ended = s.state == SessionState::Ended;
            json!({
                "identifier": s.identifier.as_str(),
                "state": match s.state {
                    SessionState::Allocated => "Allocated",
                    SessionState::Deleting => "Deleting",
                    SessionState::Ended => "Ended",
                },
                "createdAt": timestamp(s.created_at),
                "lastAccessedAt": timestamp(s.last_accessed_at),
                "expiresAt": (!ended).then(|| timestamp(s.expires_at)),
                "endedAt": ended.then(|| timestamp(s.expires_at)),
                "endReason": s.end_reason.map(|r| r.as_str()),
                "sandboxId": s.sandbox_id,
            })
        })
        .collect();
    Ok(Json(json!({ "value": value })).into_response())
}

/// `POST /sessionPools/{name}/sessions/{identifier}/stop`: ends it with reason `stopped`.
pub async fn stop_session(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path((name, identifier)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let admin = admin(&state)?;
    let id = Identifier::parse(&identifier)?;
    if !state.service.end_session(&name, &id, EndReason::Stopped).await? {
        return Err(sandpool_engine::EngineError::SessionNotFound(identifier).into());
    }
    audit(
        &admin,
        &caller,
        "session.stop",
        &format!("{name}/{identifier}"),
        "",
    )
    .await;
    Ok(Json(json!({ "identifier": identifier, "endReason": "stopped" })).into_response())
}

fn key_json(k: &ApiKeyInfo) -> Value {
    json!({
        "id": k.id,
        "name": k.name,
        "role": k.role,
        "createdAt": timestamp(k.created_at),
        "revokedAt": k.revoked_at.map(timestamp),
    })
}

/// `POST /apiKeys` `{"name", "role"}`: 201 with the key, shown only this once.
pub async fn create_key(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let admin = admin(&state)?;
    let Json(body) = body.map_err(|e| ApiError::InvalidRequest(format!("body: {}", e.body_text())))?;
    let field = |f: &str| -> Result<String, ApiError> {
        body.get(f)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| ApiError::InvalidRequest(format!("{f}: required string")))
    };
    let (name, role) = (field("name")?, field("role")?);
    let role = Role::parse(&role).ok_or_else(|| {
        ApiError::InvalidRequest(format!("role: {role:?} is not admin, executor or metrics"))
    })?;
    let (info, key) = admin.create_api_key(&name, role.as_str()).await?;
    audit(
        &admin,
        &caller,
        "key.create",
        &info.id,
        &format!("name={name} role={}", info.role),
    )
    .await;
    let mut body = key_json(&info);
    body["key"] = Value::String(key);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `GET /apiKeys`: every key, revoked ones included, never the key itself.
pub async fn list_keys(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let keys = admin(&state)?.list_api_keys().await?;
    Ok(Json(json!({ "value": keys.iter().map(key_json).collect::<Vec<_>>() })).into_response())
}

/// `DELETE /apiKeys/{id}`: revokes the key at once.
pub async fn revoke_key(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let admin = admin(&state)?;
    if !admin.revoke_api_key(&id).await? {
        return Err(ApiError::KeyNotFound(id));
    }
    audit(&admin, &caller, "key.revoke", &id, "").await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /auditLog?limit=n&before=seq`: newest first.
pub async fn audit_log(
    State(state): State<ApiState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let number = |k: &str| -> Result<Option<i64>, ApiError> {
        q.get(k)
            .map(|v| {
                v.parse::<i64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| ApiError::InvalidRequest(format!("{k}: must be a positive integer")))
            })
            .transpose()
    };
    let limit = number("limit")?.unwrap_or(100).min(1000) as u32;
    let before = number("before")?;
    let entries = admin(&state)?.audit_log(before, limit).await?;
    let value: Vec<Value> = entries
        .iter()
        .map(|e| {
            json!({
                "seq": e.seq,
                "time": timestamp(e.at),
                "actor": e.actor,
                "action": e.action,
                "target": e.target,
                "detail": e.detail,
            })
        })
        .collect();
    Ok(Json(json!({ "value": value })).into_response())
}

/// `GET /metrics`: Prometheus text exposition.
pub async fn metrics(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let text = admin(&state)?.render_metrics();
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}

/// Counts every answered request by method and status.
pub async fn count_requests(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    if let Some(admin) = &state.admin {
        admin.http_request(&method, response.status().as_u16());
    }
    response
}

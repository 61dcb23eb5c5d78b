//! Session management: `GET`/`DELETE session`, `listSessions`, `metadata` and the
//! custom-container style `.management/stopSession`.

use crate::context::{encode_component, ApiState, Target};
use crate::error::ApiError;
use crate::file_json::timestamp;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sandpool_engine::{EndReason, EngineError, SessionInfo};
use serde_json::{json, Value};

/// Sessions per `listSessions` page.
const PAGE_SIZE: usize = 100;

fn session_json(s: &SessionInfo) -> Value {
    json!({
        "identifier": s.identifier.as_str(),
        "createdAt": timestamp(s.created_at),
        "lastAccessedAt": timestamp(s.last_accessed_at),
        "expireAt": timestamp(s.expires_at),
        "etag": s.sandbox_id,
    })
}

/// `GET session`: a live session; 404 for unknown identifiers (does not allocate).
pub async fn get_session(State(state): State<ApiState>, target: Target) -> Result<Response, ApiError> {
    target.query.contract()?;
    let id = target.query.identifier()?;
    let session = state.service.session(&target.pool, &id).await?;
    Ok(Json(session_json(&session)).into_response())
}

/// `DELETE session`: 204, also when there was no such session.
pub async fn delete_session(State(state): State<ApiState>, target: Target) -> Result<Response, ApiError> {
    target.query.contract()?;
    let id = target.query.identifier()?;
    match state
        .service
        .end_session(&target.pool, &id, EndReason::Deleted)
        .await
    {
        Ok(_) | Err(EngineError::SessionNotFound(_)) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(e) => Err(e.into()),
    }
}

/// `POST .management/stopSession`: 200 text/plain; 404 when there was no such session.
pub async fn stop_session(State(state): State<ApiState>, target: Target) -> Result<Response, ApiError> {
    target.query.contract()?;
    let id = target.query.identifier()?;
    if !state
        .service
        .end_session(&target.pool, &id, EndReason::Stopped)
        .await?
    {
        return Err(EngineError::SessionNotFound(id.to_string()).into());
    }
    let text = format!("Session {id} in session pool {} stopped.", target.pool);
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(response)
}

/// `GET listSessions?skip=n`: pages of live sessions with a `nextLink`.
pub async fn list_sessions(State(state): State<ApiState>, target: Target) -> Result<Response, ApiError> {
    target.query.contract()?;
    let skip = match target.query.get("skip") {
        None | Some("") => 0,
        Some(raw) => raw.parse::<usize>().map_err(|_| {
            ApiError::InvalidRequest(format!("skip must be a non-negative integer, got {raw:?}"))
        })?,
    };
    let sessions = state.service.list_sessions(&target.pool).await?;
    let page: Vec<Value> = sessions
        .iter()
        .skip(skip)
        .take(PAGE_SIZE)
        .map(session_json)
        .collect();
    let next_link = (sessions.len() > skip.saturating_add(PAGE_SIZE)).then(|| {
        format!(
            "/pools/{}/listSessions?api-version={}&skip={}",
            encode_component(&target.pool),
            encode_component(target.query.get("api-version").unwrap_or_default()),
            skip + PAGE_SIZE
        )
    });
    Ok(Json(json!({ "sessions": page, "nextLink": next_link })).into_response())
}

fn name_versions(items: &[(String, String)]) -> Vec<Value> {
    items
        .iter()
        .map(|(name, version)| json!({ "name": name, "version": version }))
        .collect()
}

/// `GET metadata`: the pool image's runtimes and packages.
pub async fn metadata(State(state): State<ApiState>, target: Target) -> Result<Response, ApiError> {
    target.query.contract()?;
    let m = state.service.metadata(&target.pool).await?;
    Ok(Json(json!({
        "runtimes": name_versions(&m.runtimes),
        "preInstalledPackages": name_versions(&m.packages),
        "createdAt": timestamp(m.created_at),
        "lastUpdatedAt": timestamp(m.created_at),
    }))
    .into_response())
}

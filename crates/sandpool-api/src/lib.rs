//! The HTTP API: the Azure dynamic-sessions data plane under `/pools/{pool}/…` (both
//! the `{"properties": …}` contract up to `2024-08-02-preview` and the executions /
//! files / session contract after it), bearer-key auth with roles, request ids, and
//! the checked-in OpenAPI document at `GET /openapi.json`.
//!
//! Handlers only call [`SessionService`](sandpool_engine::SessionService); every error
//! becomes an HTTP status in one place, [`error`].

mod admin_routes;
pub mod auth;
mod context;
pub mod custom_schema;
pub mod error;
mod execute;
mod execution_request;
mod file_json;
mod files;
mod management;
mod openapi;
mod params;
pub mod pool_schema;
mod proxy;
pub mod request_id;
mod results;
mod sessions;
mod unread_body;
mod upload;

pub use auth::{guard, Access, Authenticator, Caller, KeyHash, KeyLookup, Role};
pub use context::ApiState;
pub use error::ApiError;
pub use management::JsonPoolCodec;
pub use openapi::OPENAPI_JSON;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{StatusCode, Uri};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, post};
use axum::Router;

/// The whole API. `GET /healthz` is open; `GET /openapi.json` needs any valid key;
/// the data plane needs an `Executor` (or `Admin`) key; management (`/sessionPools`,
/// `/apiKeys`, `/auditLog`) an `Admin` key; `/metrics` a `Metrics` (or `Admin`) key.
pub fn router(state: ApiState) -> Router {
    let auth = state.authenticator.clone();
    let data_plane = Router::new()
        .route("/pools/{pool}/code/execute", post(execute::code_execute))
        .route("/pools/{pool}/executions", post(execute::post_execution))
        .route("/pools/{pool}/executions/{id}", get(execute::get_execution))
        .route("/pools/{pool}/files", get(files::list).post(files::upload))
        .route(
            "/pools/{pool}/files/{*rest}",
            get(files::below_files)
                .post(files::below_files)
                .delete(files::below_files),
        )
        .route(
            "/pools/{pool}/session",
            get(sessions::get_session).delete(sessions::delete_session),
        )
        .route("/pools/{pool}/listSessions", get(sessions::list_sessions))
        .route("/pools/{pool}/metadata", get(sessions::metadata))
        .route(
            "/pools/{pool}/.management/stopSession",
            post(sessions::stop_session),
        )
        .route("/pools/{pool}", any(proxy::not_a_route))
        .route("/pools/{pool}/{*rest}", any(proxy::not_a_route))
        .layer(middleware::from_fn_with_state(state.clone(), proxy::divert));
    let documents = Router::new().route("/openapi.json", get(openapi::openapi_json));
    let management = Router::new()
        .route("/sessionPools", get(management::list_pools))
        .route(
            "/sessionPools/{name}",
            get(management::get_pool)
                .put(management::put_pool)
                .patch(management::patch_pool)
                .delete(management::delete_pool),
        )
        .route("/sessionPools/{name}/sessions", get(admin_routes::list_sessions))
        .route(
            "/sessionPools/{name}/sessions/{identifier}/stop",
            post(admin_routes::stop_session),
        )
        .route(
            "/apiKeys",
            get(admin_routes::list_keys).post(admin_routes::create_key),
        )
        .route("/apiKeys/{id}", delete(admin_routes::revoke_key))
        .route("/auditLog", get(admin_routes::audit_log));
    let metrics = Router::new().route("/metrics", get(admin_routes::metrics));
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(guard(data_plane, auth.clone(), Access::Role(Role::Executor)))
        .merge(guard(documents, auth.clone(), Access::AnyKey))
        .merge(guard(management, auth.clone(), Access::Role(Role::Admin)))
        .merge(guard(metrics, auth, Access::Role(Role::Metrics)))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            admin_routes::count_requests,
        ))
        .with_state(state);
    // Path clean-up must happen before routing, so it wraps the routed app.
    Router::new()
        .fallback_service(app)
        .layer(middleware::map_request(normalize_path))
        .layer(middleware::from_fn(unread_body::close_after_unread_body))
        .layer(middleware::from_fn(request_id::request_id))
}

async fn not_found(uri: Uri) -> Response {
    ApiError::RouteNotFound(uri.path().to_owned()).into_response()
}

async fn method_not_allowed(request: Request) -> Response {
    let message = format!("{} is not allowed on {}", request.method(), request.uri().path());
    error::error_response(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", &message)
}

/// Collapses `//` and drops a trailing `/` (clients append `/op` to endpoints that may
/// already end with `/`, and some send `code/execute/`).
async fn normalize_path(mut request: Request) -> Request {
    let path = request.uri().path();
    if path.len() > 1 && (path.contains("//") || path.ends_with('/')) {
        let mut clean = String::with_capacity(path.len());
        for segment in path.split('/').filter(|s| !s.is_empty()) {
            clean.push('/');
            clean.push_str(segment);
        }
        if clean.is_empty() {
            clean.push('/');
        }
        if let Some(q) = request.uri().query() {
            clean.push('?');
            clean.push_str(q);
        }
        let mut parts = request.uri().clone().into_parts();
        if let Ok(pq) = clean.parse() {
            parts.path_and_query = Some(pq);
            if let Ok(uri) = Uri::from_parts(parts) {
                *request.uri_mut() = uri;
            }
        }
    }
    request
}

//! Every error the API returns, and the one place where engine errors become HTTP
//! status codes and Azure-shaped bodies (`{"error":{"code","message"}}` plus the
//! `x-ms-error-code` header).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sandpool_engine::EngineError;
use sandpool_pool::IdentifierError;

/// Seconds a client is told to wait before retrying after an allocation timeout.
const RETRY_AFTER_SECONDS: &str = "5";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Engine(#[from] EngineError),
    #[error("{0}")]
    InvalidIdentifier(#[from] IdentifierError),
    #[error("the api-version query parameter is required")]
    MissingApiVersion,
    #[error("api-version {0:?} is not a valid version (expected YYYY-MM-DD or YYYY-MM-DD-preview)")]
    InvalidApiVersion(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("invalid path {0:?}: paths must stay inside /mnt/data")]
    InvalidPath(String),
    #[error("the request body exceeds the {limit}-byte limit")]
    PayloadTooLarge { limit: u64 },
    #[error("a valid 'Authorization: Bearer <key>' header is required")]
    Unauthorized,
    #[error("this key is not allowed to use this operation")]
    Forbidden,
    #[error("no operation matches {0}")]
    RouteNotFound(String),
    /// A pool definition that does not validate; the message names the field.
    #[error("{0}")]
    InvalidPool(#[from] crate::pool_schema::SchemaError),
    #[error("API key {0:?} does not exist or is already revoked")]
    KeyNotFound(String),
}

impl ApiError {
    /// Status code and Azure error code, decided here and nowhere else.
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        use EngineError as E;
        match self {
            ApiError::Engine(e) => match e {
                E::PoolNotFound(_) => (StatusCode::NOT_FOUND, "PoolNotFound"),
                E::PoolNotReady { .. } => (StatusCode::CONFLICT, "PoolNotReady"),
                E::SessionNotFound(_) => (StatusCode::NOT_FOUND, "SessionNotFound"),
                E::ExecutionNotFound(_) => (StatusCode::NOT_FOUND, "ExecutionNotFound"),
                E::FileNotFound(_) => (StatusCode::NOT_FOUND, "FileNotFound"),
                // Azure answers 404 when a pool has no more sessions to allocate.
                E::AtCapacity { .. } => (StatusCode::NOT_FOUND, "SessionPoolAtCapacity"),
                E::AllocationTimeout { .. } => (StatusCode::SERVICE_UNAVAILABLE, "AllocationTimeout"),
                E::InvalidPath(_) => (StatusCode::BAD_REQUEST, "InvalidPath"),
                E::InvalidInput(_) => (StatusCode::BAD_REQUEST, "InvalidInput"),
                E::WrongPoolType(_) => (StatusCode::BAD_REQUEST, "UnsupportedForPoolType"),
                E::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLarge"),
                E::NoSpace => (StatusCode::INSUFFICIENT_STORAGE, "InsufficientStorage"),
                E::SessionLost(_) => (StatusCode::INTERNAL_SERVER_ERROR, "SessionLost"),
                E::ContainerUnreachable { .. } => (StatusCode::BAD_GATEWAY, "ContainerUnreachable"),
                E::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "InternalError"),
            },
            ApiError::InvalidIdentifier(_) => (StatusCode::BAD_REQUEST, "InvalidIdentifier"),
            ApiError::MissingApiVersion => (StatusCode::BAD_REQUEST, "MissingApiVersion"),
            ApiError::InvalidApiVersion(_) => (StatusCode::BAD_REQUEST, "InvalidApiVersion"),
            ApiError::InvalidRequest(_) => (StatusCode::BAD_REQUEST, "InvalidRequest"),
            ApiError::InvalidPath(_) => (StatusCode::BAD_REQUEST, "InvalidPath"),
            ApiError::PayloadTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLarge"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "Unauthorized"),
            ApiError::Forbidden => (StatusCode::FORBIDDEN, "Forbidden"),
            ApiError::RouteNotFound(_) => (StatusCode::NOT_FOUND, "NotFound"),
            ApiError::InvalidPool(_) => (StatusCode::BAD_REQUEST, "InvalidPoolDefinition"),
            ApiError::KeyNotFound(_) => (StatusCode::NOT_FOUND, "ApiKeyNotFound"),
        }
    }

    /// The message clients see. Internal details stay in the logs.
    fn client_message(&self) -> String {
        match self {
            ApiError::Engine(EngineError::ExecutionNotFound(id)) => {
                format!("No execution available for operation Id: {id}")
            }
            ApiError::Engine(EngineError::AtCapacity { pool, max, .. }) => format!(
                "session pool {pool:?} is at capacity: all {max} concurrent sessions are allocated; \
                 no new session can be allocated until one ends (see Retry-After)"
            ),
            ApiError::Engine(EngineError::SessionLost(why)) => format!(
                "the session's sandbox stopped unexpectedly ({why}); its state is lost. \
                 Retry to get a new session"
            ),
            ApiError::Engine(EngineError::Internal(_)) => {
                "internal error; see the server log for this request id".to_owned()
            }
            other => other.to_string(),
        }
    }
}

/// Builds an Azure-shaped error response.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "error": { "code": code, "message": message } });
    let mut response = (status, axum::Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(code) {
        response.headers_mut().insert("x-ms-error-code", value);
    }
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if status.is_server_error() {
            tracing::error!(code, error = %self, "request failed");
        } else {
            tracing::debug!(code, error = %self, "request refused");
        }
        let mut response = error_response(status, code, &self.client_message());
        if let ApiError::Engine(EngineError::AtCapacity { retry_after, .. }) = &self {
            let secs = retry_after.as_secs_f64().ceil().max(1.0) as u64;
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        match status {
            StatusCode::UNAUTHORIZED => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn status(e: ApiError) -> StatusCode {
        e.into_response().status()
    }

    #[test]
    fn engine_errors_map_to_the_documented_statuses() {
        assert_eq!(
            status(EngineError::PoolNotFound("p".into()).into()),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(
                EngineError::AtCapacity {
                    pool: "p".into(),
                    max: 2,
                    retry_after: Duration::from_millis(1500),
                }
                .into()
            ),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(EngineError::InvalidPath("..".into()).into()),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status(EngineError::TooLarge { size: 2, limit: 1 }.into()),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            status(EngineError::NoSpace.into()),
            StatusCode::INSUFFICIENT_STORAGE
        );
        assert_eq!(
            status(EngineError::SessionLost("oom".into()).into()),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        let r = ApiError::from(EngineError::AllocationTimeout {
            pool: "p".into(),
            waited: Duration::from_secs(30),
        })
        .into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::RETRY_AFTER], RETRY_AFTER_SECONDS);
        assert_eq!(r.headers()["x-ms-error-code"], "AllocationTimeout");
    }

    #[test]
    fn internal_details_are_not_sent_to_clients() {
        let e = ApiError::from(EngineError::Internal("secret detail".into()));
        assert!(!e.client_message().contains("secret detail"));
    }
}

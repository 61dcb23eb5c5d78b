//! Serves the checked-in OpenAPI document (`crates/sandpool-api/openapi.json`).

use axum::http::header;
use axum::response::IntoResponse;

/// The OpenAPI 3.1 document describing every route of [`crate::router`].
pub const OPENAPI_JSON: &str = include_str!("../openapi.json");

pub async fn openapi_json() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON)
}

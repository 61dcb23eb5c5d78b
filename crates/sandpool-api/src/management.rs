//! Pool management, ARM-shaped: `PUT/GET/PATCH/DELETE /sessionPools/{name}` and
//! `GET /sessionPools`. Every change is audited with the caller's key id.

use crate::auth::Caller;
use crate::context::ApiState;
use crate::error::ApiError;
use crate::file_json::timestamp;
use crate::pool_schema::{properties_from_json, PoolProperties, SchemaError};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use sandpool_engine::{AdminService, PoolCodec, PoolSpec, PoolStatus};
use serde_json::{json, Value};
use std::sync::Arc;

/// Stores pool specs as their canonical ARM `properties` JSON, secrets included (the
/// store is the service's own; API responses never carry secret values).
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonPoolCodec;

impl PoolCodec for JsonPoolCodec {
    fn encode(&self, spec: &PoolSpec) -> String {
        serde_json::to_string(&PoolProperties::for_store(spec)).unwrap_or_default()
    }

    fn decode(&self, name: &str, text: &str) -> Result<PoolSpec, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        properties_from_json(value)
            .and_then(|p| p.to_spec(name))
            .map_err(|e| e.to_string())
    }
}

pub(crate) fn admin(state: &ApiState) -> Result<Arc<dyn AdminService>, ApiError> {
    state
        .admin
        .clone()
        .ok_or_else(|| ApiError::RouteNotFound("management API".into()))
}

/// Records a management operation; a failure to record is logged, not returned.
pub(crate) async fn audit(
    admin: &Arc<dyn AdminService>,
    caller: &Caller,
    action: &str,
    target: &str,
    detail: &str,
) {
    if let Err(e) = admin.audit(&caller.id, action, target, detail).await {
        tracing::error!(error = %e, action, target, "could not write the audit log");
    }
}

fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// The ARM resource for a pool, with read-only endpoint, state and live counts.
pub(crate) fn resource_json(status: &PoolStatus, base: &str) -> Value {
    let name = &status.spec.name;
    let mut properties = serde_json::to_value(PoolProperties::from_spec(&status.spec)).unwrap_or_default();
    let extra = json!({
        "poolManagementEndpoint": format!("{base}/pools/{name}"),
        "provisioningState": status.state.as_str(),
        "provisioningError": status.error,
        "sessionCounts": {
            "ready": status.counts.ready,
            "allocated": status.counts.allocated,
            "pending": status.counts.pending,
        },
    });
    if let (Value::Object(p), Value::Object(e)) = (&mut properties, extra) {
        p.extend(e);
    }
    json!({
        "id": format!("/sessionPools/{name}"),
        "name": name,
        "type": "Microsoft.App/sessionPools",
        "properties": properties,
        "systemData": {
            "createdAt": timestamp(status.created_at),
            "lastModifiedAt": timestamp(status.updated_at),
        },
    })
}

/// The `properties` of a request body `{"properties": {...}, ...}`, checking the name.
fn body_properties(name: &str, body: &Value) -> Result<Value, ApiError> {
    let Value::Object(map) = body else {
        return Err(SchemaError {
            field: "body".into(),
            message: "must be a JSON object with a properties member".into(),
        }
        .into());
    };
    for key in map.keys() {
        if !matches!(
            key.as_str(),
            "properties" | "location" | "tags" | "identity" | "id" | "name" | "type" | "systemData"
        ) {
            return Err(SchemaError {
                field: key.clone(),
                message: "unknown field".into(),
            }
            .into());
        }
    }
    if let Some(n) = map.get("name") {
        if n.as_str() != Some(name) {
            return Err(SchemaError {
                field: "name".into(),
                message: format!("must match the pool name in the URL ({name:?})"),
            }
            .into());
        }
    }
    Ok(map.get("properties").cloned().unwrap_or(json!({})))
}

fn parse_body(body: Result<Json<Value>, axum::extract::rejection::JsonRejection>) -> Result<Value, ApiError> {
    body.map(|Json(v)| v)
        .map_err(|e| ApiError::InvalidRequest(format!("body: {}", e.body_text())))
}

fn check_name(name: &str) -> Result<(), ApiError> {
    // Same rule as the engine, reported before anything else.
    PoolSpec::with_defaults(name, sandpool_engine::ContainerType::Shell)
        .validate()
        .map_err(|e| ApiError::InvalidRequest(e.to_string()))
}

async fn put_spec(
    state: &ApiState,
    caller: &Caller,
    headers: &HeaderMap,
    spec: PoolSpec,
    action: &str,
) -> Result<Response, ApiError> {
    let admin = admin(state)?;
    let name = spec.name.clone();
    let (status, created) = admin.put_pool(spec).await?;
    let detail = serde_json::to_string(&PoolProperties::from_spec(&status.spec)).unwrap_or_default();
    let action = if created { "pool.create" } else { action };
    audit(&admin, caller, action, &name, &detail).await;
    let code = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((code, Json(resource_json(&status, &base_url(headers)))).into_response())
}

/// `PUT /sessionPools/{name}`: create, or replace the whole definition.
pub async fn put_pool(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    check_name(&name)?;
    let body = parse_body(body)?;
    let spec = properties_from_json(body_properties(&name, &body)?)?.to_spec(&name)?;
    put_spec(&state, &caller, &headers, spec, "pool.replace").await
}

/// `PATCH /sessionPools/{name}`: JSON merge patch of `properties` over the current ones.
pub async fn patch_pool(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let admin = admin(&state)?;
    let body = parse_body(body)?;
    let patch = body_properties(&name, &body)?;
    let current = admin.get_pool(&name).await?;
    let mut merged = serde_json::to_value(PoolProperties::from_spec(&current.spec)).unwrap_or_default();
    merge_patch(&mut merged, &patch);
    let spec = properties_from_json(merged)?.to_spec(&name)?;
    put_spec(&state, &caller, &headers, spec, "pool.update").await
}

/// RFC 7386 JSON merge patch.
fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = json!({});
            }
            let t = target.as_object_mut().expect("object");
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// `GET /sessionPools/{name}`.
pub async fn get_pool(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let status = admin(&state)?.get_pool(&name).await?;
    Ok(Json(resource_json(&status, &base_url(&headers))).into_response())
}

/// `GET /sessionPools`.
pub async fn list_pools(State(state): State<ApiState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let base = base_url(&headers);
    let pools: Vec<Value> = admin(&state)?
        .list_pools()
        .await
        .iter()
        .map(|s| resource_json(s, &base))
        .collect();
    Ok(Json(json!({ "value": pools, "nextLink": null })).into_response())
}

/// `DELETE /sessionPools/{name}`: drains the pool (sessions end with `pool-deleted`).
pub async fn delete_pool(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let admin = admin(&state)?;
    admin.delete_pool(&name).await?;
    audit(&admin, &caller, "pool.delete", &name, "").await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut t = json!({"a": {"b": 1, "c": 2}, "d": 3});
        merge_patch(&mut t, &json!({"a": {"b": 5, "c": null}, "e": 6}));
        assert_eq!(t, json!({"a": {"b": 5}, "d": 3, "e": 6}));
    }

    #[test]
    fn codec_round_trips() {
        let mut spec = PoolSpec::with_defaults("calc", sandpool_engine::ContainerType::Shell);
        spec.ready_instances = 1;
        let text = JsonPoolCodec.encode(&spec);
        assert_eq!(JsonPoolCodec.decode("calc", &text).unwrap(), spec);
    }

    #[test]
    fn body_errors_name_the_field() {
        let e = body_properties("calc", &json!({"name": "other", "properties": {}})).unwrap_err();
        assert!(e.to_string().starts_with("name:"), "{e}");
        let e = body_properties("calc", &json!({"propertees": {}})).unwrap_err();
        assert!(e.to_string().starts_with("propertees:"), "{e}");
    }
}

//! File routes under `/mnt/data`: list, upload (`files/upload` or `POST files`),
//! download (`files/content/{name…}` or `files/{name}/content`), metadata and delete,
//! each answering in the contract its `api-version` selects.

use crate::context::{ApiState, Target};
use crate::error::ApiError;
use crate::file_json::{content_type, properties_list, resource_file};
use crate::params::{data_path, join, Contract};
use crate::upload::read_upload;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sandpool_pool::Identifier;
use serde_json::json;

/// The directory given by the optional `path` query, relative to `/mnt/data`.
fn query_dir(target: &Target) -> Result<String, ApiError> {
    data_path(target.query.get("path").unwrap_or(""))
}

fn session(target: &Target) -> Result<(Contract, Identifier), ApiError> {
    Ok((target.query.contract()?, target.query.identifier()?))
}

/// `dir` joined with a file name from the URL; the name must not be empty.
fn file_path(dir: &str, raw: &str) -> Result<String, ApiError> {
    let name = data_path(raw)?;
    if name.is_empty() {
        return Err(ApiError::InvalidPath(raw.to_owned()));
    }
    Ok(join(dir, &name))
}

/// `GET files`.
pub async fn list(State(state): State<ApiState>, target: Target) -> Result<Response, ApiError> {
    let (contract, id) = session(&target)?;
    let dir = query_dir(&target)?;
    // The properties contract has no `recursive` flag; it lists the whole tree so files
    // uploaded into sub-directories (SK, LlamaIndex) show up with their relative path.
    let recursive = match (contract, target.query.get("recursive")) {
        (Contract::Properties, None) => true,
        _ => target.query.flag("recursive")?,
    };
    let entries = state
        .service
        .list_files(&target.pool, &id, &dir, recursive)
        .await?;
    Ok(match contract {
        Contract::Properties => Json(properties_list(entries.iter().filter(|e| !e.is_dir))).into_response(),
        Contract::Resources => {
            let value: Vec<_> = entries.iter().map(resource_file).collect();
            Json(json!({ "value": value, "nextLink": null })).into_response()
        }
    })
}

/// `POST files` (later contract) and `POST files/upload` (either contract).
pub async fn upload(
    State(state): State<ApiState>,
    target: Target,
    request: Request,
) -> Result<Response, ApiError> {
    let (contract, id) = session(&target)?;
    let dir = query_dir(&target)?;
    let pool = state.service.pool(&target.pool).await?;
    let upload = read_upload(request, pool.max_upload_bytes).await?;
    let path = file_path(&dir, &upload.filename)?;
    let entry = state
        .service
        .write_file(&target.pool, &id, &path, upload.data)
        .await?;
    Ok(match contract {
        Contract::Properties => Json(properties_list([&entry])).into_response(),
        Contract::Resources => Json(resource_file(&entry)).into_response(),
    })
}

async fn download(
    state: &ApiState,
    target: &Target,
    id: &Identifier,
    path: &str,
) -> Result<Response, ApiError> {
    let data = state.service.read_file(&target.pool, id, path).await?;
    let mut response = data.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(path)));
    // User files are data, never pages for a browser to interpret.
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment"),
    );
    Ok(response)
}

async fn metadata(
    state: &ApiState,
    target: &Target,
    contract: Contract,
    id: &Identifier,
    path: &str,
) -> Result<Response, ApiError> {
    let entry = state.service.stat_file(&target.pool, id, path).await?;
    Ok(match contract {
        Contract::Properties => Json(properties_list([&entry])).into_response(),
        Contract::Resources => Json(resource_file(&entry)).into_response(),
    })
}

async fn delete(
    state: &ApiState,
    target: &Target,
    contract: Contract,
    id: &Identifier,
    path: &str,
) -> Result<Response, ApiError> {
    state.service.delete_file(&target.pool, id, path).await?;
    Ok(match contract {
        Contract::Properties => Json(json!({ "message": "file deleted successfully" })).into_response(),
        Contract::Resources => StatusCode::NO_CONTENT.into_response(),
    })
}

/// Everything below `files/`: dispatched on method, contract and path shape.
pub async fn below_files(
    State(state): State<ApiState>,
    target: Target,
    request: Request,
) -> Result<Response, ApiError> {
    let rest = target.rest.clone().unwrap_or_default();
    let method = request.method().clone();
    if method == Method::POST && rest == "upload" {
        return upload(State(state), target, request).await;
    }
    let (contract, id) = session(&target)?;
    let dir = query_dir(&target)?;
    let content_name = match contract {
        Contract::Properties => rest.strip_prefix("content/"),
        Contract::Resources => rest.strip_suffix("/content"),
    };
    let not_found = || ApiError::RouteNotFound(format!("{method} files/{rest}"));
    match (&method, content_name) {
        (&Method::GET, Some(name)) => download(&state, &target, &id, &file_path(&dir, name)?).await,
        (&Method::GET, None) => metadata(&state, &target, contract, &id, &file_path(&dir, &rest)?).await,
        (&Method::DELETE, _) => delete(&state, &target, contract, &id, &file_path(&dir, &rest)?).await,
        _ => Err(not_found()),
    }
}

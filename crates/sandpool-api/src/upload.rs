//! Reads a multipart upload (field `file`) while enforcing the pool's size limit as the
//! bytes arrive, so an oversized upload is refused without being buffered.

use crate::error::ApiError;
use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{header, StatusCode};

/// Room for multipart boundaries and part headers on top of the file itself.
const MULTIPART_OVERHEAD: u64 = 64 << 10;

/// A file received in the `file` part.
#[derive(Debug)]
pub struct Upload {
    /// The part's filename as sent (may carry a `/mnt/data/` prefix).
    pub filename: String,
    pub data: Vec<u8>,
}

fn multipart_error(e: axum::extract::multipart::MultipartError, limit: u64) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge { limit }
    } else {
        ApiError::InvalidRequest(format!("malformed multipart body: {}", e.body_text()))
    }
}

/// Reads the `file` part of a `multipart/form-data` request, refusing more than `limit`
/// bytes of file data (413) and more than `limit` plus a small overhead of body.
pub async fn read_upload(request: Request, limit: u64) -> Result<Upload, ApiError> {
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let body_limit = limit.saturating_add(MULTIPART_OVERHEAD);
    if declared.is_some_and(|len| len > body_limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let limited = http_body_util::Limited::new(body, usize::try_from(body_limit).unwrap_or(usize::MAX));
    let request = Request::from_parts(parts, Body::new(limited));
    let mut multipart = Multipart::from_request(request, &()).await.map_err(|e| {
        ApiError::InvalidRequest(format!("expected a multipart/form-data body: {}", e.body_text()))
    })?;
    let mut upload = None;
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| multipart_error(e, limit))?
    {
        let is_file = field.name() == Some("file") && upload.is_none();
        let filename = field.file_name().map(str::to_owned);
        let mut data = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(e, limit))? {
            if !is_file {
                continue; // other parts are drained, not kept
            }
            if data.len() as u64 + chunk.len() as u64 > limit {
                return Err(ApiError::PayloadTooLarge { limit });
            }
            data.extend_from_slice(&chunk);
        }
        if is_file {
            let filename = filename.filter(|f| !f.is_empty()).ok_or_else(|| {
                ApiError::InvalidRequest("the file part needs a filename in its Content-Disposition".into())
            })?;
            upload = Some(Upload { filename, data });
        }
    }
    upload.ok_or_else(|| ApiError::InvalidRequest("the multipart body has no part named \"file\"".into()))
}

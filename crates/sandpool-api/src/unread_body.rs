//! Keeps keep-alive clients working after a request is refused before its body was read
//! (bad identifier, missing key, unknown pool…): hyper then closes the connection after
//! the response without saying so, and a client that pooled the connection (ureq,
//! Python `requests`) fails its next request with a broken pipe or "remote end closed
//! connection". Such error responses now carry `Connection: close`, so the client opens
//! a new connection instead.

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::header::CONNECTION;
use axum::http::{HeaderValue, Response};
use axum::middleware::Next;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

/// Middleware: see the module doc.
pub async fn close_after_unread_body(request: Request, next: Next) -> Response<Body> {
    let (parts, body) = request.into_parts();
    if body.is_end_stream() {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let finished = Arc::new(AtomicBool::new(false));
    let watched = Body::new(Watched {
        inner: body,
        finished: finished.clone(),
    });
    let mut response = next.run(Request::from_parts(parts, watched)).await;
    if must_close(response.status().as_u16(), finished.load(Ordering::Acquire)) {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// An error answer to a request whose body was not read to its end. Successful answers
/// are left alone: a handler may still be streaming the body (the container proxy).
fn must_close(status: u16, body_finished: bool) -> bool {
    status >= 400 && !body_finished
}

/// A request body that records when it has been read to its end.
struct Watched {
    inner: Body,
    finished: Arc<AtomicBool>,
}

impl HttpBody for Watched {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.finished.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::post;
    use axum::Router;
    use tower::ServiceExt;

    fn app() -> Router {
        Router::new()
            .route(
                "/refuse",
                post(|| async { (axum::http::StatusCode::BAD_REQUEST, "no") }),
            )
            .route(
                "/read-then-refuse",
                post(|body: Bytes| async move { (axum::http::StatusCode::BAD_REQUEST, body) }),
            )
            .route("/accept", post(|| async { "yes" }))
            .layer(axum::middleware::from_fn(close_after_unread_body))
    }

    async fn connection_header(path: &str, body: &'static str) -> Option<String> {
        let request = Request::post(path).body(Body::from(body)).unwrap();
        let response = app().oneshot(request).await.unwrap();
        response
            .headers()
            .get(CONNECTION)
            .map(|v| v.to_str().unwrap().to_owned())
    }

    #[tokio::test]
    async fn only_errors_that_left_the_body_unread_close_the_connection() {
        assert_eq!(
            connection_header("/refuse", "payload").await.as_deref(),
            Some("close")
        );
        assert_eq!(connection_header("/read-then-refuse", "payload").await, None);
        assert_eq!(connection_header("/accept", "payload").await, None);
        assert_eq!(
            connection_header("/refuse", "").await,
            None,
            "no body, nothing unread"
        );
    }

    #[test]
    fn the_rule() {
        assert!(must_close(400, false));
        assert!(must_close(503, false));
        assert!(!must_close(400, true));
        assert!(!must_close(200, false));
    }
}

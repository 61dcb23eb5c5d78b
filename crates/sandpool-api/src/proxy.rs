//! The custom-container proxy: on a `CustomContainer` pool every request to
//! `/pools/{pool}/<path>?identifier=…` (except `.management/…`) goes to the session's
//! container on its target port, through the agent channel (hyper over the session's
//! `AgentStream`): any method, path and query, headers without `Authorization` and
//! hop-by-hop ones, `X-Forwarded-*` added, bodies streamed both ways, HTTP upgrades
//! (WebSocket) spliced. The session is held for the request, and for an upgraded
//! connection's whole life, so its cooldown does not run meanwhile.

use crate::context::ApiState;
use crate::error::ApiError;
use crate::params::Query;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use sandpool_engine::{ContainerType, EngineError};
use std::net::SocketAddr;
use std::sync::Arc;

/// Headers that describe one hop, never forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
];

/// Middleware on the data-plane routes: diverts requests for custom-container pools to
/// the container; everything else (and `.management/…`) continues to the handlers.
pub async fn divert(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let Some((pool, rest)) = split_path(request.uri().path()) else {
        return next.run(request).await;
    };
    if rest.trim_start_matches('/').starts_with(".management") {
        return next.run(request).await;
    }
    let pool = crate::params::decode(pool);
    match state.service.pool(&pool).await {
        Ok(info) if info.container_type == ContainerType::CustomContainer => {
            let rest = rest.to_owned();
            match forward(&state, &pool, &rest, request).await {
                Ok(response) => response,
                Err(e) => e.into_response(),
            }
        }
        _ => next.run(request).await,
    }
}

/// Catch-all handler for `/pools/{pool}` and `/pools/{pool}/{*rest}` paths no other
/// route has: only custom-container pools (handled by [`divert`]) have such paths.
pub async fn not_a_route(uri: Uri) -> Response {
    ApiError::RouteNotFound(uri.path().to_owned()).into_response()
}

/// `/pools/{pool}{rest}` → (`pool` raw, `rest` raw, starting with `/` or empty).
fn split_path(path: &str) -> Option<(&str, &str)> {
    let after = path.strip_prefix("/pools/")?;
    let (pool, rest) = after.split_at(after.find('/').unwrap_or(after.len()));
    (!pool.is_empty()).then_some((pool, rest))
}

async fn forward(
    state: &ApiState,
    pool: &str,
    rest: &str,
    mut request: Request,
) -> Result<Response, ApiError> {
    let query = Query::parse(request.uri().query().unwrap_or(""));
    let id = query.identifier()?;
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let upgrade = is_upgrade(request.headers());
    let downstream_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));

    let path_and_query = match request.uri().query() {
        Some(q) => format!("{}?{q}", if rest.is_empty() { "/" } else { rest }),
        None => if rest.is_empty() { "/" } else { rest }.to_owned(),
    };
    let (mut parts, body) = request.into_parts();
    parts.uri = path_and_query
        .parse()
        .map_err(|e| ApiError::InvalidRequest(format!("bad request path: {e}")))?;
    let original_host = parts.headers.get(header::HOST).cloned();
    clean_headers(&mut parts.headers, upgrade);
    parts.headers.remove(header::AUTHORIZATION);
    add_forwarded(&mut parts.headers, peer, original_host);
    parts.version = axum::http::Version::HTTP_11;

    let connection = state.service.connect(pool, &id).await?;
    let port = connection.port;
    let lease: Arc<Box<dyn Send + Sync>> = Arc::new(connection.lease);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(connection.stream))
        .await
        .map_err(|e| unreachable_container(port, &e))?;
    let held = lease.clone();
    tokio::spawn(async move {
        // The session stays leased until the response body has been sent.
        let _held = held;
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "container connection ended with an error");
        }
    });
    let mut response = sender
        .send_request(axum::http::Request::from_parts(parts, body))
        .await
        .map_err(|e| unreachable_container(port, &e))?;
    drop(sender);

    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        if let Some(downstream) = downstream_upgrade {
            let upstream = hyper::upgrade::on(&mut response);
            tokio::spawn(async move {
                let _held = lease;
                match tokio::try_join!(downstream, upstream) {
                    Ok((down, up)) => {
                        let (mut down, mut up) = (TokioIo::new(down), TokioIo::new(up));
                        if let Err(e) = tokio::io::copy_bidirectional(&mut down, &mut up).await {
                            tracing::debug!(error = %e, "upgraded connection ended with an error");
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "upgrade failed"),
                }
            });
        }
        let (parts, _) = response.into_parts();
        return Ok(Response::from_parts(parts, Body::empty()));
    }
    let (mut parts, body) = response.into_parts();
    clean_headers(&mut parts.headers, false);
    Ok(Response::from_parts(parts, Body::new(body)))
}

fn unreachable_container(port: u16, e: &hyper::Error) -> ApiError {
    ApiError::Engine(EngineError::ContainerUnreachable {
        port,
        detail: format!("the connection failed before a response: {e}"),
    })
}

fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// Drops hop-by-hop headers and those the `Connection` header names; an upgrade
/// keeps `Connection: upgrade` and `Upgrade`.
fn clean_headers(headers: &mut HeaderMap, upgrade: bool) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::try_from(t.trim()).ok())
        .filter(|n| !(upgrade && n == header::UPGRADE))
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    if upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(header::UPGRADE);
    }
}

fn add_forwarded(headers: &mut HeaderMap, peer: Option<std::net::IpAddr>, host: Option<HeaderValue>) {
    if let Some(ip) = peer {
        let value = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
            Some(prior) => format!("{prior}, {ip}"),
            None => ip.to_string(),
        };
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert("x-forwarded-for", v);
        }
    }
    headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    if let Some(host) = host {
        headers.insert("x-forwarded-host", host);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_pool_and_rest() {
        assert_eq!(split_path("/pools/app/api/x"), Some(("app", "/api/x")));
        assert_eq!(split_path("/pools/app"), Some(("app", "")));
        assert_eq!(split_path("/healthz"), None);
    }

    #[test]
    fn headers_lose_hop_by_hop_and_gain_forwarded() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret-hop"),
        );
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        h.insert("x-kept", HeaderValue::from_static("yes"));
        clean_headers(&mut h, false);
        add_forwarded(
            &mut h,
            Some([10, 0, 0, 1].into()),
            Some(HeaderValue::from_static("example")),
        );
        assert!(h.get("x-secret-hop").is_none() && h.get(header::CONNECTION).is_none());
        assert!(h.get(header::TRANSFER_ENCODING).is_none());
        assert_eq!(h["x-kept"], "yes");
        assert_eq!(h["x-forwarded-for"], "10.0.0.1");
        assert_eq!(h["x-forwarded-host"], "example");
        let mut up = HeaderMap::new();
        up.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        up.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(is_upgrade(&up));
        clean_headers(&mut up, true);
        assert_eq!(up[header::UPGRADE], "websocket");
        assert_eq!(up[header::CONNECTION], "upgrade");
    }
}

//! The per-request context every data-plane handler starts from: the shared state,
//! the pool named in the path, the decoded query and the optional trailing path.

use crate::auth::Authenticator;
use crate::error::ApiError;
use crate::params::{decode, Query};
use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sandpool_engine::{AdminService, SessionService};
use std::sync::Arc;

/// What the router shares with every handler.
#[derive(Clone)]
pub struct ApiState {
    pub service: Arc<dyn SessionService>,
    pub authenticator: Arc<Authenticator>,
    /// Management operations; without it the management routes answer 404.
    pub admin: Option<Arc<dyn AdminService>>,
}

impl ApiState {
    pub fn new(service: Arc<dyn SessionService>, authenticator: Authenticator) -> Self {
        ApiState {
            service,
            authenticator: Arc::new(authenticator),
            admin: None,
        }
    }

    /// Adds the management API (pools, sessions, keys, audit log, metrics).
    pub fn with_admin(mut self, admin: Arc<dyn AdminService>) -> Self {
        self.admin = Some(admin);
        self
    }
}

/// Pool name, query and (for `…/{*rest}` routes) the percent-decoded rest of the path.
pub struct Target {
    pub pool: String,
    pub query: Query,
    pub rest: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Target {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
        let mut pool = None;
        let mut rest = None;
        for (key, value) in &params {
            match key {
                "pool" => pool = Some(decode(value)),
                "rest" | "id" => rest = Some(decode(value)),
                _ => {}
            }
        }
        let pool = pool.ok_or_else(|| ApiError::RouteNotFound(parts.uri.path().to_owned()))?;
        Ok(Target {
            pool,
            query: Query::from_parts(parts),
            rest,
        })
    }
}

/// Characters escaped when building URLs we hand back (everything but unreserved ones).
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

pub fn encode_component(raw: &str) -> String {
    utf8_percent_encode(raw, COMPONENT).to_string()
}

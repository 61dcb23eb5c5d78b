//! API keys and roles: keys are kept only as SHA-256 hashes, checked in constant time,
//! and enforced by a route layer ([`guard`]) that any group of routes can reuse.

use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The session data plane (`/pools/{pool}/…`).
    Executor,
    /// Everything.
    Admin,
    /// Metrics scraping only.
    Metrics,
}

/// What a group of routes requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Any valid key, whatever its role.
    AnyKey,
    /// A key with this role (an `Admin` key always qualifies).
    Role(Role),
}

impl Access {
    pub fn allows(self, role: Role) -> bool {
        match self {
            Access::AnyKey => true,
            Access::Role(required) => role == Role::Admin || role == required,
        }
    }
}

/// The SHA-256 of a key.
pub type KeyHash = [u8; 32];

/// Known keys, as hashes with their roles. Keys themselves are never stored or logged.
#[derive(Default, Clone)]
pub struct Authenticator {
    keys: Vec<(KeyHash, Role)>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl Authenticator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Hashes a key the way the authenticator stores it.
    pub fn hash_key(key: &str) -> KeyHash {
        Sha256::digest(key.as_bytes()).into()
    }

    /// Parses a hex SHA-256 (64 hex digits), as found in configuration files.
    pub fn parse_key_hash(hex_digest: &str) -> Option<KeyHash> {
        let bytes = hex::decode(hex_digest.trim()).ok()?;
        bytes.try_into().ok()
    }

    /// Adds a key given in clear (it is hashed immediately).
    pub fn add_key(&mut self, key: &str, role: Role) {
        self.keys.push((Self::hash_key(key), role));
    }

    pub fn add_key_hash(&mut self, hash: KeyHash, role: Role) {
        self.keys.push((hash, role));
    }

    pub fn with_key(mut self, key: &str, role: Role) -> Self {
        self.add_key(key, role);
        self
    }

    /// The role of the bearer key in `headers`, if it is a known key.
    pub fn authenticate(&self, headers: &HeaderMap) -> Option<Role> {
        let token = bearer_token(headers)?;
        let presented = Self::hash_key(token);
        // Compare against every key without early exit, so timing reveals nothing.
        let mut found: Option<Role> = None;
        for (hash, role) in &self.keys {
            if constant_time_eq(hash, &presented) && found.is_none() {
                found = Some(*role);
            }
        }
        found
    }
}

fn constant_time_eq(a: &KeyHash, b: &KeyHash) -> bool {
    let diff = a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Requires `access` on every route of `router` (as a route layer: unknown paths still
/// answer 404, not 401).
pub fn guard<S>(router: Router<S>, authenticator: Arc<Authenticator>, access: Access) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router.route_layer(middleware::from_fn_with_state((authenticator, access), check))
}

async fn check(
    State((authenticator, access)): State<(Arc<Authenticator>, Access)>,
    request: Request,
    next: Next,
) -> Response {
    match authenticator.authenticate(request.headers()) {
        None => ApiError::Unauthorized.into_response(),
        Some(role) if !access.allows(role) => ApiError::Forbidden.into_response(),
        Some(_) => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(auth).unwrap());
        h
    }

    #[test]
    fn known_keys_get_their_role() {
        let a = Authenticator::new()
            .with_key("exec-key", Role::Executor)
            .with_key("admin-key", Role::Admin);
        assert_eq!(a.authenticate(&headers("Bearer exec-key")), Some(Role::Executor));
        assert_eq!(a.authenticate(&headers("bearer  admin-key ")), Some(Role::Admin));
        assert_eq!(a.authenticate(&headers("Bearer other")), None);
        assert_eq!(a.authenticate(&headers("Basic exec-key")), None);
        assert_eq!(a.authenticate(&headers("Bearer ")), None);
        assert_eq!(a.authenticate(&HeaderMap::new()), None);
    }

    #[test]
    fn hashes_from_configuration_are_accepted() {
        let hex_digest = hex::encode(Authenticator::hash_key("k"));
        let mut a = Authenticator::new();
        a.add_key_hash(Authenticator::parse_key_hash(&hex_digest).unwrap(), Role::Metrics);
        assert_eq!(a.authenticate(&headers("Bearer k")), Some(Role::Metrics));
        assert!(Authenticator::parse_key_hash("abcd").is_none());
        assert!(!format!("{a:?}").contains(&hex_digest));
    }

    #[test]
    fn admin_passes_every_role_check() {
        assert!(Access::Role(Role::Executor).allows(Role::Admin));
        assert!(!Access::Role(Role::Admin).allows(Role::Executor));
        assert!(!Access::Role(Role::Executor).allows(Role::Metrics));
        assert!(Access::AnyKey.allows(Role::Metrics));
    }
}

//! API keys and roles: keys are kept only as SHA-256 hashes, checked in constant time,
//! and enforced by a route layer ([`guard`]) that any group of routes can reuse. Keys
//! created through the API are found through a lookup hook (the store); the caller's
//! identity is put in the request's extensions as a [`Caller`] for auditing.

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

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Executor => "executor",
            Role::Admin => "admin",
            Role::Metrics => "metrics",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s.to_ascii_lowercase().as_str() {
            "executor" => Some(Role::Executor),
            "admin" => Some(Role::Admin),
            "metrics" => Some(Role::Metrics),
            _ => None,
        }
    }
}

/// Who made a request: the key's id and name, and its role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub id: String,
    pub name: String,
    pub role: Role,
}

/// Finds keys the authenticator does not hold itself (e.g. created through the API
/// and kept hashed in the store). Blocking; called off the async threads.
pub type KeyLookup = Arc<dyn Fn(&str) -> Option<Caller> + Send + Sync>;

/// The SHA-256 of a key.
pub type KeyHash = [u8; 32];

/// Known keys, as hashes with their roles. Keys themselves are never stored or logged.
#[derive(Default, Clone)]
pub struct Authenticator {
    keys: Vec<(KeyHash, Caller)>,
    lookup: Option<KeyLookup>,
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
        self.add_key_hash(Self::hash_key(key), role);
    }

    pub fn add_key_hash(&mut self, hash: KeyHash, role: Role) {
        let name = format!("key-{}", &hex::encode(hash)[..8]);
        self.add_named_key_hash(hash, &name, role);
    }

    /// Adds a key hash under a name (its caller id is `config:<name>`).
    pub fn add_named_key_hash(&mut self, hash: KeyHash, name: &str, role: Role) {
        let caller = Caller {
            id: format!("config:{name}"),
            name: name.to_owned(),
            role,
        };
        self.keys.push((hash, caller));
    }

    /// Also accepts the keys `lookup` finds.
    pub fn set_lookup(&mut self, lookup: KeyLookup) {
        self.lookup = Some(lookup);
    }

    pub fn with_key(mut self, key: &str, role: Role) -> Self {
        self.add_key(key, role);
        self
    }

    /// The role of the bearer key in `headers`, if it is a key held in memory.
    pub fn authenticate(&self, headers: &HeaderMap) -> Option<Role> {
        self.identify_static(bearer_token(headers)?).map(|c| c.role)
    }

    fn identify_static(&self, token: &str) -> Option<Caller> {
        let presented = Self::hash_key(token);
        // Compare against every key without early exit, so timing reveals nothing.
        let mut found: Option<&Caller> = None;
        for (hash, caller) in &self.keys {
            if constant_time_eq(hash, &presented) && found.is_none() {
                found = Some(caller);
            }
        }
        found.cloned()
    }

    /// The caller presenting the bearer key in `headers`: a key held in memory, else
    /// one the lookup hook finds.
    pub async fn identify(&self, headers: &HeaderMap) -> Option<Caller> {
        let token = bearer_token(headers)?;
        if let Some(caller) = self.identify_static(token) {
            return Some(caller);
        }
        let lookup = self.lookup.clone()?;
        let token = token.to_owned();
        tokio::task::spawn_blocking(move || lookup(&token))
            .await
            .ok()
            .flatten()
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
    mut request: Request,
    next: Next,
) -> Response {
    match authenticator.identify(request.headers()).await {
        None => ApiError::Unauthorized.into_response(),
        Some(caller) if !access.allows(caller.role) => ApiError::Forbidden.into_response(),
        Some(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
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

    #[tokio::test]
    async fn the_lookup_hook_finds_other_keys() {
        let mut a = Authenticator::new().with_key("static", Role::Executor);
        a.set_lookup(Arc::new(|key: &str| {
            (key == "stored").then(|| Caller {
                id: "key-1".into(),
                name: "ci".into(),
                role: Role::Admin,
            })
        }));
        assert_eq!(a.identify(&headers("Bearer stored")).await.unwrap().id, "key-1");
        assert_eq!(
            a.identify(&headers("Bearer static")).await.unwrap().role,
            Role::Executor
        );
        assert!(a.identify(&headers("Bearer other")).await.is_none());
    }

    #[test]
    fn admin_passes_every_role_check() {
        assert!(Access::Role(Role::Executor).allows(Role::Admin));
        assert!(!Access::Role(Role::Admin).allows(Role::Executor));
        assert!(!Access::Role(Role::Executor).allows(Role::Metrics));
        assert!(Access::AnyKey.allows(Role::Metrics));
    }
}

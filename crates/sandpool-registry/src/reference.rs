//! Image references (`[registry[:port]/]repo/name[:tag][@sha256:…]`) with Docker's defaults.

use std::fmt;

use crate::{Digest, RegistryError};

/// The registry used when a reference names none.
pub const DEFAULT_REGISTRY: &str = "docker.io";

/// What to fetch from a repository: a tag or a content digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reference {
    /// A mutable tag such as `latest`.
    Tag(String),
    /// An immutable manifest digest.
    Digest(Digest),
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tag(t) => f.write_str(t),
            Self::Digest(d) => f.write_str(d.as_str()),
        }
    }
}

/// A parsed, normalised image reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    /// Registry host with optional port, e.g. `docker.io`, `127.0.0.1:5000`.
    pub registry: String,
    /// Repository path, e.g. `library/debian`.
    pub repository: String,
    /// Tag (defaults to `latest` when neither tag nor digest is given).
    pub tag: Option<String>,
    /// Digest; when present it is what gets pulled.
    pub digest: Option<Digest>,
}

impl ImageRef {
    /// Parses a reference with Docker's rules: no registry means `docker.io`, a single-part
    /// name on Docker Hub gets `library/`, no tag and no digest means `latest`.
    pub fn parse(input: &str) -> Result<Self, RegistryError> {
        let bad = |reason: &str| RegistryError::InvalidReference {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        if input.is_empty() {
            return Err(bad("empty reference"));
        }
        if input.len() > 4096 || input.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("contains whitespace or control characters, or is too long"));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, d)) => (rest, Some(Digest::parse(d)?)),
            None => (input, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let i = last_slash + i;
                (&rest[..i], Some(rest[i + 1..].to_string()))
            }
            None => (rest, None),
        };
        if let Some(tag) = &tag {
            validate_tag(tag).map_err(|r| bad(&r))?;
        }
        let (registry, repository) = split_registry(name);
        validate_registry(&registry).map_err(|r| bad(&r))?;
        validate_repository(&repository).map_err(|r| bad(&r))?;
        let tag = match (&tag, &digest) {
            (None, None) => Some("latest".to_string()),
            _ => tag,
        };
        Ok(Self {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// What to fetch: the digest if present, else the tag.
    pub fn reference(&self) -> Reference {
        match (&self.digest, &self.tag) {
            (Some(d), _) => Reference::Digest(d.clone()),
            (None, Some(t)) => Reference::Tag(t.clone()),
            (None, None) => Reference::Tag("latest".to_string()),
        }
    }

    /// The host\[:port\] to contact (Docker Hub's API lives on `registry-1.docker.io`).
    pub fn api_host(&self) -> &str {
        if self.registry == DEFAULT_REGISTRY {
            "registry-1.docker.io"
        } else {
            &self.registry
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

fn split_registry(name: &str) -> (String, String) {
    match name.split_once('/') {
        Some((first, rest)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            let registry = if first == "index.docker.io" {
                DEFAULT_REGISTRY
            } else {
                first
            };
            let repo = if registry == DEFAULT_REGISTRY && !rest.contains('/') {
                format!("library/{rest}")
            } else {
                rest.to_string()
            };
            (registry.to_string(), repo)
        }
        Some(_) => (DEFAULT_REGISTRY.to_string(), name.to_string()),
        None => (DEFAULT_REGISTRY.to_string(), format!("library/{name}")),
    }
}

fn validate_registry(registry: &str) -> Result<(), String> {
    let (host, port) = match registry.rsplit_once(':') {
        Some((h, p)) if !registry.ends_with(']') => (h, Some(p)),
        _ => (registry, None),
    };
    if let Some(port) = port {
        if port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(format!("registry port `{port}` is not a valid port"));
        }
    }
    let host_ok = if host.starts_with('[') && host.ends_with(']') {
        host[1..host.len() - 1].parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        !host.is_empty()
            && host.split('.').all(|label| {
                !label.is_empty()
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
    };
    if !host_ok {
        return Err(format!("registry host `{host}` is not a valid host name"));
    }
    Ok(())
}

fn validate_repository(repo: &str) -> Result<(), String> {
    if repo.is_empty() {
        return Err("repository name is empty".to_string());
    }
    if repo.len() > 255 {
        return Err("repository name is longer than 255 characters".to_string());
    }
    for component in repo.split('/') {
        let ok = !component.is_empty()
            && component
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && component
                .bytes()
                .last()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && component
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
            && !component.contains("..")
            && !component.contains("___");
        if !ok {
            return Err(format!(
                "repository component `{component}` must be lowercase letters, digits and single separators (. _ __ -)"
            ));
        }
    }
    Ok(())
}

fn validate_tag(tag: &str) -> Result<(), String> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "tag `{tag}` must match [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> ImageRef {
        ImageRef::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn docker_hub_defaults() {
        let r = p("debian");
        assert_eq!(r.registry, "docker.io");
        assert_eq!(r.repository, "library/debian");
        assert_eq!(r.tag.as_deref(), Some("latest"));
        assert_eq!(r.api_host(), "registry-1.docker.io");
        let r = p("bitnami/redis:7.2");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("docker.io", "bitnami/redis")
        );
        assert_eq!(r.tag.as_deref(), Some("7.2"));
        assert_eq!(p("index.docker.io/busybox").repository, "library/busybox");
        assert_eq!(
            p("docker.io/python:3.12-slim").to_string(),
            "docker.io/library/python:3.12-slim"
        );
    }

    #[test]
    fn registries_with_ports_and_digests() {
        let r = p("127.0.0.1:5000/team/app:v1");
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "team/app");
        assert_eq!(r.tag.as_deref(), Some("v1"));
        let r = p("localhost/app");
        assert_eq!((r.registry.as_str(), r.repository.as_str()), ("localhost", "app"));
        let d = Digest::of(b"x");
        let r = p(&format!("ghcr.io/o/app@{d}"));
        assert_eq!(r.tag, None);
        assert_eq!(r.reference(), Reference::Digest(d.clone()));
        let r = p(&format!("localhost:5000/app:1.0@{d}"));
        assert_eq!(r.tag.as_deref(), Some("1.0"));
        assert_eq!(r.reference(), Reference::Digest(d));
        assert_eq!(p("[::1]:5000/app").registry, "[::1]:5000");
    }

    #[test]
    fn rejects_bad_references() {
        for bad in [
            "",
            "UPPER/case",
            "app:",
            "app:-bad",
            "app@sha256:short",
            "app@md5:abcd",
            "registry:99999/app",
            "a//b",
            "app name",
            "localhost:5000/",
            "repo/../etc",
            "-lead/app",
        ] {
            let err = ImageRef::parse(bad).expect_err(bad);
            assert!(
                matches!(
                    err,
                    RegistryError::InvalidReference { .. } | RegistryError::InvalidDigest { .. }
                ),
                "{bad}: {err}"
            );
            assert!(err.to_string().contains(bad) || bad.contains('@'), "{err}");
        }
    }
}

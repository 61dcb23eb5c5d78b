//! A client for the OCI distribution API (pull side): manifests, verified blob downloads,
//! Basic and Bearer-token authentication, plain HTTP only for loopback registries.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{Response, StatusCode};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt;

use crate::auth::{parse_challenge, Challenge, TokenResponse};
use crate::manifest::{
    parse_manifest, select_platform, Descriptor, ImageManifest, ManifestDoc, ACCEPTED_MANIFESTS,
};
use crate::{Credentials, Digest, ImageRef, RegistryError};

/// Largest manifest or index we accept.
pub(crate) const MANIFEST_LIMIT: u64 = 4 << 20;
/// Largest image config we accept.
pub(crate) const CONFIG_LIMIT: u64 = 16 << 20;

/// How to reach a registry.
#[derive(Clone, Debug)]
pub struct RegistryOptions {
    /// Credentials for Basic auth or for the token service; `None` pulls anonymously.
    pub credentials: Option<Credentials>,
    /// Use plain HTTP. Only allowed for loopback registries (`127.0.0.0/8`, `::1`,
    /// `localhost`); anything else fails with [`RegistryError::InsecureNotLoopback`].
    pub insecure: bool,
    /// TCP/TLS connect timeout.
    pub connect_timeout: Duration,
    /// Longest silence while reading a response.
    pub read_timeout: Duration,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        Self {
            credentials: None,
            insecure: false,
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(120),
        }
    }
}

/// A pull client for one registry configuration.
pub struct RegistryClient {
    http: reqwest::Client,
    options: RegistryOptions,
    /// `Authorization` header per `registry/repository`, once negotiated.
    auth: Mutex<HashMap<String, String>>,
}

impl RegistryClient {
    /// Builds a client (rustls; trusts the Mozilla roots and the host trust store).
    pub fn new(options: RegistryOptions) -> Result<Self, RegistryError> {
        let http = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .read_timeout(options.read_timeout)
            .user_agent(concat!("sandpool-registry/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| RegistryError::Http {
                url: "(client setup)".to_string(),
                source,
            })?;
        Ok(Self {
            http,
            options,
            auth: Mutex::new(HashMap::new()),
        })
    }

    fn base_url(&self, image: &ImageRef) -> Result<String, RegistryError> {
        let host = image.api_host();
        if self.options.insecure {
            if !is_loopback(host) {
                return Err(RegistryError::InsecureNotLoopback {
                    registry: image.registry.clone(),
                });
            }
            Ok(format!("http://{host}"))
        } else {
            Ok(format!("https://{host}"))
        }
    }

    /// Resolves the reference to a single-platform manifest (picking linux/amd64 from an
    /// index), verifying every document against its digest.
    pub(crate) async fn resolve(&self, image: &ImageRef) -> Result<(Digest, ImageManifest), RegistryError> {
        let reference = image.reference().to_string();
        let (bytes, content_type, header_digest) = self.fetch_manifest(image, &reference).await?;
        let digest = Digest::of(&bytes);
        if let Some(expected) = &image.digest {
            expected.check(&format!("manifest of {image}"), &digest)?;
        }
        if let Some(h) = header_digest.as_deref().and_then(|h| Digest::parse(h).ok()) {
            h.check(&format!("manifest of {image} (Docker-Content-Digest)"), &digest)?;
        }
        match parse_manifest(&format!("manifest of {image}"), content_type.as_deref(), &bytes)? {
            ManifestDoc::Image(m) => Ok((digest, m)),
            ManifestDoc::Index(index) => {
                let entry = select_platform(&image.to_string(), &index)?;
                let entry_digest = entry.digest()?;
                let what = format!("linux/amd64 manifest of {image}");
                let (bytes, _, _) = self.fetch_manifest(image, entry_digest.as_str()).await?;
                check_size(&what, entry.size, bytes.len() as u64)?;
                entry_digest.verify(&what, &bytes)?;
                match parse_manifest(&what, Some(&entry.media_type), &bytes)? {
                    ManifestDoc::Image(m) => Ok((entry_digest, m)),
                    ManifestDoc::Index(_) => Err(RegistryError::Malformed {
                        what,
                        reason: "an index entry points to another index".to_string(),
                    }),
                }
            }
        }
    }

    async fn fetch_manifest(
        &self,
        image: &ImageRef,
        reference: &str,
    ) -> Result<(Vec<u8>, Option<String>, Option<String>), RegistryError> {
        let url = format!(
            "{}/v2/{}/manifests/{reference}",
            self.base_url(image)?,
            image.repository
        );
        let resp = self.get(image, &url, true).await?;
        let resp = check_status(resp, &url, "manifest", &format!("{image}")).await?;
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let content_type = header(CONTENT_TYPE.as_str());
        let docker_digest = header("docker-content-digest");
        let bytes = read_limited(resp, &url, &format!("manifest of {image}"), MANIFEST_LIMIT).await?;
        Ok((bytes, content_type, docker_digest))
    }

    /// Fetches a small blob (the config) into memory, verified.
    pub(crate) async fn fetch_blob(
        &self,
        image: &ImageRef,
        desc: &Descriptor,
        what: &str,
        limit: u64,
    ) -> Result<Vec<u8>, RegistryError> {
        let digest = desc.digest()?;
        if desc.size > limit {
            return Err(RegistryError::TooLarge {
                what: what.to_string(),
                limit,
            });
        }
        let url = format!("{}/v2/{}/blobs/{digest}", self.base_url(image)?, image.repository);
        let resp = self.get(image, &url, false).await?;
        let resp = check_status(resp, &url, "blob", digest.as_str()).await?;
        let bytes = read_limited(resp, &url, what, limit).await?;
        check_size(what, desc.size, bytes.len() as u64)?;
        digest.verify(what, &bytes)?;
        Ok(bytes)
    }

    /// Streams a blob to `dest` (via a temporary file beside it), verifying size and digest
    /// before the atomic rename. `on_bytes` gets the running byte count.
    pub(crate) async fn download_blob(
        &self,
        image: &ImageRef,
        desc: &Descriptor,
        dest: &Path,
        on_bytes: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<(), RegistryError> {
        let digest = desc.digest()?;
        let what = format!("layer {digest} of {image}");
        let url = format!("{}/v2/{}/blobs/{digest}", self.base_url(image)?, image.repository);
        let resp = self.get(image, &url, false).await?;
        let mut resp = check_status(resp, &url, "blob", digest.as_str()).await?;
        let dir = dest.parent().unwrap_or(Path::new("."));
        let tmp = tempfile::Builder::new()
            .prefix(".download-")
            .tempfile_in(dir)
            .map_err(|e| RegistryError::io("create temporary file in", dir, e))?;
        let (std_file, tmp_path) = tmp.into_parts();
        let mut file = tokio::fs::File::from_std(std_file);
        let mut hasher = Sha256::new();
        let mut count = 0u64;
        let mut last_report = 0u64;
        while let Some(chunk) = resp.chunk().await.map_err(|source| RegistryError::Http {
            url: url.clone(),
            source,
        })? {
            count += chunk.len() as u64;
            if count > desc.size {
                return Err(RegistryError::SizeMismatch {
                    what,
                    expected: desc.size,
                    actual: count,
                });
            }
            hasher.update(&chunk);
            file.write_all(&chunk)
                .await
                .map_err(|e| RegistryError::io("write", &*tmp_path, e))?;
            if count - last_report >= 1 << 20 || count == desc.size {
                on_bytes(count);
                last_report = count;
            }
        }
        check_size(&what, desc.size, count)?;
        digest.check(&what, &Digest::from_hasher(hasher))?;
        file.sync_all()
            .await
            .map_err(|e| RegistryError::io("sync", &*tmp_path, e))?;
        drop(file);
        tmp_path
            .persist(dest)
            .map_err(|e| RegistryError::io("rename downloaded blob to", dest, e.error))?;
        Ok(())
    }

    /// GET with the negotiated Authorization header; on 401 negotiates once and retries.
    async fn get(&self, image: &ImageRef, url: &str, manifest: bool) -> Result<Response, RegistryError> {
        let key = format!("{}/{}", image.registry, image.repository);
        let cached = self.auth.lock().map(|m| m.get(&key).cloned()).unwrap_or(None);
        let resp = self.send(url, manifest, cached.as_deref()).await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let challenge = resp
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let header = self.negotiate(image, &challenge).await?;
        let resp = self.send(url, manifest, Some(&header)).await?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            return Err(match &self.options.credentials {
                None => RegistryError::AuthRequired {
                    registry: image.registry.clone(),
                },
                Some(_) => RegistryError::AuthFailed {
                    registry: image.registry.clone(),
                    reason: format!("{url} still answers 401 Unauthorized with the credentials"),
                },
            });
        }
        if let Ok(mut m) = self.auth.lock() {
            m.insert(key, header);
        }
        Ok(resp)
    }

    async fn send(&self, url: &str, manifest: bool, auth: Option<&str>) -> Result<Response, RegistryError> {
        let mut req = self.http.get(url);
        if manifest {
            req = req.header(ACCEPT, ACCEPTED_MANIFESTS.join(", "));
        }
        if let Some(a) = auth {
            req = req.header(AUTHORIZATION, a);
        }
        req.send().await.map_err(|source| RegistryError::Http {
            url: url.to_string(),
            source,
        })
    }

    /// Turns a 401 challenge into an `Authorization` header value.
    async fn negotiate(&self, image: &ImageRef, challenge: &str) -> Result<String, RegistryError> {
        let registry = image.registry.clone();
        match parse_challenge(challenge) {
            Some(Challenge::Basic) => match &self.options.credentials {
                Some(c) => Ok(c.basic_header()),
                None => Err(RegistryError::AuthRequired { registry }),
            },
            Some(Challenge::Bearer {
                realm,
                service,
                scope,
            }) => {
                let realm_url = reqwest::Url::parse(&realm).map_err(|e| RegistryError::UnsupportedAuth {
                    registry: registry.clone(),
                    challenge: format!("{challenge} (bad realm: {e})"),
                })?;
                let realm_host = realm_url.host_str().unwrap_or("");
                let plain_ok =
                    realm_url.scheme() == "http" && self.options.insecure && is_loopback(realm_host);
                if realm_url.scheme() != "https" && !plain_ok {
                    return Err(RegistryError::UnsupportedAuth {
                        registry,
                        challenge: format!("{challenge} (token realm must use https)"),
                    });
                }
                let scope = scope.unwrap_or_else(|| format!("repository:{}:pull", image.repository));
                let mut query: Vec<(&str, String)> = vec![("scope", scope)];
                if let Some(s) = service {
                    query.push(("service", s));
                }
                let mut req = self.http.get(realm_url).query(&query);
                if let Some(c) = &self.options.credentials {
                    req = req.header(AUTHORIZATION, c.basic_header());
                }
                let resp = req.send().await.map_err(|source| RegistryError::Http {
                    url: realm.clone(),
                    source,
                })?;
                if matches!(resp.status(), StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
                    return Err(match &self.options.credentials {
                        None => RegistryError::AuthRequired { registry },
                        Some(_) => RegistryError::AuthFailed {
                            registry,
                            reason: format!("token service {realm} answered {}", resp.status()),
                        },
                    });
                }
                let resp = check_status(resp, &realm, "token service", &realm).await?;
                let body = read_limited(resp, &realm, "token response", 1 << 20).await?;
                let token: TokenResponse =
                    serde_json::from_slice(&body).map_err(|e| RegistryError::Malformed {
                        what: format!("token response from {realm}"),
                        reason: e.to_string(),
                    })?;
                let token = token.into_token().ok_or_else(|| RegistryError::Malformed {
                    what: format!("token response from {realm}"),
                    reason: "no `token` or `access_token`".to_string(),
                })?;
                Ok(format!("Bearer {token}"))
            }
            None => Err(RegistryError::UnsupportedAuth {
                registry,
                challenge: challenge.to_string(),
            }),
        }
    }
}

/// True for `localhost`, `127.0.0.0/8` and `::1`, with or without a port.
pub(crate) fn is_loopback(host_port: &str) -> bool {
    let host = if let Some(rest) = host_port.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else if host_port.matches(':').count() > 1 {
        host_port
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn check_size(what: &str, expected: u64, actual: u64) -> Result<(), RegistryError> {
    if expected != actual {
        return Err(RegistryError::SizeMismatch {
            what: what.to_string(),
            expected,
            actual,
        });
    }
    Ok(())
}

async fn check_status(
    resp: Response,
    url: &str,
    what: &'static str,
    reference: &str,
) -> Result<Response, RegistryError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    if status == StatusCode::NOT_FOUND {
        return Err(RegistryError::NotFound {
            what,
            reference: reference.to_string(),
        });
    }
    let body = read_limited(resp, url, "error body", 64 << 10)
        .await
        .unwrap_or_default();
    let detail: String = String::from_utf8_lossy(&body)
        .chars()
        .filter(|c| !c.is_control())
        .take(300)
        .collect();
    Err(RegistryError::UnexpectedStatus {
        url: url.to_string(),
        status: status.as_u16(),
        detail,
    })
}

async fn read_limited(
    mut resp: Response,
    url: &str,
    what: &str,
    limit: u64,
) -> Result<Vec<u8>, RegistryError> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|source| RegistryError::Http {
        url: url.to_string(),
        source,
    })? {
        if out.len() as u64 + chunk.len() as u64 > limit {
            return Err(RegistryError::TooLarge {
                what: what.to_string(),
                limit,
            });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_detection() {
        for h in [
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
            "::1",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in ["example.com", "10.0.0.1:5000", "[::2]:80", "localhost.evil.com"] {
            assert!(!is_loopback(h), "{h}");
        }
    }

    #[test]
    fn insecure_refused_off_loopback() {
        let client = RegistryClient::new(RegistryOptions {
            insecure: true,
            ..Default::default()
        })
        .unwrap();
        let img = ImageRef::parse("registry.example.com/app").unwrap();
        assert!(matches!(
            client.base_url(&img),
            Err(RegistryError::InsecureNotLoopback { .. })
        ));
        let img = ImageRef::parse("127.0.0.1:5000/app").unwrap();
        assert_eq!(client.base_url(&img).unwrap(), "http://127.0.0.1:5000");
    }
}

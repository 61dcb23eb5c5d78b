//! The crate's error type: every failure names what failed (image, blob, layer entry).

use std::path::PathBuf;

/// Errors from resolving, pulling, verifying or unpacking images.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The image reference does not parse.
    #[error("invalid image reference `{input}`: {reason}")]
    InvalidReference {
        /// The text given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A digest does not parse or uses an unsupported algorithm.
    #[error("invalid digest `{input}`: {reason}")]
    InvalidDigest {
        /// The text given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Plain HTTP was requested for a registry that is not on loopback.
    #[error("registry `{registry}` is not a loopback address; plain HTTP (insecure) is only allowed for loopback registries")]
    InsecureNotLoopback {
        /// Registry host\[:port\].
        registry: String,
    },
    /// The HTTP request failed (connection, TLS, timeout).
    #[error("request to {url} failed: {source}")]
    Http {
        /// URL without credentials.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The registry answered with an unexpected status.
    #[error("{url} answered {status}: {detail}")]
    UnexpectedStatus {
        /// URL without credentials.
        url: String,
        /// HTTP status.
        status: u16,
        /// Start of the response body.
        detail: String,
    },
    /// The registry requires credentials and none were given.
    #[error("registry `{registry}` requires authentication and no credentials were given")]
    AuthRequired {
        /// Registry host\[:port\].
        registry: String,
    },
    /// The registry (or its token service) rejected the credentials.
    #[error("registry `{registry}` rejected the credentials: {reason}")]
    AuthFailed {
        /// Registry host\[:port\].
        registry: String,
        /// What the registry said.
        reason: String,
    },
    /// The registry's WWW-Authenticate challenge is missing or unsupported.
    #[error("registry `{registry}`: unsupported authentication challenge `{challenge}`")]
    UnsupportedAuth {
        /// Registry host\[:port\].
        registry: String,
        /// The challenge header.
        challenge: String,
    },
    /// The image, tag or blob does not exist.
    #[error("{what} not found: {reference}")]
    NotFound {
        /// What was looked up.
        what: &'static str,
        /// The reference or digest.
        reference: String,
    },
    /// Content does not hash to the digest its descriptor names.
    #[error("{what}: digest mismatch, expected {expected}, got {actual}")]
    DigestMismatch {
        /// Which blob.
        what: String,
        /// Digest from the descriptor.
        expected: String,
        /// Digest of the bytes received.
        actual: String,
    },
    /// Content length differs from the descriptor's size.
    #[error("{what}: size mismatch, descriptor says {expected} bytes, got {actual}")]
    SizeMismatch {
        /// Which blob.
        what: String,
        /// Size from the descriptor.
        expected: u64,
        /// Bytes received.
        actual: u64,
    },
    /// A document is larger than we accept.
    #[error("{what} is larger than the {limit}-byte limit")]
    TooLarge {
        /// Which document.
        what: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// A media type we do not handle.
    #[error("{what}: unsupported media type `{media_type}`")]
    UnsupportedMediaType {
        /// Which document or blob.
        what: String,
        /// The media type found.
        media_type: String,
    },
    /// A JSON document or archive structure is malformed.
    #[error("{what} is malformed: {reason}")]
    Malformed {
        /// Which document.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// An image index has no linux/amd64 manifest.
    #[error("image `{reference}` has no linux/amd64 manifest (available: {available})")]
    NoMatchingPlatform {
        /// The image.
        reference: String,
        /// Platforms listed in the index.
        available: String,
    },
    /// A source holds several images and none was selected.
    #[error("{source_desc} holds several images ({candidates}); name one")]
    AmbiguousImage {
        /// The layout or archive.
        source_desc: String,
        /// Names found.
        candidates: String,
    },
    /// A layer cannot be decompressed or read as tar.
    #[error("layer {layer}: {reason}")]
    Layer {
        /// Layer digest.
        layer: String,
        /// What went wrong.
        reason: String,
    },
    /// A layer entry would escape the root or is otherwise refused.
    #[error("layer {layer}: refusing entry `{entry}`: {reason}")]
    UnsafeEntry {
        /// Layer digest.
        layer: String,
        /// The entry's name in the archive.
        entry: String,
        /// Why it is refused.
        reason: String,
    },
    /// A filesystem operation failed.
    #[error("{what} `{}`: {source}", path.display())]
    Io {
        /// What we were doing.
        what: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A blocking task failed to complete.
    #[error("background task failed: {0}")]
    Task(String),
}

impl RegistryError {
    /// Builds an [`RegistryError::Io`].
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            what,
            path: path.into(),
            source,
        }
    }
}

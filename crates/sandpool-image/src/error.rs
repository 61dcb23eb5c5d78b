//! The crate's error type: every failure names what failed and how to fix it when we know.

use std::path::PathBuf;

/// Errors from building, locating or reading images.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A required host tool is not installed.
    #[error("`{tool}` is not installed on this host (install it with `apt-get install {package}`)")]
    MissingTool {
        /// The executable that was not found.
        tool: String,
        /// The Debian package providing it.
        package: String,
    },
    /// The build could not reach the Debian mirror or PyPI.
    #[error("image `{image}`: network failure during stage `{stage}` (is the Debian mirror / PyPI reachable?); last output:\n{tail}")]
    Network {
        /// Image name.
        image: String,
        /// Build stage that failed.
        stage: String,
        /// Last lines the tool printed.
        tail: String,
    },
    /// `pip install` failed inside the image.
    #[error("image `{image}`: pip install failed; last output:\n{tail}")]
    Pip {
        /// Image name.
        image: String,
        /// Last lines pip printed.
        tail: String,
    },
    /// Another stage of the build failed.
    #[error("image `{image}`: stage `{stage}` failed ({status}); last output:\n{tail}")]
    Build {
        /// Image name.
        image: String,
        /// Build stage that failed.
        stage: String,
        /// Exit status description.
        status: String,
        /// Last lines the tool printed.
        tail: String,
    },
    /// A filesystem operation failed.
    #[error("{what} `{}`: {source}", path.display())]
    Io {
        /// What we were doing.
        what: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A manifest line or package metadata could not be parsed.
    #[error("malformed manifest `{}` line {line}: {reason}", path.display())]
    Manifest {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// Building images needs root (mmdebstrap root mode, chroot, file ownership).
    #[error(
        "building image `{0}` requires root (mmdebstrap --mode=root); run as root or use a prebuilt data dir"
    )]
    NeedsRoot(String),
    /// The recipe itself is invalid (bad name, unsafe path, …).
    #[error("invalid recipe: {0}")]
    InvalidRecipe(String),
}

impl ImageError {
    /// Builds an [`ImageError::Io`] from a context and a path.
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| ImageError::Io { what, path, source }
    }
}

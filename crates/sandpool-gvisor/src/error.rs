//! Errors of setting up the gVisor backend.

#[derive(Debug, thiserror::Error)]
pub enum GvisorError {
    #[error("runsc at {path} is not usable: {message}")]
    Runsc { path: String, message: String },
    #[error("no gVisor platform works on this host (tried {tried}): {details}")]
    NoPlatform { tried: String, details: String },
    #[error(transparent)]
    Oci(#[from] sandpool_oci::OciError),
    #[error("gVisor state directory: {0}")]
    Io(#[from] std::io::Error),
}

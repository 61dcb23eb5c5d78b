//! Errors of setting up the runc backend.

#[derive(Debug, thiserror::Error)]
pub enum RuncError {
    #[error("runc at {path} is not usable: {message}")]
    Runc { path: String, message: String },
    #[error(transparent)]
    Oci(#[from] sandpool_oci::OciError),
    #[error("runc state directory: {0}")]
    Io(#[from] std::io::Error),
}

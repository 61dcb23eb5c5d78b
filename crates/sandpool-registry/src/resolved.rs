//! An image resolved to a manifest digest, its config and its layer blobs on local disk,
//! ready to unpack, whatever source it came from.

use std::path::PathBuf;

use crate::manifest::Descriptor;
use crate::{Digest, ImageConfig, RegistryError};

/// One layer blob on disk.
pub(crate) struct LayerBlob {
    /// The layer's descriptor (digest, size, media type).
    pub descriptor: Descriptor,
    /// Where the blob is.
    pub path: PathBuf,
    /// Whether the blob file still needs its digest checked (local sources).
    pub verify: bool,
}

/// Everything needed to build the root filesystem.
pub(crate) struct ResolvedImage {
    /// Manifest digest, the cache key.
    pub digest: Digest,
    /// Manifest bytes, stored beside the rootfs.
    pub manifest_bytes: Vec<u8>,
    /// Raw config bytes, stored beside the rootfs.
    pub config_bytes: Vec<u8>,
    /// Parsed config.
    pub config: ImageConfig,
    /// Layers, base first.
    pub layers: Vec<LayerBlob>,
    /// Keeps a temporary extraction directory alive until the build is done.
    pub _scratch: Option<tempfile::TempDir>,
}

impl ResolvedImage {
    /// Checks that the config lists one diff_id per layer.
    pub(crate) fn check_layer_count(&self) -> Result<(), RegistryError> {
        if self.config.diff_ids.len() != self.layers.len() {
            return Err(RegistryError::Malformed {
                what: format!("image {}", self.digest),
                reason: format!(
                    "manifest has {} layers but the config lists {} diff_ids",
                    self.layers.len(),
                    self.config.diff_ids.len()
                ),
            });
        }
        Ok(())
    }
}

//! Progress events reported while pulling and unpacking, for the service to print.

use std::sync::Arc;

use crate::Digest;

/// One step of preparing an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// The manifest was resolved to this digest.
    Resolved {
        /// Manifest digest (the cache key).
        digest: Digest,
        /// Number of layers.
        layers: usize,
    },
    /// The unpacked tree already exists and is reused.
    Cached {
        /// Manifest digest.
        digest: Digest,
    },
    /// Bytes of a layer downloaded so far (`index` counts from 1).
    Downloading {
        /// Layer number, 1-based.
        index: usize,
        /// Number of layers.
        count: usize,
        /// Bytes received so far.
        downloaded: u64,
        /// Layer size from its descriptor.
        total: u64,
    },
    /// A layer was already in the blob store.
    LayerPresent {
        /// Layer number, 1-based.
        index: usize,
        /// Number of layers.
        count: usize,
    },
    /// A layer is being unpacked.
    Unpacking {
        /// Layer number, 1-based.
        index: usize,
        /// Number of layers.
        count: usize,
    },
    /// The root filesystem is ready.
    Done {
        /// Manifest digest.
        digest: Digest,
    },
}

/// Callback receiving progress events; called from async tasks and blocking threads.
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// A callback that ignores every event.
pub fn ignore() -> ProgressFn {
    Arc::new(|_| {})
}

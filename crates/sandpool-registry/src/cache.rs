//! The root filesystem cache: resolves a source, fetches its blobs, unpacks the layers into
//! `<cache_dir>/rootfs/sha256-<hex>/` in a temporary directory renamed atomically, and
//! reuses finished trees.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::client::CONFIG_LIMIT;
use crate::docker_archive::open_docker_archive;
use crate::layout::open_layout;
use crate::progress::ProgressFn;
use crate::resolved::{LayerBlob, ResolvedImage};
use crate::unpack::{unpack_layer_file, Budget};
use crate::{Digest, ImageConfig, ImageRef, Progress, RegistryClient, RegistryError, RegistryOptions};

/// Where an image comes from.
#[derive(Clone, Debug)]
pub enum ImageSource {
    /// A registry.
    Registry {
        /// The image.
        image: ImageRef,
        /// How to reach the registry.
        options: RegistryOptions,
    },
    /// A local OCI image layout directory; `name` matches the ref-name annotation.
    OciLayout {
        /// The layout directory.
        path: PathBuf,
        /// Which image, when the layout holds several.
        name: Option<String>,
    },
    /// A `docker save` tarball; `name` is a repo tag such as `app:1`.
    DockerArchive {
        /// The tarball.
        path: PathBuf,
        /// Which image, when the archive holds several.
        name: Option<String>,
    },
}

/// A ready root filesystem.
#[derive(Clone, Debug)]
pub struct PreparedImage {
    /// Manifest digest (the cache key).
    pub digest: Digest,
    /// `<cache_dir>/rootfs/sha256-<hex>`, holding `rootfs/`, `config.json`, `manifest.json`.
    pub dir: PathBuf,
    /// The unpacked tree.
    pub rootfs: PathBuf,
    /// Runtime settings from the image config.
    pub config: ImageConfig,
    /// True when an existing tree was reused.
    pub reused: bool,
}

/// Default cap on an unpacked image: 16 GiB (file contents plus 512 bytes per entry).
pub const DEFAULT_MAX_ROOTFS_BYTES: u64 = 16 << 30;

/// The on-disk cache of blobs and unpacked root filesystems.
#[derive(Clone, Debug)]
pub struct ImageCache {
    dir: PathBuf,
    max_rootfs_bytes: u64,
}

impl ImageCache {
    /// A cache rooted at `dir` (created on first use).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            max_rootfs_bytes: DEFAULT_MAX_ROOTFS_BYTES,
        }
    }

    /// Caps the size of one unpacked image (see [`crate::unpack::Budget`]).
    pub fn with_max_rootfs_bytes(mut self, bytes: u64) -> Self {
        self.max_rootfs_bytes = bytes;
        self
    }

    /// Where the tree for `digest` lives (whether or not it exists yet).
    pub fn image_dir(&self, digest: &Digest) -> PathBuf {
        self.dir.join("rootfs").join(digest.dir_name())
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join("blobs").join("sha256").join(digest.hex())
    }

    /// Prepares `source`, building the tree unless it is already cached.
    pub async fn ensure(
        &self,
        source: &ImageSource,
        progress: ProgressFn,
    ) -> Result<PreparedImage, RegistryError> {
        match source {
            ImageSource::Registry { image, options } => {
                let client = RegistryClient::new(options.clone())?;
                self.pull(&client, image, progress).await
            }
            ImageSource::OciLayout { path, name } => {
                let (path, name) = (path.clone(), name.clone());
                let resolved = blocking(move || open_layout(&path, name.as_deref())).await?;
                announce(&resolved, &progress);
                self.build(resolved, progress).await
            }
            ImageSource::DockerArchive { path, name } => {
                let (path, name, scratch) = (path.clone(), name.clone(), self.dir.join("tmp"));
                let resolved =
                    blocking(move || open_docker_archive(&path, &scratch, name.as_deref())).await?;
                announce(&resolved, &progress);
                self.build(resolved, progress).await
            }
        }
    }

    /// Pulls `image` with `client` and prepares its tree.
    pub async fn pull(
        &self,
        client: &RegistryClient,
        image: &ImageRef,
        progress: ProgressFn,
    ) -> Result<PreparedImage, RegistryError> {
        let (digest, manifest) = client.resolve(image).await?;
        progress(&Progress::Resolved {
            digest: digest.clone(),
            layers: manifest.layers.len(),
        });
        if let Some(ready) = self.existing(&digest, &progress).await? {
            return Ok(ready);
        }
        let config_what = format!("config {} of {image}", manifest.config.digest);
        let config_bytes = client
            .fetch_blob(image, &manifest.config, &config_what, CONFIG_LIMIT)
            .await?;
        let config = ImageConfig::parse(&config_what, &config_bytes)?;
        let blob_dir = self.dir.join("blobs").join("sha256");
        tokio::fs::create_dir_all(&blob_dir)
            .await
            .map_err(|e| RegistryError::io("create directory", &blob_dir, e))?;
        let count = manifest.layers.len();
        let mut layers = Vec::with_capacity(count);
        for (i, desc) in manifest.layers.iter().enumerate() {
            let layer_digest = desc.digest()?;
            let path = self.blob_path(&layer_digest);
            if tokio::fs::try_exists(&path).await.unwrap_or(false) {
                progress(&Progress::LayerPresent { index: i + 1, count });
            } else {
                let total = desc.size;
                let p = Arc::clone(&progress);
                let on_bytes = move |downloaded| {
                    p(&Progress::Downloading {
                        index: i + 1,
                        count,
                        downloaded,
                        total,
                    })
                };
                client.download_blob(image, desc, &path, &on_bytes).await?;
            }
            layers.push(LayerBlob {
                descriptor: desc.clone(),
                path,
                verify: false,
            });
        }
        let manifest_bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| RegistryError::Malformed {
            what: format!("manifest of {image}"),
            reason: e.to_string(),
        })?;
        let resolved = ResolvedImage {
            digest,
            manifest_bytes,
            config_bytes,
            config,
            layers,
            _scratch: None,
        };
        self.build(resolved, progress).await
    }

    async fn existing(
        &self,
        digest: &Digest,
        progress: &ProgressFn,
    ) -> Result<Option<PreparedImage>, RegistryError> {
        let dir = self.image_dir(digest);
        let config_path = dir.join("config.json");
        if !tokio::fs::try_exists(&config_path).await.unwrap_or(false) {
            return Ok(None);
        }
        let bytes = tokio::fs::read(&config_path)
            .await
            .map_err(|e| RegistryError::io("read", &config_path, e))?;
        let config = ImageConfig::parse(&config_path.display().to_string(), &bytes)?;
        progress(&Progress::Cached {
            digest: digest.clone(),
        });
        progress(&Progress::Done {
            digest: digest.clone(),
        });
        Ok(Some(PreparedImage {
            digest: digest.clone(),
            rootfs: dir.join("rootfs"),
            dir,
            config,
            reused: true,
        }))
    }

    async fn build(
        &self,
        resolved: ResolvedImage,
        progress: ProgressFn,
    ) -> Result<PreparedImage, RegistryError> {
        if let Some(ready) = self.existing(&resolved.digest, &progress).await? {
            return Ok(ready);
        }
        resolved.check_layer_count()?;
        let final_dir = self.image_dir(&resolved.digest);
        let parent = self.dir.join("rootfs");
        let digest = resolved.digest.clone();
        let config = resolved.config.clone();
        let p = Arc::clone(&progress);
        let budget = Budget::new(self.max_rootfs_bytes);
        let reused = blocking(move || build_tree(&parent, &final_dir, resolved, budget, &p)).await?;
        progress(&Progress::Done {
            digest: digest.clone(),
        });
        let dir = self.image_dir(&digest);
        Ok(PreparedImage {
            digest,
            rootfs: dir.join("rootfs"),
            dir,
            config,
            reused,
        })
    }
}

/// Unpacks every layer into a temporary directory next to `final_dir`, then renames it into
/// place. Returns true when another builder won the race and its tree is used instead.
fn build_tree(
    parent: &Path,
    final_dir: &Path,
    image: ResolvedImage,
    mut budget: Budget,
    progress: &ProgressFn,
) -> Result<bool, RegistryError> {
    std::fs::create_dir_all(parent).map_err(|e| RegistryError::io("create directory", parent, e))?;
    let tmp = tempfile::Builder::new()
        .prefix(".build-")
        .tempdir_in(parent)
        .map_err(|e| RegistryError::io("create temporary directory in", parent, e))?;
    let rootfs = tmp.path().join("rootfs");
    std::fs::create_dir(&rootfs).map_err(|e| RegistryError::io("create directory", &rootfs, e))?;
    std::fs::set_permissions(&rootfs, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .map_err(|e| RegistryError::io("set mode of", &rootfs, e))?;
    let count = image.layers.len();
    for (i, layer) in image.layers.iter().enumerate() {
        progress(&Progress::Unpacking { index: i + 1, count });
        let digest = layer.descriptor.digest()?;
        if layer.verify {
            let (actual, size) = Digest::of_file(&layer.path)?;
            let what = format!("layer {digest}");
            digest.check(&what, &actual)?;
            if size != layer.descriptor.size {
                return Err(RegistryError::SizeMismatch {
                    what,
                    expected: layer.descriptor.size,
                    actual: size,
                });
            }
        }
        let stats = unpack_layer_file(
            &rootfs,
            &layer.path,
            digest.as_str(),
            Some(&image.config.diff_ids[i]),
            &mut budget,
        )?;
        tracing::debug!(layer = %digest, written = stats.written, whiteouts = stats.whiteouts,
            skipped = stats.skipped_special, "layer unpacked");
    }
    for (name, bytes) in [
        ("config.json", &image.config_bytes),
        ("manifest.json", &image.manifest_bytes),
    ] {
        let path = tmp.path().join(name);
        std::fs::write(&path, bytes).map_err(|e| RegistryError::io("write", &path, e))?;
    }
    let built = tmp.keep();
    match std::fs::rename(&built, final_dir) {
        Ok(()) => Ok(false),
        Err(_) if final_dir.join("config.json").exists() => {
            let _ = std::fs::remove_dir_all(&built);
            Ok(true)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&built);
            Err(RegistryError::io("move the unpacked tree to", final_dir, e))
        }
    }
}

fn announce(resolved: &ResolvedImage, progress: &ProgressFn) {
    progress(&Progress::Resolved {
        digest: resolved.digest.clone(),
        layers: resolved.layers.len(),
    });
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, RegistryError> + Send + 'static,
) -> Result<T, RegistryError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| RegistryError::Task(e.to_string()))?
}

//! The on-disk image cache: `<data_dir>/images/<name>-<digest12>/{rootfs,manifest.tsv,recipe.txt}`.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::lock::BuildLock;
use crate::{build, manifest, ImageError, ManifestEntry, Recipe, BUILDER_VERSION};

/// Debian mirror used unless `SANDPOOL_DEBIAN_MIRROR` or [`ImageStore::with_mirror`] says
/// otherwise. The mirror is not part of the recipe digest.
pub const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";

/// A built image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Recipe name, e.g. `python`.
    pub name: String,
    /// Full recipe digest (sha256 hex), recomputed from `recipe.txt`.
    pub digest: String,
    /// The image directory `<name>-<digest12>`.
    pub dir: PathBuf,
    /// The root filesystem to mount read-only.
    pub rootfs: PathBuf,
    /// Every installed dpkg and pip package.
    pub manifest: Vec<ManifestEntry>,
}

impl Image {
    /// Loads a finished image directory.
    fn load(dir: &Path) -> Result<Self, ImageError> {
        let file_name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = file_name
            .rsplit_once('-')
            .map(|(n, _)| n.to_string())
            .unwrap_or(file_name);
        let manifest_path = dir.join("manifest.tsv");
        let text =
            std::fs::read_to_string(&manifest_path).map_err(ImageError::io("reading", &manifest_path))?;
        let recipe_path = dir.join("recipe.txt");
        let recipe = std::fs::read(&recipe_path).map_err(ImageError::io("reading", &recipe_path))?;
        let mut hasher = Sha256::new();
        hasher.update(BUILDER_VERSION.as_bytes());
        hasher.update(b"\n");
        hasher.update(&recipe);
        Ok(Image {
            name,
            digest: hex::encode(hasher.finalize()),
            dir: dir.to_path_buf(),
            rootfs: dir.join("rootfs"),
            manifest: manifest::parse(&text, &manifest_path)?,
        })
    }

    /// The installed version of a package of the given kind, if any.
    pub fn package_version(&self, name: &str, kind: crate::PackageKind) -> Option<&str> {
        self.manifest
            .iter()
            .find(|e| e.kind == kind && e.name == name)
            .map(|e| e.version.as_str())
    }
}

/// Builds and finds images under `<data_dir>/images`.
#[derive(Debug, Clone)]
pub struct ImageStore {
    images_dir: PathBuf,
    mirror: String,
    build_ca_bundle: Option<PathBuf>,
}

/// The host trust store pip uses during builds unless `SANDPOOL_BUILD_CA_BUNDLE` says otherwise.
const HOST_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

impl ImageStore {
    /// A store rooted at `<data_dir>/images` (created on first build).
    pub fn new(data_dir: impl AsRef<Path>) -> Self {
        let mirror = std::env::var("SANDPOOL_DEBIAN_MIRROR").unwrap_or_else(|_| DEFAULT_MIRROR.into());
        let build_ca_bundle = std::env::var_os("SANDPOOL_BUILD_CA_BUNDLE")
            .map(PathBuf::from)
            .or_else(|| Some(PathBuf::from(HOST_CA_BUNDLE)).filter(|p| p.is_file()));
        ImageStore {
            images_dir: data_dir.as_ref().join("images"),
            mirror,
            build_ca_bundle,
        }
    }

    /// CA bundle pip trusts while building (default: `SANDPOOL_BUILD_CA_BUNDLE`, else the
    /// host's `/etc/ssl/certs/ca-certificates.crt`; `None`: the image's own bundle). It is
    /// not part of the digest and not left in the image; hash pinning keeps content identical.
    pub fn with_build_ca_bundle(mut self, bundle: Option<PathBuf>) -> Self {
        self.build_ca_bundle = bundle;
        self
    }

    /// Uses another Debian mirror for builds.
    pub fn with_mirror(mut self, mirror: impl Into<String>) -> Self {
        self.mirror = mirror.into();
        self
    }

    /// `<data_dir>/images`.
    pub fn images_dir(&self) -> &Path {
        &self.images_dir
    }

    /// Returns the image for `recipe`, building it first if it is not in the store. Concurrent
    /// callers (threads or processes) wait for one build. `progress` receives stage names and
    /// throttled tool output lines.
    pub fn ensure(&self, recipe: &Recipe, progress: &mut dyn FnMut(&str)) -> Result<Image, ImageError> {
        recipe.validate()?;
        let dir = self.images_dir.join(recipe.dir_name());
        if dir.is_dir() {
            return Image::load(&dir);
        }
        std::fs::create_dir_all(&self.images_dir).map_err(ImageError::io("creating", &self.images_dir))?;
        let lock_path = self.images_dir.join(format!(".{}.lock", recipe.dir_name()));
        let _lock = BuildLock::acquire(&lock_path, || {
            progress(&format!(
                "waiting for another process building {}",
                recipe.dir_name()
            ))
        })?;
        if dir.is_dir() {
            return Image::load(&dir);
        }
        tracing::info!(image = %recipe.dir_name(), mirror = %self.mirror, "building image");
        let started = std::time::Instant::now();
        let dir = build::build(
            recipe,
            &self.images_dir,
            &self.mirror,
            self.build_ca_bundle.as_deref(),
            progress,
        )?;
        tracing::info!(image = %recipe.dir_name(), seconds = started.elapsed().as_secs(), "image built");
        Image::load(&dir)
    }

    /// Every finished image in the store, sorted by directory name (unreadable directories are
    /// skipped with a warning).
    pub fn list(&self) -> Result<Vec<Image>, ImageError> {
        let entries = match std::fs::read_dir(&self.images_dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(ImageError::io("listing", &self.images_dir)(e)),
        };
        let mut dirs = Vec::new();
        for entry in entries {
            let path = entry.map_err(ImageError::io("listing", &self.images_dir))?.path();
            let hidden = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if !hidden && path.is_dir() {
                dirs.push(path);
            }
        }
        dirs.sort();
        let mut images = Vec::new();
        for dir in dirs {
            match Image::load(&dir) {
                Ok(image) => images.push(image),
                // A foreign or damaged directory must not hide the good images.
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "skipping unreadable image directory")
                }
            }
        }
        Ok(images)
    }

    /// The most recently built image called `name` (several may exist when a recipe changed).
    pub fn get(&self, name: &str) -> Result<Option<Image>, ImageError> {
        let mut newest: Option<(std::time::SystemTime, Image)> = None;
        for image in self.list()?.into_iter().filter(|i| i.name == name) {
            let built = std::fs::metadata(image.dir.join("manifest.tsv"))
                .and_then(|m| m.modified())
                .map_err(ImageError::io("reading", image.dir.join("manifest.tsv")))?;
            if !matches!(&newest, Some((t, _)) if *t >= built) {
                newest = Some((built, image));
            }
        }
        Ok(newest.map(|(_, image)| image))
    }
}

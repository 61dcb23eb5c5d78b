//! Reproducible, content-addressed sandbox images built from Debian packages and PyPI.
//!
//! A [`Recipe`] describes an image (Debian suite and packages, a pinned pip lock, the
//! unprivileged user and the empty directories). [`ImageStore::ensure`] builds it once with
//! `mmdebstrap` into `<data_dir>/images/<name>-<digest12>/` (`rootfs/`, `manifest.tsv`,
//! `recipe.txt`) and afterwards returns the cached image. The whole API is blocking.

mod build;
mod error;
mod hook;
mod lock;
mod manifest;
mod output;
mod recipe;
pub mod recipes;
mod remove;
mod store;

pub use error::ImageError;
pub use manifest::{ManifestEntry, PackageKind};
pub use recipe::{DirSpec, Recipe, UserSpec, VenvSpec, BUILDER_VERSION};
pub use store::{Image, ImageStore, DEFAULT_MIRROR};

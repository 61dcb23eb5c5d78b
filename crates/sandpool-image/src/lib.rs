//! Reproducible, content-addressed sandbox images built from Debian packages and PyPI.
//!
//! A [`Recipe`] describes an image (Debian suite and packages, a pinned pip lock, the
//! unprivileged user and the empty directories). [`ImageStore::ensure`] builds it once with
//! `mmdebstrap` into `<data_dir>/images/<name>-<digest12>/` (`rootfs/`, `manifest.tsv`,
//! `recipe.txt`) and afterwards returns the cached image. The whole API is blocking.
//!
//! Host requirements for building: root (mmdebstrap `--mode=root`, chroot), `apt-get install
//! mmdebstrap`, HTTP access to the Debian mirror and HTTPS access to PyPI. Environment:
//! `SANDPOOL_DEBIAN_MIRROR` (default [`DEFAULT_MIRROR`]) and `SANDPOOL_BUILD_CA_BUNDLE` (CA
//! bundle pip trusts during the build; default the host's `/etc/ssl/certs/ca-certificates.crt`).
//! Neither is part of the digest: Debian packages come from the mirror's current bookworm
//! (their exact versions are recorded in `manifest.tsv`), pip packages are pinned by hash.

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

//! Pulls OCI images and unpacks them safely into a cached root filesystem.
//!
//! Sources ([`ImageSource`]): any OCI distribution registry ([`ImageRef`], anonymous, basic or
//! bearer-token auth, plain HTTP only for loopback registries with
//! [`RegistryOptions::insecure`]), a local OCI image layout directory, or a `docker save`
//! tarball. Every blob (manifest, config, layers) is checked against its sha256 digest, and
//! every uncompressed layer against the config's `rootfs.diff_ids`.
//!
//! [`ImageCache::ensure`] unpacks the layers in order into
//! `<cache_dir>/rootfs/sha256-<hex>/rootfs` (keyed by the manifest digest) next to
//! `config.json` (the raw image config) and `manifest.json`; the tree is built in a temporary
//! directory and renamed into place atomically, and reused when present. Downloaded blobs are
//! kept in `<cache_dir>/blobs/sha256/<hex>`.
//!
//! Unpacking is hostile-input safe (see [`unpack`]): names with `..` or absolute names,
//! symlinks or hard links leading outside the root, are refused with an error naming the
//! entry; device nodes and fifos are skipped; setuid/setgid bits are dropped; ownership is kept
//! but never applied through a symlink.

mod auth;
mod cache;
mod client;
mod config;
mod digest;
mod docker_archive;
mod error;
mod layout;
mod manifest;
mod progress;
mod reference;
mod resolved;
pub mod unpack;

pub use auth::Credentials;
pub use cache::{ImageCache, ImageSource, PreparedImage, DEFAULT_MAX_ROOTFS_BYTES};
pub use client::{RegistryClient, RegistryOptions};
pub use config::ImageConfig;
pub use digest::Digest;
pub use error::RegistryError;
pub use progress::{ignore as no_progress, Progress, ProgressFn};
pub use reference::{ImageRef, Reference};

//! Loading an image from a local OCI image layout directory (`oci-layout`, `index.json`,
//! `blobs/sha256/…`), verifying every blob it reads.

use std::path::{Path, PathBuf};

use crate::client::{CONFIG_LIMIT, MANIFEST_LIMIT};
use crate::manifest::{parse_manifest, select_platform, Descriptor, ImageIndex, ManifestDoc};
use crate::resolved::{LayerBlob, ResolvedImage};
use crate::{Digest, ImageConfig, RegistryError};

/// Annotation naming an index entry (usually the tag).
const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Annotation containerd and Docker use for the full image name.
const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// Where a blob lives inside a layout.
pub(crate) fn blob_path(dir: &Path, digest: &Digest) -> PathBuf {
    dir.join("blobs").join("sha256").join(digest.hex())
}

/// Reads a whole small file, refusing anything above `limit` bytes.
pub(crate) fn read_small(path: &Path, what: &str, limit: u64) -> Result<Vec<u8>, RegistryError> {
    let meta = std::fs::metadata(path).map_err(|e| RegistryError::io("inspect", path, e))?;
    if meta.len() > limit {
        return Err(RegistryError::TooLarge {
            what: what.to_string(),
            limit,
        });
    }
    std::fs::read(path).map_err(|e| RegistryError::io("read", path, e))
}

fn read_blob(dir: &Path, desc: &Descriptor, what: &str, limit: u64) -> Result<Vec<u8>, RegistryError> {
    let digest = desc.digest()?;
    let path = blob_path(dir, &digest);
    if !path.exists() {
        return Err(RegistryError::NotFound {
            what: "blob",
            reference: format!("{digest} in {}", dir.display()),
        });
    }
    let bytes = read_small(&path, what, limit)?;
    if bytes.len() as u64 != desc.size {
        return Err(RegistryError::SizeMismatch {
            what: what.to_string(),
            expected: desc.size,
            actual: bytes.len() as u64,
        });
    }
    digest.verify(what, &bytes)?;
    Ok(bytes)
}

/// Opens the image `name` (matched against the ref-name annotations; optional when the
/// layout holds one image) from an OCI layout directory.
pub(crate) fn open_layout(dir: &Path, name: Option<&str>) -> Result<ResolvedImage, RegistryError> {
    let shown = dir.display().to_string();
    let marker = dir.join("oci-layout");
    if !marker.is_file() {
        return Err(RegistryError::Malformed {
            what: format!("OCI layout {shown}"),
            reason: "no `oci-layout` file".to_string(),
        });
    }
    let index_bytes = read_small(&dir.join("index.json"), "index.json", MANIFEST_LIMIT)?;
    let index: ImageIndex = serde_json::from_slice(&index_bytes).map_err(|e| RegistryError::Malformed {
        what: format!("{shown}/index.json"),
        reason: e.to_string(),
    })?;
    let entry = pick_entry(&shown, &index, name)?;
    let what = format!("manifest {} in {shown}", entry.digest);
    let bytes = read_blob(dir, entry, &what, MANIFEST_LIMIT)?;
    let (digest, manifest, manifest_bytes) = match parse_manifest(&what, Some(&entry.media_type), &bytes)? {
        ManifestDoc::Image(m) => (entry.digest()?, m, bytes),
        ManifestDoc::Index(inner) => {
            let chosen = select_platform(&shown, &inner)?;
            let what = format!("manifest {} in {shown}", chosen.digest);
            let bytes = read_blob(dir, chosen, &what, MANIFEST_LIMIT)?;
            match parse_manifest(&what, Some(&chosen.media_type), &bytes)? {
                ManifestDoc::Image(m) => (chosen.digest()?, m, bytes),
                ManifestDoc::Index(_) => {
                    return Err(RegistryError::Malformed {
                        what,
                        reason: "nested index".to_string(),
                    })
                }
            }
        }
    };
    let config_what = format!("config {} in {shown}", manifest.config.digest);
    let config_bytes = read_blob(dir, &manifest.config, &config_what, CONFIG_LIMIT)?;
    let config = ImageConfig::parse(&config_what, &config_bytes)?;
    let layers = manifest
        .layers
        .iter()
        .map(|d| {
            Ok(LayerBlob {
                path: blob_path(dir, &d.digest()?),
                descriptor: d.clone(),
                verify: true,
            })
        })
        .collect::<Result<Vec<_>, RegistryError>>()?;
    Ok(ResolvedImage {
        digest,
        manifest_bytes,
        config_bytes,
        config,
        layers,
        _scratch: None,
    })
}

fn pick_entry<'a>(
    shown: &str,
    index: &'a ImageIndex,
    name: Option<&str>,
) -> Result<&'a Descriptor, RegistryError> {
    let names = |d: &Descriptor| -> Vec<String> {
        let a = d.annotations.as_ref();
        [REF_NAME, CONTAINERD_NAME]
            .iter()
            .filter_map(|k| a.and_then(|a| a.get(*k)).cloned())
            .collect()
    };
    match name {
        Some(want) => index
            .manifests
            .iter()
            .find(|d| {
                names(d)
                    .iter()
                    .any(|n| n == want || n.rsplit_once(':').is_some_and(|(_, tag)| tag == want))
            })
            .ok_or_else(|| RegistryError::NotFound {
                what: "image",
                reference: format!("`{want}` in {shown}"),
            }),
        None => match index.manifests.as_slice() {
            [only] => Ok(only),
            [] => Err(RegistryError::Malformed {
                what: format!("{shown}/index.json"),
                reason: "no manifests".to_string(),
            }),
            many => Err(RegistryError::AmbiguousImage {
                source_desc: shown.to_string(),
                candidates: many
                    .iter()
                    .map(|d| names(d).first().cloned().unwrap_or_else(|| d.digest.clone()))
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        },
    }
}

//! Loading an image from a `docker save` tarball: both the OCI-layout form (Docker 25+) and
//! the legacy form (`manifest.json` + `<id>/layer.tar`), turned into a synthetic OCI
//! manifest whose digest keys the cache.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::client::{CONFIG_LIMIT, MANIFEST_LIMIT};
use crate::layout::{open_layout, read_small};
use crate::manifest::{Descriptor, ImageManifest, DOCKER_CONFIG, OCI_LAYER_TAR, OCI_MANIFEST};
use crate::resolved::{LayerBlob, ResolvedImage};
use crate::unpack::path::{normalise, Ctx};
use crate::{Digest, ImageConfig, RegistryError};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LegacyEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Extracts `archive` into a scratch directory under `scratch_parent` and opens the image
/// `name` (a repo tag such as `app:1`; optional when the archive holds one image).
pub(crate) fn open_docker_archive(
    archive: &Path,
    scratch_parent: &Path,
    name: Option<&str>,
) -> Result<ResolvedImage, RegistryError> {
    std::fs::create_dir_all(scratch_parent)
        .map_err(|e| RegistryError::io("create directory", scratch_parent, e))?;
    let scratch = tempfile::Builder::new()
        .prefix(".docker-archive-")
        .tempdir_in(scratch_parent)
        .map_err(|e| RegistryError::io("create temporary directory in", scratch_parent, e))?;
    let links = extract(archive, scratch.path())?;
    let root = scratch.path();
    if root.join("oci-layout").is_file()
        && root.join("index.json").is_file()
        && !root.join("manifest.json").is_file()
    {
        let mut image = open_layout(root, name)?;
        image._scratch = Some(scratch);
        return Ok(image);
    }
    if root.join("blobs").is_dir() && root.join("oci-layout").is_file() {
        // Docker 25+ writes both; the OCI index is authoritative.
        if let Ok(mut image) = open_layout(root, name) {
            image._scratch = Some(scratch);
            return Ok(image);
        }
    }
    let mut image = open_legacy(root, &links, &archive.display().to_string(), name)?;
    image._scratch = Some(scratch);
    Ok(image)
}

/// Extracts regular files and directories; records symlinks (used by Docker for duplicate
/// layers) for later lexical resolution instead of creating them.
fn extract(archive: &Path, dest: &Path) -> Result<HashMap<PathBuf, PathBuf>, RegistryError> {
    let shown = archive.display().to_string();
    let file = std::fs::File::open(archive).map_err(|e| RegistryError::io("open", archive, e))?;
    let bad = |e: std::io::Error| RegistryError::Malformed {
        what: format!("docker archive {shown}"),
        reason: e.to_string(),
    };
    let mut links = HashMap::new();
    let mut tar = tar::Archive::new(file);
    for item in tar.entries().map_err(bad)? {
        let mut item = item.map_err(bad)?;
        let name = item.path().map_err(bad)?.into_owned();
        let entry = name.display().to_string();
        let ctx = Ctx {
            layer: &shown,
            entry: &entry,
        };
        let rel: PathBuf = normalise(&ctx, &name)?.into_iter().collect();
        if rel.as_os_str().is_empty() {
            continue;
        }
        let out = dest.join(&rel);
        match item.header().entry_type() {
            tar::EntryType::Directory => {
                std::fs::create_dir_all(&out).map_err(|e| RegistryError::io("create directory", &out, e))?
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if let Some(parent) = out.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| RegistryError::io("create directory", parent, e))?;
                }
                let mut f =
                    std::fs::File::create_new(&out).map_err(|e| RegistryError::io("create", &out, e))?;
                std::io::copy(&mut item, &mut f).map_err(|e| RegistryError::io("write", &out, e))?;
            }
            tar::EntryType::Symlink => {
                let target = item.link_name().map_err(bad)?.unwrap_or_default().into_owned();
                links.insert(rel, target);
            }
            _ => {}
        }
    }
    Ok(links)
}

/// Resolves an archive member through recorded symlinks, lexically, inside the archive.
fn member(
    root: &Path,
    links: &HashMap<PathBuf, PathBuf>,
    shown: &str,
    name: &str,
) -> Result<PathBuf, RegistryError> {
    let ctx = Ctx {
        layer: shown,
        entry: name,
    };
    let mut rel: PathBuf = normalise(&ctx, Path::new(name))?.into_iter().collect();
    for _ in 0..40 {
        let Some(target) = links.get(&rel) else {
            return Ok(root.join(rel));
        };
        let base = rel.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut parts: Vec<std::ffi::OsString> = base.iter().map(|s| s.to_os_string()).collect();
        for c in target.components() {
            match c {
                std::path::Component::Normal(s) => parts.push(s.to_os_string()),
                std::path::Component::CurDir => {}
                std::path::Component::ParentDir if parts.pop().is_some() => {}
                _ => return Err(ctx.refuse(format!("symlink to `{}` leaves the archive", target.display()))),
            }
        }
        rel = parts.into_iter().collect();
    }
    Err(ctx.refuse("too many levels of symbolic links"))
}

fn open_legacy(
    root: &Path,
    links: &HashMap<PathBuf, PathBuf>,
    shown: &str,
    name: Option<&str>,
) -> Result<ResolvedImage, RegistryError> {
    let manifest_path = root.join("manifest.json");
    if !manifest_path.is_file() {
        return Err(RegistryError::Malformed {
            what: format!("docker archive {shown}"),
            reason: "neither manifest.json nor an OCI layout inside".to_string(),
        });
    }
    let bytes = read_small(&manifest_path, "manifest.json", MANIFEST_LIMIT)?;
    let entries: Vec<LegacyEntry> = serde_json::from_slice(&bytes).map_err(|e| RegistryError::Malformed {
        what: format!("{shown}: manifest.json"),
        reason: e.to_string(),
    })?;
    let tags = |e: &LegacyEntry| e.repo_tags.clone().unwrap_or_default();
    let entry = match name {
        Some(want) => entries
            .iter()
            .find(|e| {
                tags(e)
                    .iter()
                    .any(|t| t == want || t.ends_with(&format!("/{want}")))
            })
            .ok_or_else(|| RegistryError::NotFound {
                what: "image",
                reference: format!("`{want}` in {shown}"),
            })?,
        None => match entries.as_slice() {
            [only] => only,
            [] => {
                return Err(RegistryError::Malformed {
                    what: format!("{shown}: manifest.json"),
                    reason: "no images".to_string(),
                })
            }
            many => {
                return Err(RegistryError::AmbiguousImage {
                    source_desc: shown.to_string(),
                    candidates: many.iter().flat_map(tags).collect::<Vec<_>>().join(", "),
                })
            }
        },
    };
    let config_path = member(root, links, shown, &entry.config)?;
    let config_bytes = read_small(&config_path, "image config", CONFIG_LIMIT)?;
    let config_digest = Digest::of(&config_bytes);
    let stem = Path::new(&entry.config)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("");
    if let Ok(named) = Digest::parse(&format!("sha256:{stem}")) {
        named.check(&format!("{shown}: config {}", entry.config), &config_digest)?;
    }
    let config = ImageConfig::parse(&format!("{shown}: config"), &config_bytes)?;
    let mut layers = Vec::new();
    for layer in &entry.layers {
        let path = member(root, links, shown, layer)?;
        let (digest, size) = Digest::of_file(&path)?;
        let mut magic = [0u8; 2];
        let gz = std::fs::File::open(&path)
            .and_then(|mut f| f.read_exact(&mut magic))
            .is_ok()
            && magic == [0x1f, 0x8b];
        let media_type = if gz {
            "application/vnd.oci.image.layer.v1.tar+gzip"
        } else {
            OCI_LAYER_TAR
        };
        layers.push(LayerBlob {
            descriptor: Descriptor {
                media_type: media_type.to_string(),
                digest: digest.to_string(),
                size,
                platform: None,
                annotations: None,
            },
            path,
            verify: false,
        });
    }
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.to_string()),
        config: Descriptor {
            media_type: DOCKER_CONFIG.to_string(),
            digest: config_digest.to_string(),
            size: config_bytes.len() as u64,
            platform: None,
            annotations: None,
        },
        layers: layers.iter().map(|l| l.descriptor.clone()).collect(),
    };
    let manifest_bytes = serde_json::to_vec(&manifest).map_err(|e| RegistryError::Malformed {
        what: "synthetic manifest".to_string(),
        reason: e.to_string(),
    })?;
    Ok(ResolvedImage {
        digest: Digest::of(&manifest_bytes),
        manifest_bytes,
        config_bytes,
        config,
        layers,
        _scratch: None,
    })
}

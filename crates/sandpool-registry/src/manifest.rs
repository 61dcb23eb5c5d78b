//! OCI / Docker v2 manifests, image indexes and descriptors, with media-type checks and
//! linux/amd64 platform selection.

use serde::{Deserialize, Serialize};

use crate::{Digest, RegistryError};

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker v2 schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Uncompressed OCI layer.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// Every manifest media type we accept, for the `Accept` header.
pub const ACCEPTED_MANIFESTS: [&str; 4] = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];

/// Layer media types we can unpack (compression is detected from the content).
const LAYER_TYPES: [&str; 8] = [
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
];

/// A content descriptor.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    pub media_type: String,
    /// Digest of the referenced content.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// Platform (index entries only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<std::collections::BTreeMap<String, String>>,
}

impl Descriptor {
    /// The validated digest.
    pub fn digest(&self) -> Result<Digest, RegistryError> {
        Digest::parse(&self.digest)
    }
}

/// Platform of an index entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Platform {
    /// e.g. `amd64`.
    pub architecture: String,
    /// e.g. `linux`.
    pub os: String,
    /// e.g. `v8`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// An image manifest (OCI or Docker v2 schema 2).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    /// Always 2.
    pub schema_version: u32,
    /// Manifest media type (optional in OCI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The image config.
    pub config: Descriptor,
    /// Layers, base first.
    pub layers: Vec<Descriptor>,
}

/// An image index / manifest list.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    /// Always 2.
    pub schema_version: u32,
    /// Index media type (optional in OCI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Entries.
    pub manifests: Vec<Descriptor>,
}

/// A parsed manifest document.
#[derive(Debug)]
pub enum ManifestDoc {
    /// A single image.
    Image(ImageManifest),
    /// An index to choose from.
    Index(ImageIndex),
}

/// Parses a manifest or index; `content_type` is the HTTP header or descriptor media type.
pub fn parse_manifest(
    what: &str,
    content_type: Option<&str>,
    bytes: &[u8],
) -> Result<ManifestDoc, RegistryError> {
    let malformed = |e: serde_json::Error| RegistryError::Malformed {
        what: what.to_string(),
        reason: e.to_string(),
    };
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        schema_version: Option<u32>,
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
    }
    let probe: Probe = serde_json::from_slice(bytes).map_err(malformed)?;
    let header = content_type
        .map(|c| c.split(';').next().unwrap_or("").trim())
        .filter(|c| !c.is_empty() && *c != "application/json" && *c != "application/octet-stream");
    let media_type = probe
        .media_type
        .as_deref()
        .or(header)
        .unwrap_or(if probe.manifests.is_some() {
            OCI_INDEX
        } else {
            OCI_MANIFEST
        });
    if probe.schema_version != Some(2) {
        return Err(RegistryError::UnsupportedMediaType {
            what: what.to_string(),
            media_type: format!(
                "{media_type} (schemaVersion {:?}; only schema 2 is supported)",
                probe.schema_version
            ),
        });
    }
    match media_type {
        OCI_MANIFEST | DOCKER_MANIFEST => {
            let m: ImageManifest = serde_json::from_slice(bytes).map_err(malformed)?;
            check_config_type(what, &m.config)?;
            for layer in &m.layers {
                check_layer_type(what, layer)?;
                layer.digest()?;
            }
            m.config.digest()?;
            Ok(ManifestDoc::Image(m))
        }
        OCI_INDEX | DOCKER_LIST => Ok(ManifestDoc::Index(
            serde_json::from_slice(bytes).map_err(malformed)?,
        )),
        other => Err(RegistryError::UnsupportedMediaType {
            what: what.to_string(),
            media_type: other.to_string(),
        }),
    }
}

fn check_config_type(what: &str, config: &Descriptor) -> Result<(), RegistryError> {
    if config.media_type == OCI_CONFIG || config.media_type == DOCKER_CONFIG {
        return Ok(());
    }
    Err(RegistryError::UnsupportedMediaType {
        what: format!("{what} config"),
        media_type: config.media_type.clone(),
    })
}

fn check_layer_type(what: &str, layer: &Descriptor) -> Result<(), RegistryError> {
    if LAYER_TYPES.contains(&layer.media_type.as_str()) {
        return Ok(());
    }
    Err(RegistryError::UnsupportedMediaType {
        what: format!("{what} layer {}", layer.digest),
        media_type: layer.media_type.clone(),
    })
}

/// Picks the linux/amd64 entry of an index.
pub fn select_platform<'a>(reference: &str, index: &'a ImageIndex) -> Result<&'a Descriptor, RegistryError> {
    index
        .manifests
        .iter()
        .find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.os == "linux" && p.architecture == "amd64")
                && ACCEPTED_MANIFESTS.contains(&d.media_type.as_str())
        })
        .ok_or_else(|| RegistryError::NoMatchingPlatform {
            reference: reference.to_string(),
            available: index
                .manifests
                .iter()
                .map(|d| match &d.platform {
                    Some(p) => format!("{}/{}", p.os, p.architecture),
                    None => "unspecified".to_string(),
                })
                .collect::<Vec<_>>()
                .join(", "),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(media: &str, platform: Option<(&str, &str)>) -> String {
        let d = Digest::of(media.as_bytes());
        let p = platform.map_or(String::new(), |(os, arch)| {
            format!(r#","platform":{{"os":"{os}","architecture":"{arch}"}}"#)
        });
        format!(r#"{{"mediaType":"{media}","digest":"{d}","size":1{p}}}"#)
    }

    #[test]
    fn parses_manifest_and_picks_amd64() {
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{},"layers":[{}]}}"#,
            desc(OCI_CONFIG, None),
            desc("application/vnd.oci.image.layer.v1.tar+gzip", None)
        );
        assert!(matches!(
            parse_manifest("m", None, m.as_bytes()).unwrap(),
            ManifestDoc::Image(_)
        ));
        let idx = format!(
            r#"{{"schemaVersion":2,"manifests":[{},{}]}}"#,
            desc(OCI_MANIFEST, Some(("linux", "arm64"))),
            desc(DOCKER_MANIFEST, Some(("linux", "amd64")))
        );
        let ManifestDoc::Index(i) = parse_manifest("i", Some(OCI_INDEX), idx.as_bytes()).unwrap() else {
            panic!("not an index")
        };
        assert_eq!(select_platform("x", &i).unwrap().media_type, DOCKER_MANIFEST);
        i.manifests[0].digest().unwrap();
    }

    #[test]
    fn rejects_malformed_and_unknown() {
        assert!(matches!(
            parse_manifest("m", None, b"{not json"),
            Err(RegistryError::Malformed { .. })
        ));
        let v1 = br#"{"schemaVersion":1,"name":"x"}"#;
        assert!(matches!(
            parse_manifest("m", None, v1),
            Err(RegistryError::UnsupportedMediaType { .. })
        ));
        let odd = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{},"layers":[{}]}}"#,
            desc(OCI_CONFIG, None),
            desc("application/x-evil", None)
        );
        let err = parse_manifest("m", None, odd.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("application/x-evil"), "{err}");
        let idx = format!(
            r#"{{"schemaVersion":2,"manifests":[{}]}}"#,
            desc(OCI_MANIFEST, Some(("linux", "arm64")))
        );
        let ManifestDoc::Index(i) = parse_manifest("i", None, idx.as_bytes()).unwrap() else {
            panic!("not an index")
        };
        let err = select_platform("img", &i).unwrap_err();
        assert!(err.to_string().contains("linux/arm64"), "{err}");
    }
}

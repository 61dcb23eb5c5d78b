//! The parts of an OCI image config the runtime needs: user, env, entrypoint, cmd, working
//! directory, exposed ports, and the uncompressed layer digests (`rootfs.diff_ids`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Digest, RegistryError};

/// Runtime settings from an image config.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// `user[:group]`, empty for root.
    pub user: String,
    /// `KEY=value` entries.
    pub env: Vec<String>,
    /// Entrypoint argv.
    pub entrypoint: Vec<String>,
    /// Default arguments.
    pub cmd: Vec<String>,
    /// Working directory, empty for `/`.
    pub working_dir: String,
    /// Exposed ports such as `8080/tcp`.
    pub exposed_ports: Vec<String>,
    /// sha256 of each uncompressed layer, base first.
    pub diff_ids: Vec<Digest>,
}

#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    architecture: Option<String>,
    #[serde(default)]
    os: Option<String>,
    #[serde(default)]
    config: Option<RawRuntime>,
    rootfs: RawRootfs,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RawRuntime {
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    env: Option<Vec<String>>,
    #[serde(default)]
    entrypoint: Option<Vec<String>>,
    #[serde(default)]
    cmd: Option<Vec<String>>,
    #[serde(default)]
    working_dir: Option<String>,
    #[serde(default)]
    exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct RawRootfs {
    #[serde(rename = "type")]
    kind: String,
    diff_ids: Vec<String>,
}

impl ImageConfig {
    /// Parses a config blob; refuses non-linux/amd64 images and non-`layers` rootfs types.
    pub fn parse(what: &str, bytes: &[u8]) -> Result<Self, RegistryError> {
        let malformed = |reason: String| RegistryError::Malformed {
            what: what.to_string(),
            reason,
        };
        let raw: RawConfig = serde_json::from_slice(bytes).map_err(|e| malformed(e.to_string()))?;
        if raw.rootfs.kind != "layers" {
            return Err(malformed(format!(
                "rootfs.type is `{}`, expected `layers`",
                raw.rootfs.kind
            )));
        }
        if let (Some(os), Some(arch)) = (&raw.os, &raw.architecture) {
            if os != "linux" || arch != "amd64" {
                return Err(malformed(format!(
                    "image is for {os}/{arch}, only linux/amd64 runs here"
                )));
            }
        }
        let diff_ids = raw
            .rootfs
            .diff_ids
            .iter()
            .map(|d| Digest::parse(d))
            .collect::<Result<Vec<_>, _>>()?;
        let rt = raw.config.unwrap_or_default();
        Ok(Self {
            user: rt.user.unwrap_or_default(),
            env: rt.env.unwrap_or_default(),
            entrypoint: rt.entrypoint.unwrap_or_default(),
            cmd: rt.cmd.unwrap_or_default(),
            working_dir: rt.working_dir.unwrap_or_default(),
            exposed_ports: rt.exposed_ports.unwrap_or_default().into_keys().collect(),
            diff_ids,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_runtime_fields() {
        let d = Digest::of(b"layer");
        let json = format!(
            r#"{{"architecture":"amd64","os":"linux","config":{{"User":"app","Env":["A=1"],"Entrypoint":["/bin/sh"],"Cmd":["-c","x"],"WorkingDir":"/srv","ExposedPorts":{{"8080/tcp":{{}}}}}},"rootfs":{{"type":"layers","diff_ids":["{d}"]}}}}"#
        );
        let c = ImageConfig::parse("cfg", json.as_bytes()).unwrap();
        assert_eq!(c.user, "app");
        assert_eq!(c.env, ["A=1"]);
        assert_eq!(c.entrypoint, ["/bin/sh"]);
        assert_eq!(c.cmd, ["-c", "x"]);
        assert_eq!(c.working_dir, "/srv");
        assert_eq!(c.exposed_ports, ["8080/tcp"]);
        assert_eq!(c.diff_ids, [d]);
    }

    #[test]
    fn rejects_bad_configs() {
        assert!(ImageConfig::parse("cfg", b"[]").is_err());
        assert!(ImageConfig::parse("cfg", br#"{"rootfs":{"type":"layers","diff_ids":["x"]}}"#).is_err());
        let arm = br#"{"os":"linux","architecture":"arm64","rootfs":{"type":"layers","diff_ids":[]}}"#;
        assert!(ImageConfig::parse("cfg", arm)
            .unwrap_err()
            .to_string()
            .contains("arm64"));
        let minimal = br#"{"rootfs":{"type":"layers","diff_ids":[]}}"#;
        assert_eq!(
            ImageConfig::parse("cfg", minimal).unwrap(),
            ImageConfig::default()
        );
    }
}

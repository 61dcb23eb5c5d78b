//! Builds OCI images in memory: tar layers (with raw, possibly hostile names), a config and
//! a manifest, all with their real digests.

use std::io::Write;

use sandpool_registry::Digest;
use tar::EntryType;

/// One tar entry: name, kind, mode, content (or link target), uid/gid.
pub struct Entry {
    pub name: String,
    pub kind: EntryType,
    pub mode: u32,
    pub data: String,
    pub owner: (u64, u64),
}

pub fn file(name: &str, mode: u32, data: &str) -> Entry {
    Entry {
        name: name.into(),
        kind: EntryType::Regular,
        mode,
        data: data.into(),
        owner: (0, 0),
    }
}

pub fn dir(name: &str, mode: u32) -> Entry {
    Entry {
        name: name.into(),
        kind: EntryType::Directory,
        mode,
        data: String::new(),
        owner: (0, 0),
    }
}

pub fn symlink(name: &str, target: &str) -> Entry {
    Entry {
        name: name.into(),
        kind: EntryType::Symlink,
        mode: 0o777,
        data: target.into(),
        owner: (0, 0),
    }
}

pub fn hardlink(name: &str, target: &str) -> Entry {
    Entry {
        name: name.into(),
        kind: EntryType::Link,
        mode: 0o644,
        data: target.into(),
        owner: (0, 0),
    }
}

pub fn special(name: &str, kind: EntryType) -> Entry {
    Entry {
        name: name.into(),
        kind,
        mode: 0o666,
        data: String::new(),
        owner: (0, 0),
    }
}

impl Entry {
    pub fn owned(mut self, uid: u64, gid: u64) -> Self {
        self.owner = (uid, gid);
        self
    }
}

/// Tar bytes; names are written raw into the header so `..` and absolute names survive.
pub fn tar_of(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(e.kind);
        h.set_mode(e.mode);
        h.set_uid(e.owner.0);
        h.set_gid(e.owner.1);
        h.set_mtime(1_700_000_000);
        h.as_gnu_mut().unwrap().name[..e.name.len()].copy_from_slice(e.name.as_bytes());
        let body: &[u8] = match e.kind {
            EntryType::Symlink | EntryType::Link => {
                h.set_link_name(&e.data).unwrap();
                &[]
            }
            _ => e.data.as_bytes(),
        };
        h.set_size(body.len() as u64);
        h.set_cksum();
        b.append(&h, body).unwrap();
    }
    b.into_inner().unwrap()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A layer blob with its media type and the digest of its uncompressed tar.
pub struct Layer {
    pub blob: Vec<u8>,
    pub media_type: &'static str,
    pub diff_id: Digest,
}

pub fn layer(entries: &[Entry], compress: bool) -> Layer {
    let tar = tar_of(entries);
    let diff_id = Digest::of(&tar);
    if compress {
        Layer {
            blob: gzip(&tar),
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip",
            diff_id,
        }
    } else {
        Layer {
            blob: tar,
            media_type: "application/vnd.oci.image.layer.v1.tar",
            diff_id,
        }
    }
}

/// A complete image: config and manifest bytes plus the layers.
pub struct Image {
    pub layers: Vec<Layer>,
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
}

impl Image {
    pub fn digest(&self) -> Digest {
        Digest::of(&self.manifest)
    }
}

pub fn image(layers: Vec<Layer>) -> Image {
    let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.to_string()).collect();
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "User": "1000:1000",
            "Env": ["PATH=/usr/bin:/bin", "GREETING=hello"],
            "Entrypoint": ["/bin/tool"],
            "Cmd": ["--serve"],
            "WorkingDir": "/home/app",
            "ExposedPorts": {"8080/tcp": {}}
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids}
    });
    let config = serde_json::to_vec(&config).unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": Digest::of(&config).to_string(),
            "size": config.len()
        },
        "layers": layers.iter().map(|l| serde_json::json!({
            "mediaType": l.media_type,
            "digest": Digest::of(&l.blob).to_string(),
            "size": l.blob.len()
        })).collect::<Vec<_>>()
    });
    Image {
        manifest: serde_json::to_vec(&manifest).unwrap(),
        layers,
        config,
    }
}

/// An index listing `amd64` and `arm64` manifests.
pub fn index(amd64: &Image, arm64: &Image) -> Vec<u8> {
    let entry = |img: &Image, arch: &str| {
        serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": img.digest().to_string(),
            "size": img.manifest.len(),
            "platform": {"os": "linux", "architecture": arch}
        })
    };
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry(arm64, "arm64"), entry(amd64, "amd64")]
    }))
    .unwrap()
}

/// The three-layer image the tests check: a whiteout, an opaque directory, a hard link, a
/// symlinked parent, a setuid binary, a device node and owned directories.
pub fn sample() -> Image {
    image(vec![
        layer(
            &[
                dir("etc/", 0o755),
                file("etc/hello", 0o644, "hello from layer 1\n"),
                file("etc/removed.txt", 0o644, "deleted by layer 2\n"),
                dir("bin/", 0o755),
                file("bin/tool", 0o4755, "#!/bin/sh\necho tool\n"),
                dir("opq/", 0o755),
                file("opq/old", 0o644, "hidden by the opaque marker\n"),
                dir("usr/", 0o755),
                dir("usr/lib/", 0o755),
                symlink("lib", "usr/lib"),
            ],
            true,
        ),
        layer(
            &[
                file("etc/.wh.removed.txt", 0o644, ""),
                file("opq/.wh..wh..opq", 0o644, ""),
                file("opq/new", 0o640, "layer 2\n"),
                hardlink("etc/hello-link", "etc/hello"),
                file("lib/libdemo.so", 0o755, "ELF"),
            ],
            false,
        ),
        layer(
            &[
                dir("dev/", 0o755),
                special("dev/null", EntryType::Char),
                dir("home/", 0o755),
                dir("home/app/", 0o750).owned(1000, 1000),
                file("home/app/.profile", 0o600, "export A=1\n").owned(1000, 1000),
            ],
            true,
        ),
    ])
}

/// Checks the unpacked tree of [`sample`].
pub fn assert_sample_tree(rootfs: &std::path::Path) {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let read = |p: &str| std::fs::read_to_string(rootfs.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    let meta = |p: &str| std::fs::symlink_metadata(rootfs.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    let mode = |p: &str| meta(p).permissions().mode() & 0o7777;
    assert_eq!(read("etc/hello"), "hello from layer 1\n");
    assert!(!rootfs.join("etc/removed.txt").exists(), "whiteout not applied");
    assert!(
        !rootfs.join("etc/.wh.removed.txt").exists(),
        "whiteout marker written"
    );
    assert!(
        !rootfs.join("opq/old").exists(),
        "opaque directory kept a lower file"
    );
    assert!(!rootfs.join("opq/.wh..wh..opq").exists());
    assert_eq!(read("opq/new"), "layer 2\n");
    assert_eq!(mode("opq/new"), 0o640);
    assert_eq!(mode("bin/tool"), 0o755, "setuid bit must be dropped");
    assert_eq!(meta("etc/hello").ino(), meta("etc/hello-link").ino(), "hard link");
    assert_eq!(
        std::fs::read_link(rootfs.join("lib")).unwrap(),
        std::path::Path::new("usr/lib")
    );
    assert_eq!(
        read("usr/lib/libdemo.so"),
        "ELF",
        "write through the relative lib symlink"
    );
    assert!(rootfs.join("dev").is_dir());
    assert!(!rootfs.join("dev/null").exists(), "device nodes are skipped");
    assert_eq!(mode("home/app"), 0o750);
    assert_eq!((meta("home/app").uid(), meta("home/app").gid()), (1000, 1000));
    assert_eq!(meta("home/app/.profile").uid(), 1000);
}

/// Checks the config of [`sample`].
pub fn assert_sample_config(config: &sandpool_registry::ImageConfig) {
    assert_eq!(config.user, "1000:1000");
    assert_eq!(config.env, ["PATH=/usr/bin:/bin", "GREETING=hello"]);
    assert_eq!(config.entrypoint, ["/bin/tool"]);
    assert_eq!(config.cmd, ["--serve"]);
    assert_eq!(config.working_dir, "/home/app");
    assert_eq!(config.exposed_ports, ["8080/tcp"]);
    assert_eq!(config.diff_ids.len(), 3);
}

//! Unit tests for unpacking: whiteouts, modes, links and hostile archives built in memory.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use super::*;

/// Builds tar bytes from (name, kind, mode, data-or-link-target) tuples, writing raw names
/// so hostile paths survive (the `tar` builder would refuse `..` and absolute names).
fn tar_of(entries: &[(&str, EntryType, u32, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, mode, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_mode(*mode);
        h.set_uid(1234);
        h.set_gid(4321);
        h.set_mtime(1_600_000_000);
        {
            let gnu = h.as_gnu_mut().unwrap();
            gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        }
        let body: &[u8] = match kind {
            EntryType::Symlink | EntryType::Link => {
                h.set_link_name(data).unwrap();
                &[]
            }
            _ => data.as_bytes(),
        };
        h.set_size(body.len() as u64);
        h.set_cksum();
        b.append(&h, body).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A zstd frame made of raw (stored) blocks: valid zstd without needing an encoder.
fn zstd_raw(bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38];
    let chunks: Vec<&[u8]> = bytes.chunks(100_000).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let last = u32::from(i + 1 == chunks.len());
        let header = last | ((chunk.len() as u32) << 3);
        out.extend_from_slice(&header.to_le_bytes()[..3]);
        out.extend_from_slice(chunk);
    }
    out
}

const F: EntryType = EntryType::Regular;
const D: EntryType = EntryType::Directory;
const S: EntryType = EntryType::Symlink;
const L: EntryType = EntryType::Link;

fn unpack(root: &Path, bytes: &[u8]) -> Result<LayerStats, RegistryError> {
    unpack_layer_bytes(root, bytes, "test-layer", None, &mut Budget::new(u64::MAX))
}

fn refusal(root: &Path, bytes: &[u8], entry: &str) -> String {
    match unpack(root, bytes) {
        Err(e @ RegistryError::UnsafeEntry { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(entry), "error does not name `{entry}`: {msg}");
            msg
        }
        other => panic!("expected a refusal for {entry}, got {other:?}"),
    }
}

#[test]
fn layers_whiteouts_and_opaque_dirs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let lower = tar_of(&[
        ("etc/", D, 0o755, ""),
        ("etc/keep", F, 0o644, "keep"),
        ("etc/gone", F, 0o644, "gone"),
        ("etc/gonedir/", D, 0o755, ""),
        ("etc/gonedir/x", F, 0o644, "x"),
        ("opq/", D, 0o755, ""),
        ("opq/old", F, 0o644, "old"),
        ("bin/", D, 0o755, ""),
        ("bin/su", F, 0o4755, "#!"),
        ("bin/sg", F, 0o2755, "#!"),
        ("shared/", D, 0o2775, ""),
    ]);
    let stats = unpack(root, &gzip(&lower)).unwrap();
    assert_eq!(stats.written, 11);
    assert_eq!(stats.diff_id, Some(Digest::of(&lower)));
    let upper = tar_of(&[
        ("opq/new", F, 0o600, "new"),
        ("opq/.wh..wh..opq", F, 0o644, ""),
        ("etc/.wh.gone", F, 0o644, ""),
        ("etc/.wh.gonedir", F, 0o644, ""),
        ("etc/.wh.never-existed", F, 0o644, ""),
        ("etc/keep-link", L, 0o644, "etc/keep"),
        ("etc/rel", S, 0o777, "keep"),
    ]);
    let stats = unpack(root, &upper).unwrap();
    assert_eq!(stats.whiteouts, 4);
    assert!(root.join("etc/keep").exists());
    assert!(!root.join("etc/gone").exists());
    assert!(!root.join("etc/gonedir").exists());
    assert!(!root.join("etc/.wh.gone").exists());
    assert!(!root.join("opq/old").exists(), "opaque dir keeps a lower file");
    assert_eq!(std::fs::read_to_string(root.join("opq/new")).unwrap(), "new");
    assert!(!root.join("opq/.wh..wh..opq").exists());
    let keep = std::fs::metadata(root.join("etc/keep")).unwrap();
    assert_eq!(keep.nlink(), 2, "hard link shares the inode");
    assert_eq!(
        std::fs::read_link(root.join("etc/rel")).unwrap(),
        Path::new("keep")
    );
    let mode = |p: &str| {
        std::fs::symlink_metadata(root.join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("bin/su"), 0o755, "setuid dropped");
    assert_eq!(mode("bin/sg"), 0o755, "setgid dropped on files");
    assert_eq!(mode("shared"), 0o2775, "setgid kept on directories");
    assert_eq!(mode("opq/new"), 0o600);
    if unsafe { libc::geteuid() } == 0 {
        let m = std::fs::symlink_metadata(root.join("etc/rel")).unwrap();
        assert_eq!((m.uid(), m.gid()), (1234, 4321), "symlink owned via lchown");
        assert_eq!(keep.uid(), 1234);
    }
    assert_eq!(keep.mtime(), 1_600_000_000);
}

#[test]
fn zstd_and_relative_symlink_parents() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let lower = tar_of(&[
        ("usr/", D, 0o755, ""),
        ("usr/lib/", D, 0o755, ""),
        ("lib", S, 0o777, "usr/lib"),
    ]);
    unpack(root, &zstd_raw(&lower)).unwrap();
    unpack(root, &tar_of(&[("lib/libx.so", F, 0o644, "elf")])).unwrap();
    assert_eq!(
        std::fs::read_to_string(root.join("usr/lib/libx.so")).unwrap(),
        "elf"
    );
    assert!(std::fs::symlink_metadata(root.join("lib"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn refuses_traversal_and_absolute_names_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let bytes = tar_of(&[("ok", F, 0o644, "x"), ("../escaped", F, 0o644, "x")]);
    let msg = refusal(&root, &bytes, "../escaped");
    assert!(msg.contains(".."), "{msg}");
    assert!(!dir.path().join("escaped").exists());
    assert!(!root.join("ok").exists(), "nothing written from a refused layer");
    let bytes = tar_of(&[("a/../../b", F, 0o644, "x")]);
    refusal(&root, &bytes, "a/../../b");
    let bytes = tar_of(&[("/abs-file", F, 0o644, "x")]);
    assert!(refusal(&root, &bytes, "/abs-file").contains("absolute"));
}

#[test]
fn refuses_symlink_escapes() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let abs = format!("{}", outside.display());
    let bytes = tar_of(&[("x", S, 0o777, &abs), ("x/passwd", F, 0o644, "pwned")]);
    let msg = refusal(&root, &bytes, "x/passwd");
    assert!(msg.contains("outside the root"), "{msg}");
    assert!(!outside.join("passwd").exists());
    let bytes = tar_of(&[("y", S, 0o777, "../outside"), ("y/passwd", F, 0o644, "pwned")]);
    refusal(&root, &bytes, "y/passwd");
    let bytes = tar_of(&[
        ("d/", D, 0o755, ""),
        ("d/z", S, 0o777, "../../outside"),
        ("d/z/f", F, 0o644, "p"),
    ]);
    refusal(&root, &bytes, "d/z/f");
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    let bytes = tar_of(&[("loop", S, 0o777, "loop"), ("loop/f", F, 0o644, "p")]);
    assert!(refusal(&root, &bytes, "loop/f").contains("too many"));
}

#[test]
fn symlink_as_final_component_is_replaced_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("victim");
    std::fs::write(&outside, "original").unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let abs = outside.display().to_string();
    unpack(&root, &tar_of(&[("f", S, 0o777, &abs)])).unwrap();
    unpack(&root, &tar_of(&[("f", F, 0o644, "overwritten")])).unwrap();
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "original");
    assert_eq!(std::fs::read_to_string(root.join("f")).unwrap(), "overwritten");
}

#[test]
fn refuses_hardlink_escapes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    refusal(&root, &tar_of(&[("h", L, 0o644, "../../etc/passwd")]), "h");
    refusal(&root, &tar_of(&[("h", L, 0o644, "/etc/passwd")]), "h");
    let abs = dir.path().display().to_string();
    let bytes = tar_of(&[("p", S, 0o777, &abs), ("h", L, 0o644, "p/secret")]);
    std::fs::write(dir.path().join("secret"), "s").unwrap();
    let msg = refusal(&root, &bytes, "h");
    assert!(msg.contains("outside the root"), "{msg}");
    assert!(!root.join("h").exists());
    assert_eq!(std::fs::metadata(dir.path().join("secret")).unwrap().nlink(), 1);
}

#[test]
fn skips_devices_and_fifos() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = tar_of(&[
        ("dev/", D, 0o755, ""),
        ("dev/sda", EntryType::Block, 0o660, ""),
        ("dev/null", EntryType::Char, 0o666, ""),
        ("fifo", EntryType::Fifo, 0o644, ""),
    ]);
    let stats = unpack(dir.path(), &bytes).unwrap();
    assert_eq!(stats.skipped_special, 3);
    assert!(!dir.path().join("dev/sda").exists());
    assert!(!dir.path().join("dev/null").exists());
    assert!(!dir.path().join("fifo").exists());
}

#[test]
fn malformed_streams_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let good = gzip(&tar_of(&[("a", F, 0o644, &"x".repeat(50_000))]));
    let err = unpack(dir.path(), &good[..good.len() / 2]).unwrap_err();
    assert!(matches!(err, RegistryError::Layer { .. }), "{err}");
    let err = unpack(dir.path(), b"\x28\xb5\x2f\xfdgarbage").unwrap_err();
    assert!(matches!(err, RegistryError::Layer { .. }), "{err}");
    let mut bad_tar = tar_of(&[("a", F, 0o644, "x")]);
    bad_tar[148] ^= 0x7; // corrupt the header checksum
    assert!(unpack(dir.path(), &bad_tar).is_err());
    let wrong = Digest::of(b"something else");
    let lower = tar_of(&[("z", F, 0o644, "z")]);
    let err =
        unpack_layer_bytes(dir.path(), &lower, "l", Some(&wrong), &mut Budget::new(u64::MAX)).unwrap_err();
    assert!(matches!(err, RegistryError::DigestMismatch { .. }), "{err}");
}

#[test]
fn budget_stops_bombs() {
    let dir = tempfile::tempdir().unwrap();
    let big = "z".repeat(200_000);
    let bomb = gzip(&tar_of(&[("a", F, 0o644, &big), ("b", F, 0o644, &big)]));
    assert!(bomb.len() < 5_000, "compresses well: {}", bomb.len());
    let mut budget = Budget::new(300_000);
    let err = unpack_layer_bytes(dir.path(), &bomb, "bomb", None, &mut budget).unwrap_err();
    assert!(
        err.to_string().contains("limit") && err.to_string().contains('b'),
        "{err}"
    );
    let many: Vec<(String, EntryType, u32, &str)> =
        (0..100).map(|i| (format!("f{i}"), F, 0o644, "")).collect();
    let many: Vec<(&str, EntryType, u32, &str)> =
        many.iter().map(|(n, k, m, d)| (n.as_str(), *k, *m, *d)).collect();
    let err = unpack_layer_bytes(
        dir.path(),
        &tar_of(&many),
        "many",
        None,
        &mut Budget::new(50 * ENTRY_COST),
    )
    .unwrap_err();
    assert!(err.to_string().contains("f50"), "{err}");
}

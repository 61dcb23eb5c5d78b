//! Safe layer unpacking: decompression (gzip, zstd, plain tar, detected from the content),
//! whiteouts, path confinement, and verification of the uncompressed digest (`diff_id`).
//!
//! Rules, applied to every entry of a possibly hostile layer:
//! - names with a `..` component or absolute names are refused ([`RegistryError::UnsafeEntry`]
//!   naming the entry); the whole layer is checked for these before anything is written;
//! - parent directories are resolved inside the root; a parent symlink is followed only when
//!   its target is relative and stays inside the root, otherwise the entry is refused;
//! - the final component is replaced, never followed (an existing symlink there is removed);
//! - hard links must point at an existing non-directory inside the root;
//! - character/block devices and fifos are **skipped** (counted in [`LayerStats`]): the
//!   sandbox runtime provides `/dev`;
//! - setuid and setgid bits are dropped from files (setgid is kept on directories);
//! - uid/gid are kept with `lchown` (never through a symlink); file mtimes are kept;
//!   extended attributes are not applied;
//! - a [`Budget`] caps the unpacked size (content as actually written, plus 512 bytes per
//!   entry), so decompression bombs and inode floods stop with an error naming the entry.
//!
//! Whiteouts follow the OCI layer spec: all whiteouts of a layer (`.wh.<name>` deletes
//! `<name>`, `.wh..wh..opq` empties its directory) are applied to the lower layers first,
//! then the layer's other entries are written, so a whiteout never hides its own layer.

mod entry;
pub(crate) mod path;

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use tar::EntryType;

use crate::digest::HashingReader;
use crate::{Digest, RegistryError};
use entry::Meta;
use path::{normalise, resolve_dir, Ctx};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// What unpacking one layer did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LayerStats {
    /// Entries written (directories, files, links).
    pub written: u64,
    /// Whiteouts applied.
    pub whiteouts: u64,
    /// Device nodes and fifos skipped.
    pub skipped_special: u64,
    /// sha256 of the uncompressed tar stream.
    pub diff_id: Option<Digest>,
}

/// Bytes an image may still occupy once unpacked: file contents plus [`ENTRY_COST`] per
/// entry, so neither a decompression bomb nor millions of empty files can fill the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    limit: u64,
    remaining: u64,
}

/// What each entry costs against the [`Budget`] besides its content.
pub const ENTRY_COST: u64 = 512;

impl Budget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> Self {
        Self {
            limit,
            remaining: limit,
        }
    }

    /// Charges one entry.
    fn charge(&mut self, ctx: &Ctx<'_>) -> Result<(), RegistryError> {
        self.consume(ctx, ENTRY_COST)
    }

    /// Charges `cost` bytes.
    fn consume(&mut self, ctx: &Ctx<'_>, cost: u64) -> Result<(), RegistryError> {
        if cost > self.remaining {
            return Err(ctx.refuse(format!(
                "the unpacked image would exceed its {}-byte limit",
                self.limit
            )));
        }
        self.remaining -= cost;
        Ok(())
    }
}

/// Unpacks the layer stored in `file` onto `root`; `expected_diff_id`, when given, must match
/// the uncompressed stream. Blocking.
pub fn unpack_layer_file(
    root: &Path,
    file: &Path,
    layer: &str,
    expected_diff_id: Option<&Digest>,
    budget: &mut Budget,
) -> Result<LayerStats, RegistryError> {
    let open = || std::fs::File::open(file).map_err(|e| RegistryError::io("open layer", file, e));
    unpack_with(root, layer, expected_diff_id, budget, open)
}

/// Unpacks a layer held in memory onto `root`. Blocking.
pub fn unpack_layer_bytes(
    root: &Path,
    bytes: &[u8],
    layer: &str,
    expected_diff_id: Option<&Digest>,
    budget: &mut Budget,
) -> Result<LayerStats, RegistryError> {
    unpack_with(root, layer, expected_diff_id, budget, || {
        Ok(std::io::Cursor::new(bytes))
    })
}

fn unpack_with<R: Read>(
    root: &Path,
    layer: &str,
    expected_diff_id: Option<&Digest>,
    budget: &mut Budget,
    open: impl Fn() -> Result<R, RegistryError>,
) -> Result<LayerStats, RegistryError> {
    let mut stats = LayerStats::default();
    apply_whiteouts(root, layer, decompress(layer, open()?)?, &mut stats)?;
    let mut hashing = HashingReader::new(decompress(layer, open()?)?);
    write_entries(root, layer, &mut hashing, &mut stats, budget)?;
    let (diff_id, _) = hashing
        .finish()
        .map_err(|e| layer_err(layer, "reading the end of the stream", e))?;
    if let Some(expected) = expected_diff_id {
        expected.check(&format!("uncompressed layer {layer} (diff_id)"), &diff_id)?;
    }
    stats.diff_id = Some(diff_id);
    Ok(stats)
}

fn layer_err(layer: &str, what: &str, e: std::io::Error) -> RegistryError {
    RegistryError::Layer {
        layer: layer.to_string(),
        reason: format!("{what}: {e}"),
    }
}

/// Wraps the raw blob in the decompressor its magic bytes call for.
fn decompress<'a, R: Read + 'a>(layer: &str, raw: R) -> Result<Box<dyn Read + 'a>, RegistryError> {
    let mut buf = BufReader::with_capacity(256 * 1024, raw);
    let head = buf.fill_buf().map_err(|e| layer_err(layer, "reading", e))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(buf)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let decoder = ruzstd::StreamingDecoder::new(buf).map_err(|e| RegistryError::Layer {
            layer: layer.to_string(),
            reason: format!("bad zstd frame: {e}"),
        })?;
        Ok(Box::new(decoder))
    } else {
        Ok(Box::new(buf))
    }
}

fn entries<'a, R: Read + 'a>(
    layer: &str,
    archive: &'a mut tar::Archive<R>,
) -> Result<tar::Entries<'a, R>, RegistryError> {
    archive.entries().map_err(|e| layer_err(layer, "reading tar", e))
}

/// Pass 1: validate every name and apply the layer's whiteouts to the lower layers.
fn apply_whiteouts(
    root: &Path,
    layer: &str,
    stream: Box<dyn Read + '_>,
    stats: &mut LayerStats,
) -> Result<(), RegistryError> {
    let mut archive = tar::Archive::new(stream);
    for item in entries(layer, &mut archive)? {
        let item = item.map_err(|e| layer_err(layer, "reading tar", e))?;
        let name = item
            .path()
            .map_err(|e| layer_err(layer, "entry name", e))?
            .into_owned();
        let shown = name.display().to_string();
        let ctx = Ctx { layer, entry: &shown };
        let mut parts = normalise(&ctx, &name)?;
        if matches!(item.header().entry_type(), EntryType::Link) {
            let link = item
                .link_name()
                .map_err(|e| layer_err(layer, "hard link target", e))?
                .unwrap_or_default();
            normalise(&ctx, &link)
                .map_err(|_| ctx.refuse(format!("hard link target `{}` escapes the root", link.display())))?;
        }
        let Some(last) = parts.pop() else { continue };
        let Some(last) = last
            .to_str()
            .and_then(|s| s.strip_prefix(WHITEOUT_PREFIX))
            .map(str::to_string)
        else {
            continue;
        };
        let opaque = last == OPAQUE_MARKER[WHITEOUT_PREFIX.len()..];
        if !opaque && (last.is_empty() || last == "." || last == ".." || last.contains('/')) {
            return Err(ctx.refuse("whiteout names no valid file"));
        }
        let Some(dir) = resolve_dir(&ctx, root, &parts, false)? else {
            continue;
        };
        if opaque {
            let children = std::fs::read_dir(&dir).map_err(|e| RegistryError::io("list", &dir, e))?;
            for child in children {
                let child = child.map_err(|e| RegistryError::io("list", &dir, e))?;
                entry::remove_any(&child.path())?;
            }
        } else {
            entry::remove_any(&dir.join(&last))?;
        }
        stats.whiteouts += 1;
    }
    Ok(())
}

/// Pass 2: write every non-whiteout entry.
fn write_entries(
    root: &Path,
    layer: &str,
    stream: &mut dyn Read,
    stats: &mut LayerStats,
    budget: &mut Budget,
) -> Result<(), RegistryError> {
    let mut archive = tar::Archive::new(stream);
    for item in entries(layer, &mut archive)? {
        let mut item = item.map_err(|e| layer_err(layer, "reading tar", e))?;
        let name = item
            .path()
            .map_err(|e| layer_err(layer, "entry name", e))?
            .into_owned();
        let shown = name.display().to_string();
        let ctx = Ctx { layer, entry: &shown };
        let mut parts = normalise(&ctx, &name)?;
        let Some(last) = parts.pop() else { continue };
        if last.to_str().is_some_and(|s| s.starts_with(WHITEOUT_PREFIX)) {
            continue;
        }
        let kind = item.header().entry_type();
        if matches!(kind, EntryType::Char | EntryType::Block | EntryType::Fifo) {
            tracing::debug!(layer, entry = %shown, "skipping device node or fifo");
            stats.skipped_special += 1;
            continue;
        }
        let meta = meta(&ctx, item.header())?;
        budget.charge(&ctx)?;
        let parent = resolve_dir(&ctx, root, &parts, true)?.unwrap_or_else(|| root.to_path_buf());
        let dest: PathBuf = parent.join::<&OsString>(&last);
        match kind {
            EntryType::Directory => entry::write_dir(&dest, &meta)?,
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                // Charged as written (holes of sparse files included), not as declared.
                let mut limited = (&mut item).take(budget.remaining.saturating_add(1));
                let written = entry::write_file(&dest, &meta, &mut limited)?;
                budget.consume(&ctx, written)?;
            }
            EntryType::Symlink => {
                let target = item
                    .link_name()
                    .map_err(|e| layer_err(layer, "symlink target", e))?
                    .ok_or_else(|| ctx.refuse("symlink without a target"))?;
                entry::write_symlink(&dest, &meta, &target)?
            }
            EntryType::Link => {
                let target = item
                    .link_name()
                    .map_err(|e| layer_err(layer, "hard link target", e))?
                    .ok_or_else(|| ctx.refuse("hard link without a target"))?;
                entry::write_hardlink(&ctx, root, &dest, &target)?
            }
            other => {
                tracing::debug!(layer, entry = %shown, kind = ?other, "skipping unsupported entry type");
                continue;
            }
        }
        stats.written += 1;
    }
    Ok(())
}

fn meta(ctx: &Ctx<'_>, header: &tar::Header) -> Result<Meta, RegistryError> {
    let field =
        |what: &str, r: std::io::Result<u64>| r.map_err(|e| ctx.refuse(format!("bad {what} in header: {e}")));
    let id =
        |what: &str, v: u64| u32::try_from(v).map_err(|_| ctx.refuse(format!("{what} {v} out of range")));
    Ok(Meta {
        mode: header
            .mode()
            .map_err(|e| ctx.refuse(format!("bad mode in header: {e}")))?,
        uid: id("uid", field("uid", header.uid())?)?,
        gid: id("gid", field("gid", header.gid())?)?,
        mtime: field("mtime", header.mtime())?,
    })
}

#[cfg(test)]
mod tests;

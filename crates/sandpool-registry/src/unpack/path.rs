//! Path safety: normalising entry names and resolving directories strictly inside the root.
//!
//! Entry names with a `..` component or an absolute name are refused. Parent directories are
//! resolved one component at a time with `lstat`; a symlink among them is followed only when
//! its target is relative and stays inside the root (e.g. `lib -> usr/lib`). A symlink with
//! an absolute target, or one climbing above the root, is refused when used as a parent, so
//! `x -> /etc` followed by `x/passwd` fails instead of writing anywhere.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

use crate::RegistryError;

/// Symlinks followed while resolving one path, like the kernel's `MAXSYMLINKS`.
const MAX_HOPS: usize = 40;

/// Names the entry being processed, for errors.
pub(crate) struct Ctx<'a> {
    /// Layer digest or name.
    pub layer: &'a str,
    /// Entry name as it appears in the archive.
    pub entry: &'a str,
}

impl Ctx<'_> {
    /// An [`RegistryError::UnsafeEntry`] for this entry.
    pub(crate) fn refuse(&self, reason: impl Into<String>) -> RegistryError {
        RegistryError::UnsafeEntry {
            layer: self.layer.to_string(),
            entry: self.entry.to_string(),
            reason: reason.into(),
        }
    }
}

/// Splits an archive name into plain components; refuses absolute names and `..`.
pub(crate) fn normalise(ctx: &Ctx<'_>, name: &Path) -> Result<Vec<OsString>, RegistryError> {
    let mut out = Vec::new();
    for c in name.components() {
        match c {
            Component::Normal(s) => out.push(s.to_os_string()),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(ctx.refuse("absolute path escapes the root"));
            }
            Component::ParentDir => return Err(ctx.refuse("`..` component escapes the root")),
        }
    }
    Ok(out)
}

enum Step {
    Name(OsString),
    Up,
}

/// Resolves `components` (a directory path relative to the root) to a real directory inside
/// `root` whose every component is a directory, never a symlink. Missing directories are
/// created (mode 0755) when `create`, otherwise `Ok(None)` is returned.
pub(crate) fn resolve_dir(
    ctx: &Ctx<'_>,
    root: &Path,
    components: &[OsString],
    create: bool,
) -> Result<Option<PathBuf>, RegistryError> {
    let mut resolved: Vec<OsString> = Vec::new();
    let mut pending: VecDeque<Step> = components.iter().cloned().map(Step::Name).collect();
    let mut hops = 0;
    while let Some(step) = pending.pop_front() {
        let name = match step {
            Step::Up => {
                if resolved.pop().is_none() {
                    return Err(ctx.refuse("a symlink among its parents leads above the root"));
                }
                continue;
            }
            Step::Name(name) => name,
        };
        let mut candidate = join(root, &resolved);
        candidate.push(&name);
        match std::fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() => {
                hops += 1;
                if hops > MAX_HOPS {
                    return Err(ctx.refuse("too many levels of symbolic links among its parents"));
                }
                let target = std::fs::read_link(&candidate)
                    .map_err(|e| RegistryError::io("read symlink", &candidate, e))?;
                let shown = relative(&resolved, &name);
                if target.is_absolute() {
                    return Err(ctx.refuse(format!(
                        "parent `{shown}` is a symlink to `{}`, outside the root",
                        target.display()
                    )));
                }
                let mut steps = Vec::new();
                for c in target.components() {
                    match c {
                        Component::Normal(s) => steps.push(Step::Name(s.to_os_string())),
                        Component::ParentDir => steps.push(Step::Up),
                        Component::CurDir => {}
                        Component::RootDir | Component::Prefix(_) => {
                            return Err(ctx.refuse(format!("parent `{shown}` is a symlink outside the root")));
                        }
                    }
                }
                for s in steps.into_iter().rev() {
                    pending.push_front(s);
                }
            }
            Ok(m) if m.is_dir() => resolved.push(name),
            Ok(_) => {
                return Err(ctx.refuse(format!(
                    "parent `{}` is not a directory",
                    relative(&resolved, &name)
                )))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                if !create {
                    return Ok(None);
                }
                std::fs::create_dir(&candidate)
                    .map_err(|e| RegistryError::io("create directory", &candidate, e))?;
                resolved.push(name);
            }
            Err(e) => return Err(RegistryError::io("inspect", &candidate, e)),
        }
    }
    Ok(Some(join(root, &resolved)))
}

fn join(root: &Path, parts: &[OsString]) -> PathBuf {
    let mut p = root.to_path_buf();
    p.extend(parts);
    p
}

fn relative(parts: &[OsString], last: &OsString) -> String {
    let mut p = PathBuf::new();
    p.extend(parts);
    p.push(last);
    p.display().to_string()
}

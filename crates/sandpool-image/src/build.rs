//! One image build: mmdebstrap into a temporary directory, manifest, atomic rename.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::hook::{customize_script, shell_quote};
use crate::output::{looks_like_network_failure, run_streaming};
use crate::remove::{mounts_below, remove_tree};
use crate::{manifest, ImageError, Recipe};

/// Fixed timestamp for reproducible builds (2025-01-01T00:00:00Z).
pub(crate) const SOURCE_DATE_EPOCH: &str = "1735689600";

/// Deletes the temporary build directory unless the build succeeded.
struct TmpGuard(Option<PathBuf>);

impl Drop for TmpGuard {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            if let Err(e) = remove_tree(&dir) {
                tracing::error!(error = %e, "could not remove failed image build");
            }
        }
    }
}

/// Builds `recipe` into `images_dir/<dir_name>` (which must not exist yet). The caller holds
/// the build lock.
pub(crate) fn build(
    recipe: &Recipe,
    images_dir: &Path,
    mirror: &str,
    ca_bundle: Option<&Path>,
    progress: &mut dyn FnMut(&str),
) -> Result<PathBuf, ImageError> {
    let dir_name = recipe.dir_name();
    let final_dir = images_dir.join(&dir_name);
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(ImageError::NeedsRoot(recipe.name.clone()));
    }
    check_mmdebstrap()?;
    let tmp = images_dir.join(format!(".tmp-{dir_name}"));
    remove_tree(&tmp)?; // a stale attempt; we hold the lock, so nobody else is using it
    std::fs::create_dir_all(&tmp).map_err(ImageError::io("creating", &tmp))?;
    let mut guard = TmpGuard(Some(tmp.clone()));

    let write = |name: &str, text: &str| {
        let path = tmp.join(name);
        std::fs::write(&path, text).map_err(ImageError::io("writing", path))
    };
    write("recipe.txt", &recipe.render())?;
    write("customize.sh", &customize_script(recipe))?;
    write(
        "requirements.txt",
        recipe.venv.as_ref().map_or("", |v| v.requirements.as_str()),
    )?;

    progress(&format!(
        "stage: mmdebstrap ({} {} from {mirror})",
        recipe.name, recipe.suite
    ));
    let rootfs = tmp.join("rootfs");
    let outcome = run_streaming(
        mmdebstrap_command(recipe, &tmp, &rootfs, mirror, ca_bundle),
        "mmdebstrap",
        progress,
    )
    .map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => missing_mmdebstrap(),
        _ => ImageError::io("running mmdebstrap for", &rootfs)(e),
    })?;
    if !outcome.status.success() {
        let (image, stage, tail) = (recipe.name.clone(), outcome.stage, outcome.tail);
        return Err(if looks_like_network_failure(&tail) {
            ImageError::Network { image, stage, tail }
        } else if stage == "pip" {
            ImageError::Pip { image, tail }
        } else {
            ImageError::Build {
                image,
                stage,
                status: outcome.status.to_string(),
                tail,
            }
        });
    }

    progress("stage: manifest");
    let entries = manifest::collect(&rootfs, recipe.venv.as_ref().map(|v| v.path.as_str()))?;
    write("manifest.tsv", &manifest::render(&entries))?;
    for helper in ["customize.sh", "requirements.txt"] {
        let path = tmp.join(helper);
        std::fs::remove_file(&path).map_err(ImageError::io("removing", path))?;
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    if let Some(m) = mounts_below(&mountinfo, &tmp.canonicalize().unwrap_or(tmp.clone())).first() {
        return Err(ImageError::Build {
            image: recipe.name.clone(),
            stage: "finish".into(),
            status: "mmdebstrap left a mount behind".into(),
            tail: m.display().to_string(),
        });
    }
    std::fs::rename(&tmp, &final_dir).map_err(ImageError::io("renaming finished build to", &final_dir))?;
    guard.0 = None;
    progress(&format!("stage: done ({dir_name}, {} packages)", entries.len()));
    Ok(final_dir)
}

fn missing_mmdebstrap() -> ImageError {
    ImageError::MissingTool {
        tool: "mmdebstrap".into(),
        package: "mmdebstrap".into(),
    }
}

fn check_mmdebstrap() -> Result<(), ImageError> {
    match Command::new("mmdebstrap").arg("--version").output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(_) | Err(_) => Err(missing_mmdebstrap()),
    }
}

fn mmdebstrap_command(
    recipe: &Recipe,
    tmp: &Path,
    rootfs: &Path,
    mirror: &str,
    ca: Option<&Path>,
) -> Command {
    let mut cmd = Command::new("mmdebstrap");
    cmd.env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("LC_ALL", "C.UTF-8")
        .env("HOME", "/root")
        .env("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH);
    for (key, value) in std::env::vars_os() {
        let k = key.to_string_lossy().to_ascii_lowercase();
        if matches!(k.as_str(), "http_proxy" | "https_proxy" | "no_proxy" | "tmpdir") {
            cmd.env(key, value);
        }
    }
    let hook = format!(
        "sh {} \"$1\" {} {}",
        shell_quote(&tmp.join("customize.sh").to_string_lossy()),
        shell_quote(&tmp.join("requirements.txt").to_string_lossy()),
        shell_quote(&ca.map(|p| p.to_string_lossy().into_owned()).unwrap_or_default()),
    );
    cmd.arg("--mode=root")
        .arg("--format=directory")
        .arg(format!("--variant={}", recipe.variant))
        .arg(format!("--include={}", recipe.packages.join(",")))
        .arg("--aptopt=Acquire::Retries \"3\"")
        .arg("--dpkgopt=path-exclude=/usr/share/man/*")
        .arg("--dpkgopt=path-exclude=/usr/share/info/*")
        .arg("--dpkgopt=path-exclude=/usr/share/doc/*")
        .arg("--dpkgopt=path-include=/usr/share/doc/*/copyright")
        .arg(format!("--customize-hook={hook}"))
        .arg(&recipe.suite)
        .arg(rootfs)
        .arg(mirror);
    cmd
}

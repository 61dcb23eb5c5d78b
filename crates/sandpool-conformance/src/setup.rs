//! Prepares the real environment: builds (or reuses) the python and shell images in the
//! shared test data dir and installs the agent bundle there.

use crate::paths::{self, Profile};
use crate::{ImageRef, SetupError, TestEnv};
use sandpool_image::{recipes, ImageStore, Recipe};
use sandpool_sandbox::{AgentRuntime, AGENT_MOUNT_POINT};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Blocking: builds missing images (minutes the first time, with progress on stderr),
/// installs a fresh agent bundle for this process, and returns the environment.
pub fn prepare(profile: Profile) -> Result<TestEnv, SetupError> {
    let data_dir = paths::test_data_dir();
    std::fs::create_dir_all(&data_dir)?;
    let agent_exe = paths::agent_exe(profile)?;
    let bundle = install_bundle(&data_dir, &agent_exe)?;
    let store = ImageStore::new(&data_dir);
    let python = ensure(&store, &recipes::python())?;
    let shell = ensure(&store, &recipes::shell())?;
    let agent = AgentRuntime {
        host_dir: bundle,
        argv: vec![format!("{AGENT_MOUNT_POINT}/sandpool-agent")],
    };
    Ok(TestEnv::new(python, shell, agent, data_dir))
}

fn ensure(store: &ImageStore, recipe: &Recipe) -> Result<ImageRef, SetupError> {
    let name = recipe.name.clone();
    let mut progress = |line: &str| eprintln!("[image {name}] {line}");
    let image = store
        .ensure(recipe, &mut progress)
        .map_err(|e| SetupError::Image {
            name: recipe.name.clone(),
            message: e.to_string(),
        })?;
    Ok(ImageRef {
        rootfs: image.rootfs.clone(),
        digest: image.digest.clone(),
    })
}

/// Installs the bundle into `<data>/conformance/bundle-<content hash>`, reusing an
/// identical earlier install so the backend's template key (which includes the bundle's
/// modification times) stays the same across runs and templates are reused.
fn install_bundle(data_dir: &Path, agent_exe: &Path) -> Result<PathBuf, SetupError> {
    let root = data_dir.join("conformance");
    std::fs::create_dir_all(&root)?;
    let staging = tempfile::tempdir_in(&root)?;
    sandpool_agent::install_bundle(staging.path(), agent_exe)?;
    // The agent runs as uid 1000 inside; a temp dir is 0700.
    std::fs::set_permissions(
        staging.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )?;
    let mut names: Vec<_> = std::fs::read_dir(staging.path())?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    names.sort();
    let mut hash = Sha256::new();
    for name in &names {
        hash.update(name.as_encoded_bytes());
        hash.update(std::fs::read(staging.path().join(name))?);
    }
    let dir = root.join(format!("bundle-{}", &hex::encode(hash.finalize())[..16]));
    if !dir.join("sandpool-agent").is_file() {
        let _ = std::fs::remove_dir_all(&dir);
        match std::fs::rename(staging.path(), &dir) {
            Ok(()) => {}
            // Another test process installed the same bundle meanwhile.
            Err(_) if dir.join("sandpool-agent").is_file() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(dir)
}

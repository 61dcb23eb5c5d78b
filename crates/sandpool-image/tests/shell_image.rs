//! Integration test: builds (or reuses) the real shell image in the shared test data dir with
//! mmdebstrap, checks its manifest and that a second `ensure` is a cache hit.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use sandpool_image::{recipes, ImageStore, PackageKind};

fn test_data_dir() -> PathBuf {
    std::env::var_os("SANDPOOL_TEST_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-data"))
}

#[test]
fn shell_image_is_built_once_and_lists_bash_and_jq() {
    let store = ImageStore::new(test_data_dir());
    let recipe = recipes::shell();
    let mut lines = Vec::new();
    let image = store
        .ensure(&recipe, &mut |l| lines.push(l.to_string()))
        .unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(image.name, "shell");
    assert_eq!(image.digest, recipe.digest());
    assert_eq!(
        image.dir.file_name().unwrap().to_string_lossy(),
        recipe.dir_name()
    );
    assert!(image.rootfs.join("bin/bash").exists());
    assert!(
        image.package_version("bash", PackageKind::Deb).is_some(),
        "bash missing from manifest"
    );
    assert!(
        image.package_version("jq", PackageKind::Deb).is_some(),
        "jq missing from manifest"
    );
    let passwd = std::fs::read_to_string(image.rootfs.join("etc/passwd")).unwrap();
    assert!(
        passwd.lines().any(|l| l.starts_with("sandbox:x:1000:1000:")),
        "{passwd}"
    );
    let recipe_txt = std::fs::read_to_string(image.dir.join("recipe.txt")).unwrap();
    assert_eq!(recipe_txt, recipe.render());

    let started = Instant::now();
    let mut second_lines = Vec::new();
    let again = store
        .ensure(&recipe, &mut |l| second_lines.push(l.to_string()))
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(again, image);
    assert!(
        second_lines.is_empty(),
        "cache hit must not build: {second_lines:?}"
    );
    // Generous bound: a cache hit only reads two small files.
    assert!(elapsed < Duration::from_secs(5), "cache hit took {elapsed:?}");

    let listed = store.list().unwrap();
    assert!(listed.iter().any(|i| i == &image));
    let got = store.get("shell").unwrap().expect("get(shell)");
    assert_eq!(got.name, "shell");
}

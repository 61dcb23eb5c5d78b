//! Integration tests for build failures: they must be clear errors and leave nothing behind.

use std::time::Duration;

use sandpool_image::{recipes, ImageError, ImageStore};

#[test]
fn unreachable_mirror_is_a_network_error_and_leaves_no_temp_dir() {
    let data = tempfile::tempdir().unwrap();
    // Port 9 (discard) on loopback: nothing listens, so apt's connection is refused at once.
    let store = ImageStore::new(data.path()).with_mirror("http://127.0.0.1:9/debian");
    let mut recipe = recipes::shell();
    recipe.name = "unreachable-mirror".into();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let result = store.ensure(&recipe, &mut |_| {});
        let _ = tx.send((result, store));
    });
    let (result, store) = rx
        .recv_timeout(Duration::from_secs(300))
        .expect("build did not fail within 5 minutes");
    match result {
        Err(ImageError::Network { image, tail, .. }) => {
            assert_eq!(image, "unreachable-mirror");
            assert!(tail.contains("127.0.0.1"), "tail should show apt's error: {tail}");
        }
        other => panic!("expected a network error, got {other:?}"),
    }
    let leftovers: Vec<_> = std::fs::read_dir(store.images_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    assert!(leftovers.is_empty(), "failed build left {leftovers:?}");
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn invalid_recipe_is_rejected_before_any_work() {
    let data = tempfile::tempdir().unwrap();
    let store = ImageStore::new(data.path());
    let mut recipe = recipes::shell();
    recipe.packages.push("$(touch /tmp/pwned)".into());
    let err = store.ensure(&recipe, &mut |_| {}).unwrap_err();
    assert!(matches!(err, ImageError::InvalidRecipe(_)), "{err}");
    assert!(!store.images_dir().exists());
}

//! Pulls from a real `docker-registry` (Debian's distribution 2.8) on loopback: layered image
//! with whiteouts, image index, digests, basic auth, and hostile layers refused.

mod support;

use std::path::Path;
use std::sync::{Arc, Mutex};

use sandpool_registry::{
    no_progress, Credentials, ImageCache, ImageRef, ImageSource, Progress, ProgressFn, RegistryClient,
    RegistryError, RegistryOptions,
};
use support::image::{self, assert_sample_config, assert_sample_tree, dir, file, layer, symlink};
use support::push::Pusher;
use support::registry::Registry;

fn client(credentials: Option<Credentials>) -> RegistryClient {
    RegistryClient::new(RegistryOptions {
        insecure: true,
        credentials,
        ..Default::default()
    })
    .unwrap()
}

fn recorder() -> (ProgressFn, Arc<Mutex<Vec<Progress>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    (
        Arc::new(move |p: &Progress| sink.lock().unwrap().push(p.clone())),
        events,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_layered_image_index_and_digest() {
    let registry = Registry::start(None).await;
    let pusher = Pusher::new(&registry.addr, None);
    let sample = image::sample();
    pusher.image("team/sample", "v1", &sample).await;
    let other = image::image(vec![layer(&[file("arm", 0o644, "arm64 build")], true)]);
    pusher.image("team/sample", "arm-only", &other).await;
    let index = image::index(&sample, &other);
    pusher
        .manifest(
            "team/sample",
            "multi",
            "application/vnd.oci.image.index.v1+json",
            &index,
        )
        .await;

    let cache_dir = tempfile::tempdir().unwrap();
    let cache = ImageCache::new(cache_dir.path());
    let client = client(None);
    let (progress, events) = recorder();
    let image = ImageRef::parse(&format!("{}/team/sample:v1", registry.addr)).unwrap();
    let ready = cache.pull(&client, &image, progress).await.unwrap();
    assert_eq!(ready.digest, sample.digest());
    assert!(!ready.reused);
    assert_eq!(
        ready.rootfs,
        cache_dir
            .path()
            .join("rootfs")
            .join(sample.digest().dir_name())
            .join("rootfs")
    );
    assert_sample_tree(&ready.rootfs);
    assert_sample_config(&ready.config);
    assert_eq!(
        std::fs::read(ready.dir.join("config.json")).unwrap(),
        sample.config
    );
    let events = events.lock().unwrap().clone();
    assert!(
        events.contains(&Progress::Resolved {
            digest: sample.digest(),
            layers: 3
        }),
        "{events:?}"
    );
    assert!(
        events.contains(&Progress::Unpacking { index: 3, count: 3 }),
        "{events:?}"
    );
    let last_layer = sample.layers[2].blob.len() as u64;
    assert!(
        events.contains(&Progress::Downloading {
            index: 3,
            count: 3,
            downloaded: last_layer,
            total: last_layer
        }),
        "{events:?}"
    );
    assert!(matches!(events.last(), Some(Progress::Done { .. })));

    // Same image through the index (linux/amd64 chosen) and by digest: the cache is reused.
    let via_index = ImageRef::parse(&format!("{}/team/sample:multi", registry.addr)).unwrap();
    let again = cache.pull(&client, &via_index, no_progress()).await.unwrap();
    assert_eq!(again.digest, sample.digest());
    assert!(again.reused);
    let by_digest = ImageRef::parse(&format!("{}/team/sample@{}", registry.addr, sample.digest())).unwrap();
    assert!(
        cache
            .pull(&client, &by_digest, no_progress())
            .await
            .unwrap()
            .reused
    );

    // A fresh cache pulls by digest through ImageSource as well.
    let second_dir = tempfile::tempdir().unwrap();
    let source = ImageSource::Registry {
        image: by_digest,
        options: RegistryOptions {
            insecure: true,
            ..Default::default()
        },
    };
    let fresh = ImageCache::new(second_dir.path())
        .ensure(&source, no_progress())
        .await
        .unwrap();
    assert!(!fresh.reused);
    assert_sample_tree(&fresh.rootfs);

    let missing = ImageRef::parse(&format!("{}/team/sample:nope", registry.addr)).unwrap();
    let err = cache.pull(&client, &missing, no_progress()).await.unwrap_err();
    assert!(matches!(err, RegistryError::NotFound { .. }), "{err}");
    let arm = ImageRef::parse(&format!("{}/team/sample@{}", registry.addr, other.digest())).unwrap();
    let err = cache.pull(&client, &arm, no_progress()).await;
    assert!(err.is_ok(), "pulling the other manifest by digest works: {err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_required_rejected_and_accepted() {
    let registry = Registry::start(Some(("alice", "s3cret-pass"))).await;
    let pusher = Pusher::new(&registry.addr, Some(("alice", "s3cret-pass")));
    let sample = image::sample();
    pusher.image("private/app", "1.0", &sample).await;
    let image = ImageRef::parse(&format!("{}/private/app:1.0", registry.addr)).unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = ImageCache::new(cache_dir.path());

    let err = cache
        .pull(&client(None), &image, no_progress())
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::AuthRequired { .. }), "{err}");
    assert!(err.to_string().contains("requires authentication"), "{err}");

    let wrong = client(Some(Credentials::new("alice", "wrong")));
    let err = cache.pull(&wrong, &image, no_progress()).await.unwrap_err();
    assert!(matches!(err, RegistryError::AuthFailed { .. }), "{err}");
    assert!(err.to_string().contains("rejected the credentials"), "{err}");
    assert!(
        !err.to_string().contains("wrong"),
        "error leaks the password: {err}"
    );

    let ready = cache
        .pull(
            &client(Some(Credentials::new("alice", "s3cret-pass"))),
            &image,
            no_progress(),
        )
        .await
        .unwrap();
    assert_sample_tree(&ready.rootfs);
}

/// Everything below `dir`, relative, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            out.push(e.path().strip_prefix(dir).unwrap().display().to_string());
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_layers_are_refused_and_write_nothing_outside() {
    let registry = Registry::start(None).await;
    let pusher = Pusher::new(&registry.addr, None);
    let work = tempfile::tempdir().unwrap();
    let outside = work.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let cache_dir = work.path().join("cache");
    let traversal = image::image(vec![layer(
        &[dir("etc/", 0o755), file("../../outside/escaped", 0o644, "pwned")],
        true,
    )]);
    let target = outside.display().to_string();
    let symlink_escape = image::image(vec![
        layer(&[symlink("x", &target)], true),
        layer(&[file("x/passwd", 0o644, "root::0:0::/:/bin/sh\n")], true),
    ]);
    let relative_escape = image::image(vec![layer(
        &[
            symlink("y", "../../../../../../outside"),
            file("y/passwd", 0o644, "pwned"),
        ],
        false,
    )]);
    pusher.image("evil/app", "traversal", &traversal).await;
    pusher.image("evil/app", "symlink", &symlink_escape).await;
    pusher.image("evil/app", "relative", &relative_escape).await;
    let cache = ImageCache::new(&cache_dir);
    let client = client(None);
    for (tag, entry, img) in [
        ("traversal", "../../outside/escaped", &traversal),
        ("symlink", "x/passwd", &symlink_escape),
        ("relative", "y/passwd", &relative_escape),
    ] {
        let image = ImageRef::parse(&format!("{}/evil/app:{tag}", registry.addr)).unwrap();
        let err = cache.pull(&client, &image, no_progress()).await.unwrap_err();
        match &err {
            RegistryError::UnsafeEntry { entry: e, .. } => assert_eq!(e, entry, "{err}"),
            other => panic!("{tag}: expected a refusal, got {other}"),
        }
        assert!(err.to_string().contains(entry), "{err}");
        assert!(
            !cache.image_dir(&img.digest()).exists(),
            "{tag}: a refused image was cached"
        );
    }
    assert!(
        listing(&outside).is_empty(),
        "wrote outside the root: {:?}",
        listing(&outside)
    );
    let leftovers: Vec<String> = listing(&cache_dir.join("rootfs"));
    assert!(
        leftovers.is_empty(),
        "temporary build directories left behind: {leftovers:?}"
    );
    let mut top = listing(work.path());
    top.retain(|p| !p.starts_with("cache/"));
    assert_eq!(top, ["cache", "outside"]);
    assert_eq!(
        std::fs::read_to_string("/etc/passwd")
            .map(|s| s.contains("pwned"))
            .ok(),
        Some(false)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_auth() {
    let tokens = support::token::TokenService::start("bob", "tok-pass").await;
    let registry = Registry::start_bearer(&tokens.realm).await;
    // `silly` auth accepts any Authorization header, so the pusher's basic header is enough.
    let pusher = Pusher::new(&registry.addr, Some(("push", "push")));
    let sample = image::sample();
    pusher.image("team/tokened", "v1", &sample).await;
    let image = ImageRef::parse(&format!("{}/team/tokened:v1", registry.addr)).unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = ImageCache::new(cache_dir.path());

    let err = cache
        .pull(&client(None), &image, no_progress())
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::AuthRequired { .. }), "{err}");
    let wrong = client(Some(Credentials::new("bob", "nope")));
    let err = cache.pull(&wrong, &image, no_progress()).await.unwrap_err();
    assert!(matches!(err, RegistryError::AuthFailed { .. }), "{err}");

    let ready = cache
        .pull(
            &client(Some(Credentials::new("bob", "tok-pass"))),
            &image,
            no_progress(),
        )
        .await
        .unwrap();
    assert_sample_tree(&ready.rootfs);
    let requests = tokens.requests.lock().unwrap().clone();
    assert!(
        requests
            .iter()
            .any(|r| r.contains("scope=repository%3Ateam%2Ftokened%3Apull")
                && r.contains("service=sandpool-test")),
        "token requests: {requests:?}"
    );
}

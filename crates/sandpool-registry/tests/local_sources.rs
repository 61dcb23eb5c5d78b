//! Loads images from an OCI image layout directory and from `docker save` tarballs (legacy
//! and OCI forms), and refuses tampered blobs.

mod support;

use std::path::Path;

use sandpool_registry::{no_progress, Digest, ImageCache, ImageSource, RegistryError};
use support::image::{self, assert_sample_config, assert_sample_tree, Image};

fn write_blob(dir: &Path, bytes: &[u8]) -> Digest {
    let d = Digest::of(bytes);
    let path = dir.join("blobs/sha256").join(d.hex());
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
    d
}

/// Writes `img` as an OCI layout under `dir`, tagged `tag`.
fn write_layout(dir: &Path, img: &Image, tag: &str) {
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    for l in &img.layers {
        write_blob(dir, &l.blob);
    }
    write_blob(dir, &img.config);
    let digest = write_blob(dir, &img.manifest);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest.to_string(),
            "size": img.manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag}
        }]
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

fn tar_dir(src: &Path, out: &Path) {
    let mut b = tar::Builder::new(std::fs::File::create(out).unwrap());
    b.append_dir_all(".", src).unwrap();
    b.finish().unwrap();
}

#[tokio::test]
async fn oci_layout_directory() {
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    std::fs::create_dir(&layout).unwrap();
    let sample = image::sample();
    write_layout(&layout, &sample, "v1");
    let cache = ImageCache::new(work.path().join("cache"));
    let source = ImageSource::OciLayout {
        path: layout.clone(),
        name: Some("v1".into()),
    };
    let ready = cache.ensure(&source, no_progress()).await.unwrap();
    assert_eq!(ready.digest, sample.digest());
    assert_sample_tree(&ready.rootfs);
    assert_sample_config(&ready.config);
    let unnamed = ImageSource::OciLayout {
        path: layout.clone(),
        name: None,
    };
    assert!(cache.ensure(&unnamed, no_progress()).await.unwrap().reused);
    let missing = ImageSource::OciLayout {
        path: layout.clone(),
        name: Some("v2".into()),
    };
    let err = cache.ensure(&missing, no_progress()).await.unwrap_err();
    assert!(matches!(err, RegistryError::NotFound { .. }), "{err}");
}

#[tokio::test]
async fn tampered_layout_blob_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    std::fs::create_dir(&layout).unwrap();
    let sample = image::sample();
    write_layout(&layout, &sample, "v1");
    let victim = layout
        .join("blobs/sha256")
        .join(Digest::of(&sample.layers[1].blob).hex());
    let mut bytes = std::fs::read(&victim).unwrap();
    let last = bytes.len() - 1024 - 1;
    bytes[last] ^= 1;
    std::fs::write(&victim, bytes).unwrap();
    let cache = ImageCache::new(work.path().join("cache"));
    let source = ImageSource::OciLayout {
        path: layout,
        name: None,
    };
    let err = cache.ensure(&source, no_progress()).await.unwrap_err();
    assert!(matches!(err, RegistryError::DigestMismatch { .. }), "{err}");
    assert!(!cache.image_dir(&sample.digest()).exists());

    let bad_json = work.path().join("bad");
    std::fs::create_dir(&bad_json).unwrap();
    std::fs::write(bad_json.join("oci-layout"), "{}").unwrap();
    std::fs::write(bad_json.join("index.json"), "{\"schemaVersion\":2,").unwrap();
    let err = cache
        .ensure(
            &ImageSource::OciLayout {
                path: bad_json,
                name: None,
            },
            no_progress(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Malformed { .. }), "{err}");
}

#[tokio::test]
async fn legacy_docker_save_tarball() {
    let work = tempfile::tempdir().unwrap();
    let sample = image::sample();
    let staging = work.path().join("staging");
    std::fs::create_dir(&staging).unwrap();
    let config_name = format!("{}.json", Digest::of(&sample.config).hex());
    std::fs::write(staging.join(&config_name), &sample.config).unwrap();
    let mut layer_paths = Vec::new();
    for (i, l) in sample.layers.iter().enumerate() {
        let id = format!("layer{i}");
        std::fs::create_dir(staging.join(&id)).unwrap();
        // docker save stores uncompressed tars.
        let tar = if l.media_type.ends_with("gzip") {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&l.blob[..]), &mut out).unwrap();
            out
        } else {
            l.blob.clone()
        };
        std::fs::write(staging.join(&id).join("layer.tar"), tar).unwrap();
        layer_paths.push(format!("{id}/layer.tar"));
    }
    let manifest =
        serde_json::json!([{"Config": config_name, "RepoTags": ["team/app:1.0"], "Layers": layer_paths}]);
    std::fs::write(
        staging.join("manifest.json"),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
    let archive = work.path().join("app.tar");
    tar_dir(&staging, &archive);

    let cache = ImageCache::new(work.path().join("cache"));
    let source = ImageSource::DockerArchive {
        path: archive.clone(),
        name: Some("team/app:1.0".into()),
    };
    let ready = cache.ensure(&source, no_progress()).await.unwrap();
    assert!(!ready.reused);
    assert_sample_tree(&ready.rootfs);
    assert_sample_config(&ready.config);
    let again = cache
        .ensure(
            &ImageSource::DockerArchive {
                path: archive,
                name: None,
            },
            no_progress(),
        )
        .await
        .unwrap();
    assert!(again.reused, "same archive, same synthetic digest");
    assert_eq!(again.digest, ready.digest);
    let scratch: Vec<_> = std::fs::read_dir(work.path().join("cache/tmp"))
        .unwrap()
        .collect();
    assert!(scratch.is_empty(), "scratch extraction left behind");

    // A layer that does not match the config's diff_ids is refused.
    std::fs::write(
        staging.join("layer1/layer.tar"),
        image::tar_of(&[image::file("x", 0o644, "x")]),
    )
    .unwrap();
    let tampered = work.path().join("tampered.tar");
    tar_dir(&staging, &tampered);
    let fresh = ImageCache::new(work.path().join("cache2"));
    let err = fresh
        .ensure(
            &ImageSource::DockerArchive {
                path: tampered,
                name: None,
            },
            no_progress(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::DigestMismatch { .. }), "{err}");
}

#[tokio::test]
async fn oci_form_docker_save_tarball() {
    let work = tempfile::tempdir().unwrap();
    let staging = work.path().join("staging");
    std::fs::create_dir(&staging).unwrap();
    let sample = image::sample();
    write_layout(&staging, &sample, "latest");
    let archive = work.path().join("oci.tar");
    tar_dir(&staging, &archive);
    let cache = ImageCache::new(work.path().join("cache"));
    let ready = cache
        .ensure(
            &ImageSource::DockerArchive {
                path: archive,
                name: None,
            },
            no_progress(),
        )
        .await
        .unwrap();
    assert_eq!(ready.digest, sample.digest());
    assert_sample_tree(&ready.rootfs);
}

//! Builds (or finds) the built-in images: `cargo run -p sandpool-image --example ensure -- [python] [shell]`.
//! Data dir: `SANDPOOL_TEST_DATA`, else `<workspace>/target/test-data`.

use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let data = std::env::var_os("SANDPOOL_TEST_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-data"));
    if let Err(e) = std::fs::create_dir_all(&data) {
        eprintln!("cannot create {}: {e}", data.display());
        std::process::exit(1);
    }
    let data = data.canonicalize().unwrap_or(data);
    let store = sandpool_image::ImageStore::new(&data);
    let mut names: Vec<String> = std::env::args().skip(1).collect();
    if names.is_empty() {
        names = vec!["shell".into(), "python".into()];
    }
    for name in names {
        let recipe = match name.as_str() {
            "python" => sandpool_image::recipes::python(),
            "shell" => sandpool_image::recipes::shell(),
            other => {
                eprintln!("unknown image `{other}` (python, shell)");
                std::process::exit(2);
            }
        };
        let started = Instant::now();
        match store.ensure(&recipe, &mut |line| {
            eprintln!("[{name} {:>4}s] {line}", started.elapsed().as_secs())
        }) {
            Ok(image) => println!(
                "{name}: {} ({} packages, {:.1}s)",
                image.rootfs.display(),
                image.manifest.len(),
                started.elapsed().as_secs_f64()
            ),
            Err(e) => {
                eprintln!("{name}: {e}");
                std::process::exit(1);
            }
        }
    }
}

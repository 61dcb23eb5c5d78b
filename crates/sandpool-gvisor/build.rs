//! Compiles the statx compatibility shim (`compat/statx_compat.c`) into a shared
//! object that the backend embeds and preloads into gVisor sandboxes.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let source = "compat/statx_compat.c";
    println!("cargo:rerun-if-changed={source}");
    println!("cargo:rerun-if-env-changed=CC");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let compiler = std::env::var_os("CC").unwrap_or_else(|| "cc".into());
    let status = Command::new(&compiler)
        .args(["-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o"])
        .arg(out.join("libsandpool_statx_compat.so"))
        .arg(source)
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler {compiler:?}: {e}"));
    assert!(status.success(), "compiling {source} failed: {status}");
}

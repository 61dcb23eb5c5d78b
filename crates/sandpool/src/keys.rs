//! API keys for the service: from `SANDPOOL_API_KEY`, the config file, or — when none is
//! configured — a generated admin key written to `<data_dir>/admin-key` (mode 0600).

use anyhow::Context;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub fn hash_hex(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Returns the generated key file's path, creating the key on first use.
pub fn ensure_generated_admin_key(data_dir: &Path) -> anyhow::Result<(PathBuf, String)> {
    let path = data_dir.join("admin-key");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let key = existing.trim().to_owned();
        if key.len() >= 32 {
            return Ok((path, key));
        }
    }
    let key = format!("sp-{}", hex::encode(rand::random::<[u8; 24]>()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    writeln!(f, "{key}")?;
    Ok((path, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_is_stable_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let (p1, k1) = ensure_generated_admin_key(dir.path()).unwrap();
        let (p2, k2) = ensure_generated_admin_key(dir.path()).unwrap();
        assert_eq!((p1.clone(), k1.clone()), (p2, k2));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(p1).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(
            hash_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

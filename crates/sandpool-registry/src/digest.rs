//! sha256 content digests (`sha256:<64 hex>`) and hashing helpers that verify them.

use std::fmt;
use std::io::Read;
use std::path::Path;

use sha2::{Digest as _, Sha256};

use crate::RegistryError;

/// A validated `sha256:<64 lowercase hex>` digest.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

impl TryFrom<String> for Digest {
    type Error = RegistryError;
    fn try_from(s: String) -> Result<Self, RegistryError> {
        Self::parse(&s)
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.0
    }
}

impl Digest {
    /// Parses `sha256:<hex>`; other algorithms are refused.
    pub fn parse(input: &str) -> Result<Self, RegistryError> {
        let bad = |reason: &str| RegistryError::InvalidDigest {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let (algo, hex) = input
            .split_once(':')
            .ok_or_else(|| bad("expected `sha256:<hex>`"))?;
        if algo != "sha256" {
            return Err(bad("only sha256 digests are supported"));
        }
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad("expected 64 lowercase hex characters"));
        }
        Ok(Self(input.to_string()))
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(format!("sha256:{}", hex::encode(Sha256::digest(bytes))))
    }

    /// The digest of a finished hasher.
    pub(crate) fn from_hasher(hasher: Sha256) -> Self {
        Self(format!("sha256:{}", hex::encode(hasher.finalize())))
    }

    /// The digest of a file's content.
    pub fn of_file(path: &Path) -> Result<(Self, u64), RegistryError> {
        let mut file = std::fs::File::open(path).map_err(|e| RegistryError::io("open", path, e))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0u64;
        loop {
            let n = file
                .read(&mut buf)
                .map_err(|e| RegistryError::io("read", path, e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            total += n as u64;
        }
        Ok((Self::from_hasher(hasher), total))
    }

    /// `sha256:<hex>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The hex part.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    /// A file-name friendly form: `sha256-<hex>`.
    pub fn dir_name(&self) -> String {
        format!("sha256-{}", self.hex())
    }

    /// Fails with [`RegistryError::DigestMismatch`] unless `bytes` hash to this digest.
    pub fn verify(&self, what: &str, bytes: &[u8]) -> Result<(), RegistryError> {
        self.check(what, &Self::of(bytes))
    }

    /// Fails with [`RegistryError::DigestMismatch`] unless `actual` equals this digest.
    pub fn check(&self, what: &str, actual: &Digest) -> Result<(), RegistryError> {
        if self != actual {
            return Err(RegistryError::DigestMismatch {
                what: what.to_string(),
                expected: self.0.clone(),
                actual: actual.0.clone(),
            });
        }
        Ok(())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A reader that hashes everything read through it.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Reads the rest of the stream, then returns its digest and total length.
    pub(crate) fn finish(mut self) -> std::io::Result<(Digest, u64)> {
        std::io::copy(&mut self, &mut std::io::sink())?;
        Ok((Digest::from_hasher(self.hasher), self.count))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let d = Digest::of(b"hello");
        assert_eq!(
            d.as_str(),
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(Digest::parse(d.as_str()).unwrap(), d);
        assert!(Digest::parse("sha512:abcd").is_err());
        assert!(Digest::parse("sha256:ABCD").is_err());
        assert!(Digest::parse("sha256:2cf2").is_err());
        assert!(Digest::parse("nocolon").is_err());
        assert!(d.verify("blob", b"hello").is_ok());
        assert!(matches!(
            d.verify("blob", b"hellO"),
            Err(RegistryError::DigestMismatch { .. })
        ));
    }
}

//! Parsing of request paths into components confined to the data directory (no IO).
//!
//! A request path is relative to the data directory; a leading `/mnt/data/` is accepted.
//! Other absolute paths, `..` components and NUL bytes are refused. Symlinks are handled
//! at open time by `files`, which walks these components with `O_NOFOLLOW`.

use sandpool_proto::{AgentError, ErrorKind};

/// The data directory as clients name it, whatever its path in this process.
pub const DATA_PREFIX: &str = "/mnt/data";
/// Longest path accepted, as Linux's `PATH_MAX`.
const MAX_PATH_BYTES: usize = 4096;
/// Longest single component, as Linux's `NAME_MAX`.
const MAX_NAME_BYTES: usize = 255;

/// A path below the data directory as its list of plain components (no `.`, `..` or `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataPath {
    components: Vec<String>,
}

impl DataPath {
    /// Parses a request path; errors are `InvalidPath`.
    pub fn parse(raw: &str) -> Result<DataPath, AgentError> {
        if raw.contains('\0') {
            return Err(invalid_path("path contains a NUL byte"));
        }
        if raw.len() > MAX_PATH_BYTES {
            return Err(invalid_path("path is too long"));
        }
        let relative = if raw == DATA_PREFIX {
            ""
        } else if let Some(rest) = raw.strip_prefix(DATA_PREFIX).and_then(|r| r.strip_prefix('/')) {
            rest
        } else if raw.starts_with('/') {
            return Err(invalid_path(&format!("{raw:?} is outside {DATA_PREFIX}")));
        } else {
            raw
        };
        let mut components = Vec::new();
        for part in relative.split('/') {
            match part {
                "" | "." => {}
                ".." => return Err(invalid_path("`..` is not allowed in paths")),
                name if name.len() > MAX_NAME_BYTES => {
                    return Err(invalid_path("a path component is too long"))
                }
                name => components.push(name.to_owned()),
            }
        }
        Ok(DataPath { components })
    }

    /// True for the data directory itself.
    #[cfg(test)]
    pub fn is_root(&self) -> bool {
        self.components.is_empty()
    }

    /// Parent components and the final name; `None` for the data directory itself.
    pub fn split_last(&self) -> Option<(&[String], &str)> {
        let (last, parents) = self.components.split_last()?;
        Some((parents, last))
    }

    #[cfg(test)]
    pub fn components(&self) -> &[String] {
        &self.components
    }

    /// The canonical relative form, `/`-separated (`""` for the data directory).
    pub fn display(&self) -> String {
        self.components.join("/")
    }
}

/// An `InvalidPath` error with `message`.
pub fn invalid_path(message: &str) -> AgentError {
    AgentError {
        kind: ErrorKind::InvalidPath,
        message: message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(raw: &str) -> Vec<String> {
        DataPath::parse(raw).unwrap().components().to_vec()
    }

    #[test]
    fn relative_and_prefixed_paths_name_the_same_file() {
        assert_eq!(parts("a/b.txt"), ["a", "b.txt"]);
        assert_eq!(parts("/mnt/data/a/b.txt"), ["a", "b.txt"]);
        assert_eq!(parts("./a//b.txt/"), ["a", "b.txt"]);
    }

    #[test]
    fn the_data_directory_itself_is_the_empty_path() {
        for raw in ["", ".", "/mnt/data", "/mnt/data/", "/mnt/data/./"] {
            assert!(DataPath::parse(raw).unwrap().is_root(), "{raw:?}");
        }
        assert_eq!(DataPath::parse("/mnt/data").unwrap().split_last(), None);
    }

    #[test]
    fn escapes_are_refused() {
        for raw in [
            "../x",
            "a/../../x",
            "a/..",
            "/etc/passwd",
            "/mnt/database",
            "/mnt/data/../etc",
            "/",
            "a\0b",
        ] {
            let err = DataPath::parse(raw).unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidPath, "{raw:?}");
        }
    }

    #[test]
    fn overlong_names_are_refused() {
        assert!(DataPath::parse(&"x".repeat(256)).is_err());
        assert!(DataPath::parse(&"x".repeat(255)).is_ok());
        assert!(DataPath::parse(&"a/".repeat(3000)).is_err());
    }

    #[test]
    fn display_is_canonical() {
        assert_eq!(DataPath::parse("/mnt/data//x/./y").unwrap().display(), "x/y");
        let p = DataPath::parse("x/y/z").unwrap();
        let (parents, name) = p.split_last().unwrap();
        assert_eq!((parents.len(), name), (2, "z"));
    }
}

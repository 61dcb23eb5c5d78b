//! What an image is made of, its canonical text form and its content digest.

use sha2::{Digest, Sha256};

use crate::ImageError;

/// Version of the build procedure. Bump it whenever the way a recipe is turned into a rootfs
/// changes (hook script, mmdebstrap options): that changes every digest and forces rebuilds.
pub const BUILDER_VERSION: &str = "sandpool-image-builder 2";

/// The unprivileged account every sandbox process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSpec {
    /// Login name (also the group name).
    pub name: String,
    /// Numeric user id.
    pub uid: u32,
    /// Numeric group id.
    pub gid: u32,
    /// Home directory (not created).
    pub home: String,
    /// Login shell.
    pub shell: String,
}

/// An empty directory created in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirSpec {
    /// Absolute path inside the image.
    pub path: String,
    /// Permission bits, e.g. `0o1777`.
    pub mode: u32,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
}

/// A Python virtual environment populated from a fully pinned requirements text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VenvSpec {
    /// Absolute path of the venv inside the image.
    pub path: String,
    /// pip requirements text: exact `==` pins with `--hash` lines (installed with
    /// `--require-hashes --only-binary=:all:`).
    pub requirements: String,
}

/// Everything that determines an image's content. Its [`Recipe::digest`] names the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    /// Image name: lowercase letters, digits and `-`.
    pub name: String,
    /// Debian suite, e.g. `bookworm`.
    pub suite: String,
    /// mmdebstrap variant, e.g. `apt`.
    pub variant: String,
    /// Debian packages to install on top of the variant.
    pub packages: Vec<String>,
    /// Optional Python venv.
    pub venv: Option<VenvSpec>,
    /// The sandbox user.
    pub user: UserSpec,
    /// Empty directories to create.
    pub dirs: Vec<DirSpec>,
    /// Shell command run inside the finished image (as root); the build fails if it fails.
    pub check: String,
}

impl Recipe {
    /// Canonical text form of the recipe (also written to `recipe.txt`).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut line = |fields: &[&str]| {
            out.push_str(&fields.join("\t"));
            out.push('\n');
        };
        line(&["name", &self.name]);
        line(&["suite", &self.suite]);
        line(&["variant", &self.variant]);
        for package in &self.packages {
            line(&["package", package]);
        }
        let u = &self.user;
        line(&[
            "user",
            &u.name,
            &u.uid.to_string(),
            &u.gid.to_string(),
            &u.home,
            &u.shell,
        ]);
        for d in &self.dirs {
            let mode = format!("{:04o}", d.mode);
            line(&["dir", &d.path, &mode, &d.uid.to_string(), &d.gid.to_string()]);
        }
        line(&["check", &self.check]);
        if let Some(venv) = &self.venv {
            line(&["venv", &venv.path]);
            for req in venv.requirements.lines() {
                line(&["requirement", req]);
            }
        }
        out
    }

    /// sha256 (hex) over [`BUILDER_VERSION`] and the canonical recipe text.
    pub fn digest(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(BUILDER_VERSION.as_bytes());
        hasher.update(b"\n");
        hasher.update(self.render().as_bytes());
        hex::encode(hasher.finalize())
    }

    /// Directory name of the built image: `<name>-<first 12 hex digits of the digest>`.
    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.name, &self.digest()[..12])
    }

    /// Rejects recipes that could not be built safely (odd names, relative or `..` paths,
    /// characters that would need shell quoting in package names).
    pub fn validate(&self) -> Result<(), ImageError> {
        let bad = |what: String| Err(ImageError::InvalidRecipe(what));
        let simple = |s: &str, extra: &[char]| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || extra.contains(&c))
        };
        if !simple(&self.name, &['-']) || self.name.starts_with('-') {
            return bad(format!(
                "image name `{}` must be lowercase letters, digits and `-`",
                self.name
            ));
        }
        if !simple(&self.suite, &['-']) || !simple(&self.variant, &['-']) {
            return bad(format!(
                "suite `{}` / variant `{}` is not a plain word",
                self.suite, self.variant
            ));
        }
        for p in &self.packages {
            if !simple(p, &['-', '+', '.']) {
                return bad(format!("Debian package name `{p}` is not valid"));
            }
        }
        if !simple(&self.user.name, &['-', '_']) {
            return bad(format!("user name `{}` is not valid", self.user.name));
        }
        let mut paths: Vec<&str> = self.dirs.iter().map(|d| d.path.as_str()).collect();
        paths.extend([self.user.home.as_str(), self.user.shell.as_str()]);
        if let Some(v) = &self.venv {
            paths.push(&v.path);
        }
        for p in paths {
            let safe = p.starts_with('/')
                && p.len() > 1
                && p.chars().all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
                && !p.split('/').any(|seg| seg == "..");
            if !safe {
                return bad(format!("path `{p}` must be absolute, plain and without `..`"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipes;

    #[test]
    fn digest_is_stable_hex_sha256() {
        let a = recipes::python().digest();
        assert_eq!(a, recipes::python().digest());
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, recipes::shell().digest());
        let dir = recipes::shell().dir_name();
        assert!(
            dir.starts_with("shell-") && dir.len() == "shell-".len() + 12,
            "{dir}"
        );
    }

    #[test]
    fn digest_changes_on_every_field() {
        let base = recipes::python();
        let d0 = base.digest();
        let mut variants: Vec<Recipe> = Vec::new();
        let mut push = |f: &dyn Fn(&mut Recipe)| {
            let mut r = base.clone();
            f(&mut r);
            variants.push(r);
        };
        push(&|r| r.name.push('x'));
        push(&|r| r.suite = "trixie".into());
        push(&|r| r.variant = "minbase".into());
        push(&|r| r.packages.push("jq".into()));
        push(&|r| r.packages.reverse());
        push(&|r| r.user.uid = 1001);
        push(&|r| r.user.gid = 1001);
        push(&|r| r.user.name = "other".into());
        push(&|r| r.user.home = "/home/sandbox".into());
        push(&|r| r.user.shell = "/bin/sh".into());
        push(&|r| r.dirs[0].mode = 0o700);
        push(&|r| r.dirs[0].uid = 0);
        push(&|r| r.dirs[0].path = "/mnt/other".into());
        push(&|r| r.dirs.pop().map(|_| ()).unwrap_or(()));
        push(&|r| r.check.push(' '));
        push(&|r| r.venv.as_mut().unwrap().path = "/opt/venv2".into());
        push(&|r| {
            r.venv.as_mut().unwrap().requirements = r
                .venv
                .as_ref()
                .unwrap()
                .requirements
                .replace("numpy==", "numpy==0")
        });
        push(&|r| r.venv = None);
        let mut seen = std::collections::HashSet::from([d0.clone()]);
        for (i, r) in variants.iter().enumerate() {
            assert!(seen.insert(r.digest()), "variant {i} did not change the digest");
        }
    }

    #[test]
    fn field_boundaries_are_unambiguous() {
        let mut a = recipes::shell();
        let mut b = recipes::shell();
        a.packages = vec!["ab".into(), "c".into()];
        b.packages = vec!["a".into(), "bc".into()];
        assert_ne!(a.digest(), b.digest());
    }

    #[test]
    fn validation_rejects_unsafe_recipes() {
        assert!(recipes::python().validate().is_ok());
        assert!(recipes::shell().validate().is_ok());
        let mut r = recipes::shell();
        r.name = "../x".into();
        assert!(r.validate().is_err());
        let mut r = recipes::shell();
        r.packages.push("bash; rm -rf /".into());
        assert!(r.validate().is_err());
        let mut r = recipes::shell();
        r.dirs[0].path = "/mnt/../etc".into();
        assert!(r.validate().is_err());
        let mut r = recipes::shell();
        r.dirs[0].path = "relative".into();
        assert!(r.validate().is_err());
    }
}

//! `manifest.tsv`: one `name<TAB>version<TAB>kind` line per installed dpkg and pip package,
//! read from the rootfs (`/var/lib/dpkg/status`, the venv's `*.dist-info/METADATA`).

use std::fmt;
use std::path::Path;

use crate::ImageError;

/// Where a package came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PackageKind {
    /// A Debian package (`deb` in the manifest).
    Deb,
    /// A Python distribution installed by pip into the venv (`pip` in the manifest).
    Pip,
}

impl fmt::Display for PackageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PackageKind::Deb => "deb",
            PackageKind::Pip => "pip",
        })
    }
}

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ManifestEntry {
    /// Package name as its package manager spells it.
    pub name: String,
    /// Installed version.
    pub version: String,
    /// Package manager.
    pub kind: PackageKind,
}

/// Renders entries as `manifest.tsv` text (sorted by kind, then name).
pub(crate) fn render(entries: &[ManifestEntry]) -> String {
    let mut sorted = entries.to_vec();
    sorted.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    sorted
        .iter()
        .map(|e| format!("{}\t{}\t{}\n", e.name, e.version, e.kind))
        .collect()
}

/// Parses `manifest.tsv` text; `path` is only used in error messages.
pub(crate) fn parse(text: &str, path: &Path) -> Result<Vec<ManifestEntry>, ImageError> {
    let err = |line: usize, reason: String| ImageError::Manifest {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let [name, version, kind] = fields[..] else {
            return Err(err(
                i + 1,
                format!("expected 3 tab-separated fields, got {}", fields.len()),
            ));
        };
        if name.is_empty() || version.is_empty() {
            return Err(err(i + 1, "empty name or version".into()));
        }
        let kind = match kind {
            "deb" => PackageKind::Deb,
            "pip" => PackageKind::Pip,
            other => return Err(err(i + 1, format!("unknown package kind `{other}`"))),
        };
        entries.push(ManifestEntry {
            name: name.into(),
            version: version.into(),
            kind,
        });
    }
    Ok(entries)
}

/// Installed packages listed in a dpkg `status` file.
pub(crate) fn parse_dpkg_status(text: &str) -> Vec<ManifestEntry> {
    let mut entries = Vec::new();
    for stanza in text.split("\n\n") {
        let field = |key: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(key).and_then(|rest| rest.strip_prefix(':')))
                .map(str::trim)
        };
        let installed =
            field("Status").is_some_and(|s| s.ends_with(" installed") && !s.contains("not-installed"));
        if let (true, Some(name), Some(version)) = (installed, field("Package"), field("Version")) {
            let name = match field("Architecture") {
                Some(arch) if field("Multi-Arch") == Some("same") => format!("{name}:{arch}"),
                _ => name.to_string(),
            };
            entries.push(ManifestEntry {
                name,
                version: version.into(),
                kind: PackageKind::Deb,
            });
        }
    }
    entries
}

/// Name and version from a `*.dist-info/METADATA` file (headers end at the first blank line).
pub(crate) fn parse_dist_info(text: &str) -> Option<ManifestEntry> {
    let headers = text.split("\n\n").next()?;
    let header = |key: &str| headers.lines().find_map(|l| l.strip_prefix(key)).map(str::trim);
    Some(ManifestEntry {
        name: header("Name:")?.into(),
        version: header("Version:")?.into(),
        kind: PackageKind::Pip,
    })
}

/// Reads every dpkg and (if `venv` is set) pip package installed in `rootfs`.
pub(crate) fn collect(rootfs: &Path, venv: Option<&str>) -> Result<Vec<ManifestEntry>, ImageError> {
    let status_path = rootfs.join("var/lib/dpkg/status");
    let status =
        std::fs::read_to_string(&status_path).map_err(ImageError::io("reading dpkg status", &status_path))?;
    let mut entries = parse_dpkg_status(&status);
    if let Some(venv) = venv {
        let lib = rootfs.join(venv.trim_start_matches('/')).join("lib");
        for py in std::fs::read_dir(&lib).map_err(ImageError::io("listing venv lib", &lib))? {
            let site = py
                .map_err(ImageError::io("listing venv lib", &lib))?
                .path()
                .join("site-packages");
            let Ok(dir) = std::fs::read_dir(&site) else {
                continue;
            };
            for item in dir {
                let item = item
                    .map_err(ImageError::io("listing site-packages", &site))?
                    .path();
                if item.extension().is_some_and(|e| e == "dist-info") {
                    let meta = item.join("METADATA");
                    let text = std::fs::read_to_string(&meta).map_err(ImageError::io("reading", &meta))?;
                    let entry = parse_dist_info(&text).ok_or_else(|| ImageError::Manifest {
                        path: meta.clone(),
                        line: 0,
                        reason: "no Name/Version header".into(),
                    })?;
                    entries.push(entry);
                }
            }
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Package: bash\nEssential: yes\nStatus: install ok installed\nVersion: 5.2.15-2+b7\n\
        Description: GNU Bourne Again SHell\n more text\n\n\
        Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nMulti-Arch: same\nVersion: 2.36-9\n\n\
        Package: removed\nStatus: deinstall ok config-files\nVersion: 1.0\n\n\
        Package: jq\nStatus: install ok installed\nVersion: 1.6-2.1\n";

    #[test]
    fn dpkg_status_lists_installed_packages_only() {
        let e = parse_dpkg_status(STATUS);
        let names: Vec<(&str, &str)> = e.iter().map(|e| (e.name.as_str(), e.version.as_str())).collect();
        assert_eq!(
            names,
            [
                ("bash", "5.2.15-2+b7"),
                ("libc6:amd64", "2.36-9"),
                ("jq", "1.6-2.1")
            ]
        );
    }

    #[test]
    fn dist_info_headers() {
        let m = "Metadata-Version: 2.1\nName: numpy\nVersion: 2.4.6\nSummary: x\n\nName: not-a-header\n";
        let e = parse_dist_info(m).unwrap();
        assert_eq!(
            (e.name.as_str(), e.version.as_str(), e.kind),
            ("numpy", "2.4.6", PackageKind::Pip)
        );
        assert!(parse_dist_info("Metadata-Version: 2.1\n").is_none());
    }

    #[test]
    fn manifest_round_trips_sorted() {
        let mut e = parse_dpkg_status(STATUS);
        e.push(parse_dist_info("Name: ipython\nVersion: 9.18.1\n").unwrap());
        let text = render(&e);
        assert_eq!(text.lines().next(), Some("bash\t5.2.15-2+b7\tdeb"));
        assert_eq!(text.lines().last(), Some("ipython\t9.18.1\tpip"));
        let mut back = parse(&text, Path::new("m.tsv")).unwrap();
        back.sort();
        e.sort();
        assert_eq!(back, e);
    }

    #[test]
    fn malformed_manifest_is_an_error_with_line_number() {
        let p = Path::new("m.tsv");
        let err = parse("bash\t5\tdeb\njq\t1.6\n", p).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("3 tab-separated"), "{err}");
        assert!(parse("x\t1\trpm\n", p)
            .unwrap_err()
            .to_string()
            .contains("unknown package kind"));
        assert!(parse("\t1\tdeb\n", p).is_err());
    }
}

//! The two built-in images: `python` (IPython + the data-science stack) and `shell`.

use crate::{DirSpec, Recipe, UserSpec, VenvSpec};

/// Fully pinned, hash-locked pip requirements of the python image.
const PYTHON_REQUIREMENTS: &str = include_str!("python-requirements.txt");

/// Modules the python image must import at build time.
const PYTHON_CHECK: &str = "env HOME=/tmp/.sandpool-check MPLCONFIGDIR=/tmp/.sandpool-check/mpl \
    /opt/venv/bin/python3 -c 'import IPython, numpy, pandas, matplotlib, scipy, sklearn, pkg_resources, \
    msgpack, matplotlib_inline, sympy, seaborn, PIL, openpyxl, xlrd, pyarrow, requests, bs4, lxml, \
    tabulate, dateutil, pytz'";

fn sandbox_user() -> UserSpec {
    UserSpec {
        name: "sandbox".into(),
        uid: 1000,
        gid: 1000,
        home: "/tmp".into(),
        shell: "/bin/bash".into(),
    }
}

fn sandbox_dirs() -> Vec<DirSpec> {
    let dir = |path: &str, mode, uid| DirSpec {
        path: path.into(),
        mode,
        uid,
        gid: uid,
    };
    vec![
        dir("/mnt/data", 0o755, 1000),
        dir("/opt/sandpool", 0o755, 0),
        dir("/tmp", 0o1777, 0),
    ]
}

fn packages(list: &[&str]) -> Vec<String> {
    list.iter().map(|p| p.to_string()).collect()
}

/// Python image: Debian's python3 and a venv at `/opt/venv` with IPython, msgpack, numpy,
/// pandas, matplotlib, scipy, scikit-learn, … pinned by hash; everything byte-compiled.
pub fn python() -> Recipe {
    Recipe {
        name: "python".into(),
        suite: "bookworm".into(),
        variant: "apt".into(),
        packages: packages(&[
            "python3",
            "python3-venv",
            "ca-certificates",
            "tzdata",
            "libexpat1",
        ]),
        venv: Some(VenvSpec {
            path: "/opt/venv".into(),
            requirements: PYTHON_REQUIREMENTS.into(),
        }),
        user: sandbox_user(),
        dirs: sandbox_dirs(),
        check: PYTHON_CHECK.into(),
    }
}

/// Shell image: bash and the usual command-line tools.
pub fn shell() -> Recipe {
    Recipe {
        name: "shell".into(),
        suite: "bookworm".into(),
        variant: "apt".into(),
        packages: packages(&[
            "bash",
            "coreutils",
            "findutils",
            "grep",
            "sed",
            "gawk",
            "curl",
            "jq",
            "git",
            "python3",
            "zip",
            "unzip",
            "ca-certificates",
        ]),
        venv: None,
        user: sandbox_user(),
        dirs: sandbox_dirs(),
        check: "bash --version >/dev/null && jq --version && git --version && curl --version >/dev/null"
            .into(),
    }
}

//! Runs Debian's `docker-registry` (distribution 2.8) on a free loopback port with a
//! temporary storage directory, optionally behind htpasswd basic auth; killed on drop.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// The registry binary from Debian's `docker-registry` package.
pub const BINARY: &str = "/usr/bin/docker-registry";

pub struct Registry {
    /// `127.0.0.1:<port>`.
    pub addr: String,
    _child: tokio::process::Child,
    dir: tempfile::TempDir,
}

impl Registry {
    /// Starts the registry without authentication.
    pub async fn start(htpasswd_user: Option<(&str, &str)>) -> Registry {
        Self::start_with(htpasswd_user, None).await
    }

    /// Starts the registry behind distribution's `silly` token auth: it answers with a
    /// `Bearer realm=<realm>` challenge and accepts any request carrying a token.
    pub async fn start_bearer(realm: &str) -> Registry {
        Self::start_with(None, Some(realm)).await
    }

    /// Starts the registry; with `htpasswd_user` it requires that user's basic credentials.
    async fn start_with(htpasswd_user: Option<(&str, &str)>, bearer_realm: Option<&str>) -> Registry {
        assert!(
            Path::new(BINARY).exists(),
            "{BINARY} is missing: install it with `apt-get install docker-registry`"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let storage = dir.path().join("storage");
        std::fs::create_dir(&storage).unwrap();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
            storage.display()
        );
        if let Some((user, password)) = htpasswd_user {
            let hash = bcrypt::hash_with_result(password, 5)
                .unwrap()
                .format_for_version(bcrypt::Version::TwoY);
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, format!("{user}:{hash}\n")).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: sandpool-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        if let Some(realm) = bearer_realm {
            config.push_str(&format!(
                "auth:\n  silly:\n    realm: {realm}\n    service: sandpool-test\n"
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = tokio::process::Command::new(BINARY)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("start docker-registry");
        let registry = Registry {
            addr,
            _child: child,
            dir,
        };
        registry.wait_ready().await;
        registry
    }

    async fn wait_ready(&self) {
        let http = reqwest::Client::new();
        let url = format!("http://{}/v2/", self.addr);
        for _ in 0..100 {
            if let Ok(Ok(resp)) = tokio::time::timeout(Duration::from_secs(2), http.get(&url).send()).await {
                if resp.status().is_success() || resp.status().as_u16() == 401 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "docker-registry did not answer on {url} within ~10 s; log:\n{}",
            self.log()
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

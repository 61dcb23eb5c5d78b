//! One session's network as the backends see it: the namespace to join and the
//! `resolv.conf` to bind-mount, removed again through its manager.

use crate::{NetError, NetworkManager};
use sandpool_sandbox::SandboxId;
use std::path::{Path, PathBuf};

/// The network of one egress-enabled sandbox. Remove it with [`SessionNetwork::remove`]
/// when the sandbox ends; nothing is removed on drop.
#[derive(Debug, Clone)]
pub struct SessionNetwork {
    pub(crate) id: SandboxId,
    pub(crate) netns_path: PathBuf,
    pub(crate) resolv_conf: PathBuf,
    pub(crate) manager: NetworkManager,
}

impl SessionNetwork {
    pub fn id(&self) -> &SandboxId {
        &self.id
    }
    /// `/run/netns/<name>`: the OCI `linux.namespaces` network `path`.
    pub fn netns_path(&self) -> &Path {
        &self.netns_path
    }
    /// A `resolv.conf` naming the session's resolver, for `/etc/resolv.conf`.
    pub fn resolv_conf(&self) -> &Path {
        &self.resolv_conf
    }
    /// Removes the namespace, veth pair, nftables objects and resolver. Idempotent.
    pub async fn remove(&self) -> Result<(), NetError> {
        self.manager.detach(&self.id).await
    }
    /// Blocking best-effort [`SessionNetwork::remove`], for `Drop`.
    pub fn remove_blocking(&self) {
        self.manager.detach_blocking(&self.id)
    }
}

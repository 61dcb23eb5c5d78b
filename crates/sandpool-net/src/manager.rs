//! [`NetworkManager`]: the host side of every egress-enabled session of one sandpool
//! instance: the nftables table, per-session namespaces, veth pairs, resolvers and
//! counters, and cleanup of an earlier run's leftovers at start.

use crate::names::{
    host_if_prefix, instance_tag, netns_prefix, slot_count, slot_names, table_name, SlotNames,
};
use crate::nft::{self, TableParams};
use crate::rules::{NEVER_REACHABLE, PRIVATE};
use crate::{command, resolver, shaping, EgressRules, Ipv4Cidr, NetConfig, NetError, SessionNetwork};
use sandpool_sandbox::{EgressConfig, SandboxId};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use tokio::task::JoinHandle;

/// Marker: this instance turned IPv4 forwarding on, so forwarding that is not a
/// session's stays dropped (as it was before).
const FORWARDING_MARKER: &str = "forwarding-enabled-by-sandpool";

/// Bytes a session sent out (`tx`) and received (`rx`) through its NAT.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EgressCounters {
    pub tx_bytes: u64,
    pub rx_bytes: u64,
}

/// What [`NetworkManager::sample`] read: the counters of every session that has a
/// network, and the last counters of sessions removed since the previous sample.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EgressSample {
    pub live: Vec<(SandboxId, EgressCounters)>,
    pub ended: Vec<(SandboxId, EgressCounters)>,
}

/// Final counters of removed sessions kept for the next sample; beyond this the oldest
/// are dropped (nobody is sampling).
const MAX_ENDED: usize = 65_536;

/// Creates and removes session networks. Cheap to clone (shared state).
#[derive(Clone)]
pub struct NetworkManager {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for NetworkManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkManager")
            .field("tag", &self.inner.tag)
            .field("uplink", &self.inner.uplink)
            .finish()
    }
}

struct Inner {
    tag: String,
    uplink: String,
    mtu: u32,
    subnet: Ipv4Cidr,
    upstream: SocketAddr,
    resolv_dir: PathBuf,
    sessions: Mutex<HashMap<SandboxId, Session>>,
    ended: Mutex<std::collections::VecDeque<(SandboxId, EgressCounters)>>,
}

struct Session {
    names: SlotNames,
    rules: Arc<RwLock<EgressRules>>,
    resolver: Option<JoinHandle<()>>,
    resolv_conf: PathBuf,
}

impl NetworkManager {
    /// Removes whatever an earlier run of this instance left (namespaces, veths, the
    /// nftables table), turns IPv4 forwarding on if needed and installs the table.
    pub async fn start(config: NetConfig) -> Result<Self, NetError> {
        let tag = instance_tag(&config.instance);
        let uplink = match &config.uplink {
            Some(u) => u.clone(),
            None => default_route_interface().await?,
        };
        let mtu: u32 = std::fs::read_to_string(format!("/sys/class/net/{uplink}/mtu"))
            .map_err(|e| NetError::InvalidConfig(format!("uplink {uplink:?}: {e}")))?
            .trim()
            .parse()
            .map_err(|_| NetError::InvalidConfig(format!("uplink {uplink:?} has no MTU")))?;
        // veth's largest MTU (loopback has 65536).
        let mtu = mtu.min(65535);
        let upstream = match config.upstream_dns {
            Some(a) => a,
            None => host_nameserver()?,
        };
        remove_host_leftovers(&tag).await?;
        let resolv_dir = config.state_dir.join("resolv");
        let _ = std::fs::remove_dir_all(&resolv_dir);
        std::fs::create_dir_all(&resolv_dir)?;
        set_mode(&config.state_dir, 0o755)?;
        set_mode(&resolv_dir, 0o755)?;
        let guard = enable_forwarding(&config.state_dir.join(FORWARDING_MARKER))?;
        let never: Vec<Ipv4Cidr> = NEVER_REACHABLE
            .iter()
            .map(|c| c.parse().expect("valid"))
            .collect();
        let mut private: Vec<Ipv4Cidr> = PRIVATE.iter().map(|c| c.parse().expect("valid")).collect();
        private.extend(interface_subnets(&uplink).await?);
        let script = nft::table(&TableParams {
            tag: &tag,
            uplink: &uplink,
            session_subnet: config.session_subnet,
            never: &never,
            private: &private,
            guard_other_forwarding: guard,
        });
        command::run("nft", &["-f", "-"], Some(&script), "install the sandpool table").await?;
        tracing::info!(tag, uplink, %upstream, subnet = %config.session_subnet, "session networking ready");
        Ok(NetworkManager {
            inner: Arc::new(Inner {
                tag,
                uplink,
                mtu,
                subnet: config.session_subnet,
                upstream,
                resolv_dir,
                sessions: Mutex::new(HashMap::new()),
                ended: Mutex::new(Default::default()),
            }),
        })
    }

    /// The tag in this instance's host object names.
    pub fn tag(&self) -> &str {
        &self.inner.tag
    }

    /// The interface sessions' traffic leaves through.
    pub fn uplink(&self) -> &str {
        &self.inner.uplink
    }

    /// Creates the network of sandbox `id`: namespace, veth pair, addresses, filter
    /// rules, resolver and `resolv.conf`.
    pub async fn attach(&self, id: &SandboxId, egress: &EgressConfig) -> Result<SessionNetwork, NetError> {
        let rules = EgressRules::parse(egress)?;
        let names = self.reserve(id, &rules)?;
        match self.build(&names, &rules).await {
            Ok(resolver) => {
                let mut sessions = self.inner.sessions.lock().expect("sessions lock");
                let session = sessions.get_mut(id).expect("reserved session");
                session.resolver = Some(resolver);
                Ok(SessionNetwork {
                    id: id.clone(),
                    netns_path: PathBuf::from("/run/netns").join(&names.netns),
                    resolv_conf: session.resolv_conf.clone(),
                    manager: self.clone(),
                })
            }
            Err(e) => {
                if let Err(cleanup) = self.detach(id).await {
                    tracing::warn!(sandbox = %id, error = %cleanup, "cleanup of a failed session network");
                }
                Err(e)
            }
        }
    }

    fn reserve(&self, id: &SandboxId, rules: &EgressRules) -> Result<SlotNames, NetError> {
        let mut sessions = self.inner.sessions.lock().expect("sessions lock");
        if sessions.contains_key(id) {
            return Err(NetError::InvalidConfig(format!(
                "sandbox {id} already has a network"
            )));
        }
        let used: std::collections::HashSet<u32> = sessions.values().map(|s| s.names.slot).collect();
        let slot = (0..slot_count(&self.inner.subnet))
            .find(|s| !used.contains(s))
            .ok_or(NetError::Exhausted(sessions.len()))?;
        let names = slot_names(&self.inner.tag, &self.inner.subnet, slot)
            .ok_or(NetError::Exhausted(sessions.len()))?;
        let resolv_conf = self.inner.resolv_dir.join(format!("{}.conf", names.netns));
        sessions.insert(
            id.clone(),
            Session {
                names: names.clone(),
                rules: Arc::new(RwLock::new(rules.clone())),
                resolver: None,
                resolv_conf,
            },
        );
        Ok(names)
    }

    async fn build(&self, n: &SlotNames, rules: &EgressRules) -> Result<JoinHandle<()>, NetError> {
        let i = &self.inner;
        let mtu = i.mtu;
        let host = format!(
            "netns add {ns}\nlink add {h} mtu {mtu} type veth peer name eth0 mtu {mtu} netns {ns}\naddr add {hip}/30 dev {h}\nlink set {h} up\n",
            ns = n.netns,
            h = n.host_if,
            hip = n.host_ip
        );
        command::run("ip", &["-batch", "-"], Some(&host), "create the session link").await?;
        let inside = format!(
            "link set lo up\naddr add {}/30 dev eth0\nlink set eth0 up\nroute add default via {}\n",
            n.sandbox_ip, n.host_ip
        );
        command::run(
            "ip",
            &["-n", &n.netns, "-batch", "-"],
            Some(&inside),
            "configure the session namespace",
        )
        .await?;
        let script = nft::add_session(&i.tag, &i.uplink, n, rules);
        command::run("nft", &["-f", "-"], Some(&script), "add the session's rules").await?;
        shape(n, rules.bandwidth_bytes_per_sec).await?;
        let (shared_rules, resolv_conf) = {
            let sessions = i.sessions.lock().expect("sessions lock");
            let s = sessions
                .values()
                .find(|s| s.names.slot == n.slot)
                .expect("reserved");
            (s.rules.clone(), s.resolv_conf.clone())
        };
        std::fs::write(
            &resolv_conf,
            format!("nameserver {}\noptions timeout:2 attempts:2\n", n.host_ip),
        )?;
        set_mode(&resolv_conf, 0o644)?;
        let resolver = resolver::spawn(
            n.host_ip,
            resolver::ResolverState {
                tag: i.tag.clone(),
                slot: n.slot,
                upstream: i.upstream,
                rules: shared_rules,
            },
        )
        .await?;
        Ok(resolver)
    }

    /// Applies a new egress configuration to a running session: its CIDRs, domains and
    /// limits. Addresses opened by earlier lookups are forgotten; open connections stay.
    pub async fn update_egress(&self, id: &SandboxId, egress: &EgressConfig) -> Result<(), NetError> {
        let rules = EgressRules::parse(egress)?;
        let (names, shared) = {
            let sessions = self.inner.sessions.lock().expect("sessions lock");
            let s = sessions
                .get(id)
                .ok_or_else(|| NetError::UnknownSession(id.to_string()))?;
            (s.names.clone(), s.rules.clone())
        };
        let script = nft::session_rules(&self.inner.tag, &self.inner.uplink, &names, &rules);
        command::run("nft", &["-f", "-"], Some(&script), "update the session's rules").await?;
        shape(&names, rules.bandwidth_bytes_per_sec).await?;
        *shared.write().expect("rules lock") = rules;
        tracing::info!(sandbox = %id, "session egress rules updated");
        Ok(())
    }

    /// The session's byte counters (what its metrics report).
    pub async fn counters(&self, id: &SandboxId) -> Result<EgressCounters, NetError> {
        let slot = {
            let sessions = self.inner.sessions.lock().expect("sessions lock");
            sessions
                .get(id)
                .ok_or_else(|| NetError::UnknownSession(id.to_string()))?
                .names
                .slot
        };
        let table = table_name(&self.inner.tag);
        let read = |name: String| {
            let table = table.clone();
            async move {
                let out = command::run(
                    "nft",
                    &["-j", "list", "counter", "inet", &table, &name],
                    None,
                    "read a counter",
                )
                .await?;
                nft::parse_counter(&out).ok_or_else(|| NetError::Command {
                    program: "nft",
                    action: "read a counter".into(),
                    message: format!("unexpected output {out:?}"),
                })
            }
        };
        Ok(EgressCounters {
            tx_bytes: read(format!("tx{slot}")).await?,
            rx_bytes: read(format!("rx{slot}")).await?,
        })
    }

    /// Every session's counters in one `nft` call, plus the final counters of sessions
    /// removed since the last call (each reported once).
    pub async fn sample(&self) -> Result<EgressSample, NetError> {
        if self.inner.sessions.lock().expect("sessions lock").is_empty() {
            let ended = self.inner.ended.lock().expect("ended lock").drain(..).collect();
            return Ok(EgressSample {
                live: Vec::new(),
                ended,
            });
        }
        let table = table_name(&self.inner.tag);
        let out = command::run(
            "nft",
            &["-j", "list", "counters", "table", "inet", &table],
            None,
            "read the counters",
        )
        .await?;
        let by_name: HashMap<String, u64> = nft::parse_counters(&out).into_iter().collect();
        let live = {
            let sessions = self.inner.sessions.lock().expect("sessions lock");
            sessions
                .iter()
                .filter_map(|(id, s)| {
                    let k = s.names.slot;
                    Some((
                        id.clone(),
                        EgressCounters {
                            tx_bytes: *by_name.get(&format!("tx{k}"))?,
                            rx_bytes: *by_name.get(&format!("rx{k}"))?,
                        },
                    ))
                })
                .collect()
        };
        let ended = self.inner.ended.lock().expect("ended lock").drain(..).collect();
        Ok(EgressSample { live, ended })
    }

    fn remember_final(&self, id: &SandboxId, counters: EgressCounters) {
        let mut ended = self.inner.ended.lock().expect("ended lock");
        if ended.len() >= MAX_ENDED {
            ended.pop_front();
        }
        ended.push_back((id.clone(), counters));
    }

    /// The session's gateway (host end, also its resolver) and its own address.
    pub fn addresses(&self, id: &SandboxId) -> Option<(Ipv4Addr, Ipv4Addr)> {
        let sessions = self.inner.sessions.lock().expect("sessions lock");
        sessions.get(id).map(|s| (s.names.host_ip, s.names.sandbox_ip))
    }

    /// Sandboxes that currently have a network.
    pub fn sessions(&self) -> Vec<SandboxId> {
        self.inner
            .sessions
            .lock()
            .expect("sessions lock")
            .keys()
            .cloned()
            .collect()
    }

    fn take(&self, id: &SandboxId) -> Option<Session> {
        let mut session = self.inner.sessions.lock().expect("sessions lock").remove(id)?;
        if let Some(r) = session.resolver.take() {
            r.abort();
        }
        Some(session)
    }

    /// Removes the network of `id`. Idempotent.
    pub(crate) async fn detach(&self, id: &SandboxId) -> Result<(), NetError> {
        match self.counters(id).await {
            Ok(last) => self.remember_final(id, last),
            Err(NetError::UnknownSession(_)) => {}
            Err(e) => tracing::debug!(sandbox = %id, error = %e, "final counters unreadable"),
        }
        let Some(s) = self.take(id) else { return Ok(()) };
        let n = &s.names;
        let rules = command::run(
            "nft",
            &["-f", "-"],
            Some(&nft::remove_session(&self.inner.tag, n)),
            "remove the session's rules",
        )
        .await;
        let link = command::run(
            "ip",
            &["link", "del", &n.host_if],
            None,
            "delete the session link",
        )
        .await;
        let netns = command::run(
            "ip",
            &["netns", "del", &n.netns],
            None,
            "delete the session namespace",
        )
        .await;
        let _ = std::fs::remove_file(&s.resolv_conf);
        let link = link.or_else(|e| {
            if link_exists(&n.host_if) {
                Err(e)
            } else {
                Ok(String::new())
            }
        });
        let netns = netns.or_else(|e| {
            if PathBuf::from("/run/netns").join(&n.netns).exists() {
                Err(e)
            } else {
                Ok(String::new())
            }
        });
        tracing::debug!(sandbox = %id, slot = n.slot, "session network removed");
        rules.and(link).and(netns).map(|_| ())
    }

    /// Blocking best-effort [`NetworkManager::detach`].
    pub(crate) fn detach_blocking(&self, id: &SandboxId) {
        let Some(s) = self.take(id) else { return };
        let n = &s.names;
        command::run_blocking(
            "nft",
            &["-f", "-"],
            Some(&nft::remove_session(&self.inner.tag, n)),
        );
        command::run_blocking("ip", &["link", "del", &n.host_if], None);
        command::run_blocking("ip", &["netns", "del", &n.netns], None);
        let _ = std::fs::remove_file(&s.resolv_conf);
    }

    /// Removes every session network and the nftables table.
    pub async fn shutdown(&self) -> Result<(), NetError> {
        for id in self.sessions() {
            if let Err(e) = self.detach(&id).await {
                tracing::warn!(sandbox = %id, error = %e, "removing a session network at shutdown");
            }
        }
        remove_host_leftovers(&self.inner.tag).await
    }

    /// What exists on the host for this instance: namespaces, links and the table
    /// (for checks that nothing was left behind).
    pub async fn host_objects(&self) -> Result<Vec<String>, NetError> {
        host_objects(&self.inner.tag).await
    }
}

fn set_mode(path: &std::path::Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

fn link_exists(name: &str) -> bool {
    PathBuf::from("/sys/class/net").join(name).exists()
}

/// Namespaces, links and the nftables table of instance `tag` that exist now.
pub async fn host_objects(tag: &str) -> Result<Vec<String>, NetError> {
    let mut found = Vec::new();
    let ns_prefix = netns_prefix(tag);
    if let Ok(entries) = std::fs::read_dir("/run/netns") {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&ns_prefix) {
                found.push(format!("netns {name}"));
            }
        }
    }
    let if_prefix = host_if_prefix(tag);
    for e in std::fs::read_dir("/sys/class/net")?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(&if_prefix) {
            found.push(format!("link {name}"));
        }
    }
    let tables = command::run("nft", &["list", "tables"], None, "list tables").await?;
    let table = table_name(tag);
    if tables.lines().any(|l| l.trim() == format!("table inet {table}")) {
        found.push(format!("nft table {table}"));
    }
    Ok(found)
}

async fn remove_host_leftovers(tag: &str) -> Result<(), NetError> {
    let mut batch = String::new();
    for object in host_objects(tag).await? {
        if let Some(link) = object.strip_prefix("link ") {
            batch.push_str(&format!("link del {link}\n"));
        }
    }
    for object in host_objects(tag).await? {
        if let Some(ns) = object.strip_prefix("netns ") {
            batch.push_str(&format!("netns del {ns}\n"));
        }
    }
    if !batch.is_empty() {
        tracing::info!(
            tag,
            objects = batch.lines().count(),
            "removing leftover session networks"
        );
        command::run(
            "ip",
            &["-force", "-batch", "-"],
            Some(&batch),
            "remove leftover session networks",
        )
        .await?;
    }
    command::run(
        "nft",
        &["-f", "-"],
        Some(&nft::delete_table(tag)),
        "remove the leftover table",
    )
    .await?;
    Ok(())
}

async fn default_route_interface() -> Result<String, NetError> {
    let out = command::run(
        "ip",
        &["-j", "-4", "route", "show", "default"],
        None,
        "find the default route",
    )
    .await?;
    let routes: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    routes
        .as_array()
        .and_then(|r| r.iter().find_map(|r| r.get("dev")?.as_str().map(str::to_string)))
        .ok_or_else(|| {
            NetError::InvalidConfig("the host has no IPv4 default route; configure the uplink".into())
        })
}

async fn interface_subnets(dev: &str) -> Result<Vec<Ipv4Cidr>, NetError> {
    let out = command::run(
        "ip",
        &["-j", "-4", "addr", "show", "dev", dev],
        None,
        "read the uplink's addresses",
    )
    .await?;
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    let mut subnets = Vec::new();
    for iface in v.as_array().into_iter().flatten() {
        for a in iface
            .get("addr_info")
            .and_then(|a| a.as_array())
            .into_iter()
            .flatten()
        {
            let (Some(local), Some(len)) = (
                a.get("local").and_then(|l| l.as_str()),
                a.get("prefixlen").and_then(|p| p.as_u64()),
            ) else {
                continue;
            };
            if let (Ok(ip), Ok(len)) = (local.parse::<Ipv4Addr>(), u8::try_from(len)) {
                let mask = if len == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(len.min(32)))
                };
                if let Ok(net) = Ipv4Cidr::new(Ipv4Addr::from(u32::from(ip) & mask), len) {
                    subnets.push(net);
                }
            }
        }
    }
    Ok(subnets)
}

fn host_nameserver() -> Result<SocketAddr, NetError> {
    let text = std::fs::read_to_string("/etc/resolv.conf")?;
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .find_map(|a| a.trim().parse::<Ipv4Addr>().ok())
        .map(|ip| SocketAddr::from((ip, 53)))
        .ok_or_else(|| {
            NetError::InvalidConfig(
                "no IPv4 nameserver in /etc/resolv.conf; configure the upstream DNS".into(),
            )
        })
}

/// Turns IPv4 forwarding on. Returns whether forwarding other than the sessions' must
/// stay dropped (it was off before this instance, now or in an earlier run).
fn enable_forwarding(marker: &std::path::Path) -> Result<bool, NetError> {
    let path = "/proc/sys/net/ipv4/ip_forward";
    if std::fs::read_to_string(path)?.trim() == "0" {
        std::fs::write(marker, "sandpool turned net.ipv4.ip_forward on\n")?;
        std::fs::write(path, "1")?;
        tracing::info!("turned IPv4 forwarding on; forwarding other than sessions' stays dropped");
    }
    Ok(marker.exists())
}

/// Limits both directions of a session's link to `bytes_per_sec`.
async fn shape(n: &SlotNames, bytes_per_sec: u64) -> Result<(), NetError> {
    let towards_sandbox = shaping::shape(&n.host_if, bytes_per_sec);
    command::run(
        "tc",
        &["-batch", "-"],
        Some(&towards_sandbox),
        "shape the session's downlink",
    )
    .await?;
    let from_sandbox = shaping::shape(shaping::SANDBOX_IF, bytes_per_sec);
    command::run(
        "tc",
        &["-n", &n.netns, "-batch", "-"],
        Some(&from_sandbox),
        "shape the session's uplink",
    )
    .await?;
    Ok(())
}

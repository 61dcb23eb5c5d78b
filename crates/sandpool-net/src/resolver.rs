//! A session's DNS resolver: listens on the host end of the session's veth, answers
//! names the session's rules do not allow with NXDOMAIN, forwards the rest upstream and,
//! for allow-listed sessions, opens the answer's addresses in the session's nftables
//! set for the records' TTL before the answer is returned. AAAA queries get an empty
//! answer (sessions have no IPv6).

use crate::dns_wire::{
    a_records, empty_response, parse_query, response_id, RCODE_NOERROR, RCODE_NXDOMAIN, TYPE_AAAA,
};
use crate::{command, nft, EgressRules};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::Semaphore;

const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(4);
/// Shortest time an address stays open after a lookup (TTL 0 records).
const MIN_OPEN: Duration = Duration::from_secs(10);
const MAX_OPEN: Duration = Duration::from_secs(24 * 3600);
const MAX_IN_FLIGHT: usize = 64;

/// What one session's resolver needs.
pub struct ResolverState {
    pub tag: String,
    pub slot: u32,
    pub upstream: SocketAddr,
    pub rules: Arc<RwLock<EgressRules>>,
}

/// Binds `listen:53` and serves until the returned task is aborted.
pub async fn spawn(listen: Ipv4Addr, state: ResolverState) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let socket = Arc::new(UdpSocket::bind((listen, 53)).await?);
    let state = Arc::new(state);
    Ok(tokio::spawn(async move {
        let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
        let mut buf = vec![0u8; 1500];
        loop {
            let (len, client) = match socket.recv_from(&mut buf).await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "session resolver receive failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(permit) = in_flight.clone().try_acquire_owned() else {
                continue;
            };
            let (packet, socket, state) = (buf[..len].to_vec(), socket.clone(), state.clone());
            tokio::spawn(async move {
                if let Some(answer) = answer(&state, &packet).await {
                    let _ = socket.send_to(&answer, client).await;
                }
                drop(permit);
            });
        }
    }))
}

async fn answer(state: &ResolverState, packet: &[u8]) -> Option<Vec<u8>> {
    let query = parse_query(packet)?;
    let (allowed, allow_list) = {
        let rules = state.rules.read().expect("rules lock");
        (rules.allows_name(&query.name), rules.allow_list)
    };
    if !allowed {
        tracing::debug!(slot = state.slot, name = query.name, "resolver refused a name");
        return Some(empty_response(packet, &query, RCODE_NXDOMAIN));
    }
    if query.qtype == TYPE_AAAA {
        return Some(empty_response(packet, &query, RCODE_NOERROR));
    }
    let response = forward(state.upstream, packet, query.id).await?;
    if allow_list {
        let open: Vec<(Ipv4Addr, Duration)> = a_records(&response)
            .into_iter()
            .map(|(ip, ttl)| (ip, Duration::from_secs(u64::from(ttl)).clamp(MIN_OPEN, MAX_OPEN)))
            .collect();
        if !open.is_empty() {
            let script = nft::open_addresses(&state.tag, state.slot, &open);
            if let Err(e) = command::run("nft", &["-f", "-"], Some(&script), "open resolved addresses").await
            {
                tracing::warn!(slot = state.slot, error = %e, "cannot open resolved addresses");
                return Some(empty_response(packet, &query, 2));
            }
        }
    }
    Some(response)
}

async fn forward(upstream: SocketAddr, packet: &[u8], id: u16) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind(("0.0.0.0", 0)).await.ok()?;
    socket.connect(upstream).await.ok()?;
    socket.send(packet).await.ok()?;
    let mut buf = vec![0u8; 4096];
    let deadline = tokio::time::Instant::now() + UPSTREAM_TIMEOUT;
    loop {
        let len = tokio::time::timeout_at(deadline, socket.recv(&mut buf))
            .await
            .ok()?
            .ok()?;
        if response_id(&buf[..len]) == Some(id) {
            return Some(buf[..len].to_vec());
        }
    }
}

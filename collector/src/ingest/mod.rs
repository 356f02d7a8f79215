//! The ingest server: a [`Listener`] and one thread per agent connection (a few hundred
//! boards are a few hundred mostly-sleeping threads). Connections decode frames and batches
//! and hand rows to a [`StoreWriter`]; they never see how either end is implemented.

pub mod ack;
mod agent;
pub mod budget;
pub mod close;
pub mod conn;
pub mod noise;
pub mod seq;
pub mod stats;
pub mod transport;

use crate::store::StoreWriter;
pub use agent::{MAX_RECORDS_PER_BATCH, MAX_UNDESCRIBED_KEYS};
pub use budget::Budget;
use conn::{serve_agent, ConnConfig};
pub use noise::{NoiseListen, Trust};
pub use stats::IngestStats;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
pub use transport::{Duplex, Listener, TcpListen};

#[derive(Debug, Clone)]
pub struct IngestConfig {
    pub conn: ConnConfig,
    /// Connections beyond this many at once are closed on accept.
    pub max_connections: usize,
    /// Connections from one address (IP) beyond this many at once are closed on accept.
    pub max_per_address: usize,
    /// The collector-wide memory budget of receive buffers and batches in flight.
    pub budget: Budget,
    /// Counted as connections go, for metrics.
    pub stats: Arc<IngestStats>,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            conn: ConnConfig {
                idle_timeout: Duration::from_secs(60),
                poll: Duration::from_millis(50),
                write_timeout: Duration::from_secs(5),
                // An agent's batch is at most MAX_BATCH_BYTES (64 KiB); twice that is room.
                max_body: 2 * hopcap_proto::batch::MAX_BATCH_BYTES as u32,
                frame_deadline: Duration::from_secs(30),
                hello_deadline: Duration::from_secs(10),
            },
            max_connections: 1024,
            max_per_address: 128,
            budget: Budget::default(),
            stats: Arc::default(),
        }
    }
}

/// A running listener; [`Server::stop`] ends it and every connection.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: JoinHandle<()>,
}

impl Server {
    /// Starts accepting on `listener`; rows go to `store`.
    pub fn start(
        listener: Box<dyn Listener>,
        store: Arc<dyn StoreWriter>,
        config: IngestConfig,
    ) -> std::io::Result<Server> {
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let accept = std::thread::Builder::new()
            .name("ingest-accept".into())
            .spawn(move || accept_loop(listener, store, config, flag))?;
        Ok(Server { addr, stop, accept })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, ends every connection (each within its poll interval) and waits.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        if self.accept.join().is_err() {
            log::error!("ingest: the accept thread panicked");
        }
    }
}

/// The address part of a peer name (`1.2.3.4:5678`, `[::1]:5678`); the name itself if it
/// has none.
fn peer_ip(peer: &str) -> String {
    peer.parse::<SocketAddr>()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|_| peer.to_string())
}

/// Connections open per address.
#[derive(Debug, Default)]
struct PerAddress(std::sync::Mutex<HashMap<String, usize>>);

impl PerAddress {
    fn take(&self, ip: &str, limit: usize) -> bool {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = m.entry(ip.to_string()).or_insert(0);
        if *n >= limit {
            return false;
        }
        *n += 1;
        true
    }

    fn give(&self, ip: &str) {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = m.get_mut(ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(ip);
            }
        }
    }
}

fn accept_loop(
    mut listener: Box<dyn Listener>,
    store: Arc<dyn StoreWriter>,
    config: IngestConfig,
    stop: Arc<AtomicBool>,
) {
    let stats = Arc::clone(&config.stats);
    let per_address = Arc::new(PerAddress::default());
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok(Some((stream, peer))) => {
                if stats.connections() >= config.max_connections {
                    crate::warn_limited!(
                        "refused-limit",
                        "{peer}: refused: {} connections already (--max-connections)",
                        config.max_connections
                    );
                    continue;
                }
                let ip = peer_ip(&peer);
                if !per_address.take(&ip, config.max_per_address) {
                    crate::warn_limited!(
                        "refused-address",
                        "{peer}: refused: {} connections from {ip} already",
                        config.max_per_address
                    );
                    continue;
                }
                let (who, store, cfg, stop, stats, budget, per_address) = (
                    peer.clone(),
                    Arc::clone(&store),
                    config.conn.clone(),
                    Arc::clone(&stop),
                    Arc::clone(&stats),
                    config.budget.clone(),
                    Arc::clone(&per_address),
                );
                stats.connections.fetch_add(1, Ordering::Relaxed);
                let (undo_stats, undo_address, undo_ip) =
                    (Arc::clone(&stats), Arc::clone(&per_address), ip.clone());
                let spawned = std::thread::Builder::new()
                    .name(format!("agent-{peer}"))
                    .stack_size(1024 * 1024)
                    .spawn(move || {
                        serve_agent(stream, who, store, &cfg, &budget, &stats, &stop);
                        per_address.give(&ip);
                        stats.connections.fetch_sub(1, Ordering::Relaxed);
                    });
                match spawned {
                    Ok(t) => threads.push(t),
                    Err(e) => {
                        undo_address.give(&undo_ip);
                        undo_stats.connections.fetch_sub(1, Ordering::Relaxed);
                        crate::error_limited!("thread-spawn", "{peer}: cannot start a thread: {e}");
                    }
                }
            }
            Ok(None) => {
                threads.retain(|t| !t.is_finished());
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => {
                crate::warn_limited!("accept-failed", "ingest: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    for t in threads {
        let _ = t.join();
    }
}

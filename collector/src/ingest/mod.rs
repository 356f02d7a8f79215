//! The ingest server: a [`Listener`] and one thread per agent connection (a few hundred
//! boards are a few hundred mostly-sleeping threads). Connections decode frames and batches
//! and hand rows to a [`StoreWriter`]; they never see how either end is implemented.

pub mod ack;
mod agent;
pub mod close;
pub mod conn;
pub mod noise;
pub mod seq;
pub mod transport;

use crate::store::StoreWriter;
use conn::{serve_agent, ConnConfig};
pub use noise::{NoiseListen, Trust};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
pub use transport::{Duplex, Listener, TcpListen};

#[derive(Debug, Clone)]
pub struct IngestConfig {
    pub conn: ConnConfig,
    /// Connections beyond this many at once are closed on accept.
    pub max_connections: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            conn: ConnConfig {
                idle_timeout: Duration::from_secs(60),
                poll: Duration::from_millis(50),
                write_timeout: Duration::from_secs(5),
                max_body: hopcap_proto::frame::DEFAULT_MAX_FRAME,
            },
            max_connections: 1024,
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

fn accept_loop(
    mut listener: Box<dyn Listener>,
    store: Arc<dyn StoreWriter>,
    config: IngestConfig,
    stop: Arc<AtomicBool>,
) {
    let active = Arc::new(AtomicUsize::new(0));
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok(Some((stream, peer))) => {
                if active.load(Ordering::Relaxed) >= config.max_connections {
                    log::warn!(
                        "{peer}: refused: {} connections already (--max-connections)",
                        config.max_connections
                    );
                    continue;
                }
                let (who, store, cfg, stop, active) = (
                    peer.clone(),
                    Arc::clone(&store),
                    config.conn.clone(),
                    Arc::clone(&stop),
                    Arc::clone(&active),
                );
                active.fetch_add(1, Ordering::Relaxed);
                let spawned = std::thread::Builder::new()
                    .name(format!("agent-{peer}"))
                    .stack_size(1024 * 1024)
                    .spawn(move || {
                        serve_agent(stream, who, store, &cfg, &stop);
                        active.fetch_sub(1, Ordering::Relaxed);
                    });
                match spawned {
                    Ok(t) => threads.push(t),
                    Err(e) => log::error!("{peer}: cannot start a thread: {e}"),
                }
            }
            Ok(None) => {
                threads.retain(|t| !t.is_finished());
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => {
                log::warn!("ingest: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    for t in threads {
        let _ = t.join();
    }
}

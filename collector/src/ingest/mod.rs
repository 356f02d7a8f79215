//! The ingest server: a TCP listener and one thread per agent connection (std::net; a few
//! hundred boards are a few hundred mostly-sleeping threads). Connections decode frames and
//! batches and hand rows to the store's single writer through its bounded channel.

pub mod ack;
mod agent;
pub mod conn;
pub mod seq;

use crate::cli::{CmdResult, ServeArgs};
use crate::store::command::WriteCmd;
use crate::store::writer::WriterConfig;
use crate::store::{open_for_writing_with, WriterHandle};
use conn::{serve_agent, ConnConfig};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

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
    /// Starts accepting on `listener`; rows go to `tx`.
    pub fn start(
        listener: TcpListener,
        tx: SyncSender<WriteCmd>,
        config: IngestConfig,
    ) -> std::io::Result<Server> {
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let accept = std::thread::Builder::new()
            .name("ingest-accept".into())
            .spawn(move || accept_loop(listener, tx, config, flag))?;
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
    listener: TcpListener,
    tx: SyncSender<WriteCmd>,
    config: IngestConfig,
    stop: Arc<AtomicBool>,
) {
    let active = Arc::new(AtomicUsize::new(0));
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, peer)) => {
                if active.load(Ordering::Relaxed) >= config.max_connections {
                    log::warn!(
                        "{peer}: refused: {} connections already (--max-connections)",
                        config.max_connections
                    );
                    continue;
                }
                if let Err(e) = stream.set_nonblocking(false) {
                    log::warn!("{peer}: cannot set up the socket: {e}");
                    continue;
                }
                let (tx, cfg, stop, active) = (
                    tx.clone(),
                    config.conn.clone(),
                    Arc::clone(&stop),
                    Arc::clone(&active),
                );
                active.fetch_add(1, Ordering::Relaxed);
                let spawned = std::thread::Builder::new()
                    .name(format!("agent-{peer}"))
                    .stack_size(1024 * 1024)
                    .spawn(move || {
                        serve_agent(stream, tx, &cfg, &stop);
                        active.fetch_sub(1, Ordering::Relaxed);
                    });
                match spawned {
                    Ok(t) => threads.push(t),
                    Err(e) => log::error!("{peer}: cannot start a thread: {e}"),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
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

/// `hopcap-collector serve`: runs until SIGINT/SIGTERM, then commits what it has and exits.
pub fn serve(args: &ServeArgs) -> CmdResult {
    let retention = args.retention()?;
    let indexes: Vec<&str> = args.index.iter().map(String::as_str).collect();
    if !indexes.is_empty() {
        log::info!("building indexes {indexes:?} if missing (long on a large database)");
    }
    let conn = open_for_writing_with(&args.db.db, &indexes)?;
    let writer = WriterHandle::spawn(
        conn,
        WriterConfig {
            retention,
            ..Default::default()
        },
        256,
    )?;
    let listener = TcpListener::bind(args.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let mut config = IngestConfig {
        max_connections: args.max_connections,
        ..Default::default()
    };
    config.conn.idle_timeout = Duration::from_secs(args.idle_timeout.max(1));
    let server = Server::start(listener, writer.sender(), config)?;
    log::info!(
        "listening on {}, database {}",
        server.local_addr(),
        args.db.db.display()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::Relaxed) {
            // A second signal: do not wait (e.g. for a full disk). Committed data is safe.
            eprintln!("hopcap-collector: stopping now; uncommitted records are lost");
            std::process::exit(130);
        }
    })
    .map_err(|e| format!("cannot install the signal handler: {e}"))?;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
    }
    log::info!("stopping: closing connections and committing");
    server.stop();
    writer.finish();
    Ok(())
}

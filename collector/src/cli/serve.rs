//! `serve`: opens the store and the listener, runs ingest until SIGINT/SIGTERM, then
//! commits what it has and exits.

use super::{CmdResult, ServeArgs};
use crate::ingest::{IngestConfig, Listener, NoiseListen, Server, TcpListen, Trust};
use crate::keys;
use crate::metrics::state::Sources;
use crate::metrics::Metrics;
use crate::scale::publish::{JetStreamConfig, JetStreamWriter};
use crate::store::clickhouse::{ClickhouseHandle, WriterConfig as ClickhouseConfig};
use crate::store::sqlite::writer::WriterConfig;
use crate::store::sqlite::{open_for_writing_with, WriterHandle};
use crate::store::{StoreWriter, WriterStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Commands that may wait for the writer before ingest threads block (back-pressure).
const WRITER_QUEUE: usize = 256;

/// Noise with `--key` and `--trusted`, plain TCP with `--insecure`, else no start.
fn listener(args: &ServeArgs) -> Result<Box<dyn Listener>, String> {
    let cannot = |e| format!("cannot listen on {}: {e}", args.listen);
    let (Some(key), Some(trusted)) = (&args.key, &args.trusted) else {
        if args.insecure {
            log::warn!(
                "--insecure: plaintext, unauthenticated TCP: anyone who reaches {} can store \
                 rows under any board name",
                args.listen
            );
            return Ok(Box::new(TcpListen::bind(args.listen).map_err(cannot)?));
        }
        return Err(
            "no keys: make the fleet's keys with `hopcap-collector keys init DIR \
                    --boards pi1,pi2` and serve with `--key DIR/collector.key --trusted \
                    DIR/trusted-boards` (or --insecure for plaintext on a trusted network)"
                .into(),
        );
    };
    let private = keys::read_private(key).map_err(|e| format!("--key {}: {e}", key.display()))?;
    let trust = Trust::open(trusted).map_err(|e| format!("--trusted: {e}"))?;
    let boards = trust.len().map_err(|e| format!("--trusted: {e}"))?;
    log::info!(
        "Noise ({}): collector key {}, {boards} trusted boards in {}",
        keys::PATTERN,
        keys::fingerprint(&keys::public_of(&private)),
        trusted.display()
    );
    Ok(Box::new(
        NoiseListen::bind(args.listen, private, trust).map_err(cannot)?,
    ))
}

/// The store `serve` writes into: the SQLite file, ClickHouse with `--clickhouse`, or NATS
/// JetStream with `--nats` (scaled mode: `correlate` nodes store).
enum Store {
    Sqlite(WriterHandle),
    Clickhouse(ClickhouseHandle),
    Nats(Arc<JetStreamWriter>),
}

impl Store {
    fn writer(&self) -> Arc<dyn StoreWriter> {
        match self {
            Store::Sqlite(w) => Arc::new(w.writer()),
            Store::Clickhouse(w) => Arc::new(w.writer()),
            Store::Nats(w) => Arc::clone(w) as Arc<dyn StoreWriter>,
        }
    }

    fn finish(self) {
        match self {
            Store::Sqlite(w) => w.finish(),
            Store::Clickhouse(w) => w.finish(),
            Store::Nats(w) => {
                if !w.flush(Duration::from_secs(30)) {
                    log::warn!("NATS: batches not stored in JetStream at exit; their agents send them again");
                }
            }
        }
    }
}

/// Opens the store `args` name (the file is made if missing; ClickHouse's tables likewise).
fn open_store(
    args: &ServeArgs,
    status: &Arc<WriterStatus>,
) -> Result<Store, Box<dyn std::error::Error>> {
    if let Some(urls) = &args.nats {
        for (given, flag) in [
            (args.retain_hours.is_some(), "--retain-hours"),
            (args.retain_mb.is_some(), "--retain-mb"),
            (!args.index.is_empty(), "--index"),
            (
                args.metrics.is_some() && args.db.clickhouse.is_none(),
                "--metrics without --clickhouse",
            ),
        ] {
            if given {
                return Err(format!(
                    "{flag}: with --nats this node stores nothing itself (the correlators \
                     store into ClickHouse; give --clickhouse for --metrics to read it)"
                )
                .into());
            }
        }
        let writer = JetStreamWriter::connect(&JetStreamConfig {
            urls: urls.clone(),
            partitions: args.partitions,
            replicas: args.replicas as usize,
            connect_timeout: Duration::from_secs(10),
        })?;
        return Ok(Store::Nats(Arc::new(writer)));
    }
    if let Some(urls) = &args.db.clickhouse {
        for (given, flag) in [
            (args.retain_mb.is_some(), "--retain-mb"),
            (!args.index.is_empty(), "--index"),
        ] {
            if given {
                return Err(format!(
                    "{flag} is for the SQLite file; with --clickhouse, --retain-hours drops \
                     whole days (see the README)"
                )
                .into());
            }
        }
        let config = ClickhouseConfig {
            max_age_ns: args.retention()?.max_age_ns,
            status: Arc::clone(status),
            ..Default::default()
        };
        return Ok(Store::Clickhouse(ClickhouseHandle::start(
            urls,
            config,
            WRITER_QUEUE,
        )?));
    }
    let retention = args.retention()?;
    let indexes: Vec<&str> = args.index.iter().map(String::as_str).collect();
    if !indexes.is_empty() {
        log::info!("building indexes {indexes:?} if missing (long on a large database)");
    }
    if let Some(dir) = args.db.db.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            return Err(format!(
                "cannot create the database {}: no directory {}",
                args.db.db.display(),
                dir.display()
            )
            .into());
        }
    }
    let conn = open_for_writing_with(&args.db.db, &indexes)?;
    Ok(Store::Sqlite(WriterHandle::spawn(
        conn,
        WriterConfig {
            retention,
            commit_delay: Duration::from_millis(args.debug_commit_delay_ms),
            status: Arc::clone(status),
            ..Default::default()
        },
        WRITER_QUEUE,
    )?))
}

pub fn serve(args: &ServeArgs) -> CmdResult {
    if args.db.clickhouse.is_none() && args.nats.is_none() {
        args.retention()?;
    }
    // Listen first: an address that cannot be bound leaves no fresh database behind.
    let listener = listener(args)?;
    let metrics_listener = args
        .metrics
        .map(|addr| {
            std::net::TcpListener::bind(addr)
                .map_err(|e| format!("--metrics: cannot listen on {addr}: {e}"))
        })
        .transpose()?;
    let status = Arc::new(WriterStatus::default());
    let writer = open_store(args, &status)?;
    let mut config = IngestConfig {
        max_connections: args.max_connections,
        ..Default::default()
    };
    config.conn.idle_timeout = Duration::from_secs(args.idle_timeout.max(1));
    let sources = Sources {
        ingest: Arc::clone(&config.stats),
        writer: status,
        // No file to measure with --clickhouse.
        db: if args.db.clickhouse.is_some() || args.nats.is_some() {
            Default::default()
        } else {
            args.db.db.clone()
        },
    };
    let server = Server::start(listener, writer.writer(), config)?;
    let metrics = match metrics_listener {
        Some(l) => {
            // Its own read connection, kept open (WAL: it never blocks the writer).
            let reader = args.db.reader()?;
            let m = Metrics::start(l, sources, reader).map_err(|e| format!("--metrics: {e}"))?;
            log::info!("metrics on http://{}/metrics", m.local_addr());
            Some(m)
        }
        None => None,
    };
    match (&args.nats, &args.db.clickhouse) {
        (Some(urls), _) => log::info!(
            "listening on {}, publishing to NATS {urls} ({} partitions)",
            server.local_addr(),
            args.partitions
        ),
        (None, Some(urls)) => log::info!("listening on {}, ClickHouse {urls}", server.local_addr()),
        (None, None) => log::info!(
            "listening on {}, database {}",
            server.local_addr(),
            args.db.db.display()
        ),
    }
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
    if let Some(m) = metrics {
        m.stop();
    }
    server.stop();
    writer.finish();
    Ok(())
}

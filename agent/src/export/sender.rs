//! The exporter's one I/O thread: connect, greet, then in turn write the next unsent batch
//! and take in whatever acks have arrived, on the same stream, until it breaks or the
//! exporter stops; then back off and reconnect.

use super::{lock, AckParser, Backoff, Connector, ExportConfig, Greeting, Shared, Stream};
use std::io;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How long the thread waits for a new batch before it looks for acks (and for the
/// collector hanging up) again, while batches await their ack ... A push wakes it at once.
const ACK_WAIT: Duration = Duration::from_millis(20);
/// ... and when none does (only a hang-up can arrive): a quiet board stays quiet.
const IDLE_WAIT: Duration = Duration::from_millis(200);

pub(super) fn run(
    shared: &Shared,
    cfg: &ExportConfig,
    mut connector: Box<dyn Connector>,
    mut greeting: Greeting,
    acks: AckParser,
) {
    let mut backoff = Backoff::new(cfg.backoff_min, cfg.backoff_max);
    while !shared.stop.load(Ordering::Relaxed) {
        let mut stream = match connector.connect() {
            Ok(s) => s,
            Err(e) => {
                shared
                    .counters
                    .connect_failures
                    .fetch_add(1, Ordering::Relaxed);
                let wait = backoff.next_delay();
                log::warn!(
                    "collector {} unreachable ({e}); retrying in {wait:?}",
                    connector.peer()
                );
                sleep_unless_stopped(shared, wait);
                continue;
            }
        };
        shared.counters.connects.fetch_add(1, Ordering::Relaxed);
        log::info!("connected to collector {}", connector.peer());
        lock(&shared.queue).sent = 0; // everything unacknowledged goes again
        let mut conn = Connection {
            shared,
            stream: &mut *stream,
            acks,
            replies: Vec::with_capacity(256),
        };
        let opened = greeting().iter().try_for_each(|f| conn.stream.write_all(f));
        let result = opened.and_then(|()| {
            backoff.reset();
            conn.serve()
        });
        let _ = stream.shutdown();
        if let Err(e) = result {
            log::warn!(
                "connection to collector {} lost: {e}; reconnecting",
                connector.peer()
            );
            sleep_unless_stopped(shared, backoff.next_delay());
        }
    }
}

struct Connection<'a> {
    shared: &'a Shared,
    stream: &'a mut dyn Stream,
    acks: AckParser,
    /// Reply bytes not yet parsed (an ack can arrive in pieces).
    replies: Vec<u8>,
}

/// What the queue has for the thread.
enum Next {
    Send(Vec<u8>),
    Idle,
    Stop,
}

impl Connection<'_> {
    /// Sends queued batches and reads acks until the stream breaks (`Err`) or the exporter
    /// stops with nothing left unsent (`Ok`). A batch leaves the queue only when acknowledged.
    fn serve(&mut self) -> io::Result<()> {
        loop {
            match self.next() {
                Next::Send(bytes) => {
                    self.stream.write_all(&bytes)?;
                    self.shared
                        .counters
                        .bytes_sent
                        .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                }
                Next::Idle => {}
                Next::Stop => return Ok(()),
            }
            self.read_acks()?;
        }
    }

    /// The next unsent batch, waiting up to [`ACK_WAIT`] or [`IDLE_WAIT`] for one.
    fn next(&self) -> Next {
        let mut q = lock(&self.shared.queue);
        if q.sent >= q.items.len() {
            if self.shared.stop.load(Ordering::Relaxed) {
                return Next::Stop;
            }
            let wait = if q.sent > 0 { ACK_WAIT } else { IDLE_WAIT };
            q = self
                .shared
                .ready
                .wait_timeout(q, wait)
                .map_or_else(|e| e.into_inner().0, |(g, _)| g);
            if q.sent >= q.items.len() {
                return Next::Idle;
            }
        }
        let next = q.sent;
        q.sent += 1;
        // Copying out keeps the lock short; a frame is a few KB.
        Next::Send(q.items[next].bytes.clone())
    }

    /// Takes in every ack that has arrived; a cumulative ack removes every batch up to it.
    fn read_acks(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 256];
        loop {
            let n = match self.stream.try_read(&mut chunk)? {
                None => return Ok(()),
                Some(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionReset,
                        "closed by collector",
                    ))
                }
                Some(n) => n,
            };
            self.replies.extend_from_slice(&chunk[..n]);
            loop {
                match (self.acks)(&self.replies) {
                    Ok(Some((used, seq))) => {
                        self.replies.drain(..used.min(self.replies.len()));
                        acknowledge(self.shared, seq);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        log::warn!("bad reply from collector: {e}");
                        self.replies.clear();
                        break;
                    }
                }
            }
            if n < chunk.len() {
                return Ok(());
            }
        }
    }
}

fn acknowledge(shared: &Shared, seq: u64) {
    let mut q = lock(&shared.queue);
    while q.sent > 0 && q.items.front().is_some_and(|h| h.seq <= seq) {
        if let Some(done) = q.items.pop_front() {
            q.bytes -= done.bytes.len();
            q.sent -= 1;
            let c = &shared.counters;
            c.batches_sent.fetch_add(1, Ordering::Relaxed);
            c.records_sent
                .fetch_add(u64::from(done.records), Ordering::Relaxed);
        }
    }
}

fn sleep_unless_stopped(shared: &Shared, d: Duration) {
    let end = Instant::now() + d;
    while !shared.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= end {
            break;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(50)));
    }
}

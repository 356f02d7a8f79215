//! The exporter's one I/O thread: connect, greet, send the ledger, then in turn write the next
//! unsent batch (after the ledger, whenever it changed) and take in whatever acks have arrived,
//! on the same stream, until it breaks or the exporter stops; then back off and reconnect.
//! Once the last batch ([`super::Exporter::push_last`]) is acknowledged, the collector's
//! hang-up is the end of the conversation: no reconnect, no warning.

use super::{lock, Backoff, Connector, ExportConfig, Greeting, Shared, Stream, Wire};
use std::io;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How long the thread waits for a new batch before it looks for acks (and for the
/// collector hanging up) again, while batches await their ack ... A push wakes it at once.
const ACK_WAIT: Duration = Duration::from_millis(20);
/// ... and when none does (only a hang-up can arrive): a quiet board stays quiet.
const IDLE_WAIT: Duration = Duration::from_millis(200);
/// At a stop with batches still unacknowledged: how long the stream, closed for writing,
/// is read for the last acks and the collector's own close (so that the agent's exit resets
/// nothing the collector has yet to read).
const LINGER: Duration = Duration::from_secs(1);

pub(super) fn run(
    shared: &Shared,
    cfg: &ExportConfig,
    mut connector: Box<dyn Connector>,
    mut greeting: Greeting,
    wire: Wire,
) {
    let mut backoff = Backoff::new(cfg.backoff_min, cfg.backoff_max);
    // A peer breaking the protocol (garbage, acks for batches never sent) is logged once,
    // until a connection goes well again, and reconnected to with a growing backoff.
    let mut misbehaving = false;
    while !shared.stop.load(Ordering::Relaxed) && !shared.done() {
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
            wire,
            replies: Vec::with_capacity(256),
            tally_version: None,
            ranges_sent: 0,
            last_written: None,
        };
        let opened = greeting().iter().try_for_each(|f| conn.stream.write_all(f));
        let greeted = opened.is_ok();
        let result = opened.and_then(|()| conn.serve());
        let violation = matches!(&result, Err(e) if e.kind() == io::ErrorKind::InvalidData);
        if greeted && !violation {
            backoff.reset();
            misbehaving = false;
        }
        let _ = stream.shutdown();
        if shared.done() {
            // Everything is acknowledged after the bye: however the stream ended, it is over.
            log::debug!("collector {} closed after the last ack", connector.peer());
            break;
        }
        if let Err(e) = result {
            let wait = backoff.next_delay();
            if violation && !misbehaving {
                log::warn!(
                    "collector {} broke the protocol: {e}; dropped it, reconnecting in {wait:?} \
                     (logged once until a connection goes well)",
                    connector.peer()
                );
                misbehaving = true;
            } else if violation {
                log::debug!(
                    "collector {} broke the protocol again: {e}",
                    connector.peer()
                );
            } else {
                log::warn!(
                    "connection to collector {} lost: {e}; reconnecting",
                    connector.peer()
                );
            }
            sleep_unless_stopped(shared, wait);
        }
    }
}

struct Connection<'a> {
    shared: &'a Shared,
    stream: &'a mut dyn Stream,
    wire: Wire,
    /// Reply bytes not yet parsed (an ack can arrive in pieces).
    replies: Vec<u8>,
    /// The ledger version this connection last sent (none yet: send it in full).
    tally_version: Option<u64>,
    /// Given-up ranges sent on this connection (the last one may have grown since).
    ranges_sent: usize,
    /// The sequence number of the last batch written on this connection: an ack past it
    /// acknowledges something never sent (a forged or broken peer).
    last_written: Option<u64>,
}

/// What the queue has for the thread: the ledger's frames when it changed, and the next
/// batch (counted by that ledger) if there is one.
enum Next {
    Send(Option<Vec<u8>>, Option<Vec<u8>>),
    Stop,
}

impl Connection<'_> {
    /// Sends queued batches and reads acks until the stream breaks (`Err`) or the exporter
    /// stops with nothing left unsent (`Ok`). A batch leaves the queue only when acknowledged.
    fn serve(&mut self) -> io::Result<()> {
        loop {
            match self.next() {
                Next::Send(tally, batch) => {
                    for bytes in [tally, batch].iter().flatten() {
                        self.stream.write_all(bytes)?;
                        self.shared
                            .counters
                            .bytes_sent
                            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                    }
                }
                Next::Stop => {
                    if !lock(&self.shared.queue).items.is_empty() {
                        self.linger();
                    }
                    return Ok(());
                }
            }
            if !self.read_acks()? {
                return Ok(());
            }
        }
    }

    /// The next unsent batch, waiting up to [`ACK_WAIT`] or [`IDLE_WAIT`] for one, with the
    /// ledger in front of it if the ledger changed since this connection last sent it.
    fn next(&mut self) -> Next {
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
        }
        // Read under the same lock as the batch: the tally counts every batch written after it.
        let tally = match self.wire.tally {
            Some(encode) if self.tally_version != Some(q.ledger.version) => {
                let from = self.ranges_sent.saturating_sub(1);
                self.tally_version = Some(q.ledger.version);
                self.ranges_sent = q.ledger.gave_up.len();
                Some(encode(&q.ledger, from))
            }
            _ => None,
        };
        if q.sent >= q.items.len() {
            return Next::Send(tally, None);
        }
        let next = q.sent;
        q.sent += 1;
        q.items[next].written = true;
        self.last_written = Some(
            self.last_written
                .map_or(q.items[next].seq, |l| l.max(q.items[next].seq)),
        );
        // Copying out keeps the lock short; a frame is a few KB.
        Next::Send(tally, Some(q.items[next].bytes.clone()))
    }

    /// Ends the writing side and reads acks until the collector closes too (or [`LINGER`]
    /// passes): batches it acknowledges meanwhile are delivered, and the stream is not reset
    /// under data the collector has not read yet.
    fn linger(&mut self) {
        if self.stream.shutdown_write().is_err() {
            return;
        }
        let end = Instant::now() + LINGER;
        while Instant::now() < end {
            match self.read_acks() {
                Ok(true) => std::thread::sleep(Duration::from_millis(10)),
                Ok(false) | Err(_) => return,
            }
        }
    }

    /// Takes in every ack that has arrived; a cumulative ack removes every batch up to it.
    /// `Ok(false)`: the collector hung up after acknowledging the last batch (the end).
    fn read_acks(&mut self) -> io::Result<bool> {
        let mut chunk = [0u8; 256];
        loop {
            let n = match self.stream.try_read(&mut chunk)? {
                None => return Ok(true),
                Some(0) if self.shared.done() => return Ok(false),
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
                match (self.wire.acks)(&self.replies) {
                    Ok(Some((used, seq))) => {
                        self.replies.drain(..used.min(self.replies.len()));
                        if self.last_written.is_none_or(|last| seq > last) {
                            return Err(io::Error::new(
                                io::ErrorKind::InvalidData,
                                format!(
                                    "ack for batch #{seq}, never sent (last sent: {:?})",
                                    self.last_written
                                ),
                            ));
                        }
                        acknowledge(self.shared, seq);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("bad reply: {e}"),
                        ));
                    }
                }
            }
            if n < chunk.len() {
                return Ok(true);
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

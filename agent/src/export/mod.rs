//! Shipping encoded frames to the collector: a bounded in-memory queue, one I/O thread,
//! reconnect with exponential backoff and jitter, and an exact count of what was dropped.
//!
//! Delivery is at-least-once: a batch stays in the queue until the collector acknowledges its
//! sequence number (a write that succeeded proves nothing: the peer may already be gone).
//! After a reconnect every unacknowledged batch is sent again, and the collector drops
//! duplicates by batch sequence number. Records are lost only when the queue is over its byte
//! budget (the oldest batch goes) or at shutdown.
//!
//! Loss is accounted exactly, and by the collector: a batch removed unacknowledged is *given
//! up*. If it was never written it cannot have been stored: its records count as dropped
//! (`records_dropped`). If it was written, it may well be stored (its ack just had not come
//! back): its records count as unconfirmed (`records_unconfirmed`), never as dropped. Every
//! given-up batch goes into the [`Ledger`], which the I/O thread sends to the collector as a
//! tally (proto's `Tally`) after each greeting and before any batch whenever it changed; the
//! collector reconciles it with what it stored.
//!
//! The network is behind [`transport::Connector`]: the I/O thread writes batches and reads
//! acks on one duplex stream, never on a cloned socket, so any stream will do: Noise over TCP
//! ([`noise`]), or plain TCP with `--insecure`.

mod backoff;
pub mod noise;
mod sender;
pub mod transport;

pub use backoff::Backoff;
pub use noise::{BoardKey, NoiseConnector};
pub use transport::{Connector, Stream, TcpConnector, TcpOptions};

use hopcap_proto::frame::FrameError;
pub use hopcap_proto::message::GaveUp;
use hopcap_proto::message::{ClockStep, MAX_CLOCK_STEPS};
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How the exporter behaves; the defaults suit a 256 MiB board.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportConfig {
    /// Byte budget of queued, encoded batches.
    pub queue_bytes: usize,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

impl Default for ExportConfig {
    fn default() -> Self {
        ExportConfig {
            queue_bytes: 512 * 1024,
            backoff_min: Duration::from_millis(200),
            backoff_max: Duration::from_secs(30),
        }
    }
}

/// Counters the agent reports in its summary and in stats messages. `*_sent` counts what the
/// collector acknowledged; `*_dropped` what was given up before it was ever written (it cannot
/// have been stored); `*_unconfirmed` what was given up after it was written (it may have been
/// stored: the collector knows).
#[derive(Debug, Default)]
pub struct ExportCounters {
    pub batches_sent: AtomicU64,
    pub records_sent: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub records_dropped: AtomicU64,
    pub batches_dropped: AtomicU64,
    pub records_unconfirmed: AtomicU64,
    pub batches_unconfirmed: AtomicU64,
    pub connects: AtomicU64,
    pub connect_failures: AtomicU64,
}

/// A snapshot of [`ExportCounters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExportTotals {
    pub batches_sent: u64,
    pub records_sent: u64,
    pub bytes_sent: u64,
    pub records_dropped: u64,
    pub batches_dropped: u64,
    pub records_unconfirmed: u64,
    pub batches_unconfirmed: u64,
    pub connects: u64,
    pub connect_failures: u64,
}

impl ExportCounters {
    pub fn totals(&self) -> ExportTotals {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ExportTotals {
            batches_sent: g(&self.batches_sent),
            records_sent: g(&self.records_sent),
            bytes_sent: g(&self.bytes_sent),
            records_dropped: g(&self.records_dropped),
            batches_dropped: g(&self.batches_dropped),
            records_unconfirmed: g(&self.records_unconfirmed),
            batches_unconfirmed: g(&self.batches_unconfirmed),
            connects: g(&self.connects),
            connect_failures: g(&self.connect_failures),
        }
    }
}

/// One encoded batch frame waiting for its ack, and how many records it carries.
struct Queued {
    seq: u64,
    bytes: Vec<u8>,
    records: u32,
    /// Written on some connection (it may have been stored).
    written: bool,
}

/// What the collector is told about this run's batches (proto's `Tally`): batches
/// `0..batches` were queued holding `records` observations, and the ranges in `gave_up` were
/// removed from the queue without an acknowledgement. A range only grows at its end, so the
/// collector can key it by its first sequence number.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ledger {
    pub batches: u64,
    pub records: u64,
    pub gave_up: Vec<GaveUp>,
    /// The run's real-time clock steps (at most [`MAX_CLOCK_STEPS`]), each with the first
    /// batch on the new clock.
    pub clock_steps: Vec<ClockStep>,
    /// Raised at every change: a connection sends the ledger again when it differs.
    version: u64,
}

impl Ledger {
    fn queued(&mut self, seq: u64, records: u32) {
        self.batches = self.batches.max(seq + 1);
        self.records += u64::from(records);
        self.version += 1;
    }

    fn give_up(&mut self, seq: u64, records: u32) {
        self.version += 1;
        if let Some(last) = self.gave_up.last_mut() {
            if last.last.checked_add(1) == Some(seq) {
                last.last = seq;
                last.records += u64::from(records);
                return;
            }
        }
        self.gave_up.push(GaveUp {
            first: seq,
            last: seq,
            records: u64::from(records),
        });
    }
}

struct Queue {
    items: VecDeque<Queued>,
    bytes: usize,
    /// How many items at the head were already written on the current connection.
    sent: usize,
    ledger: Ledger,
}

impl Queue {
    /// Takes `item` out unacknowledged: counted dropped or unconfirmed, and in the ledger.
    fn give_up(&mut self, item: &Queued, c: &ExportCounters) {
        let (records, batches) = if item.written {
            (&c.records_unconfirmed, &c.batches_unconfirmed)
        } else {
            (&c.records_dropped, &c.batches_dropped)
        };
        records.fetch_add(u64::from(item.records), Ordering::Relaxed);
        batches.fetch_add(1, Ordering::Relaxed);
        self.ledger.give_up(item.seq, item.records);
    }
}

struct Shared {
    queue: Mutex<Queue>,
    /// Signalled when a batch is queued or acknowledged, and at stop.
    ready: Condvar,
    stop: AtomicBool,
    /// The last batch (with the bye) is queued: once everything is acknowledged the
    /// collector's hang-up is the expected end, not a lost connection.
    closing: AtomicBool,
    counters: ExportCounters,
}

impl Shared {
    /// Closing, and nothing left to deliver.
    fn done(&self) -> bool {
        self.closing.load(Ordering::Relaxed) && lock(&self.queue).items.is_empty()
    }
}

/// Parses the collector's replies: `Ok(Some((consumed, acked_seq)))` for one complete ack,
/// `Ok(None)` when more bytes are needed, `Err` for a reply that makes no sense.
pub type AckParser = fn(&[u8]) -> Result<Option<(usize, u64)>, FrameError>;

/// Frames that open every connection: hello and the full link table, made fresh at each
/// (re)connect so the collector always learns the current topology first.
pub type Greeting = Box<dyn FnMut() -> Vec<Vec<u8>> + Send>;

/// Encodes the ledger as frames: its totals with the ranges `gave_up[from..]`.
pub type TallyEncoder = fn(&Ledger, usize) -> Vec<u8>;

/// The collector's side of the conversation: how its acks read, and how the ledger is sent
/// (without an encoder, it is kept but not sent).
#[derive(Clone, Copy)]
pub struct Wire {
    pub acks: AckParser,
    pub tally: Option<TallyEncoder>,
}

impl std::fmt::Debug for Wire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wire")
            .field("tally", &self.tally.is_some())
            .finish_non_exhaustive()
    }
}

impl Wire {
    pub fn new(acks: AckParser, tally: TallyEncoder) -> Wire {
        Wire {
            acks,
            tally: Some(tally),
        }
    }

    /// Acks only; no tally is sent.
    pub fn acks_only(acks: AckParser) -> Wire {
        Wire { acks, tally: None }
    }
}

/// The handle the capture loop pushes batches into.
pub struct Exporter {
    shared: Arc<Shared>,
    budget: usize,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter")
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

impl Exporter {
    /// Starts the I/O thread, which connects through `connector` and keeps reconnecting.
    pub fn spawn(
        cfg: ExportConfig,
        connector: Box<dyn Connector>,
        greeting: Greeting,
        wire: Wire,
    ) -> io::Result<Exporter> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                items: VecDeque::new(),
                bytes: 0,
                sent: 0,
                ledger: Ledger::default(),
            }),
            ready: Condvar::new(),
            stop: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            counters: ExportCounters::default(),
        });
        let budget = cfg.queue_bytes;
        let worker = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("export".into())
            // The Noise handshake (X25519, BLAKE2s) needs more than 64 KiB in debug builds;
            // only the pages touched count against the board's memory.
            .stack_size(256 * 1024)
            .spawn(move || sender::run(&worker, &cfg, connector, greeting, wire))?;
        Ok(Exporter {
            shared,
            budget,
            thread: Some(thread),
        })
    }

    /// Queue one encoded batch frame (sequence number `seq`, increasing) carrying `records`
    /// observations. Never blocks on the network: over budget, the oldest queued batches are
    /// given up (dropped if never written, unconfirmed if written) and put in the ledger.
    pub fn push(&self, seq: u64, bytes: Vec<u8>, records: u32) {
        self.push_item(seq, bytes, records, false);
    }

    /// [`push`](Self::push) the run's last batch (the one the bye rides behind): from then on
    /// the collector's hang-up after the last ack is the end of the conversation.
    pub fn push_last(&self, seq: u64, bytes: Vec<u8>, records: u32) {
        self.push_item(seq, bytes, records, true);
    }

    fn push_item(&self, seq: u64, bytes: Vec<u8>, records: u32, last: bool) {
        let mut q = lock(&self.shared.queue);
        if last {
            self.shared.closing.store(true, Ordering::Relaxed);
        }
        q.bytes += bytes.len();
        q.ledger.queued(seq, records);
        q.items.push_back(Queued {
            seq,
            bytes,
            records,
            written: false,
        });
        // Keep the newest batch even if it alone exceeds the budget: dropping it would lose
        // the freshest data for the sake of older data. Give up the oldest batch not yet
        // written on this connection first: one already written has probably reached the
        // collector. Either way the collector's reconciliation says what became of it.
        while q.bytes > self.budget && q.items.len() > 1 {
            let victim = if q.sent < q.items.len() - 1 {
                q.sent
            } else {
                0
            };
            if let Some(old) = q.items.remove(victim) {
                q.bytes -= old.bytes.len();
                if victim < q.sent {
                    q.sent -= 1;
                }
                q.give_up(&old, &self.shared.counters);
            }
        }
        drop(q);
        self.shared.ready.notify_one();
    }

    /// The real-time clock was stepped: batches from `step.first_batch` on are on the new
    /// clock. The next tally (before the next batch, and after every reconnect) says so.
    pub fn clock_step(&self, step: ClockStep) {
        let mut q = lock(&self.shared.queue);
        if q.ledger.clock_steps.len() >= MAX_CLOCK_STEPS {
            log::warn!(
                "more than {MAX_CLOCK_STEPS} clock steps in this run: the collector does not \
                 correct this one"
            );
            return;
        }
        q.ledger.clock_steps.push(step);
        q.ledger.version += 1;
        drop(q);
        self.shared.ready.notify_one();
    }

    pub fn counters(&self) -> &ExportCounters {
        &self.shared.counters
    }

    /// Records waiting in the queue.
    pub fn queued_records(&self) -> u64 {
        lock(&self.shared.queue)
            .items
            .iter()
            .map(|q| u64::from(q.records))
            .sum()
    }

    /// The ledger as it stands (what the next tally says).
    pub fn ledger(&self) -> Ledger {
        lock(&self.shared.queue).ledger.clone()
    }

    /// Try to deliver what is queued for up to `grace`, then stop. What is left is given up:
    /// dropped if it was never written, unconfirmed if it was (the collector may have stored
    /// it; its `boards` says). Returns the final totals.
    pub fn shutdown(mut self, grace: Duration) -> ExportTotals {
        self.shared.closing.store(true, Ordering::Relaxed);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline && !lock(&self.shared.queue).items.is_empty() {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.ready.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let mut q = lock(&self.shared.queue);
        let c = &self.shared.counters;
        let left: Vec<Queued> = q.items.drain(..).collect();
        for item in &left {
            q.give_up(item, c);
        }
        q.bytes = 0;
        c.totals()
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave the queue half-updated in a way that matters
    // (counts are recomputed on push), so keep going rather than poison the agent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests;

//! Shipping encoded frames to the collector: a bounded in-memory queue, one I/O thread,
//! reconnect with exponential backoff and jitter, and an exact count of what was dropped.
//!
//! Delivery is at-least-once: a batch stays in the queue until the collector acknowledges its
//! sequence number (a write that succeeded proves nothing: the peer may already be gone).
//! After a reconnect every unacknowledged batch is sent again, and the collector drops
//! duplicates by batch sequence number. Records are lost only when the queue is over its byte
//! budget (the oldest batch goes, its records are counted in `records_dropped`) or at shutdown.
//!
//! The network is behind [`transport::Connector`]: the I/O thread writes batches and reads
//! acks on one duplex stream, never on a cloned socket, so any stream (TLS too) will do.

mod backoff;
mod sender;
pub mod transport;

pub use backoff::Backoff;
pub use transport::{Connector, Stream, TcpConnector, TcpOptions};

use hopcap_proto::frame::FrameError;
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

/// Counters the agent reports in its summary and in stats messages.
#[derive(Debug, Default)]
pub struct ExportCounters {
    pub batches_sent: AtomicU64,
    pub records_sent: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub records_dropped: AtomicU64,
    pub batches_dropped: AtomicU64,
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
}

struct Queue {
    items: VecDeque<Queued>,
    bytes: usize,
    /// How many items at the head were already written on the current connection.
    sent: usize,
}

struct Shared {
    queue: Mutex<Queue>,
    /// Signalled when a batch is queued or acknowledged, and at stop.
    ready: Condvar,
    stop: AtomicBool,
    counters: ExportCounters,
}

/// Parses the collector's replies: `Ok(Some((consumed, acked_seq)))` for one complete ack,
/// `Ok(None)` when more bytes are needed, `Err` for a reply that makes no sense.
pub type AckParser = fn(&[u8]) -> Result<Option<(usize, u64)>, FrameError>;

/// Frames that open every connection: hello and the full link table, made fresh at each
/// (re)connect so the collector always learns the current topology first.
pub type Greeting = Box<dyn FnMut() -> Vec<Vec<u8>> + Send>;

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
        acks: AckParser,
    ) -> io::Result<Exporter> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                items: VecDeque::new(),
                bytes: 0,
                sent: 0,
            }),
            ready: Condvar::new(),
            stop: AtomicBool::new(false),
            counters: ExportCounters::default(),
        });
        let budget = cfg.queue_bytes;
        let worker = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("export".into())
            .stack_size(64 * 1024)
            .spawn(move || sender::run(&worker, &cfg, connector, greeting, acks))?;
        Ok(Exporter {
            shared,
            budget,
            thread: Some(thread),
        })
    }

    /// Queue one encoded batch frame (sequence number `seq`, increasing) carrying `records`
    /// observations. Never blocks on the network: over budget, the oldest queued batches are
    /// dropped and counted.
    pub fn push(&self, seq: u64, bytes: Vec<u8>, records: u32) {
        let mut q = lock(&self.shared.queue);
        q.bytes += bytes.len();
        q.items.push_back(Queued {
            seq,
            bytes,
            records,
        });
        // Keep the newest batch even if it alone exceeds the budget: dropping it would lose
        // the freshest data for the sake of older data. Drop the oldest batch not yet written
        // first: one already written has probably reached the collector, and counting it as
        // dropped would make the two sides' loss accounting disagree.
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
                let c = &self.shared.counters;
                c.records_dropped
                    .fetch_add(u64::from(old.records), Ordering::Relaxed);
                c.batches_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
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

    /// Try to send what is queued for up to `grace`, then stop. What could not be sent is
    /// counted as dropped, and the final totals are returned.
    pub fn shutdown(mut self, grace: Duration) -> ExportTotals {
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
        for left in q.items.drain(..) {
            c.records_dropped
                .fetch_add(u64::from(left.records), Ordering::Relaxed);
            c.batches_dropped.fetch_add(1, Ordering::Relaxed);
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

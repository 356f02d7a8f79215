//! Shipping encoded frames to the collector: a bounded in-memory queue, one sender thread,
//! reconnect with exponential backoff and jitter, and an exact count of what was dropped.
//!
//! Delivery is at-least-once: a batch stays in the queue until the collector acknowledges its
//! sequence number (a TCP write that succeeded proves nothing: the peer may already be gone).
//! After a reconnect every unacknowledged batch is sent again, and the collector drops
//! duplicates by batch sequence number. Records are lost only when the queue is over its byte
//! budget (the oldest batch goes, its records are counted in `records_dropped`) or at shutdown.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How the exporter behaves; the defaults suit a 256 MiB board.
#[derive(Clone, Debug)]
pub struct ExportConfig {
    pub collector: SocketAddr,
    /// Byte budget of queued, encoded batches.
    pub queue_bytes: usize,
    pub connect_timeout: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// A write that makes no progress for this long counts as a dead connection.
    pub write_timeout: Duration,
}

impl ExportConfig {
    pub fn new(collector: SocketAddr) -> ExportConfig {
        ExportConfig {
            collector,
            queue_bytes: 512 * 1024,
            connect_timeout: Duration::from_secs(3),
            backoff_min: Duration::from_millis(200),
            backoff_max: Duration::from_secs(30),
            write_timeout: Duration::from_secs(10),
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
    /// Set by the ack reader when the connection it reads from ends.
    broken: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
    stop: AtomicBool,
    counters: ExportCounters,
}

/// Parses the collector's replies: `Ok(Some((consumed, acked_seq)))` for one complete ack,
/// `Ok(None)` when more bytes are needed, `Err` for a reply that makes no sense.
pub type AckParser = Box<dyn FnMut(&[u8]) -> Result<Option<(usize, u64)>, String> + Send>;

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
    pub fn spawn(cfg: ExportConfig, greeting: Greeting, acks: AckParser) -> io::Result<Exporter> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                items: VecDeque::new(),
                bytes: 0,
                sent: 0,
                broken: false,
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
            .spawn(move || sender_loop(&worker, &cfg, greeting, acks))?;
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

fn sender_loop(shared: &Arc<Shared>, cfg: &ExportConfig, mut greeting: Greeting, acks: AckParser) {
    let acks = Arc::new(Mutex::new(acks));
    let mut backoff = Backoff::new(cfg.backoff_min, cfg.backoff_max);
    while !shared.stop.load(Ordering::Relaxed) {
        let mut stream = match connect(cfg) {
            Ok(s) => s,
            Err(e) => {
                shared
                    .counters
                    .connect_failures
                    .fetch_add(1, Ordering::Relaxed);
                let wait = backoff.next_delay();
                log::warn!(
                    "collector {} unreachable ({e}); retrying in {:?}",
                    cfg.collector,
                    wait
                );
                sleep_unless_stopped(shared, wait);
                continue;
            }
        };
        shared.counters.connects.fetch_add(1, Ordering::Relaxed);
        log::info!("connected to collector {}", cfg.collector);
        {
            let mut q = lock(&shared.queue);
            q.sent = 0; // everything unacknowledged goes again
            q.broken = false;
        }
        let reader = match stream.try_clone() {
            Ok(r) => r,
            Err(e) => {
                log::warn!("cannot read acks from collector {}: {e}", cfg.collector);
                continue;
            }
        };
        let ack_thread = spawn_ack_reader(Arc::clone(shared), reader, Arc::clone(&acks));
        let opened = greeting().iter().try_for_each(|f| stream.write_all(f));
        let result = opened.and_then(|()| {
            backoff.reset();
            drain(shared, &mut stream)
        });
        let _ = stream.shutdown(std::net::Shutdown::Both);
        if let Ok(t) = ack_thread {
            let _ = t.join();
        }
        if let Err(e) = result {
            log::warn!(
                "connection to collector {} lost: {e}; reconnecting",
                cfg.collector
            );
            sleep_unless_stopped(shared, backoff.next_delay());
        }
    }
}

/// Reads acks until the connection ends; a cumulative ack removes every batch up to it.
fn spawn_ack_reader(
    shared: Arc<Shared>,
    mut stream: TcpStream,
    parser: Arc<Mutex<AckParser>>,
) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("export-acks".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            use std::io::Read;
            let mut buf = Vec::with_capacity(256);
            let mut chunk = [0u8; 256];
            let mut parse = lock(&parser);
            let why = loop {
                match stream.read(&mut chunk) {
                    Ok(0) => break "closed by collector".to_string(),
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    Err(e) => break e.to_string(),
                }
                loop {
                    match (*parse)(&buf) {
                        Ok(Some((used, seq))) => {
                            buf.drain(..used.min(buf.len()));
                            acknowledge(&shared, seq);
                        }
                        Ok(None) => break,
                        Err(e) => {
                            log::warn!("bad reply from collector: {e}");
                            buf.clear();
                            break;
                        }
                    }
                }
            };
            log::debug!("ack reader ends: {why}");
            lock(&shared.queue).broken = true;
            shared.ready.notify_all();
        })
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
    drop(q);
    shared.ready.notify_all();
}

/// Send queued batches until the connection breaks or the exporter stops. A batch leaves the
/// queue only when acknowledged (see [`acknowledge`]).
fn drain(shared: &Shared, stream: &mut TcpStream) -> io::Result<()> {
    loop {
        let bytes = {
            let mut q = lock(&shared.queue);
            while q.sent >= q.items.len() {
                if q.broken {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionReset,
                        "collector went away",
                    ));
                }
                if shared.stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
                let (g, _) = shared
                    .ready
                    .wait_timeout(q, Duration::from_millis(200))
                    .unwrap_or_else(|e| e.into_inner());
                q = g;
            }
            let next = q.sent;
            q.sent += 1;
            // Copying out keeps the lock short; a frame is a few KB.
            q.items[next].bytes.clone()
        };
        stream.write_all(&bytes)?;
        shared
            .counters
            .bytes_sent
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
    }
}

fn connect(cfg: &ExportConfig) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&cfg.collector, cfg.connect_timeout)?;
    s.set_nodelay(true)?;
    s.set_write_timeout(Some(cfg.write_timeout))?;
    Ok(s)
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

/// Exponential backoff with "full jitter" (a uniform delay in [min, current]), so a fleet of
/// boards that lost the collector at once does not reconnect in lockstep.
#[derive(Debug)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    current: Duration,
    rng: u64,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Backoff {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            ^ (u64::from(std::process::id()) << 32);
        Backoff {
            min,
            max,
            current: min,
            rng: seed | 1,
        }
    }

    pub fn reset(&mut self) {
        self.current = self.min;
    }

    pub fn next_delay(&mut self) -> Duration {
        // xorshift64: jitter needs spread, not cryptographic quality.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let span = self.current.saturating_sub(self.min).as_micros() as u64;
        let delay =
            self.min + Duration::from_micros(if span == 0 { 0 } else { self.rng % (span + 1) });
        self.current = (self.current * 2).min(self.max);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    #[test]
    fn backoff_grows_within_bounds_and_resets() {
        let (min, max) = (Duration::from_millis(100), Duration::from_millis(1600));
        let mut b = Backoff::new(min, max);
        let mut ceiling = min;
        for _ in 0..10 {
            let d = b.next_delay();
            assert!(
                d >= min && d <= ceiling,
                "{d:?} outside [{min:?}, {ceiling:?}]"
            );
            ceiling = (ceiling * 2).min(max);
        }
        b.reset();
        assert_eq!(b.next_delay(), min);
    }

    #[test]
    fn over_budget_drops_oldest_and_counts_records() {
        // An unreachable collector (a port nothing listens on, on loopback) keeps all in queue.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let mut cfg = ExportConfig::new(port);
        cfg.queue_bytes = 100;
        cfg.backoff_min = Duration::from_secs(5);
        let ex = Exporter::spawn(cfg, Box::new(Vec::new), Box::new(|_| Ok(None))).unwrap();
        for i in 0..5u8 {
            ex.push(u64::from(i), vec![i; 40], 10);
        }
        // 5 x 40 bytes into 100: the 3 oldest go.
        assert_eq!(ex.counters().totals().records_dropped, 30);
        assert_eq!(ex.queued_records(), 20);
        let totals = ex.shutdown(Duration::ZERO);
        assert_eq!(totals.records_dropped, 50);
        assert_eq!(totals.records_sent, 0);
    }

    #[test]
    fn over_budget_drops_the_oldest_unwritten_batch_before_written_ones() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let mut cfg = ExportConfig::new(port);
        cfg.queue_bytes = 120;
        cfg.backoff_min = Duration::from_secs(5);
        let ex = Exporter::spawn(cfg, Box::new(Vec::new), Box::new(|_| Ok(None))).unwrap();
        ex.push(0, vec![0; 40], 1);
        ex.push(1, vec![1; 40], 1);
        // Pretend batches 0 and 1 were written and await their ack.
        lock(&ex.shared.queue).sent = 2;
        ex.push(2, vec![2; 40], 1);
        ex.push(3, vec![3; 40], 1);
        let seqs: Vec<u64> = lock(&ex.shared.queue).items.iter().map(|q| q.seq).collect();
        assert_eq!(seqs, vec![0, 1, 3], "batch 2, the oldest unwritten, goes");
        assert_eq!(lock(&ex.shared.queue).sent, 2);
        ex.shutdown(Duration::ZERO);
    }

    /// Test acks: the byte `A` followed by one sequence digit.
    fn digit_acks() -> AckParser {
        Box::new(|b: &[u8]| match b {
            [b'A', d, ..] if d.is_ascii_digit() => Ok(Some((2, u64::from(d - b'0')))),
            [b'A'] | [] => Ok(None),
            _ => Err("not an ack".into()),
        })
    }

    fn read_until(c: &mut TcpStream, needle: &str) -> String {
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut got = Vec::new();
        let mut chunk = [0u8; 64];
        while !String::from_utf8_lossy(&got).contains(needle) {
            match c.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
            }
        }
        String::from_utf8_lossy(&got).into_owned()
    }

    #[test]
    fn unacked_batches_are_resent_after_a_reconnect() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut cfg = ExportConfig::new(listener.local_addr().unwrap());
        cfg.backoff_min = Duration::from_millis(10);
        cfg.backoff_max = Duration::from_millis(20);
        let ex = Exporter::spawn(cfg, Box::new(|| vec![b"HELLO;".to_vec()]), digit_acks()).unwrap();
        ex.push(1, b"b1;".to_vec(), 1);
        ex.push(2, b"b2;".to_vec(), 2);
        // First connection: ack b1 only, then hang up with b2 unacknowledged.
        let (mut c1, _) = listener.accept().unwrap();
        let text = read_until(&mut c1, "b2;");
        assert_eq!(text, "HELLO;b1;b2;");
        c1.write_all(b"A1").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        drop(c1);
        ex.push(3, b"b3;".to_vec(), 3);
        // Second connection: greeting again, then b2 (resent) and b3; ack both.
        let (mut c2, _) = listener.accept().unwrap();
        let text = read_until(&mut c2, "b3;");
        assert_eq!(text, "HELLO;b2;b3;");
        c2.write_all(b"A3").unwrap();
        let totals = ex.shutdown(Duration::from_secs(2));
        assert_eq!(totals.records_dropped, 0);
        assert_eq!(totals.records_sent, 6);
        assert_eq!(totals.batches_sent, 3);
        assert!(totals.connects >= 2);
    }
}

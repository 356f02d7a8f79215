use super::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;

fn no_acks(_: &[u8]) -> Result<Option<(usize, u64)>, FrameError> {
    Ok(None)
}

fn tcp(addr: SocketAddr) -> Box<dyn Connector> {
    Box::new(TcpConnector::new(addr, TcpOptions::default()))
}

/// A loopback address nothing listens on: every connect is refused.
fn refusing_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

#[test]
fn over_budget_drops_oldest_and_counts_records() {
    let cfg = ExportConfig {
        queue_bytes: 100,
        backoff_min: Duration::from_secs(5),
        ..ExportConfig::default()
    };
    let ex = Exporter::spawn(cfg, tcp(refusing_addr()), Box::new(Vec::new), no_acks).unwrap();
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
    let cfg = ExportConfig {
        queue_bytes: 120,
        backoff_min: Duration::from_secs(5),
        ..ExportConfig::default()
    };
    let ex = Exporter::spawn(cfg, tcp(refusing_addr()), Box::new(Vec::new), no_acks).unwrap();
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
fn digit_acks(b: &[u8]) -> Result<Option<(usize, u64)>, FrameError> {
    match b {
        [b'A', d, ..] if d.is_ascii_digit() => Ok(Some((2, u64::from(d - b'0')))),
        [b'A'] | [] => Ok(None),
        [x, ..] => Err(FrameError::BadMagic {
            got: [*x, b.get(1).copied().unwrap_or(0)],
        }),
    }
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

fn quick_backoff() -> ExportConfig {
    ExportConfig {
        backoff_min: Duration::from_millis(10),
        backoff_max: Duration::from_millis(20),
        ..ExportConfig::default()
    }
}

#[test]
fn unacked_batches_are_resent_after_a_reconnect() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let connector = tcp(listener.local_addr().unwrap());
    let greeting = Box::new(|| vec![b"HELLO;".to_vec()]);
    let ex = Exporter::spawn(quick_backoff(), connector, greeting, digit_acks).unwrap();
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

/// The collector's end of an in-memory stream: what the agent wrote, and a way to reply.
struct Peer {
    written: mpsc::Receiver<Vec<u8>>,
    replies: Arc<Mutex<Vec<u8>>>,
    closed: Arc<AtomicBool>,
}

impl Peer {
    /// What the agent wrote, until `needle` shows (or 5 s pass).
    fn read_until(&self, needle: &str) -> String {
        let mut got = String::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !got.contains(needle) && Instant::now() < deadline {
            if let Ok(b) = self.written.recv_timeout(Duration::from_millis(50)) {
                got.push_str(&String::from_utf8_lossy(&b));
            }
        }
        got
    }

    fn reply(&self, bytes: &[u8]) {
        lock(&self.replies).extend_from_slice(bytes);
    }
}

/// A stream that is neither a socket nor clonable, like a TLS session.
struct MemStream {
    written: mpsc::Sender<Vec<u8>>,
    replies: Arc<Mutex<Vec<u8>>>,
    closed: Arc<AtomicBool>,
}

impl Write for MemStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        // Half of it at most: the exporter must cope with short writes.
        let n = buf.len().div_ceil(2);
        let _ = self.written.send(buf[..n].to_vec());
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Stream for MemStream {
    fn try_read(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let mut r = lock(&self.replies);
        if r.is_empty() {
            return Ok(self.closed.load(Ordering::Relaxed).then_some(0));
        }
        // One byte at a time: acks arrive in pieces.
        buf[0] = r.remove(0);
        Ok(Some(1))
    }
    fn shutdown(&mut self) -> io::Result<()> {
        self.closed.store(true, Ordering::Relaxed);
        Ok(())
    }
}

/// Hands out in-memory streams; each connect sends the collector's end to the test.
struct MemConnector(mpsc::Sender<Peer>);

impl Connector for MemConnector {
    fn connect(&mut self) -> io::Result<Box<dyn Stream>> {
        let (tx, rx) = mpsc::channel();
        let replies = Arc::new(Mutex::new(Vec::new()));
        let closed = Arc::new(AtomicBool::new(false));
        let peer = Peer {
            written: rx,
            replies: Arc::clone(&replies),
            closed: Arc::clone(&closed),
        };
        self.0
            .send(peer)
            .map_err(|_| io::Error::from(io::ErrorKind::ConnectionRefused))?;
        Ok(Box::new(MemStream {
            written: tx,
            replies,
            closed,
        }))
    }
    fn peer(&self) -> &str {
        "memory"
    }
}

#[test]
fn any_duplex_stream_will_do_with_the_same_delivery() {
    let (tx, peers) = mpsc::channel();
    let greeting = Box::new(|| vec![b"HELLO;".to_vec()]);
    let ex = Exporter::spawn(
        quick_backoff(),
        Box::new(MemConnector(tx)),
        greeting,
        digit_acks,
    )
    .unwrap();
    ex.push(1, b"b1;".to_vec(), 1);
    ex.push(2, b"b2;".to_vec(), 2);
    let p1 = peers.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(p1.read_until("b2;"), "HELLO;b1;b2;");
    // A reply that is no ack is logged and skipped; then b1's ack, in pieces.
    p1.reply(b"??A1");
    let deadline = Instant::now() + Duration::from_secs(5);
    while ex.queued_records() != 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(ex.queued_records(), 2, "b1 acknowledged, b2 waits");
    // The collector goes away: the next connection resends b2 after the greeting.
    p1.closed.store(true, Ordering::Relaxed);
    let p2 = peers.recv_timeout(Duration::from_secs(5)).unwrap();
    ex.push(3, b"b3;".to_vec(), 3);
    assert_eq!(p2.read_until("b3;"), "HELLO;b2;b3;");
    p2.reply(b"A3");
    let totals = ex.shutdown(Duration::from_secs(2));
    assert_eq!(
        (
            totals.records_sent,
            totals.batches_sent,
            totals.records_dropped
        ),
        (6, 3, 0)
    );
    assert_eq!(totals.connects, 2);
    assert_eq!(totals.bytes_sent, 12, "b1 b2, then b2 again and b3");
}

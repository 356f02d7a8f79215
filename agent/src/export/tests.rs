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
    let ex = Exporter::spawn(
        cfg,
        tcp(refusing_addr()),
        Box::new(Vec::new),
        Wire::acks_only(no_acks),
    )
    .unwrap();
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
    let ex = Exporter::spawn(
        cfg,
        tcp(refusing_addr()),
        Box::new(Vec::new),
        Wire::acks_only(no_acks),
    )
    .unwrap();
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
    let ex = Exporter::spawn(
        quick_backoff(),
        connector,
        greeting,
        Wire::acks_only(digit_acks),
    )
    .unwrap();
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
        Wire::acks_only(digit_acks),
    )
    .unwrap();
    ex.push(1, b"b1;".to_vec(), 1);
    ex.push(2, b"b2;".to_vec(), 2);
    let p1 = peers.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(p1.read_until("b2;"), "HELLO;b1;b2;");
    // b1's ack, in pieces (a reply that is no ack would drop the connection: see
    // a_peer_sending_garbage_is_dropped).
    p1.reply(b"A1");
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

#[test]
fn a_written_batch_given_up_is_unconfirmed_not_dropped() {
    let cfg = ExportConfig {
        queue_bytes: 100,
        backoff_min: Duration::from_secs(5),
        ..ExportConfig::default()
    };
    let ex = Exporter::spawn(
        cfg,
        tcp(refusing_addr()),
        Box::new(Vec::new),
        Wire::acks_only(no_acks),
    )
    .unwrap();
    ex.push(0, vec![0; 40], 5);
    ex.push(1, vec![1; 40], 6);
    // Both were written and await their ack (whose lag is the collector's commit, not loss).
    {
        let mut q = lock(&ex.shared.queue);
        q.sent = 2;
        q.items.iter_mut().for_each(|i| i.written = true);
    }
    ex.push(2, vec![2; 40], 7);
    let t = ex.counters().totals();
    assert_eq!(
        (
            t.records_dropped,
            t.records_unconfirmed,
            t.batches_unconfirmed
        ),
        (0, 5, 1),
        "batch 0 may be stored: it is not counted dropped"
    );
    // The next unwritten one goes without having been written: dropped for certain.
    ex.push(3, vec![3; 40], 8);
    let t = ex.counters().totals();
    assert_eq!((t.records_dropped, t.records_unconfirmed), (7, 5));
    let ledger = ex.ledger();
    assert_eq!((ledger.batches, ledger.records), (4, 26));
    assert_eq!(
        ledger.gave_up,
        vec![
            GaveUp {
                first: 0,
                last: 0,
                records: 5
            },
            GaveUp {
                first: 2,
                last: 2,
                records: 7
            }
        ]
    );
    // At shutdown the written batch 1 is unconfirmed, the unwritten batch 3 dropped.
    let t = ex.shutdown(Duration::ZERO);
    assert_eq!((t.records_dropped, t.records_unconfirmed), (15, 11));
    assert_eq!(
        t.records_dropped + t.records_unconfirmed + t.records_sent,
        26
    );
}

#[test]
fn consecutive_given_up_batches_make_one_range() {
    let mut l = Ledger::default();
    for (seq, n) in [(4, 1), (5, 2), (6, 3), (9, 4), (10, 5), (8, 6)] {
        l.queued(seq, n);
        l.give_up(seq, n);
    }
    let r = |first, last, records| GaveUp {
        first,
        last,
        records,
    };
    // A range only grows at its end: 8 before 9 makes a range of its own.
    assert_eq!(l.gave_up, vec![r(4, 6, 6), r(9, 10, 9), r(8, 8, 6)]);
    assert_eq!((l.batches, l.records), (11, 21));
}

/// Test tallies: `T<batches>/<records>` and `[first-last:records]` per range, then `;`.
fn text_tally(l: &Ledger, from: usize) -> Vec<u8> {
    let mut s = format!("T{}/{}", l.batches, l.records);
    for g in &l.gave_up[from..] {
        s.push_str(&format!("[{}-{}:{}]", g.first, g.last, g.records));
    }
    s.push(';');
    s.into_bytes()
}

fn mem_exporter(queue_bytes: usize) -> (Exporter, mpsc::Receiver<Peer>) {
    let (tx, peers) = mpsc::channel();
    let greeting = Box::new(|| vec![b"HELLO;".to_vec()]);
    let cfg = ExportConfig {
        queue_bytes,
        ..quick_backoff()
    };
    let ex = Exporter::spawn(
        cfg,
        Box::new(MemConnector(tx)),
        greeting,
        Wire::new(digit_acks, text_tally),
    )
    .unwrap();
    (ex, peers)
}

#[test]
fn the_ledger_goes_before_batches_and_again_after_a_reconnect() {
    let (ex, peers) = mem_exporter(7);
    let p1 = peers.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(p1.read_until("T0/0;"), "HELLO;T0/0;");
    ex.push(0, b"b0;".to_vec(), 1);
    assert_eq!(
        p1.read_until("b0;"),
        "T1/1;b0;",
        "the tally counts the batch"
    );
    ex.push(1, b"b1;".to_vec(), 2);
    assert_eq!(p1.read_until("b1;"), "T2/3;b1;");
    // Over budget with both written: b0 is given up, outcome unknown.
    ex.push(2, b"b2;".to_vec(), 4);
    assert_eq!(p1.read_until("b2;"), "T3/7[0-0:1];b2;");
    p1.reply(b"A2");
    let deadline = Instant::now() + Duration::from_secs(5);
    while ex.queued_records() != 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    // A new connection learns the whole ledger after the greeting.
    p1.closed.store(true, Ordering::Relaxed);
    let p2 = peers.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(p2.read_until("];"), "HELLO;T3/7[0-0:1];");
    let t = ex.shutdown(Duration::ZERO);
    assert_eq!(
        (t.records_sent, t.records_unconfirmed, t.records_dropped),
        (6, 1, 0)
    );
}

#[test]
fn a_reconnect_in_the_middle_of_a_batch_resends_it_whole() {
    let (ex, peers) = mem_exporter(1 << 20);
    let p1 = peers.recv_timeout(Duration::from_secs(5)).unwrap();
    p1.read_until("T0/0;");
    let big = format!("{};", "x".repeat(64));
    ex.push(0, big.clone().into_bytes(), 9);
    // The collector hangs up with part of the batch read, unacknowledged.
    assert!(p1.read_until("T1/9;xxxx").starts_with("T1/9;xxxx"));
    p1.closed.store(true, Ordering::Relaxed);
    let p2 = peers.recv_timeout(Duration::from_secs(5)).unwrap();
    let text = p2.read_until(&big);
    assert_eq!(text, format!("HELLO;T1/9;{big}"));
    p2.reply(b"A0");
    let t = ex.shutdown(Duration::from_secs(2));
    assert_eq!(
        (t.records_sent, t.records_unconfirmed, t.records_dropped),
        (9, 0, 0)
    );
    assert_eq!(t.connects, 2);
}

#[test]
fn the_hang_up_after_the_last_ack_ends_without_a_reconnect() {
    let (ex, peers) = mem_exporter(1 << 20);
    let p1 = peers.recv_timeout(Duration::from_secs(5)).unwrap();
    ex.push(0, b"b0;".to_vec(), 1);
    ex.push_last(1, b"b1+bye;".to_vec(), 2);
    p1.read_until("bye;");
    // The collector acknowledges everything and hangs up at once (as it does after a bye).
    p1.reply(b"A1");
    p1.closed.store(true, Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(5);
    while ex.queued_records() != 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        peers.recv_timeout(Duration::from_millis(300)).is_err(),
        "no reconnect after the bye"
    );
    let t = ex.shutdown(Duration::from_secs(1));
    assert_eq!((t.records_sent, t.connects), (3, 1));
    assert_eq!((t.records_unconfirmed, t.records_dropped), (0, 0));
}

#[test]
fn a_hang_up_before_the_last_ack_still_reconnects() {
    let (ex, peers) = mem_exporter(1 << 20);
    let p1 = peers.recv_timeout(Duration::from_secs(5)).unwrap();
    ex.push_last(0, b"b0+bye;".to_vec(), 2);
    p1.read_until("bye;");
    p1.closed.store(true, Ordering::Relaxed);
    let p2 = peers.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(p2.read_until("bye;"), "HELLO;T1/2;b0+bye;");
    p2.reply(b"A0");
    let t = ex.shutdown(Duration::from_secs(2));
    assert_eq!((t.records_sent, t.connects), (2, 2));
}

#[test]
fn a_stop_with_batches_in_flight_lingers_for_their_acks() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let connector = tcp(listener.local_addr().unwrap());
    let greeting = Box::new(|| vec![b"HELLO;".to_vec()]);
    let ex = Exporter::spawn(
        quick_backoff(),
        connector,
        greeting,
        Wire::acks_only(digit_acks),
    )
    .unwrap();
    ex.push_last(0, b"b0+bye;".to_vec(), 4);
    let (mut c, _) = listener.accept().unwrap();
    assert_eq!(read_until(&mut c, "bye;"), "HELLO;b0+bye;");
    // A collector that commits slowly: the ack comes after the agent stopped waiting; the
    // agent, its writing side closed, still takes it, then sees the collector close.
    let collector = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        c.write_all(b"A0").unwrap();
        let rest = read_until(&mut c, "never");
        assert_eq!(rest, "", "the agent's end of the stream");
    });
    let t = ex.shutdown(Duration::ZERO);
    collector.join().unwrap();
    assert_eq!((t.records_sent, t.records_unconfirmed), (4, 0));
    assert_eq!(t.connects, 1);
}

#[test]
fn an_ack_for_a_batch_never_sent_drops_the_connection_and_acknowledges_nothing() {
    let (ex, peers) = mem_exporter(1 << 20);
    ex.push(0, b"b0;".to_vec(), 5);
    ex.push(1, b"b1;".to_vec(), 7);
    let p = peers.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(p.read_until("b1;").ends_with("b1;"));
    // A fake collector acknowledges everything there ever was.
    p.reply(b"A9");
    // Dropped and reconnected: the batches go again, none counted sent.
    let again = peers
        .recv_timeout(Duration::from_secs(5))
        .expect("a reconnect");
    assert!(again.read_until("b1;").ends_with("b1;"));
    assert_eq!(ex.counters().totals().records_sent, 0);
    assert_eq!(ex.queued_records(), 12);
    // The real collector's ack still works.
    again.reply(b"A1");
    let deadline = Instant::now() + Duration::from_secs(5);
    while ex.counters().totals().records_sent < 12 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(ex.counters().totals().records_sent, 12);
    assert!(
        p.closed.load(Ordering::Relaxed),
        "the lying connection was dropped"
    );
    ex.shutdown(Duration::ZERO);
}

#[test]
fn a_peer_sending_garbage_is_dropped() {
    let (ex, peers) = mem_exporter(1 << 20);
    ex.push(0, b"b0;".to_vec(), 5);
    let p = peers.recv_timeout(Duration::from_secs(5)).unwrap();
    p.read_until("b0;");
    p.reply(&[0x55; 4096]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !p.closed.load(Ordering::Relaxed) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        p.closed.load(Ordering::Relaxed),
        "garbage ends the connection"
    );
    assert!(
        peers.recv_timeout(Duration::from_secs(5)).is_ok(),
        "and it reconnects"
    );
    assert_eq!(ex.counters().totals().records_sent, 0);
    ex.shutdown(Duration::ZERO);
}

//! The ingest server with simulated agents: real frames over loopback TCP into a real store.

mod wire;

use hopcap_collector::ingest::ack::ACK_MAX_LEN;
use hopcap_collector::ingest::{IngestConfig, Server, TcpListen};
use hopcap_collector::store::sqlite::writer::WriterConfig;
use hopcap_collector::store::sqlite::SqliteReader;
use hopcap_collector::store::sqlite::{open_for_writing, WriterHandle};
use hopcap_collector::store::{BoardRow, StoreReader};
use hopcap_proto::batch::BatchEncoder;
use hopcap_proto::frame::{parse_ack, HEADER_LEN, MAGIC};
use hopcap_proto::message::{Bye, ClockStep, GaveUp, Message, Tally, PROTOCOL_VERSION};
use hopcap_proto::record::LinkInfo;
use hopcap_testkit::{veth, SampleGen, ScratchDir};
use rusqlite::Connection;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use wire::{closed_by_collector, connect, frame, hello, hello_v, links_of, stats};

/// A collector on 127.0.0.1:0 with its own database.
struct Collector {
    _dir: ScratchDir,
    db: PathBuf,
    writer: Option<WriterHandle>,
    server: Option<Server>,
}

impl Collector {
    fn start(idle: Duration) -> Collector {
        let dir = ScratchDir::new("ingest").unwrap();
        let db = dir.join("i.db");
        let writer =
            WriterHandle::spawn(open_for_writing(&db).unwrap(), WriterConfig::default(), 64)
                .unwrap();
        let mut cfg = IngestConfig::default();
        cfg.conn.idle_timeout = idle;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let server = Server::start(
            Box::new(TcpListen::new(listener).unwrap()),
            Arc::new(writer.writer()),
            cfg,
        )
        .unwrap();
        Collector {
            _dir: dir,
            db,
            writer: Some(writer),
            server: Some(server),
        }
    }

    fn addr(&self) -> SocketAddr {
        self.server.as_ref().unwrap().local_addr()
    }

    /// Stops serving, commits everything, and opens the database for checks.
    fn finish(&mut self) -> Connection {
        if let Some(s) = self.server.take() {
            s.stop();
        }
        if let Some(w) = self.writer.take() {
            w.finish();
        }
        Connection::open(&self.db).unwrap()
    }
}

fn hello_run(name: &str, run_id: u64) -> Vec<u8> {
    hello_v(name, run_id, PROTOCOL_VERSION)
}

fn link(key: u16) -> LinkInfo {
    let netns = if key % 2 == 0 { "" } else { "c1" };
    veth(key, netns, &format!("veth{key}"))
}

/// A full link dump of `n` links, in chunks.
fn links(n: u16) -> Vec<u8> {
    let all: Vec<LinkInfo> = (0..n).map(link).collect();
    links_of(&all, true)
}

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn many_agents_register_concurrently() {
    let mut c = Collector::start(Duration::from_secs(30));
    let addr = c.addr();
    let agents: Vec<_> = (0..120)
        .map(|i| {
            std::thread::spawn(move || {
                let mut s = connect(addr);
                s.write_all(&hello(&format!("board{i:03}"))).unwrap();
                s.write_all(&links(20)).unwrap();
                s.write_all(&stats(i)).unwrap();
                s.write_all(&frame(&Message::Bye(Bye { batches_sent: 0 })))
                    .unwrap();
                assert!(closed_by_collector(&mut s), "bye ends the connection");
            })
        })
        .collect();
    for a in agents {
        a.join().unwrap();
    }
    let db = c.finish();
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM boards WHERE state = 'disconnected'"
        ),
        120
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM links WHERE present"),
        120 * 20
    );
    assert_eq!(count(&db, "SELECT count(DISTINCT netns) FROM links"), 2);
    assert_eq!(
        count(&db, "SELECT sum(kernel_drops) FROM boards"),
        (0..120).sum::<i64>()
    );
    assert_eq!(count(&db, "SELECT sum(queue_drops) FROM stats"), 2 * 120);
}

#[test]
fn a_relabelled_namespace_leaves_its_old_link_rows_absent() {
    let mut c = Collector::start(Duration::from_secs(30));
    let mut s = connect(c.addr());
    s.write_all(&hello("pi1")).unwrap();
    let first = [veth(1, "pid:4242", "eth0"), veth(2, "", "vethab")];
    s.write_all(&links_of(&first, true)).unwrap();
    // The agent learnt the container's Docker name: the same keys, the new label.
    let renamed = [veth(1, "web", "eth0")];
    s.write_all(&links_of(&renamed, false)).unwrap();
    s.write_all(&frame(&Message::Bye(Bye { batches_sent: 0 })))
        .unwrap();
    assert!(closed_by_collector(&mut s), "bye ends the connection");
    let db = c.finish();
    let present = |netns: &str| {
        count(
            &db,
            &format!("SELECT coalesce(max(present), -1) FROM links WHERE netns = '{netns}'"),
        )
    };
    assert_eq!(
        (present("pid:4242"), present("web"), present("")),
        (0, 1, 1)
    );
}

#[test]
fn bad_frames_close_only_their_connection() {
    let mut c = Collector::start(Duration::from_secs(30));
    let mut good = connect(c.addr());
    good.write_all(&hello("good")).unwrap();
    let mut oversized = hello("x")[..HEADER_LEN].to_vec();
    oversized[5..9].copy_from_slice(&(64u32 << 20).to_be_bytes());
    let mut future = hello("x");
    future[2..4].copy_from_slice(&999u16.to_be_bytes());
    let mut unknown_type = hello("x");
    unknown_type[4] = 0x42;
    let mut garbled = hello("x");
    let last = garbled.len() - 1;
    garbled[HEADER_LEN..last].fill(0xff);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("bad magic", b"GET / HTTP/1.1\r\n\r\n".to_vec()),
        ("oversized", oversized),
        ("future version", future),
        ("unknown type", unknown_type),
        ("garbled body", garbled),
        ("stats before hello", stats(1)),
        ("second hello", [hello("y"), hello("y")].concat()),
        ("links chunk past count", {
            let mut l = links(1);
            l[HEADER_LEN..HEADER_LEN + 2].copy_from_slice(&[5, 1]);
            [hello("z"), l].concat()
        }),
    ];
    for (what, bytes) in cases {
        let mut s = connect(c.addr());
        s.write_all(&bytes).unwrap();
        assert!(closed_by_collector(&mut s), "{what}: connection left open");
    }
    assert_eq!(MAGIC, *b"HC");
    // The good connection is still served.
    good.write_all(&links(3)).unwrap();
    good.write_all(&frame(&Message::Bye(Bye { batches_sent: 0 })))
        .unwrap();
    assert!(closed_by_collector(&mut good));
    let db = c.finish();
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM links l JOIN boards b ON b.id = l.board WHERE b.name = 'good'"
        ),
        3
    );
}

#[test]
fn stalled_agent_blocks_no_one_and_times_out() {
    let idle = Duration::from_millis(600);
    let mut c = Collector::start(idle);
    let mut staller = connect(c.addr());
    staller.write_all(&hello("slow")[..5]).unwrap();
    let started = std::time::Instant::now();
    let mut other = connect(c.addr());
    other
        .write_all(&[hello("quick"), links(2)].concat())
        .unwrap();
    assert!(closed_by_collector(&mut staller));
    assert!(started.elapsed() >= idle);
    other
        .write_all(&frame(&Message::Bye(Bye { batches_sent: 0 })))
        .unwrap();
    assert!(closed_by_collector(&mut other));
    let db = c.finish();
    assert_eq!(
        count(&db, "SELECT count(*) FROM boards"),
        1,
        "the stalled hello never completed"
    );
}

/// Sends `batches` batches of sample observations (3 hops on 4 links each packet) and waits
/// for the acknowledgement of the last; returns the acknowledged sequence number.
fn send_batches(
    s: &mut TcpStream,
    enc: &mut BatchEncoder,
    g: &mut SampleGen,
    batches: usize,
) -> u64 {
    for _ in 0..batches {
        for _ in 0..100 {
            for o in g.packet(&[0, 1, 2, 3], 3) {
                if enc.push(&o).is_err() {
                    panic!("a 300-record batch fits");
                }
            }
        }
        let bytes = enc.finish().to_vec();
        s.write_all(&frame(&Message::Batch(&bytes))).unwrap();
    }
    // Sequence numbers count from 0 on a new encoder.
    let want = batches as u64 - 1;
    let mut acked = None;
    let mut buf = Vec::new();
    while acked != Some(want) {
        let mut b = [0u8; ACK_MAX_LEN];
        let n = s.read(&mut b).expect("an acknowledgement");
        assert!(n > 0, "closed before acknowledging");
        buf.extend_from_slice(&b[..n]);
        while let Some((used, seq)) = parse_ack(&buf).unwrap() {
            buf.drain(..used);
            acked = Some(seq);
        }
    }
    acked.unwrap()
}

#[test]
fn hundred_agents_stream_batches_that_are_stored_once_and_acknowledged() {
    let mut c = Collector::start(Duration::from_secs(30));
    let addr = c.addr();
    let agents: Vec<_> = (0..100u64)
        .map(|i| {
            std::thread::spawn(move || {
                let name = format!("pi{i:03}");
                let mut enc = Box::new(BatchEncoder::new(&name, 64 * 1024));
                let mut g = SampleGen::new(i + 1, 1_795_694_400_000_000_000 + i * 1_000);
                let mut s = connect(addr);
                s.write_all(&[hello(&name), links(4)].concat()).unwrap();
                assert_eq!(send_batches(&mut s, &mut enc, &mut g, 10), 9);
                s.write_all(&frame(&Message::Bye(Bye { batches_sent: 10 })))
                    .unwrap();
                assert!(closed_by_collector(&mut s));
            })
        })
        .collect();
    for a in agents {
        a.join().unwrap();
    }
    let db = c.finish();
    assert_eq!(
        count(&db, "SELECT count(*) FROM observations"),
        100 * 10 * 300
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM boards WHERE batches = 10 AND lost_batches = 0"
        ),
        100
    );
    // Three hops per packet: links 0-2 of each board.
    assert_eq!(
        count(&db, "SELECT count(DISTINCT link) FROM observations"),
        300
    );
}

/// One batch of 100 packets x 3 hops, encoded.
fn batch(enc: &mut BatchEncoder, g: &mut SampleGen) -> Vec<u8> {
    for _ in 0..100 {
        for o in g.packet(&[0, 1, 2], 3) {
            enc.push(&o).expect("a 300-record batch fits");
        }
    }
    enc.finish().to_vec()
}

/// Reads acknowledgements until `seq` is acknowledged; returns the acknowledged number.
fn wait_ack(s: &mut TcpStream, seq: u64) -> u64 {
    let mut buf = Vec::new();
    loop {
        let mut b = [0u8; 64];
        let n = s.read(&mut b).expect("an acknowledgement");
        assert!(n > 0, "closed before acknowledging #{seq}");
        buf.extend_from_slice(&b[..n]);
        while let Some((used, acked)) = parse_ack(&buf).unwrap() {
            buf.drain(..used);
            if acked >= seq {
                return acked;
            }
        }
    }
}

#[test]
fn resent_batches_are_stored_once_and_gaps_counted() {
    let mut c = Collector::start(Duration::from_secs(30));
    let mut enc = Box::new(BatchEncoder::new("pi", 64 * 1024));
    let mut g = SampleGen::new(3, 1_795_694_400_000_000_000);
    let batches: Vec<Vec<u8>> = (0..5).map(|_| batch(&mut enc, &mut g)).collect();
    let mut first = connect(c.addr());
    first.write_all(&[hello("pi"), links(3)].concat()).unwrap();
    for b in &batches {
        first.write_all(&frame(&Message::Batch(b))).unwrap();
    }
    wait_ack(&mut first, 4);
    drop(first); // the agent never saw that ack: it sends #4 again on its next connection
    let mut second = connect(c.addr());
    second.write_all(&[hello("pi"), links(3)].concat()).unwrap();
    second
        .write_all(&frame(&Message::Batch(&batches[4])))
        .unwrap();
    let b5 = batch(&mut enc, &mut g);
    let _dropped_b6 = batch(&mut enc, &mut g); // the agent's queue overflowed
    let b7 = batch(&mut enc, &mut g);
    second
        .write_all(&[frame(&Message::Batch(&b5)), frame(&Message::Batch(&b7))].concat())
        .unwrap();
    wait_ack(&mut second, 7);
    second
        .write_all(&frame(&Message::Bye(Bye { batches_sent: 3 })))
        .unwrap();
    assert!(closed_by_collector(&mut second));
    let db = c.finish();
    assert_eq!(
        count(&db, "SELECT count(*) FROM observations"),
        7 * 300,
        "batches 0-5 and 7, once each"
    );
    assert_eq!(count(&db, "SELECT batches FROM boards"), 7);
    assert_eq!(count(&db, "SELECT lost_batches FROM boards"), 1);
    assert_eq!(count(&db, "SELECT last_seq FROM boards"), 7);
}

/// Ends the child also when an assertion fails.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serve_binary_ingests_and_stops_cleanly_on_sigint() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let bin = env!("CARGO_BIN_EXE_hopcap-collector");
    let dir = ScratchDir::new("serve-bin").unwrap();
    let db = dir.join("s.db");
    let db_arg = db.to_str().unwrap();
    let bad = Command::new(bin)
        .args(["serve", "--insecure", "--db", db_arg, "--retain-mb", "0"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--retain-mb"));
    let mut child = Child(
        Command::new(bin)
            .args([
                "serve",
                "--insecure",
                "--listen",
                "127.0.0.1:0",
                "--db",
                db_arg,
                "--retain-hours",
                "48",
            ])
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut log = BufReader::new(child.0.stderr.take().unwrap()).lines();
    let addr: SocketAddr = loop {
        let line = log.next().expect("serve logs its address").unwrap();
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.split(',').next().unwrap().parse().unwrap();
        }
    };
    let mut enc = Box::new(BatchEncoder::new("edge1", 64 * 1024));
    let mut g = SampleGen::new(11, 1_795_694_400_000_000_000);
    let mut s = connect(addr);
    let b0 = batch(&mut enc, &mut g);
    s.write_all(&[hello("edge1"), links(3), frame(&Message::Batch(&b0))].concat())
        .unwrap();
    wait_ack(&mut s, 0);
    let kill = Command::new("kill")
        .args(["-INT", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    assert!(
        closed_by_collector(&mut s),
        "shutdown closes agent connections"
    );
    let status = child.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let out = Command::new(bin)
        .args(["boards", "--db", db_arg, "--json"])
        .output()
        .unwrap();
    let board: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (board["name"].as_str(), board["observations"].as_i64()),
        (Some("edge1"), Some(300))
    );
    assert_eq!(board["state"], "disconnected");
}

#[test]
fn kill_9_keeps_every_acknowledged_batch_and_a_sound_file() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let bin = env!("CARGO_BIN_EXE_hopcap-collector");
    let dir = ScratchDir::new("kill9").unwrap();
    let db = dir.join("k.db");
    let mut child = Child(
        Command::new(bin)
            .args([
                "serve",
                "--insecure",
                "--listen",
                "127.0.0.1:0",
                "--db",
                db.to_str().unwrap(),
            ])
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut log = BufReader::new(child.0.stderr.take().unwrap()).lines();
    let addr: SocketAddr = loop {
        let line = log.next().expect("serve logs its address").unwrap();
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.split(',').next().unwrap().parse().unwrap();
        }
    };
    let mut enc = Box::new(BatchEncoder::new("pi", 64 * 1024));
    let mut g = SampleGen::new(12, 1_795_694_400_000_000_000);
    let mut s = connect(addr);
    s.write_all(&[hello("pi"), links(3)].concat()).unwrap();
    for _ in 0..20 {
        let b = batch(&mut enc, &mut g);
        s.write_all(&frame(&Message::Batch(&b))).unwrap();
    }
    // Killed while later batches may still be in flight or uncommitted.
    let acked = wait_ack(&mut s, 9);
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let conn = Connection::open(&db).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let n = count(&conn, "SELECT count(*) FROM observations");
    let at_least = (acked as i64 + 1) * 300;
    assert!(
        n >= at_least && n % 300 == 0,
        "{n} rows: every acknowledged batch ({at_least} rows), whole batches only"
    );
}

#[test]
fn connections_beyond_the_limit_are_refused() {
    let dir = ScratchDir::new("ingest-limit").unwrap();
    let db = dir.join("l.db");
    let writer =
        WriterHandle::spawn(open_for_writing(&db).unwrap(), WriterConfig::default(), 8).unwrap();
    let cfg = IngestConfig {
        max_connections: 2,
        ..IngestConfig::default()
    };
    let server = Server::start(
        Box::new(TcpListen::bind("127.0.0.1:0".parse().unwrap()).unwrap()),
        Arc::new(writer.writer()),
        cfg,
    )
    .unwrap();
    let mut kept: Vec<TcpStream> = (0..2).map(|_| connect(server.local_addr())).collect();
    for (i, s) in kept.iter_mut().enumerate() {
        s.write_all(&hello(&format!("b{i}"))).unwrap();
    }
    // Both are being served (their hellos are stored) before the third arrives.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while count(
        &Connection::open(&db).unwrap(),
        "SELECT count(*) FROM boards",
    ) < 2
    {
        assert!(std::time::Instant::now() < deadline, "hellos not stored");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut third = connect(server.local_addr());
    assert!(
        closed_by_collector(&mut third),
        "a third connection is over the limit"
    );
    drop(kept);
    server.stop();
    writer.finish();
}

fn tally(batches: u64, records: u64, gave_up: &[(u64, u64, u64)]) -> Vec<u8> {
    let mut t = Tally {
        batches,
        records,
        ..Tally::default()
    };
    for &(first, last, records) in gave_up {
        t.gave_up
            .push(GaveUp {
                first,
                last,
                records,
            })
            .unwrap();
    }
    frame(&Message::Tally(t))
}

fn board_row(db: &std::path::Path, name: &str) -> BoardRow {
    let boards = SqliteReader::open(db).unwrap().boards().unwrap();
    boards
        .into_iter()
        .find(|b| b.name == name)
        .unwrap_or_else(|| panic!("no board {name}"))
}

/// (seen, stored, dropped in the agent's queue, lost in transit, batches not stored)
fn accounting(b: &BoardRow) -> (i64, i64, i64, i64, i64) {
    (
        b.seen,
        b.stored,
        b.queue_drops,
        b.lost_in_transit,
        b.lost_batches,
    )
}

/// Every way a batch can fare, on two connections of one agent run (300 records a batch):
/// 0-2 stored; 3 given up after it was written, and stored after all (stored, not lost);
/// 4-5 given up unwritten (lost in the queue); 6 cut by a reconnect in the middle of its
/// frame, then sent whole (stored once); 2 sent again (stored once); 7 never arrived and the
/// agent never explained it (lost in transit); 8 stored; a tally repeated late changes nothing.
#[test]
fn the_tally_is_reconciled_with_what_was_stored() {
    let mut c = Collector::start(Duration::from_secs(30));
    let mut enc = Box::new(BatchEncoder::new("pi", 64 * 1024));
    let mut g = SampleGen::new(21, 1_795_694_400_000_000_000);
    let b: Vec<Vec<u8>> = (0..9).map(|_| batch(&mut enc, &mut g)).collect();
    let mut first = connect(c.addr());
    first
        .write_all(&[hello("pi"), links(3), tally(0, 0, &[])].concat())
        .unwrap();
    for (i, bytes) in b.iter().enumerate().take(4) {
        first
            .write_all(
                &[
                    tally(i as u64 + 1, 300 * (i as u64 + 1), &[]),
                    frame(&Message::Batch(bytes)),
                ]
                .concat(),
            )
            .unwrap();
    }
    wait_ack(&mut first, 3);
    // 3's ack is late at the agent: its queue overflows, it gives up 3 (written) and 4, 5.
    let b6 = frame(&Message::Batch(&b[6]));
    first
        .write_all(&[tally(7, 2100, &[(3, 5, 900)]), b6[..b6.len() / 2].to_vec()].concat())
        .unwrap();
    drop(first);
    let mut second = connect(c.addr());
    second
        .write_all(&[hello("pi"), links(3), tally(7, 2100, &[(3, 5, 900)])].concat())
        .unwrap();
    second
        .write_all(&[frame(&Message::Batch(&b[2])), b6].concat())
        .unwrap();
    second
        .write_all(&[tally(9, 2700, &[]), frame(&Message::Batch(&b[8]))].concat())
        .unwrap();
    wait_ack(&mut second, 8);
    // A stale tally (a copy from a connection that lagged) lowers nothing.
    second.write_all(&tally(4, 1200, &[(3, 4, 600)])).unwrap();
    second
        .write_all(&frame(&Message::Bye(Bye { batches_sent: 9 })))
        .unwrap();
    assert!(closed_by_collector(&mut second));
    let db = c.finish();
    assert_eq!(
        count(&db, "SELECT count(*) FROM observations"),
        6 * 300,
        "batches 0, 1, 2, 3, 6 and 8, once each"
    );
    let row = board_row(&c.db, "pi");
    assert_eq!(accounting(&row), (2700, 1800, 600, 300, 3));
    assert_eq!(row.seen, row.stored + row.queue_drops + row.lost_in_transit);
    assert_eq!(row.observations, 1800);
    // The agent's version is its own; how it captures is apart (issue 13: both were one
    // `agent_version` string, "protocol 1 capture Ring ...").
    assert_eq!(row.agent_version.as_deref(), Some("0.1.0"));
    assert_eq!(
        row.capture.as_deref(),
        Some(format!("ring, snaplen 128, sample 1/1, protocol {PROTOCOL_VERSION}").as_str())
    );
}

/// Runs are accounted apart and summed: a new run's batch 0 is not a copy of the last run's.
#[test]
fn each_run_of_a_board_is_accounted_and_summed() {
    let mut c = Collector::start(Duration::from_secs(30));
    let mut g = SampleGen::new(22, 1_795_694_400_000_000_000);
    for run in 1..=2u8 {
        let mut enc = Box::new(BatchEncoder::new("pi", 64 * 1024));
        let h = hello_run("pi", u64::from(run));
        let mut s = connect(c.addr());
        let b0 = batch(&mut enc, &mut g);
        let _b1_lost = batch(&mut enc, &mut g);
        s.write_all(&[h, links(3), tally(2, 600, &[]), frame(&Message::Batch(&b0))].concat())
            .unwrap();
        wait_ack(&mut s, 0);
        s.write_all(&frame(&Message::Bye(Bye { batches_sent: 2 })))
            .unwrap();
        assert!(closed_by_collector(&mut s));
    }
    c.finish();
    let row = board_row(&c.db, "pi");
    assert_eq!(accounting(&row), (1200, 600, 0, 600, 2));
}

/// A 300-record batch whose times are on a clock `delta_ns` ahead of `g`'s (what an agent
/// sends once it has seen its board's clock stepped).
fn batch_on_clock(enc: &mut BatchEncoder, g: &mut SampleGen, delta_ns: u64) -> Vec<u8> {
    for _ in 0..100 {
        for mut o in g.packet(&[0, 1, 2], 3) {
            o.ts_ns += delta_ns;
            enc.push(&o).expect("a 300-record batch fits");
        }
    }
    enc.finish().to_vec()
}

fn tally_with_step(batches: u64, step: ClockStep) -> Vec<u8> {
    let mut t = Tally {
        batches,
        records: batches * 300,
        ..Tally::default()
    };
    t.clock_steps.push(step).unwrap();
    frame(&Message::Tally(t))
}

/// Issue 9: a board's clock stepped by +3 days (NTP on a Pi without an RTC) while its agent
/// ran. Batches 0-2 were made before the step (old clock), 3-4 after (the agent put them on
/// the new clock). Batches 0-1 are stored before the step is told (moved in the store),
/// batch 2 only after a reconnect (moved as it is stored): every row ends on the new clock,
/// each moved once.
#[test]
fn a_clock_step_moves_exactly_the_batches_before_it_whatever_the_order() {
    const T0: u64 = 1_795_694_400_000_000_000;
    const DAYS3: u64 = 3 * 86_400 * 1_000_000_000;
    let mut c = Collector::start(Duration::from_secs(30));
    let mut enc = Box::new(BatchEncoder::new("pi", 64 * 1024));
    let mut g = SampleGen::new(5, T0);
    let old: Vec<Vec<u8>> = (0..3).map(|_| batch(&mut enc, &mut g)).collect();
    let new: Vec<Vec<u8>> = (0..2)
        .map(|_| batch_on_clock(&mut enc, &mut g, DAYS3))
        .collect();
    let step = ClockStep {
        first_batch: 3,
        delta_ns: DAYS3 as i64,
        at_ns: T0 + DAYS3 + 60_000_000_000,
    };

    let mut first = connect(c.addr());
    first.write_all(&[hello("pi"), links(3)].concat()).unwrap();
    for b in &old[..2] {
        first.write_all(&frame(&Message::Batch(b))).unwrap();
    }
    wait_ack(&mut first, 1);
    first
        .write_all(&[tally_with_step(4, step), frame(&Message::Batch(&new[0]))].concat())
        .unwrap();
    wait_ack(&mut first, 3); // #2 is not acknowledged: a gap, not yet stored
    drop(first);

    let mut second = connect(c.addr());
    second
        .write_all(
            &[
                hello("pi"),
                links(3),
                tally_with_step(5, step),
                frame(&Message::Batch(&old[2])),
                frame(&Message::Batch(&new[1])),
            ]
            .concat(),
        )
        .unwrap();
    wait_ack(&mut second, 4);
    second
        .write_all(&frame(&Message::Bye(Bye { batches_sent: 2 })))
        .unwrap();
    assert!(closed_by_collector(&mut second));
    let db = c.finish();
    assert_eq!(count(&db, "SELECT count(*) FROM observations"), 5 * 300);
    assert_eq!(
        count(
            &db,
            &format!(
                "SELECT count(*) FROM observations WHERE ts_ns < {}",
                T0 + DAYS3
            )
        ),
        0,
        "rows left on the old clock"
    );
    // Moved once, not twice: the earliest row is the generator's first time, 3 days on.
    let earliest = count(&db, "SELECT min(ts_ns) FROM observations") as u64;
    assert!(
        (T0 + DAYS3..T0 + DAYS3 + 1_000_000_000).contains(&earliest),
        "{earliest}"
    );
    assert_eq!(count(&db, "SELECT count(*) FROM clock_steps"), 1);
    let row = board_row(&c.db, "pi");
    assert_eq!(
        (row.clock_steps, row.last_clock_step_ns),
        (1, Some(DAYS3 as i64))
    );
}

#[test]
fn an_absurd_clock_step_closes_the_connection() {
    let c = Collector::start(Duration::from_secs(30));
    let mut s = connect(c.addr());
    let step = ClockStep {
        first_batch: 0,
        delta_ns: i64::MIN,
        at_ns: 0,
    };
    s.write_all(&[hello("pi"), links(1), tally_with_step(0, step)].concat())
        .unwrap();
    assert!(closed_by_collector(&mut s));
}

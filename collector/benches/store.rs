//! SQLite against ClickHouse (2 shards on this machine), through the same `StoreWriter` and
//! the same query command (not a test; prints figures):
//!   cargo bench -p hopcap-collector --bench store                 (1M observations)
//!   HOPCAP_BENCH_ROWS=200000 cargo bench -p hopcap-collector --bench store
//! Without `--bench` it does a quick smoke pass (skipped without clickhouse-server).
//!
//! 1. observations/s written through each backend's writer (batches of 1000 from 4 producer
//!    threads, 10 boards, until the last batch's commit);
//! 2. the read cost of `paths --json` over all of them, and for ClickHouse the cost of FINAL
//!    (what makes a batch written twice read once) on a full scan.
//!
//! Figures: see the README's "Scaling out" section.

use hopcap_collector::store::clickhouse::{ClickhouseHandle, WriterConfig as ChConfig};
use hopcap_collector::store::sqlite::writer::WriterConfig;
use hopcap_collector::store::sqlite::{open_for_writing, WriterHandle};
use hopcap_collector::store::{BoardHello, ObservationBatch, StoreWriter};
use hopcap_testkit::{veth, SampleGen, ScratchDir};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const T0: u64 = 1_795_694_400_000_000_000;
const BOARDS: usize = 10;
const PRODUCERS: usize = 4;
const BATCH: usize = 1000;
const BIN: &str = env!("CARGO_BIN_EXE_hopcap-collector");

/// Writes `rows` observations (4 hops a packet, on 4 links of each board) through `w`;
/// observations/s from the first batch to the last one's commit.
fn write(w: &(dyn StoreWriter + Sync), rows: usize) -> f64 {
    let mut boards = Vec::new();
    for b in 0..BOARDS {
        let s = w
            .hello(BoardHello {
                name: format!("pi{b}"),
                boot_id: "bench:1".into(),
                agent_version: "bench".into(),
                capture: String::new(),
                remote: "127.0.0.1:1".into(),
                board_clock_ns: None,
            })
            .unwrap();
        let links: Vec<_> = (0..4).map(|i| veth(i, "", &format!("eth{i}"))).collect();
        let ids = w.links(s.board, links, true).unwrap();
        boards.push((s, ids));
    }
    // Made before the clock starts: only the store is measured.
    let per_board = rows / BOARDS / BATCH;
    let mut work: Vec<Vec<ObservationBatch>> = (0..PRODUCERS).map(|_| Vec::new()).collect();
    let acked: Vec<Arc<AtomicU64>> = (0..BOARDS).map(|_| Arc::default()).collect();
    for (b, (s, ids)) in boards.iter().enumerate() {
        let mut g = SampleGen::new(b as u64 + 1, T0 + b as u64 * 1_000);
        for seq in 0..per_board {
            let obs: Vec<_> = (0..BATCH / 4)
                .flat_map(|_| g.packet(&[0, 1, 2, 3], 4))
                .map(|o| (ids[o.link as usize].1, o))
                .collect();
            work[b % PRODUCERS].push(ObservationBatch {
                run: Some(s.run),
                seq: Some(seq as u64),
                committed: Some(Arc::clone(&acked[b])),
                ..ObservationBatch::new(s.board, obs)
            });
        }
    }
    let total: usize = work.iter().flatten().map(|b| b.rows.len()).sum();
    let start = Instant::now();
    std::thread::scope(|scope| {
        for batches in work {
            scope.spawn(move || {
                for b in batches {
                    w.batch(b).unwrap();
                }
            });
        }
    });
    assert!(w.flush(Duration::from_secs(600)));
    let secs = start.elapsed().as_secs_f64();
    assert!(acked
        .iter()
        .all(|a| a.load(Ordering::Relaxed) == per_board as u64));
    total as f64 / secs
}

/// Seconds `paths --json` takes over everything stored.
fn paths_secs(store: &[&str]) -> f64 {
    let start = Instant::now();
    let out = Command::new(BIN)
        .args([&["paths", "--json"][..], store].concat())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    start.elapsed().as_secs_f64()
}

/// Seconds one query takes on the server at `port` (its body discarded).
fn sql_secs(port: u16, sql: &str) -> f64 {
    let start = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST / HTTP/1.0\r\nContent-Length: {}\r\n\r\n{sql}",
        sql.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.contains(" 200 "), "{answer}");
    start.elapsed().as_secs_f64()
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let rows: usize = std::env::var("HOPCAP_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 1_000_000 } else { 40_000 });
    println!("hopcap store benchmark, SQLite vs ClickHouse ({rows} observations)");
    let dir = ScratchDir::new("bench-store").unwrap();

    let db = dir.join("bench.db");
    let sqlite =
        WriterHandle::spawn(open_for_writing(&db).unwrap(), WriterConfig::default(), 256).unwrap();
    let rate = write(&sqlite.writer(), rows);
    sqlite.finish();
    println!("SQLite writer:              {:>8.0} obs/s", rate);
    let secs = paths_secs(&["--db", db.to_str().unwrap()]);
    println!("SQLite paths --json:        {secs:>8.2} s");

    if Command::new("sh")
        .args(["-c", "command -v clickhouse-server"])
        .output()
        .map_or(true, |o| !o.status.success())
    {
        println!("ClickHouse: skipped (no clickhouse-server; scripts/clickhouse.sh installs it)");
        return;
    }
    let base: u16 = std::env::var("HOPCAP_CH_PORT_BASE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(18_700);
    let ch_dir = dir.join("clickhouse");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/clickhouse.sh");
    let up = Command::new("bash")
        .args([script, "up", ch_dir.to_str().unwrap(), "--shards", "2"])
        .env("HOPCAP_CH_PORT_BASE", base.to_string())
        .output()
        .unwrap();
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let spec = format!(
        "http://127.0.0.1:{},http://127.0.0.1:{}",
        base + 1,
        base + 2
    );
    let measure = || {
        let ch = ClickhouseHandle::start(&spec, ChConfig::default(), 256).unwrap();
        let rate = write(&ch.writer(), rows);
        ch.finish();
        println!("ClickHouse writer, 2 shards:{:>8.0} obs/s", rate);
        let secs = paths_secs(&["--clickhouse", &spec]);
        println!("ClickHouse paths --json:    {secs:>8.2} s");
        let scan = "SELECT count(), sum(cityHash64(summary)) FROM hopcap.observations";
        let plain = sql_secs(base + 1, scan);
        let fin = sql_secs(
            base + 1,
            &scan.replace("observations", "observations FINAL"),
        );
        println!("ClickHouse full scan:       {plain:>8.3} s, with FINAL {fin:.3} s");
    };
    // Stop the shards whatever happened.
    let result = std::panic::catch_unwind(measure);
    let _ = Command::new("bash")
        .args([script, "down", ch_dir.to_str().unwrap()])
        .status();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

//! Store benchmark (not a test; prints figures):
//!   cargo bench -p hopcap-collector --bench ingest            (full: 10M rows, a few minutes)
//!   HOPCAP_BENCH_ROWS=2000000 cargo bench ... --bench ingest  (a smaller dataset)
//! Without `--bench` (as `cargo test --all-targets` runs it) it does a quick smoke pass.
//!
//! 1. bytes per stored observation and insert rate, per set of indexes (what each costs);
//! 2. observations/s through the writer thread fed by several producer threads (the ingest
//!    path minus TCP), and through real TCP connections (agents' encoding done beforehand);
//! 3. query times on a dataset of N rows spread over 24 h: 10-minute timeline window (all,
//!    one board, one link), fingerprint lookups, a flow in the window.
//!
//! Measured 2026-11-26 on the shared 2-core x86_64 build machine (full run, 20k-row
//! transactions; obs/cpu-s = per second of CPU, as the machine was shared):
//! ```text
//! indexes                       bytes/obs   obs/s    obs/cpu-s
//! none                            112.2     484k      662k
//! ts (the default)                131.0     378k      469k
//! ts+fingerprint                  149.6     173k      195k
//! ts+link                         152.5     287k      308k
//! ts+flow                         161.0     152k      175k
//! ts+fingerprint+link+flow        201.1      86k      101k
//! writer thread, 4 producers      (ts)      451k      508k
//! TCP, 8 connections, acked       (ts)      392k      408k  (CPU of both sides)
//! 10M rows over 24 h: filled at 487k obs/s (536k obs/cpu-s), 132.1 bytes/obs;
//! 10-minute window (69k rows) rebuilt 157 ms, one board 31 ms, one link 20 ms;
//! one packet's hops by fingerprint within +-5 s 0.22 ms; a flow in the window 16 ms.
//! ```

use hopcap_collector::ingest::{IngestConfig, Server, TcpListen};
use hopcap_collector::store::sqlite::command::WriteCmd;
use hopcap_collector::store::sqlite::query::timeline;
use hopcap_collector::store::sqlite::writer::{insert_observations, WriterConfig};
use hopcap_collector::store::sqlite::{schema, WriterHandle};
use hopcap_collector::store::{BoardId, ObservationBatch};
use hopcap_collector::store::{LinkId, TimelineQuery};
use hopcap_proto::frame::parse_ack;
use hopcap_proto::record::Observation;
use hopcap_testkit::{SampleGen, ScratchDir};
use rusqlite::Connection;
use std::path::Path;
use std::time::Instant;

const T0: u64 = 1_795_694_400_000_000_000;
const DAY_NS: u64 = 86_400 * 1_000_000_000;
const BOARDS: i64 = 10;
const LINKS_PER_BOARD: i64 = 8;

/// CPU seconds used by this process so far (all threads; /proc/self/stat utime + stime). The
/// machine may be shared, so rates are given per wall second and per CPU second.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_comm = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<f64> = after_comm
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    // Fields 14 and 15 of the file are 12 and 13 after the command name; 100 ticks/s.
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / 100.0
}

/// Extra index definitions tried in section 1 (not in the schema).
const TRIAL_INDEXES: &[(&str, &str)] = &[(
    "fp_by_second",
    "CREATE INDEX fp_by_second ON observations(ts_ns / 1000000000, fingerprint)",
)];

/// Every index the benchmark can build, by name: "ts" (the schema's time index), the
/// schema's optional ones, and the trial ones.
fn index_defs() -> Vec<(&'static str, &'static str)> {
    let mut defs = vec![("ts", schema::TIME_INDEX)];
    defs.extend(
        schema::OPTIONAL_INDEXES
            .iter()
            .chain(TRIAL_INDEXES)
            .copied(),
    );
    defs
}

/// What `serve` builds by default.
const DEFAULT: &[&str] = &["ts"];

fn open(path: &Path, indexes: &[&str]) -> Connection {
    let conn = Connection::open(path).unwrap();
    // HOPCAP_BENCH_PRAGMAS="page_size=16384;wal_autocheckpoint=10000" tries other settings.
    for p in std::env::var("HOPCAP_BENCH_PRAGMAS")
        .unwrap_or_default()
        .split(';')
        .filter(|p| !p.is_empty())
    {
        conn.execute_batch(&format!("PRAGMA {p}")).unwrap();
    }
    schema::configure(&conn).unwrap();
    schema::create(&conn, false, &[]).unwrap();
    for (name, sql) in index_defs() {
        if indexes.contains(&name) {
            conn.execute(sql, []).unwrap();
        }
    }
    conn
}

/// Rows of one board: 3 hops per packet over the board's links, packets `gap_ns` apart.
fn rows(g: &mut SampleGen, board: i64, packets: usize, gap_ns: u64) -> Vec<(LinkId, Observation)> {
    let first_link = (board - 1) * LINKS_PER_BOARD + 1;
    let mut out = Vec::with_capacity(packets * 3);
    for _ in 0..packets {
        g.ts_ns += gap_ns;
        for o in g.packet(&[0, 1, 2, 3, 4, 5, 6, 7], 3) {
            out.push((LinkId::from_raw(first_link + i64::from(o.link)), o));
        }
    }
    out
}

/// Inserts `total` rows spread over `span_ns` in transactions of [`txn_rows`]; returns
/// (rows per wall second, rows per CPU second).
fn fill(conn: &mut Connection, total: usize, span_ns: u64) -> (f64, f64) {
    let packets_per_board = total / 3 / BOARDS as usize;
    let gap = span_ns / packets_per_board.max(1) as u64;
    let mut gens: Vec<SampleGen> = (0..BOARDS)
        .map(|b| SampleGen::new(b as u64 + 1, T0))
        .collect();
    let chunk = txn_rows() / 3 / BOARDS as usize;
    let (start, cpu) = (Instant::now(), cpu_secs());
    let mut done = 0;
    while done < packets_per_board {
        let n = chunk.min(packets_per_board - done);
        let tx = conn.transaction().unwrap();
        for (b, g) in gens.iter_mut().enumerate() {
            let r = rows(g, b as i64 + 1, n, gap);
            insert_observations(&tx, b as i64 + 1, &r).unwrap();
        }
        tx.commit().unwrap();
        done += n;
    }
    let rows = (packets_per_board * 3 * BOARDS as usize) as f64;
    (
        rows / start.elapsed().as_secs_f64(),
        rows / (cpu_secs() - cpu).max(0.01),
    )
}

/// Rows per transaction (the writer's default batch): HOPCAP_BENCH_TXN overrides.
fn txn_rows() -> usize {
    std::env::var("HOPCAP_BENCH_TXN")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(WriterConfig::default().max_rows)
}

fn file_bytes(conn: &Connection, path: &Path) -> u64 {
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    std::fs::metadata(path).unwrap().len()
}

fn setup_names(conn: &Connection) {
    for b in 1..=BOARDS {
        conn.execute(
            "INSERT INTO boards (id, name, first_seen_ns, last_seen_ns) VALUES (?1, ?2, 0, 0)",
            (b, format!("pi{b}")),
        )
        .unwrap();
        for l in 0..LINKS_PER_BOARD {
            conn.execute(
                "INSERT INTO links (id, board, netns, name, ifindex, kind, first_seen_ns, last_seen_ns)
                 VALUES (?1, ?2, '', ?3, ?4, 'veth', 0, 0)",
                ((b - 1) * LINKS_PER_BOARD + l + 1, b, format!("veth{l}"), l + 2),
            )
            .unwrap();
        }
    }
}

fn index_costs(rows_per_run: usize) {
    println!(
        "\n== 1. bytes per observation and insert rate, by indexes ({rows_per_run} rows each)"
    );
    // The generator's own cost, included in every figure below.
    let (start, cpu) = (Instant::now(), cpu_secs());
    let mut g = SampleGen::new(1, T0);
    let mut made = 0;
    while made < rows_per_run {
        made += std::hint::black_box(rows(&mut g, 1, 1000, 1000)).len();
    }
    println!(
        "{:<52} {:>17} {:>9.0} obs/s {:>9.0} obs/cpu-s",
        "(generating the rows only)",
        "",
        made as f64 / start.elapsed().as_secs_f64(),
        made as f64 / (cpu_secs() - cpu).max(0.01)
    );
    let only = std::env::var("HOPCAP_BENCH_SETS").ok();
    let mut sets: Vec<Vec<&str>> = vec![vec![], vec!["ts"]];
    for (name, _) in index_defs().into_iter().skip(1) {
        sets.push(vec!["ts", name]);
    }
    let mut all: Vec<&str> = vec!["ts"];
    all.extend(schema::OPTIONAL_INDEXES.iter().map(|(n, _)| *n));
    sets.push(all);
    // HOPCAP_BENCH_SETS="ts,fp_by_second;ts" measures these sets instead.
    if let Some(only) = &only {
        sets = only
            .split(';')
            .map(|set| set.split(',').filter(|n| !n.is_empty()).collect())
            .collect();
    }
    for set in &sets {
        let dir = ScratchDir::new("bench-idx").unwrap();
        let path = dir.join("b.db");
        let mut conn = open(&path, set);
        let (rate, cpu_rate) = fill(&mut conn, rows_per_run, 600 * 1_000_000_000);
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM observations", [], |r| r.get(0))
            .unwrap();
        let bytes = file_bytes(&conn, &path);
        let label = if set.is_empty() {
            "no index".to_string()
        } else {
            set.join("+")
        };
        println!(
            "{label:<52} {:>7.1} bytes/obs {:>9.0} obs/s {:>9.0} obs/cpu-s",
            bytes as f64 / rows as f64,
            rate,
            cpu_rate
        );
    }
}

fn writer_path(total: usize, producers: usize) {
    println!("\n== 2a. writer thread fed by {producers} producer threads (ingest minus TCP), default indexes (time)");
    let dir = ScratchDir::new("bench-writer").unwrap();
    let path = dir.join("w.db");
    let conn = open(&path, DEFAULT);
    setup_names(&conn);
    let w = WriterHandle::spawn(conn, WriterConfig::default(), 256).unwrap();
    // Batches made before the clock starts: the figure is the store's, not the generator's.
    let per = total / producers;
    let batches: Vec<Vec<ObservationBatch>> = (0..producers)
        .map(|p| {
            let board = p as i64 % BOARDS + 1;
            let mut g = SampleGen::new(p as u64 + 100, T0);
            let mut out = Vec::new();
            let mut made = 0;
            while made < per {
                let r = rows(&mut g, board, 100, 10_000);
                made += r.len();
                out.push(ObservationBatch {
                    seq: Some(out.len() as u64),
                    ..ObservationBatch::new(BoardId::from_raw(board), r)
                });
            }
            out
        })
        .collect();
    let stored: usize = batches.iter().flatten().map(|b| b.rows.len()).sum();
    let (start, cpu) = (Instant::now(), cpu_secs());
    let threads: Vec<_> = batches
        .into_iter()
        .map(|bs| {
            let tx = w.sender();
            std::thread::spawn(move || {
                for b in bs {
                    tx.send(WriteCmd::Batch(b)).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    w.flush();
    let (secs, cpu) = (start.elapsed().as_secs_f64(), cpu_secs() - cpu);
    w.finish();
    println!(
        "{stored} observations in {secs:.2}s ({cpu:.2} CPU s): {:.0} obs/s, {:.0} obs/cpu-s",
        stored as f64 / secs,
        stored as f64 / cpu.max(0.01)
    );
}

fn tcp_path(total: usize, conns: usize) {
    println!("\n== 2b. TCP ingest from {conns} connections, default indexes (time)");
    let dir = ScratchDir::new("bench-tcp").unwrap();
    let conn = open(&dir.join("t.db"), DEFAULT);
    let w = WriterHandle::spawn(conn, WriterConfig::default(), 256).unwrap();
    let server = Server::start(
        Box::new(TcpListen::bind("127.0.0.1:0".parse().unwrap()).unwrap()),
        std::sync::Arc::new(w.writer()),
        IngestConfig::default(),
    )
    .unwrap();
    let addr = server.local_addr();
    let per = total / conns;
    let frames: Vec<(Vec<u8>, u64)> = (0..conns).map(|c| agent_stream(c, per)).collect();
    let (start, cpu) = (Instant::now(), cpu_secs());
    let threads: Vec<_> = frames
        .into_iter()
        .map(|(bytes, last_seq)| {
            std::thread::spawn(move || {
                use std::io::{Read, Write};
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                s.write_all(&bytes).unwrap();
                let mut buf = Vec::new();
                loop {
                    let mut b = [0u8; 256];
                    let n = s.read(&mut b).unwrap();
                    assert!(n > 0, "closed early");
                    buf.extend_from_slice(&b[..n]);
                    while let Some((used, seq)) = parse_ack(&buf).unwrap() {
                        buf.drain(..used);
                        if seq == last_seq {
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let (secs, cpu) = (start.elapsed().as_secs_f64(), cpu_secs() - cpu);
    let n = (per * conns) as f64;
    println!(
        "{n} observations acknowledged in {secs:.2}s ({cpu:.2} CPU s, agents' side included): \
         {:.0} obs/s, {:.0} obs/cpu-s",
        n / secs,
        n / cpu.max(0.01)
    );
    server.stop();
    w.finish();
}

/// One agent's whole connection as bytes (hello, links, batches) and its last batch seq.
fn agent_stream(c: usize, observations: usize) -> (Vec<u8>, u64) {
    use hopcap_proto::batch::BatchEncoder;
    use hopcap_proto::frame::encode;
    use hopcap_proto::message::*;
    let name = format!("bench{c}");
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1 << 17];
    let mut put = |m: &Message<'_>, out: &mut Vec<u8>| {
        let n = encode(m, &mut buf).unwrap();
        out.extend_from_slice(&buf[..n]);
    };
    let hello = Hello {
        version: PROTOCOL_VERSION,
        agent_id: heapless::String::try_from(name.as_str()).unwrap(),
        boot_id: [c as u8; 16],
        run_id: 1,
        clock: ClockInfo {
            realtime_ns: T0,
            monotonic_ns: 0,
            debug_offset_ns: 0,
        },
        capture: CaptureMode::Ring,
        snaplen: 128,
        sample: 1,
        agent_version: heapless::String::try_from("0.1.0").unwrap(),
    };
    put(&Message::Hello(hello), &mut out);
    let mut enc = BatchEncoder::new(&name, 64 * 1024);
    let mut g = SampleGen::new(c as u64 + 7, T0);
    let (mut sent, mut seq) = (0, 0u64);
    while sent < observations {
        for o in g.packet(&[0, 1, 2, 3], 3) {
            if enc.push(&o).is_err() {
                let bytes = enc.finish().to_vec();
                put(&Message::Batch(&bytes), &mut out);
                seq += 1;
                enc.push(&o).unwrap();
            }
            sent += 1;
        }
    }
    let bytes = enc.finish().to_vec();
    put(&Message::Batch(&bytes), &mut out);
    (out, seq)
}

fn time<T>(what: &str, runs: u32, mut f: impl FnMut() -> T) -> T {
    let mut result = f(); // warm the page cache
    let start = Instant::now();
    for _ in 0..runs {
        result = f();
    }
    let per = start.elapsed() / runs;
    println!("{what:<58} {:>9.2} ms", per.as_secs_f64() * 1e3);
    result
}

fn queries(total: usize) {
    println!(
        "\n== 3. {total} rows over 24 h ({BOARDS} boards x {LINKS_PER_BOARD} links), default indexes (time)"
    );
    let dir = ScratchDir::new("bench-query").unwrap();
    let path = dir.join("q.db");
    let mut conn = open(&path, DEFAULT);
    setup_names(&conn);
    let (rate, cpu_rate) = fill(&mut conn, total, DAY_NS);
    let bytes = file_bytes(&conn, &path);
    println!(
        "filled at {rate:.0} obs/s, {cpu_rate:.0} obs/cpu-s ({}-row transactions); {:.1} bytes/obs on disk",
        txn_rows(),
        bytes as f64 / total as f64
    );
    let since = (T0 + DAY_NS / 2) as i64;
    let window = TimelineQuery {
        since_ns: Some(since),
        until_ns: Some(since + 600_000_000_000),
        ..Default::default()
    };
    let n = time("timeline, 10-minute window (rows rebuilt)", 3, || {
        let mut n = 0u64;
        timeline(&conn, &window, &mut |_| {
            n += 1;
            true
        })
        .unwrap();
        n
    });
    println!("  ({n} rows in the window)");
    let q = TimelineQuery {
        board: Some("pi3".into()),
        ..window.clone()
    };
    time("timeline, 10-minute window, one board", 3, || {
        timeline(&conn, &q, &mut |_| true).unwrap()
    });
    let q = TimelineQuery {
        link: Some("pi3:veth1".into()),
        ..window.clone()
    };
    time("timeline, 10-minute window, one link", 3, || {
        timeline(&conn, &q, &mut |_| true).unwrap()
    });
    // Packets spread over the whole day, each looked up as correlate does: by fingerprint
    // within +-5 s of one sighting (the time index narrows, the fingerprint filters).
    let probes: Vec<(i64, i64)> = conn
        .prepare("SELECT fingerprint, ts_ns FROM observations WHERE id % 9973 = 0 LIMIT 1000")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    let mut stmt = conn
        .prepare(
            "SELECT id, link, ts_ns FROM observations
             WHERE ts_ns BETWEEN ?2 - 5000000000 AND ?2 + 5000000000 AND fingerprint = ?1",
        )
        .unwrap();
    let hops = time(
        &format!("{} packets' hops by fingerprint +-5 s, total", probes.len()),
        3,
        || {
            let mut hops = 0;
            for (fp, ts) in &probes {
                hops += stmt.query_map([fp, ts], |_| Ok(())).unwrap().count();
            }
            hops
        },
    );
    println!("  ({hops} hops found)");
    let (src, dst): (Vec<u8>, Vec<u8>) = conn
        .query_row(
            "SELECT src, dst FROM observations WHERE ts_ns >= ?1 AND src IS NOT NULL LIMIT 1",
            [since],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let flow = "SELECT count(*) FROM observations WHERE src = ?1 AND dst = ?2 AND ts_ns >= ?3 AND ts_ns < ?4";
    let hits: i64 = time("flow (src, dst) in the 10-minute window, count", 3, || {
        conn.query_row(
            flow,
            rusqlite::params![src, dst, since, since + 600_000_000_000],
            |r| r.get(0),
        )
        .unwrap()
    });
    println!("  ({hits} rows)");
    time("count(*) in the 10-minute window", 3, || {
        conn.query_row(
            "SELECT count(*) FROM observations WHERE ts_ns >= ?1 AND ts_ns < ?2",
            [since, since + 600_000_000_000],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
    });
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let rows: usize = std::env::var("HOPCAP_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 10_000_000 } else { 30_000 });
    let per_run = if full { 1_000_000 } else { 10_000 };
    // HOPCAP_BENCH_SECTIONS=13 runs sections 1 and 3 only.
    let sections = std::env::var("HOPCAP_BENCH_SECTIONS").unwrap_or_else(|_| "123".into());
    println!(
        "hopcap store benchmark ({})",
        if full { "full" } else { "smoke" }
    );
    if sections.contains('1') {
        index_costs(per_run);
    }
    if sections.contains('2') {
        writer_path(per_run, 4);
        tcp_path(per_run, 8);
    }
    if sections.contains('3') {
        queries(rows);
    }
}

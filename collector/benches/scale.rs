//! Scaled mode's transport end to end on this machine: a 3-node JetStream cluster on
//! loopback (scripts/nats.sh, R3 streams), two ingest nodes (JetStreamWriter) fed by 8
//! simulated agents, 1, 2 and 3 partitions with one consumer each, into a store that only
//! counts. Observations are the flood bed's (real summaries). Prints observations/s from the
//! first publish until the last row is handed to the store, and the CPU time of the servers
//! and of this process (publishers + consumers), to show where the bottleneck sits.
//!
//! `cargo bench -p hopcap-collector --bench scale [-- OBSERVATIONS]` (default 400 000).

use hopcap_collector::scale::consume::{self, Intake, IntakeCounts};
use hopcap_collector::scale::publish::{JetStreamConfig, JetStreamWriter};
use hopcap_collector::store::{
    BatchPart, BoardHello, BoardId, BoardSession, BoardStats, LinkId, ObservationBatch, RunId,
    RunTally, StoreError, StoreWriter,
};
use hopcap_proto::record::{LinkInfo, LinkKey, Observation};
use hopcap_testkit::bed::flood;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BATCH: usize = 256;
const AGENTS: usize = 8;
const INGEST_NODES: usize = 2;

#[derive(Default)]
struct Counter {
    rows: AtomicU64,
}

impl StoreWriter for Counter {
    fn hello(&self, _: BoardHello) -> Result<BoardSession, StoreError> {
        Ok(BoardSession {
            board: BoardId::from_raw(0),
            run: RunId::from_raw(0),
            last_seq: None,
            links: Vec::new(),
        })
    }
    fn links(
        &self,
        _: BoardId,
        _: Vec<LinkInfo>,
        _: bool,
    ) -> Result<Vec<(LinkKey, LinkId)>, StoreError> {
        Ok(Vec::new())
    }
    fn links_removed(&self, _: BoardId, _: Vec<LinkId>) -> Result<(), StoreError> {
        Ok(())
    }
    fn batch(&self, _: ObservationBatch) -> Result<(), StoreError> {
        Ok(())
    }
    fn batch_part(&self, batch: ObservationBatch, _: BatchPart) -> Result<(), StoreError> {
        self.rows
            .fetch_add(batch.rows.len() as u64, Ordering::Relaxed);
        if let (Some(w), Some(seq)) = (batch.committed, batch.seq) {
            w.fetch_max(seq + 1, Ordering::AcqRel);
        }
        Ok(())
    }
    fn stats(&self, _: BoardId, _: BoardStats) -> Result<(), StoreError> {
        Ok(())
    }
    fn tally(&self, _: RunId, _: RunTally) -> Result<(), StoreError> {
        Ok(())
    }
    fn disconnected(&self, _: BoardId, _: String) -> Result<(), StoreError> {
        Ok(())
    }
    fn flush(&self, _: Duration) -> bool {
        true
    }
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/nats.sh")
}

fn nats(args: &[&str], base: u16) -> String {
    let out = Command::new("bash")
        .arg(script())
        .args(args)
        .env("HOPCAP_NATS_PORT_BASE", base.to_string())
        .output()
        .expect("scripts/nats.sh");
    assert!(
        out.status.success(),
        "nats.sh {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// utime + stime of a process, in seconds (from /proc).
fn cpu_secs(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|u| u.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn server_cpu(dir: &std::path::Path) -> f64 {
    (1..=3)
        .map(|i| {
            let pid = std::fs::read_to_string(dir.join(format!("n{i}.pid"))).unwrap_or_default();
            cpu_secs(pid.trim())
        })
        .sum()
}

fn main() {
    let total: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(400_000);
    let parts = flood(total / 5 + 1, 1_000_000, 37_000_000, 1).into_parts();
    let obs: Arc<Vec<Observation>> =
        Arc::new(parts.hops.into_iter().map(|(_, o)| o).take(total).collect());
    let total = obs.len();
    for partitions in 1..=3u32 {
        let base = 24_000 + partitions as u16 * 8;
        let dir = std::env::temp_dir().join(format!("hopcap-bench-nats-{partitions}"));
        let urls = nats(
            &[
                "up",
                dir.to_str().unwrap(),
                "--partitions",
                &partitions.to_string(),
            ],
            base,
        );
        let store = Arc::new(Counter::default());
        let stop = Arc::new(AtomicBool::new(false));
        let mut consumers = Vec::new();
        let mut ready = Vec::new();
        let intakes = (0..partitions)
            .map(|k| Intake::Partition { k, of: partitions })
            .chain([Intake::Meta]);
        for intake in intakes {
            let (urls, store, stop) = (
                urls.clone(),
                Arc::clone(&store) as Arc<dyn StoreWriter>,
                Arc::clone(&stop),
            );
            let counts = Arc::new(IntakeCounts::default());
            ready.push(Arc::clone(&counts));
            consumers.push(std::thread::spawn(move || {
                consume::run(&urls, intake, 3, store, None, stop, counts)
            }));
        }
        let writers: Vec<Arc<JetStreamWriter>> = (0..INGEST_NODES)
            .map(|_| {
                Arc::new(
                    JetStreamWriter::connect(&JetStreamConfig {
                        urls: urls.clone(),
                        partitions,
                        replicas: 3,
                        connect_timeout: Duration::from_secs(10),
                    })
                    .expect("connect"),
                )
            })
            .collect();
        while !ready.iter().all(|c| c.ready.load(Ordering::Acquire)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let cpu0 = (server_cpu(&dir), cpu_secs("self"));
        let start = Instant::now();
        let agents: Vec<_> = (0..AGENTS)
            .map(|a| {
                let w = Arc::clone(&writers[a % INGEST_NODES]);
                let obs = Arc::clone(&obs);
                std::thread::spawn(move || {
                    let s = w
                        .hello(BoardHello {
                            name: format!("bench{a}"),
                            boot_id: "b:1".into(),
                            agent_version: "bench".into(),
                            capture: "ring".into(),
                            remote: "127.0.0.1:1".into(),
                            board_clock_ns: None,
                        })
                        .expect("hello");
                    let mine: Vec<&Observation> = obs.iter().skip(a).step_by(AGENTS).collect();
                    let watermark = Arc::new(AtomicU64::new(0));
                    for (seq, chunk) in mine.chunks(BATCH).enumerate() {
                        let rows = chunk
                            .iter()
                            .map(|&o| (LinkId::from_raw(1), o.clone()))
                            .collect();
                        let mut b = ObservationBatch::new(s.board, rows);
                        b.run = Some(s.run);
                        b.seq = Some(seq as u64);
                        b.committed = Some(Arc::clone(&watermark));
                        w.batch(b).expect("batch");
                    }
                })
            })
            .collect();
        for a in agents {
            a.join().expect("agent");
        }
        for w in &writers {
            w.flush(Duration::from_secs(120));
        }
        let published = start.elapsed().as_secs_f64();
        while store.rows.load(Ordering::Relaxed) < total as u64 {
            if start.elapsed() > Duration::from_secs(300) {
                eprintln!(
                    "gave up waiting: {} rows stored",
                    store.rows.load(Ordering::Relaxed)
                );
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let secs = start.elapsed().as_secs_f64();
        let cpu = (server_cpu(&dir) - cpu0.0, cpu_secs("self") - cpu0.1);
        println!(
            "{partitions} partition(s): {total} observations in {secs:.2} s: {:.0} obs/s end to end \
             (published and acked by JetStream in {published:.2} s: {:.0} obs/s); CPU: servers {:.2} s, \
             ingest+consumers {:.2} s ({:.2} µs/obs in all)",
            total as f64 / secs,
            total as f64 / published,
            cpu.0,
            cpu.1,
            (cpu.0 + cpu.1) * 1e6 / total as f64
        );
        stop.store(true, Ordering::Relaxed);
        for c in consumers {
            let _ = c.join();
        }
        drop(writers);
        nats(&["down", dir.to_str().unwrap()], base);
    }
}

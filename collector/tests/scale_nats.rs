//! Scaled mode's transport on a real 3-node NATS JetStream cluster (scripts/nats.sh, on
//! loopback): ingest's JetStreamWriter publishes batches split by partition, partition
//! consumers and the meta consumer hand them to a store. Checks that the servers' mapping
//! and ingest's own partition function agree row by row, that every row is stored once, and
//! that a NATS node killed mid-run loses nothing.

mod nats_cluster;

use hopcap_collector::scale::consume::{self, Intake, IntakeCounts};
use hopcap_collector::scale::partition::{partition, token};
use hopcap_collector::scale::publish::{JetStreamConfig, JetStreamWriter};
use hopcap_collector::store::{
    BatchPart, BoardHello, BoardId, BoardSession, BoardStats, LinkId, ObservationBatch, RunId,
    RunTally, StoreError, StoreWriter, COMMIT_FAILED,
};
use hopcap_proto::record::{LinkInfo, LinkKey, Observation};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nats_cluster::PARTITIONS;

/// Parts by (run, seq, part index): the rows' fingerprints, and how many times it came.
type Parts = BTreeMap<(i64, u64, u16), (Vec<u64>, u32)>;

/// A store that keeps each batch part once, as scaled mode's stores must, and remembers
/// which partition consumer handed it each row.
#[derive(Default)]
struct Recorder {
    parts: Mutex<Parts>,
    /// (run, seq) → the row positions its parts said.
    positions: Mutex<BTreeMap<(i64, u64), Vec<u32>>>,
    hellos: AtomicU64,
    links: AtomicU64,
    tallies: Mutex<Vec<RunTally>>,
}

impl StoreWriter for Recorder {
    fn hello(&self, _: BoardHello) -> Result<BoardSession, StoreError> {
        self.hellos.fetch_add(1, Ordering::Relaxed);
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
        links: Vec<LinkInfo>,
        _: bool,
    ) -> Result<Vec<(LinkKey, LinkId)>, StoreError> {
        self.links.fetch_add(links.len() as u64, Ordering::Relaxed);
        Ok(Vec::new())
    }
    fn links_removed(&self, _: BoardId, _: Vec<LinkId>) -> Result<(), StoreError> {
        Ok(())
    }
    fn batch(&self, _: ObservationBatch) -> Result<(), StoreError> {
        Err(StoreError::Refused("whole batches do not come here".into()))
    }
    fn batch_part(&self, batch: ObservationBatch, part: BatchPart) -> Result<(), StoreError> {
        let (run, seq) = (batch.run.unwrap().raw(), batch.seq.unwrap());
        let fps = batch.rows.iter().map(|(_, o)| o.fingerprint).collect();
        self.positions
            .lock()
            .unwrap()
            .entry((run, seq))
            .or_default()
            .extend(&part.rows);
        let mut parts = self.parts.lock().unwrap();
        parts.entry((run, seq, part.index)).or_insert((fps, 0)).1 += 1;
        if let Some(w) = batch.committed {
            w.fetch_max(seq + 1, Ordering::AcqRel);
        }
        Ok(())
    }
    fn stats(&self, _: BoardId, _: BoardStats) -> Result<(), StoreError> {
        Ok(())
    }
    fn tally(&self, _: RunId, tally: RunTally) -> Result<(), StoreError> {
        self.tallies.lock().unwrap().push(tally);
        Ok(())
    }
    fn disconnected(&self, _: BoardId, _: String) -> Result<(), StoreError> {
        Ok(())
    }
    fn flush(&self, _: Duration) -> bool {
        true
    }
}

/// Consumers of every partition and of the metadata, on threads, until `stop`.
struct Correlators {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Result<(), String>>>,
    counts: Vec<Arc<IntakeCounts>>,
}

impl Correlators {
    fn start(urls: &str, store: &Arc<Recorder>, which: &[Intake]) -> Correlators {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        let mut counts = Vec::new();
        for &intake in which {
            let c = Arc::new(IntakeCounts::default());
            counts.push(Arc::clone(&c));
            let (urls, store, stop) = (urls.to_string(), Arc::clone(store), Arc::clone(&stop));
            threads.push(std::thread::spawn(move || {
                consume::run(&urls, intake, 3, store, None, stop, c)
            }));
        }
        Correlators {
            stop,
            threads,
            counts,
        }
    }

    fn stop(self) -> Vec<Arc<IntakeCounts>> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().expect("consumer thread").expect("consumer");
        }
        self.counts
    }
}

fn all_intakes() -> Vec<Intake> {
    let mut v: Vec<Intake> = (0..PARTITIONS)
        .map(|k| Intake::Partition { k, of: PARTITIONS })
        .collect();
    v.push(Intake::Meta);
    v
}

/// `n` observations with spread fingerprints (no summary: each keys by its fingerprint).
fn rows(seq: u64, n: u64) -> Vec<(LinkId, Observation)> {
    (0..n)
        .map(|i| {
            let mut o = Observation::empty();
            o.fingerprint = (seq * 1000 + i).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            o.ts_ns = seq * 1_000_000 + i;
            (LinkId::from_raw(1), o)
        })
        .collect()
}

struct Agent {
    board: BoardId,
    run: RunId,
    watermark: Arc<AtomicU64>,
    sent: BTreeMap<u64, Vec<u64>>,
}

impl Agent {
    fn hello(w: &JetStreamWriter, name: &str) -> Agent {
        let s = w
            .hello(BoardHello {
                name: name.into(),
                boot_id: "b00t:1".into(),
                agent_version: "test".into(),
                capture: "ring".into(),
                remote: "127.0.0.1:1".into(),
                board_clock_ns: None,
            })
            .expect("hello");
        Agent {
            board: s.board,
            run: s.run,
            watermark: Arc::new(AtomicU64::new(0)),
            sent: BTreeMap::new(),
        }
    }

    fn send(&mut self, w: &JetStreamWriter, seq: u64, n: u64) {
        let r = rows(seq, n);
        self.sent
            .insert(seq, r.iter().map(|(_, o)| o.fingerprint).collect());
        let mut b = ObservationBatch::new(self.board, r);
        b.run = Some(self.run);
        b.seq = Some(seq);
        b.committed = Some(Arc::clone(&self.watermark));
        w.batch(b).expect("batch");
    }

    /// Waits until every batch sent is acknowledged (as the agent's ack would say).
    fn acked(&self, timeout: Duration) -> u64 {
        let want = self.sent.keys().last().map_or(0, |s| s + 1);
        let end = Instant::now() + timeout;
        loop {
            let at = self.watermark.load(Ordering::Acquire);
            assert_eq!(at & COMMIT_FAILED, 0, "a batch was given up");
            if at >= want || Instant::now() > end {
                return at;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Waits until the store holds every row sent, once per part, and checks the partitions.
fn stored_once(store: &Recorder, agent: &Agent, timeout: Duration) {
    let end = Instant::now() + timeout;
    let want: usize = agent.sent.values().map(Vec::len).sum();
    loop {
        let parts = store.parts.lock().unwrap();
        let got: usize = parts.values().map(|(f, _)| f.len()).sum();
        if got >= want || Instant::now() > end {
            let mut by_seq: HashMap<u64, Vec<u64>> = HashMap::new();
            for ((_, seq, _), (fps, _)) in parts.iter() {
                by_seq.entry(*seq).or_default().extend(fps);
            }
            for (seq, sent) in &agent.sent {
                let mut a = sent.clone();
                let mut b = by_seq.remove(seq).unwrap_or_default();
                a.sort_unstable();
                b.sort_unstable();
                assert_eq!(a, b, "batch {seq}: rows stored differ from rows sent");
            }
            assert_eq!(got, want, "rows stored once each");
            return;
        }
        drop(parts);
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn writer(urls: &str) -> JetStreamWriter {
    let _ = env_logger::builder().is_test(true).try_init();
    JetStreamWriter::connect(&JetStreamConfig {
        urls: urls.into(),
        partitions: PARTITIONS,
        replicas: 3,
        connect_timeout: Duration::from_secs(10),
    })
    .expect("connect")
}

#[test]
fn batches_reach_their_partitions_once() {
    let cluster = nats_cluster::Cluster::up(0);
    let store = Arc::new(Recorder::default());
    let correlators = Correlators::start(&cluster.urls, &store, &all_intakes());
    let w = writer(&cluster.urls);
    let mut agent = Agent::hello(&w, "pi1");
    for seq in 0..40 {
        agent.send(&w, seq, 50);
    }
    assert_eq!(agent.acked(Duration::from_secs(30)), 40);
    w.tally(
        agent.run,
        RunTally {
            batches: 40,
            records: 2000,
            ..Default::default()
        },
    )
    .expect("tally");
    stored_once(&store, &agent, Duration::from_secs(30));
    let counts = correlators.stop();
    // Each partition consumer got only rows whose token ingest maps to it: the servers'
    // `partition()` and ours agree.
    for (k, c) in counts.iter().take(PARTITIONS as usize).enumerate() {
        assert_eq!(c.misrouted_rows.load(Ordering::Relaxed), 0, "partition {k}");
        assert!(
            c.rows.load(Ordering::Relaxed) > 300,
            "partition {k} took its share"
        );
    }
    let rows_taken: u64 = counts.iter().map(|c| c.rows.load(Ordering::Relaxed)).sum();
    assert_eq!(rows_taken, 2000);
    assert_eq!(store.hellos.load(Ordering::Relaxed), 1);
    assert_eq!(store.tallies.lock().unwrap().len(), 1);
    // Every row keeps its place in the agent's batch, whichever part carried it.
    for ((_, seq), positions) in store.positions.lock().unwrap().iter_mut() {
        positions.sort_unstable();
        assert_eq!(*positions, (0..50).collect::<Vec<u32>>(), "batch {seq}");
    }
    // A part is one partition's rows.
    for ((_, seq, part), (fps, times)) in store.parts.lock().unwrap().iter() {
        assert_eq!(*times, 1, "batch {seq} part {part} delivered again");
        let ks: Vec<u32> = fps
            .iter()
            .map(|&fp| {
                let mut o = Observation::empty();
                o.fingerprint = fp;
                partition(token(&o).as_str(), PARTITIONS)
            })
            .collect();
        assert!(
            ks.windows(2).all(|p| p[0] == p[1]),
            "batch {seq} part {part}"
        );
    }
}

#[test]
fn a_reconnecting_agent_resends_and_nothing_is_stored_twice() {
    let cluster = nats_cluster::Cluster::up(1);
    let store = Arc::new(Recorder::default());
    let w = writer(&cluster.urls);
    let mut agent = Agent::hello(&w, "pi2");
    for seq in 0..10 {
        agent.send(&w, seq, 20);
    }
    assert_eq!(agent.acked(Duration::from_secs(30)), 10);
    // The agent reconnects (to another ingest node) before it saw the acks, and sends its
    // last five batches again: JetStream keeps each part once (same message ids).
    let other = writer(&cluster.urls);
    let mut again = Agent::hello(&other, "pi2");
    assert_eq!(
        again.run, agent.run,
        "the run's id is the same on every node"
    );
    for seq in 5..10 {
        again.send(&other, seq, 20);
    }
    assert_eq!(again.acked(Duration::from_secs(30)), 10);
    let correlators = Correlators::start(&cluster.urls, &store, &all_intakes());
    stored_once(&store, &agent, Duration::from_secs(30));
    correlators.stop();
    assert!(store.parts.lock().unwrap().values().all(|(_, n)| *n == 1));
    // The runs bucket told the second hello how far the run got (written every 200 ms).
    std::thread::sleep(Duration::from_millis(600));
    let third = writer(&cluster.urls);
    let s = third
        .hello(BoardHello {
            name: "pi2".into(),
            boot_id: "b00t:1".into(),
            agent_version: "test".into(),
            capture: "ring".into(),
            remote: "127.0.0.1:2".into(),
            board_clock_ns: None,
        })
        .expect("hello");
    assert_eq!(s.last_seq, Some(9));
}

#[test]
fn a_nats_node_killed_mid_run_loses_nothing() {
    let cluster = nats_cluster::Cluster::up(2);
    let store = Arc::new(Recorder::default());
    let correlators = Correlators::start(&cluster.urls, &store, &all_intakes());
    let w = writer(&cluster.urls);
    let mut agent = Agent::hello(&w, "pi3");
    for seq in 0..30 {
        agent.send(&w, seq, 40);
    }
    cluster.node("kill", 1);
    for seq in 30..60 {
        agent.send(&w, seq, 40);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(agent.acked(Duration::from_secs(60)), 60);
    cluster.node("start", 1);
    stored_once(&store, &agent, Duration::from_secs(60));
    correlators.stop();
}

#[test]
fn a_correlator_killed_mid_run_is_redelivered_to_its_successor() {
    let cluster = nats_cluster::Cluster::up(3);
    let store = Arc::new(Recorder::default());
    let w = writer(&cluster.urls);
    let mut agent = Agent::hello(&w, "pi4");
    let first = Correlators::start(&cluster.urls, &store, &all_intakes());
    for seq in 0..20 {
        agent.send(&w, seq, 40);
    }
    first.stop();
    for seq in 20..40 {
        agent.send(&w, seq, 40);
    }
    assert_eq!(agent.acked(Duration::from_secs(30)), 40);
    let second = Correlators::start(&cluster.urls, &store, &all_intakes());
    stored_once(&store, &agent, Duration::from_secs(30));
    second.stop();
}

#[test]
fn an_unreachable_cluster_is_a_clear_error() {
    let err = JetStreamWriter::connect(&JetStreamConfig {
        urls: "nats://127.0.0.1:1".into(),
        partitions: 3,
        replicas: 3,
        connect_timeout: Duration::from_secs(2),
    })
    .expect_err("nothing listens on port 1");
    assert!(err.contains("127.0.0.1:1"), "{err}");
}

//! Scaled mode with 100 simulated agents: real agent frames over loopback TCP into two
//! ingest nodes (each an ingest server whose store is a JetStreamWriter), a 3-node NATS
//! JetStream cluster with 3 partitions, two correlators (partitions 0 and 2 with the boards'
//! metadata, and partition 1) storing into two ClickHouse shards and building the journeys.
//! Every batch each agent saw acknowledged must be stored once, every board's delivery must
//! reconcile, and every stored row must be in one built journey. Prints the observations/s
//! end to end (a figure, not an assert).

mod ch_shards;
mod nats_cluster;
mod wire;

use ch_shards::Shards;
use hopcap_collector::ingest::ack::ACK_MAX_LEN;
use hopcap_collector::ingest::{IngestConfig, Server, TcpListen};
use hopcap_collector::scale::consume::{self, Intake, IntakeCounts, JourneyBuilding};
use hopcap_collector::scale::publish::{JetStreamConfig, JetStreamWriter};
use hopcap_collector::store::clickhouse::{
    ClickhouseHandle, ClickhouseJourneys, ClickhouseReader, WriterConfig,
};
use hopcap_collector::store::{StoreReader, StoreWriter};
use hopcap_proto::batch::BatchEncoder;
use hopcap_proto::frame::parse_ack;
use hopcap_proto::message::{Bye, Message, Tally};
use hopcap_proto::record::LinkInfo;
use hopcap_testkit::{veth, SampleGen};
use nats_cluster::{Cluster, PARTITIONS};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wire::{closed_by_collector, connect, frame, hello, links_of};

const AGENTS: u64 = 100;
const BATCHES: usize = 10;
/// 100 packets × 3 hops a batch.
const ROWS: usize = 300;

/// Sends `batches` batches and waits until the last is acknowledged.
fn send_batches(s: &mut TcpStream, enc: &mut BatchEncoder, g: &mut SampleGen, batches: usize) {
    for _ in 0..batches {
        for _ in 0..100 {
            for o in g.packet(&[0, 1, 2], 3) {
                enc.push(&o).expect("a 300-record batch fits");
            }
        }
        let bytes = enc.finish().to_vec();
        s.write_all(&frame(&Message::Batch(&bytes))).unwrap();
    }
    let want = batches as u64 - 1;
    let mut buf = Vec::new();
    loop {
        let mut b = [0u8; ACK_MAX_LEN];
        let n = s.read(&mut b).expect("an acknowledgement");
        assert!(n > 0, "closed before acknowledging");
        buf.extend_from_slice(&b[..n]);
        while let Some((used, seq)) = parse_ack(&buf).unwrap() {
            buf.drain(..used);
            if seq == want {
                return;
            }
        }
    }
}

#[test]
fn a_hundred_agents_through_two_ingest_nodes_are_stored_once() {
    let nats = Cluster::up(7);
    let ch = Shards::up("fleet", 2);
    let store = ClickhouseHandle::start(&ch.spec(), WriterConfig::default(), 256).unwrap();
    let writer: Arc<dyn StoreWriter> = Arc::new(store.writer());
    let stop = Arc::new(AtomicBool::new(false));
    let correlators: Vec<_> = [
        vec![
            Intake::Partition {
                k: 0,
                of: PARTITIONS,
            },
            Intake::Partition {
                k: 2,
                of: PARTITIONS,
            },
            Intake::Meta,
        ],
        vec![Intake::Partition {
            k: 1,
            of: PARTITIONS,
        }],
    ]
    .into_iter()
    .flatten()
    .map(|intake| {
        let (urls, w, stop) = (nats.urls.clone(), Arc::clone(&writer), Arc::clone(&stop));
        let building = match intake {
            Intake::Partition { .. } => Some(JourneyBuilding {
                journeys: Box::new(ClickhouseJourneys::open(&ch.spec()).unwrap()),
                reader: Box::new(ClickhouseReader::open(&ch.spec()).unwrap()),
                settle: Duration::from_secs(2),
                replicas: 3,
            }),
            Intake::Meta => None,
        };
        std::thread::spawn(move || {
            consume::run(
                &urls,
                intake,
                3,
                w,
                building,
                stop,
                Arc::new(IntakeCounts::default()),
            )
        })
    })
    .collect();
    let ingest: Vec<Server> = (0..2)
        .map(|_| {
            let js = JetStreamWriter::connect(&JetStreamConfig {
                urls: nats.urls.clone(),
                partitions: PARTITIONS,
                replicas: 3,
                connect_timeout: Duration::from_secs(10),
            })
            .expect("connect to NATS");
            Server::start(
                Box::new(TcpListen::new(TcpListener::bind("127.0.0.1:0").unwrap()).unwrap()),
                Arc::new(js),
                IngestConfig::default(),
            )
            .unwrap()
        })
        .collect();
    let addrs: Vec<_> = ingest.iter().map(Server::local_addr).collect();
    let start = Instant::now();
    let agents: Vec<_> = (0..AGENTS)
        .map(|i| {
            let addr = addrs[i as usize % addrs.len()];
            std::thread::spawn(move || {
                let name = format!("pi{i:03}");
                let mut enc = Box::new(BatchEncoder::new(&name, 64 * 1024));
                let mut g = SampleGen::new(i + 1, 1_795_694_400_000_000_000 + i * 1_000);
                let mut s = connect(addr);
                let links: Vec<LinkInfo> =
                    (0..4).map(|k| veth(k, "", &format!("veth{k}"))).collect();
                s.write_all(&[hello(&name), links_of(&links, true)].concat())
                    .unwrap();
                send_batches(&mut s, &mut enc, &mut g, BATCHES);
                // What the agent says it made, reconciled with what was stored.
                let tally = Tally {
                    batches: BATCHES as u64,
                    records: (BATCHES * ROWS) as u64,
                    ..Tally::default()
                };
                s.write_all(&frame(&Message::Tally(tally))).unwrap();
                s.write_all(&frame(&Message::Bye(Bye {
                    batches_sent: BATCHES as u64,
                })))
                .unwrap();
                assert!(closed_by_collector(&mut s));
            })
        })
        .collect();
    for a in agents {
        a.join().expect("agent");
    }
    let acked = start.elapsed();
    let total = AGENTS as i64 * (BATCHES * ROWS) as i64;
    let reader = ClickhouseReader::open(&ch.spec()).unwrap();
    let end = Instant::now() + Duration::from_secs(120);
    let mut boards = reader.boards().unwrap();
    loop {
        let stored: i64 = boards.iter().map(|b| b.stored).sum();
        let seen: i64 = boards.iter().map(|b| b.seen).sum();
        if (stored >= total && seen >= total && boards.len() == AGENTS as usize)
            || Instant::now() > end
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        boards = reader.boards().unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "{AGENTS} agents, 2 ingest nodes, {PARTITIONS} partitions, 2 correlators, 2 shards: \
         {total} observations acknowledged in {:.2} s, stored in {secs:.2} s: {:.0} obs/s end to end",
        acked.as_secs_f64(),
        total as f64 / secs
    );
    assert_eq!(boards.len(), AGENTS as usize);
    for b in &boards {
        assert_eq!(
            (
                b.batches,
                b.observations,
                b.lost_batches,
                b.seen,
                b.lost_in_transit
            ),
            (
                BATCHES as i64,
                (BATCHES * ROWS) as i64,
                0,
                (BATCHES * ROWS) as i64,
                0
            ),
            "board {}",
            b.name
        );
        assert_eq!(b.links_present, 4, "board {}", b.name);
    }
    // Every stored row in one journey the correlators built.
    let count = |sql: &str| -> i64 { ch.sql(0, sql).trim().parse().unwrap_or(-1) };
    let rows_in_journeys = "SELECT uniqExact(run, seq, row) FROM hopcap.journey_rows";
    let mut built = count(rows_in_journeys);
    while built < total && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(200));
        built = count(rows_in_journeys);
    }
    let built_secs = start.elapsed().as_secs_f64();
    let journeys = count("SELECT uniqExact(id) FROM hopcap.journeys");
    eprintln!(
        "journeys: {journeys} built from {built} rows in {built_secs:.2} s from the start: \
         {:.0} obs/s end to end",
        built as f64 / built_secs
    );
    assert_eq!(built, total, "stored rows in built journeys");
    assert_eq!(
        count("SELECT uniqExact(run, seq, row, id) FROM hopcap.journey_rows"),
        total,
        "a row in two journeys"
    );
    // SampleGen: 100 packets of 3 hops a batch, each its own journey.
    assert_eq!(journeys, total / 3);
    for s in ingest {
        s.stop();
    }
    stop.store(true, Ordering::Relaxed);
    for c in correlators {
        c.join().expect("correlator").expect("correlator ran");
    }
    drop(writer);
    store.finish();
}

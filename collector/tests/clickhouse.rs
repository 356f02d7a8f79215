//! The ClickHouse backend against the SQLite one: the same observations written through each
//! store's writer read back the same through the query commands; a batch written twice reads
//! once; an unreachable server is a clear error; journeys stored by correlators read back once,
//! on their fingerprint's shard. Each test starts its own two shards (scripts/clickhouse.sh).

mod ch_shards;

use ch_shards::Shards;
use hopcap_collector::store::clickhouse::{
    ClickhouseHandle, ClickhouseJourneys, ClickhouseReader, WriterConfig,
};
use hopcap_collector::store::sqlite::writer::WriterConfig as SqliteConfig;
use hopcap_collector::store::sqlite::{open_for_writing, WriterHandle};
use hopcap_collector::store::{
    BatchPart, BoardHello, BoardStats, FrameBytes, JourneyStore, LinkId, ObservationBatch, RowKey,
    RunId, RunTally, StoreError, StoreReader, StoreWriter, StoredJourney, TimelineQuery,
};
use hopcap_proto::message::{ClockStep, ClockSync, GaveUp};
use hopcap_proto::record::Observation;
use hopcap_testkit::{veth, SampleGen, ScratchDir};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_hopcap-collector");
/// 2026-11-26T12:00:00Z
const T0: u64 = 1_795_694_400_000_000_000;

fn hello(name: &str) -> BoardHello {
    BoardHello {
        name: name.into(),
        boot_id: format!("boot-{name}:1"),
        agent_version: "test".into(),
        capture: "ring, snaplen 192, sample 1/1".into(),
        remote: format!("127.0.0.1:{}", name.len()),
        board_clock_ns: Some(T0 as i64),
    }
}

/// Two boards; each packet crosses pi1 (eth0, then web:eth0) and then pi2 (eth0, cni0).
/// pi1's batches: #2 sent twice, #3 lost in transit, #5 given up in the agent's queue; pi2's
/// run steps its clock before batch #2; some frames carry bytes; pi2 disconnects.
fn feed(w: &dyn StoreWriter) {
    let mut sessions = Vec::new();
    for name in ["pi1", "pi2"] {
        let s = w.hello(hello(name)).unwrap();
        let links = if name == "pi1" {
            vec![veth(0, "", "eth0"), veth(1, "web", "eth0")]
        } else {
            vec![veth(0, "", "eth0"), veth(1, "", "cni0")]
        };
        let ids = w.links(s.board, links, true).unwrap();
        sessions.push((s, ids));
    }
    let mut g = SampleGen::new(3, T0);
    let mut per_board: [Vec<Vec<(LinkId, Observation)>>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..7 {
        let mut batch: [Vec<(LinkId, Observation)>; 2] = [Vec::new(), Vec::new()];
        for _ in 0..20 {
            for (hop, o) in g.packet(&[0, 1, 2, 3], 4).into_iter().enumerate() {
                let board = hop / 2;
                let link = sessions[board].1[hop % 2].1;
                batch[board].push((link, o));
            }
        }
        for b in 0..2 {
            per_board[b].push(std::mem::take(&mut batch[b]));
        }
    }
    let acked = Arc::new(AtomicU64::new(0));
    let mut records = [0u64; 2];
    for (b, batches) in per_board.iter().enumerate() {
        let (s, _) = &sessions[b];
        for (seq, rows) in batches.iter().enumerate() {
            records[b] += rows.len() as u64;
            let seq = seq as u64;
            if b == 0 && (seq == 3 || seq == 5) {
                continue;
            }
            let sends = if b == 0 && seq == 2 { 2 } else { 1 };
            for _ in 0..sends {
                let mut frames = FrameBytes::default();
                if seq == 1 {
                    for (i, _) in rows.iter().enumerate() {
                        frames.push(&[seq as u8, i as u8, 0xab]);
                    }
                }
                w.batch(ObservationBatch {
                    run: Some(s.run),
                    seq: Some(seq),
                    lost_batches: u64::from(b == 0 && seq == 4),
                    frames,
                    committed: Some(Arc::clone(&acked)),
                    ..ObservationBatch::new(s.board, rows.clone())
                })
                .unwrap();
            }
            if b == 1 && seq == 3 {
                assert!(w.flush(Duration::from_secs(30)));
                w.tally(
                    s.run,
                    RunTally {
                        batches: 4,
                        records: records[1],
                        gave_up: Vec::new(),
                        clock_steps: vec![ClockStep {
                            first_batch: 2,
                            delta_ns: 1_500,
                            at_ns: T0 + 1,
                        }],
                    },
                )
                .unwrap();
                assert!(w.flush(Duration::from_secs(30)));
            }
        }
        w.stats(
            s.board,
            BoardStats {
                kernel_packets: 1000,
                kernel_drops: 3 + b as u64,
                queue_drops: 20,
                clock: ClockSync {
                    synced: Some(b == 0),
                    max_error_us: 250,
                },
            },
        )
        .unwrap();
    }
    let pi1 = &sessions[0].0;
    w.tally(
        pi1.run,
        RunTally {
            batches: 7,
            records: records[0],
            gave_up: vec![GaveUp {
                first: 5,
                last: 5,
                records: 20 * 2,
            }],
            clock_steps: Vec::new(),
        },
    )
    .unwrap();
    w.disconnected(sessions[1].0.board, hello("pi2").remote)
        .unwrap();
    assert!(w.flush(Duration::from_secs(30)));
    assert_eq!(acked.load(Ordering::Relaxed) >> 63, 0, "nothing failed");
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// `boards --json` without what depends on when each store wrote (times, ids).
fn delivery(json: &str) -> Vec<serde_json::Value> {
    json.lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            let o = v.as_object_mut().unwrap();
            for k in ["first_seen", "last_seen", "id", "hello_clock_offset_ns"] {
                o.remove(k);
            }
            v
        })
        .collect()
}

fn fill_sqlite(dir: &ScratchDir) -> String {
    let db = dir.join("same.db");
    let w =
        WriterHandle::spawn(open_for_writing(&db).unwrap(), SqliteConfig::default(), 64).unwrap();
    feed(&w.writer());
    w.finish();
    db.to_str().unwrap().to_string()
}

fn fill_clickhouse(ch: &Shards) {
    let w = ClickhouseHandle::start(&ch.spec(), WriterConfig::default(), 64).unwrap();
    feed(&w.writer());
    w.finish();
}

#[test]
fn same_observations_read_the_same_from_sqlite_and_two_shards() {
    let dir = ScratchDir::new("ch-diff").unwrap();
    let db = fill_sqlite(&dir);
    let ch = Shards::up("diff", 2);
    fill_clickhouse(&ch);
    let spec = ch.spec();
    // Both shards hold rows: the packets spread by fingerprint.
    for i in 0..2 {
        let n: u64 = ch
            .sql(i, "SELECT count() FROM hopcap.observations_local")
            .trim()
            .parse()
            .unwrap();
        assert!(n > 0, "shard {i} is empty");
    }
    for args in [
        &["timeline"][..],
        &["timeline", "--board", "pi2", "--limit", "30"],
        &["timeline", "--link", "pi1:web:eth0"],
        &["paths"],
        &["paths", "--json"],
        &["flows"],
        &["flows", "--json"],
        &["links", "--all"],
        &["links", "--json"],
        &["diagram", "--format", "dot"],
        &["diagram", "--format", "mermaid"],
    ] {
        let sqlite = stdout(&run(&[args, &["--db", &db]].concat()));
        let clickhouse = stdout(&run(&[args, &["--clickhouse", &spec]].concat()));
        assert!(!sqlite.is_empty(), "{args:?} printed nothing");
        assert_eq!(sqlite, clickhouse, "{args:?} differs");
    }
    let sqlite = delivery(&stdout(&run(&["boards", "--json", "--db", &db])));
    let clickhouse = delivery(&stdout(&run(&["boards", "--json", "--clickhouse", &spec])));
    assert_eq!(sqlite, clickhouse);
    // The delivery ledger as fed: pi1 lost #3 in transit and #5 in its queue.
    let pi1 = &clickhouse[0];
    assert_eq!(pi1["lost_in_transit"], 40, "{pi1}");
    assert_eq!(pi1["queue_drops"], 40, "{pi1}");
    // The page holds times of its own making: it is made, with both boards.
    let page = dir.join("report.html");
    stdout(&run(&[
        "report",
        "--clickhouse",
        &spec,
        "--html",
        page.to_str().unwrap(),
    ]));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("pi1") && html.contains("pi2"));
    // Frames for --snap-bytes: export writes the same pcapng from both.
    let out = dir.join("a.pcapng");
    let out2 = dir.join("b.pcapng");
    stdout(&run(&[
        "export",
        "--db",
        &db,
        "--pcapng",
        out.to_str().unwrap(),
    ]));
    stdout(&run(&[
        "export",
        "--clickhouse",
        &spec,
        "--pcapng",
        out2.to_str().unwrap(),
    ]));
    assert_eq!(std::fs::read(out).unwrap(), std::fs::read(out2).unwrap());
}

#[test]
fn a_batch_written_twice_reads_back_once() {
    let ch = Shards::up("dup", 2);
    fill_clickhouse(&ch);
    let reader = ClickhouseReader::open(&ch.spec()).unwrap();
    let count = |r: &ClickhouseReader| {
        let mut n = 0;
        r.timeline(&TimelineQuery::default(), &mut |_| {
            n += 1;
            true
        })
        .unwrap();
        n
    };
    // Batch #2 of pi1 was sent twice: the writer stored it once.
    let copies = hopcap_collector::store::clickhouse::stored_copies(&reader).unwrap();
    assert!(copies.values().all(|n| *n == 40), "{copies:?}");
    let before = count(&reader);
    // Arrival order (what --follow polls): cursors only grow, and `after` resumes there.
    let mut cursors = Vec::new();
    reader
        .arrived(&TimelineQuery::default(), &mut |r| {
            cursors.push(r.cursor);
            true
        })
        .unwrap();
    assert_eq!(cursors.len(), before);
    assert!(cursors.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(reader.last_cursor().unwrap(), *cursors.last().unwrap());
    let mut after = 0;
    reader
        .arrived(
            &TimelineQuery {
                after: Some(cursors[99]),
                ..TimelineQuery::default()
            },
            &mut |_| {
                after += 1;
                true
            },
        )
        .unwrap();
    assert_eq!(after, before - 100);
    let text = stdout(&run(&["paths", "--clickhouse", &ch.spec()]));
    // A writer that crashed after writing its rows and before the ack: the agent sends the
    // batches again and they are written again (here: every row, on both shards).
    for i in 0..2 {
        ch.sql(
            i,
            "INSERT INTO hopcap.observations_local SELECT * FROM hopcap.observations_local",
        );
    }
    let copies = hopcap_collector::store::clickhouse::stored_copies(&reader).unwrap();
    assert!(copies.values().all(|n| *n == 80), "{copies:?}");
    assert_eq!(count(&reader), before, "FINAL reads each row once");
    assert_eq!(stdout(&run(&["paths", "--clickhouse", &ch.spec()])), text);
    // And a second writer given the same batches (another ingest node) stores none again.
    fill_clickhouse(&ch);
    assert_eq!(count(&reader), before);
    let boards = delivery(&stdout(&run(&[
        "boards",
        "--json",
        "--clickhouse",
        &ch.spec(),
    ])));
    assert_eq!(boards[0]["batches"], 5, "{:?}", boards[0]);
}

#[test]
fn an_unreachable_server_is_a_clear_error() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    for args in [
        &["timeline", "--clickhouse", &url][..],
        &["paths", "--json", "--clickhouse", &url],
        &["boards", "--clickhouse", &url],
        &[
            "serve",
            "--insecure",
            "--listen",
            "127.0.0.1:0",
            "--clickhouse",
            &url,
        ],
    ] {
        let o = run(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?}");
        assert!(err.contains(&url), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    // From a --config file too; a `db` there gives way to --clickhouse on the command line.
    let dir = ScratchDir::new("ch-config").unwrap();
    let config = dir.join("hopcap.toml");
    std::fs::write(&config, format!("clickhouse = \"{url}\"\n")).unwrap();
    let o = run(&["boards", "--config", config.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stderr).contains(&url));
    std::fs::write(&config, "db = \"/nonexistent/x.db\"\n").unwrap();
    let o = run(&[
        "boards",
        "--config",
        config.to_str().unwrap(),
        "--clickhouse",
        &url,
    ]);
    assert!(String::from_utf8_lossy(&o.stderr).contains(&url));
    let o = run(&["timeline", "--clickhouse", "localhost:8123"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("not an HTTP URL"));
    let o = run(&["timeline", "--db", "x.db", "--clickhouse", &url]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot be used with"));
}

#[test]
fn retention_drops_whole_days_past_the_limit() {
    let ch = Shards::up("retain", 2);
    let day_ns = 86_400 * 1_000_000_000u64;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let config = WriterConfig {
        max_age_ns: Some(day_ns as i64),
        retention_every: Duration::from_millis(100),
        ..WriterConfig::default()
    };
    let w = ClickhouseHandle::start(&ch.spec(), config, 64).unwrap();
    let writer = w.writer();
    let s = writer.hello(hello("pi1")).unwrap();
    let ids = writer
        .links(s.board, vec![veth(0, "", "eth0")], true)
        .unwrap();
    for (seq, start) in [(0, now - 3 * day_ns), (1, now)] {
        let rows = SampleGen::new(seq + 1, start)
            .packet(&[0], 1)
            .into_iter()
            .map(|o| (ids[0].1, o))
            .collect();
        writer
            .batch(ObservationBatch {
                run: Some(s.run),
                seq: Some(seq),
                ..ObservationBatch::new(s.board, rows)
            })
            .unwrap();
    }
    assert!(writer.flush(Duration::from_secs(30)));
    // A journey of each day, on each shard.
    let journeys = ClickhouseJourneys::open(&ch.spec()).unwrap();
    let old_and_new: Vec<StoredJourney> = [(0, now - 3 * day_ns), (1, now)]
        .into_iter()
        .flat_map(|(seq, first_ns)| {
            (0..2).map(move |fingerprint| journey(s.run, seq, fingerprint, first_ns, 2))
        })
        .collect();
    journeys.store_journeys(&old_and_new).unwrap();
    let reader = ClickhouseReader::open(&ch.spec()).unwrap();
    let stored = |r: &ClickhouseReader| {
        let mut ts = Vec::new();
        r.timeline(&TimelineQuery::default(), &mut |row| {
            ts.push(row.obs.ts_ns);
            true
        })
        .unwrap();
        ts
    };
    let old_members = || journeys.members_of(&[(s.run, 0)]).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    // Retention goes table by table: until the old day is gone from each.
    while (stored(&reader).len() > 1
        || journeys.journeys(0, u64::MAX).unwrap().len() > 2
        || !old_members().is_empty())
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let left = stored(&reader);
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0] >= now, "the recent row stays");
    let kept = journeys.journeys(0, u64::MAX).unwrap();
    assert_eq!(kept, old_and_new[2..], "the recent journeys stay");
    assert_eq!(old_members(), [], "the old journeys' rows went with them");
    assert_eq!(journeys.members_of(&[(s.run, 1)]).unwrap().len(), 4);
    for i in 0..2 {
        let left = ch.sql(i, "SELECT count() FROM hopcap.journey_rows_local");
        assert_eq!(
            left.trim(),
            "2",
            "shard {i}: the old journey's rows went with it"
        );
    }
    drop(writer);
    w.finish();
}

/// A journey of `members` rows of batch (`run`, `seq`), the rows told apart by
/// `fingerprint`.
fn journey(run: RunId, seq: u64, fingerprint: u64, first_ns: u64, members: u32) -> StoredJourney {
    let members: Vec<RowKey> = (0..members)
        .map(|i| RowKey {
            run,
            seq,
            row: fingerprint as u32 * 100 + i,
        })
        .collect();
    StoredJourney {
        id: StoredJourney::id_of(&members),
        partition: (fingerprint % 3) as u32,
        first_ns,
        fingerprint,
        members,
        body: format!("journey {fingerprint} of batch {seq}").into_bytes(),
    }
}

#[test]
fn journeys_stored_twice_read_back_once_from_their_shards() {
    let ch = Shards::up("journeys", 2);
    let store = ClickhouseJourneys::open(&ch.spec()).unwrap();
    let run = RunId::from_raw(-77);
    let other_run = RunId::from_raw(78);
    // Batches 0..3 of `run`, each with a journey on each shard (fingerprint % 2), and one of
    // another run's batch 0.
    let mut all: Vec<StoredJourney> = (0..6u64)
        .map(|k| journey(run, k / 2, 100 + k, T0 + (5 - k) * 1_000, 3 + k as u32))
        .collect();
    all.push(journey(other_run, 0, 7, T0 + 500, 2));
    store.store_journeys(&[]).unwrap();
    store.store_journeys(&all).unwrap();
    // Again, the way a correlator that restarted before its ack does, in another order.
    let mut again = all.clone();
    again.reverse();
    store.store_journeys(&again).unwrap();
    for i in 0..2 {
        let wrong = ch.sql(
            i,
            &format!("SELECT count() FROM hopcap.journeys_local WHERE fingerprint % 2 != {i}"),
        );
        assert_eq!(wrong.trim(), "0", "shard {i} holds only its journeys");
        let strays = ch.sql(
            i,
            "SELECT count() FROM hopcap.journey_rows_local \
             WHERE id NOT IN (SELECT id FROM hopcap.journeys_local)",
        );
        assert_eq!(
            strays.trim(),
            "0",
            "shard {i}: rows are on their journey's shard"
        );
        let rows = ch.sql(i, "SELECT count() FROM hopcap.journey_rows_local FINAL");
        let expected: usize = all
            .iter()
            .filter(|j| j.fingerprint % 2 == i as u64)
            .map(|j| j.members.len())
            .sum();
        assert_eq!(rows.trim(), expected.to_string(), "shard {i}");
    }

    let mut expected = all.clone();
    expected.sort_by_key(|j| (j.first_ns, j.id));
    for j in &mut expected {
        j.members.sort();
    }
    let back = store.journeys(0, u64::MAX).unwrap();
    assert_eq!(back, expected, "each journey once, fields as stored");
    // The window is [from, to).
    let window = store.journeys(T0 + 1_000, T0 + 3_000).unwrap();
    let firsts: Vec<u64> = window.iter().map(|j| j.first_ns).collect();
    assert_eq!(firsts, [T0 + 1_000, T0 + 2_000]);
    assert!(store.journeys(T0 + 10_000, u64::MAX).unwrap().is_empty());
    assert!(store.journeys(T0 + 3_000, T0).unwrap().is_empty());

    // The member rows of the batches asked, and only those.
    let members_of_batches = |batches: &[(RunId, u64)]| -> Vec<RowKey> {
        let mut keys: Vec<RowKey> = all
            .iter()
            .flat_map(|j| j.members.iter().copied())
            .filter(|m| batches.contains(&(m.run, m.seq)))
            .collect();
        keys.sort();
        keys
    };
    for batches in [
        &[(run, 0)][..],
        &[(run, 1), (run, 2)],
        &[(other_run, 0), (run, 2), (run, 99), (RunId::from_raw(5), 0)],
        &[(run, 99)],
    ] {
        let got = store.members_of(batches).unwrap();
        assert_eq!(got, members_of_batches(batches), "{batches:?}");
    }
    assert_eq!(store.members_of(&[(run, 0)]).unwrap().len(), 3 + 4);
    assert!(store.members_of(&[]).unwrap().is_empty());
}

#[test]
fn an_unreachable_journey_store_is_a_clear_error() {
    let url = "http://127.0.0.1:9";
    let err = ClickhouseJourneys::open(url).unwrap_err();
    assert!(err.contains(url), "{err}");

    // A shard that goes down after opening: the calls that need it say which it is.
    let ch = Shards::up("journeys-down", 2);
    let store = ClickhouseJourneys::open(&ch.spec()).unwrap();
    let run = RunId::from_raw(1);
    let on_both = [journey(run, 0, 0, T0, 2), journey(run, 0, 1, T0, 2)];
    store.store_journeys(&on_both).unwrap();
    ch.kill(1);
    match store.store_journeys(&on_both) {
        Err(StoreError::Refused(why)) => assert!(why.contains(&ch.urls[1]), "{why}"),
        other => panic!("stored with a shard down: {other:?}"),
    }
    let err = store.journeys(0, u64::MAX).unwrap_err().to_string();
    assert!(err.contains(&ch.urls[1]), "{err}");
    // Read over the Distributed table: the first shard answers, naming itself.
    match store.members_of(&[(run, 0)]) {
        Err(StoreError::Refused(why)) => assert!(why.contains(&ch.urls[0]), "{why}"),
        other => panic!("members read with a shard down: {other:?}"),
    }
    // What needs only the shard still up goes on.
    store
        .store_journeys(&[journey(run, 1, 0, T0, 1)])
        .expect("the other shard still stores");
}

#[test]
fn a_batch_split_in_parts_by_two_writers_is_stored_once_whole() {
    let ch = Shards::up("parts", 2);
    let a = ClickhouseHandle::start(&ch.spec(), WriterConfig::default(), 64).unwrap();
    let b = ClickhouseHandle::start(&ch.spec(), WriterConfig::default(), 64).unwrap();
    let (wa, wb) = (a.writer(), b.writer());
    let s = wa.hello(hello("pi1")).unwrap();
    let ids = wa.links(s.board, vec![veth(0, "", "eth0")], true).unwrap();
    let rows: Vec<_> = (0..6)
        .flat_map(|_| SampleGen::new(5, T0).packet(&[0], 1))
        .map(|o| (ids[0].1, o))
        .collect();
    // Rows 0, 2, 4 through one writer, 1, 3, 5 through the other (and that part twice).
    let part = |index: u16| {
        let places: Vec<u32> = (0..6u32).filter(|r| r % 2 == u32::from(index)).collect();
        let batch = ObservationBatch {
            run: Some(s.run),
            seq: Some(0),
            ..ObservationBatch::new(
                s.board,
                places.iter().map(|r| rows[*r as usize].clone()).collect(),
            )
        };
        (
            batch,
            BatchPart {
                index,
                of: 2,
                rows: places,
            },
        )
    };
    let boards = || {
        delivery(&stdout(&run(&[
            "boards",
            "--json",
            "--clickhouse",
            &ch.spec(),
        ])))
    };
    let (batch, p) = part(0);
    wa.batch_part(batch, p).unwrap();
    assert!(wa.flush(Duration::from_secs(30)));
    assert_eq!(boards()[0]["batches"], 0, "half a batch is not a batch");
    for _ in 0..2 {
        let (batch, p) = part(1);
        wb.batch_part(batch, p).unwrap();
        assert!(wb.flush(Duration::from_secs(30)));
    }
    assert_eq!(boards()[0]["batches"], 1);
    assert_eq!(boards()[0]["observations"], 6);
    let reader = ClickhouseReader::open(&ch.spec()).unwrap();
    let copies = hopcap_collector::store::clickhouse::stored_copies(&reader).unwrap();
    assert_eq!(copies.values().sum::<u64>(), 6, "{copies:?}");
    let (bad, p) = part(0);
    let err = wa.batch_part(bad, BatchPart { index: 2, ..p }).unwrap_err();
    assert!(err.to_string().contains("part 2 of 2"), "{err}");
    drop((wa, wb));
    a.finish();
    b.finish();
}

#[test]
fn a_shard_down_holds_the_acks_until_it_is_back() {
    let ch = Shards::up("outage", 2);
    let config = WriterConfig {
        retry_every: Duration::from_millis(200),
        ..WriterConfig::default()
    };
    let w = ClickhouseHandle::start(&ch.spec(), config, 64).unwrap();
    let status = w.status();
    let writer = w.writer();
    let s = writer.hello(hello("pi1")).unwrap();
    let ids = writer
        .links(s.board, vec![veth(0, "", "eth0")], true)
        .unwrap();
    ch.kill(1);
    // Enough packets that both shards get rows.
    let mut g = SampleGen::new(9, T0);
    let rows: Vec<_> = (0..50)
        .flat_map(|_| g.packet(&[0], 1))
        .map(|o| (ids[0].1, o))
        .collect();
    let acked = Arc::new(AtomicU64::new(0));
    writer
        .batch(ObservationBatch {
            run: Some(s.run),
            seq: Some(0),
            committed: Some(Arc::clone(&acked)),
            ..ObservationBatch::new(s.board, rows)
        })
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        acked.load(Ordering::Acquire),
        0,
        "nothing acked while a shard is down"
    );
    let problem = status.problem().expect("the writer says why it waits");
    assert!(problem.contains(&ch.urls[1]), "{problem}");
    ch.restart(1);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while acked.load(Ordering::Acquire) == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(acked.load(Ordering::Acquire), 1, "acked once stored");
    assert_eq!(status.problem(), None);
    let reader = ClickhouseReader::open(&ch.spec()).unwrap();
    let mut n = 0;
    reader
        .timeline(&TimelineQuery::default(), &mut |_| {
            n += 1;
            true
        })
        .unwrap();
    assert_eq!(
        n, 50,
        "every row once, though the shard that stayed up took its rows at every try"
    );
    drop(writer);
    w.finish();
}

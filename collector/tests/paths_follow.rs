//! `paths --follow` through the command line: a database holding the first pings of the
//! flannel bed (two boards over VXLAN, pi2's clock 37 ms ahead) is followed while the rest
//! is stored through the library's writer, one ping at a time, as ingest would. Every
//! journey must be printed exactly once, with the text that a later `paths` prints for it,
//! and the follower must stop cleanly on SIGTERM.

#[path = "fill/mod.rs"]
mod fill;

use hopcap_collector::store::sqlite::command::WriteCmd;
use hopcap_collector::store::sqlite::writer::WriterConfig;
use hopcap_collector::store::sqlite::{open_for_writing, WriterHandle};
use hopcap_collector::store::{BoardSession, ObservationBatch};
use hopcap_proto::record::Observation;
use hopcap_testkit::bed::flannel_pings;
use hopcap_testkit::ScratchDir;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hopcap-collector");
const PINGS: u16 = 10;
/// Pings stored before the follower starts.
const BEFORE: u16 = 4;

/// Each board's link table.
type Links = Vec<(String, Vec<hopcap_proto::record::LinkInfo>)>;
/// Observations with their board.
type Hops = Vec<(String, Observation)>;

/// The bed's hops, by ping (request and reply).
fn pings() -> (Links, Vec<Hops>) {
    let parts = flannel_pings(PINGS).into_parts();
    let mut by_ping = vec![Vec::new(); usize::from(PINGS)];
    for (hop, pkt) in parts.hops.into_iter().zip(parts.truth) {
        by_ping[pkt / 2].push(hop);
    }
    (parts.links, by_ping)
}

/// Stores one ping's hops, a batch per board, and waits for the commit.
fn store(
    w: &WriterHandle,
    sessions: &BTreeMap<String, BoardSession>,
    hops: &[(String, Observation)],
) {
    for (board, s) in sessions {
        let rows: Vec<_> = hops
            .iter()
            .filter(|(b, _)| b == board)
            .filter_map(|(_, o)| {
                let id = s.links.iter().find(|(k, _)| *k == o.link)?.1;
                Some((id, o.clone()))
            })
            .collect();
        w.sender()
            .send(WriteCmd::Batch(ObservationBatch::new(s.board, rows)))
            .unwrap();
    }
    w.flush();
}

/// The follower's stdout, line by line, through a channel (reads never block the test).
fn lines_of(child: &mut Child) -> Receiver<String> {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Lines from `rx` until `n` have come or `deadline` passes.
fn collect(rx: &Receiver<String>, into: &mut Vec<String>, n: usize, deadline: Instant) {
    while into.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => into.push(line),
            Err(_) => break,
        }
    }
}

/// Stops the follower by its PID with SIGTERM, as systemd or Ctrl-C would.
fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the follower did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn follow_run(json: bool) {
    let dir = ScratchDir::new(if json { "follow-json" } else { "follow-text" }).unwrap();
    let db = dir.join("f.db");
    let db_s = db.to_str().unwrap().to_string();
    let (links, by_ping) = pings();
    let w =
        WriterHandle::spawn(open_for_writing(&db).unwrap(), WriterConfig::default(), 8).unwrap();
    let mut sessions = BTreeMap::new();
    for (name, table) in &links {
        sessions.insert(name.clone(), fill::hello(&w, name, table));
    }
    for hops in &by_ping[..usize::from(BEFORE)] {
        store(&w, &sessions, hops);
    }

    let mut args = vec!["paths", "--follow", "--db", &db_s, "--settle-ms", "1000"];
    if json {
        args.push("--json");
    }
    let mut child = Command::new(BIN)
        .args(&args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = lines_of(&mut child);
    let mut got = Vec::new();
    let before = 2 * usize::from(BEFORE);
    collect(
        &rx,
        &mut got,
        before,
        Instant::now() + Duration::from_secs(10),
    );
    assert_eq!(got.len(), before, "what was stored, at once: {got:#?}");

    // The rest arrives while it follows, a ping every 300 ms.
    for hops in &by_ping[usize::from(BEFORE)..] {
        store(&w, &sessions, hops);
        std::thread::sleep(Duration::from_millis(300));
    }
    let all = 2 * usize::from(PINGS);
    collect(&rx, &mut got, all, Instant::now() + Duration::from_secs(15));
    // Nothing more comes after the last settle (no journey twice).
    collect(
        &rx,
        &mut got,
        all + 1,
        Instant::now() + Duration::from_millis(1500),
    );
    let status = terminate(&mut child);
    assert!(status.success(), "SIGTERM ends it cleanly: {status:?}");
    w.finish();

    let out = Command::new(BIN)
        .args(["paths", "--db", &db_s])
        .args(json.then_some("--json"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let later: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    if json {
        // The same journeys. `journey` counts what the follower printed, and each hop's
        // `input` indexes its own correlation's rows: both differ by design.
        let strip = |line: &String| {
            let mut v: serde_json::Value =
                serde_json::from_str(line).expect("one JSON object per line");
            let number = v["journey"].take();
            for hop in v["hops"].as_array_mut().expect("hops") {
                hop.as_object_mut().unwrap().remove("input");
            }
            (v, number)
        };
        let got: Vec<_> = got.iter().map(strip).collect();
        let later: Vec<_> = later.iter().map(strip).collect();
        assert_eq!((got.len(), later.len()), (all, all));
        for (i, (g, number)) in got.iter().enumerate() {
            assert_eq!(number, &serde_json::json!(i));
            assert_eq!(
                later.iter().filter(|(l, _)| l == g).count(),
                1,
                "follower's journey {i} once in the later paths: {g}"
            );
        }
    } else {
        // `paths` ends with the clock lines, which the follower leaves out.
        assert!(later.len() > all, "{later:#?}");
        let (journeys, clock) = later.split_at(all);
        assert!(clock.iter().all(|l| l.contains("crossings")), "{clock:#?}");
        let journeys: Vec<&String> = journeys.iter().collect();
        let mut a: Vec<&String> = got.iter().collect();
        let mut b = journeys.clone();
        a.sort();
        b.sort();
        assert_eq!(a, b, "each journey once, as paths prints it");
    }
}

#[test]
fn follow_prints_each_journey_once_as_paths_does() {
    follow_run(false);
}

#[test]
fn follow_json_is_one_object_per_journey() {
    follow_run(true);
}

#[test]
fn settle_ms_needs_follow() {
    let out = Command::new(BIN)
        .args(["paths", "--settle-ms", "10"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--follow"));
}

//! Exact loss accounting, end to end (issue 11): the real agent on the Pi+Docker bed floods
//! its collector and is stopped right after the flood; the collector's `boards` must add up
//! to exactly what the agent kept, whatever the timing:
//!
//!   seen (the observations the agent kept) = stored + dropped in the agent's queue
//!                                            + lost in transit
//!
//! with `seen` equal to the agent's own "observations kept", `stored` equal to the rows in the
//! database, and the agent's summary claiming no drop that did not happen (a batch it gave up
//! after writing it is "unconfirmed", and the collector says what became of it).
//!
//! - `sigterm_right_after_a_flood`, `sigint_right_after_a_flood`: a healthy collector; nothing
//!   may be lost at all, and the agent must not log a lost connection (nor reconnect) after
//!   its own bye.
//! - `a_collector_that_commits_slowly`: every commit waits 250 ms (`--debug-commit-delay-ms`),
//!   so acks lag the writes; nothing may be counted lost.
//! - `a_slow_collector_and_a_small_queue`: the same with a 64 KiB queue, which overflows while
//!   its batches are written and wait for their acks: the case. The agent gives them
//!   up (unconfirmed, not dropped); the collector stores them and says so.
//! - `a_collector_killed_and_restarted_mid_flood`: SIGKILL while the flood runs, with a
//!   64 KiB queue that overflows while the collector is away, restarted 1 s later: batches in
//!   flight at the kill are resent or given up, and every one is accounted exactly.

mod e2e;

use e2e::agent::Summary;
use e2e::bed::{Bed, FAR};
use e2e::collector::{Collector, PATIENCE};
use e2e::pi::{self, COLLECTOR};
use e2e::{scratch, traffic};
use std::time::Duration;

const FLOOD_ID: u16 = 11;
const ECHOES: &str = "15000";

#[derive(Clone, Copy, Debug)]
struct Case {
    tag: &'static str,
    signal: &'static str,
    commit_delay_ms: u64,
    queue_kb: Option<&'static str>,
    kill_mid_flood: bool,
}

const HEALTHY: Case = Case {
    tag: "term",
    signal: "TERM",
    commit_delay_ms: 0,
    queue_kb: None,
    kill_mid_flood: false,
};

/// The reconciled figures of the one board.
#[derive(Debug)]
struct Boards {
    seen: u64,
    stored: u64,
    kernel: u64,
    queue: u64,
    transit: u64,
    lost_batches: u64,
}

/// The agent's summary, the board's figures, the rows stored, and the agent's log.
fn flood_and_stop(case: Case) -> (Summary, Boards, u64, String) {
    let dir = scratch(&format!("loss-{}", case.tag));
    let bed = Bed::pi_docker(case.tag);
    let delay = case.commit_delay_ms.to_string();
    let extra: Vec<&str> = if case.commit_delay_ms > 0 {
        vec!["--debug-commit-delay-ms", &delay]
    } else {
        vec![]
    };
    let mut collector = Collector::start_with(&bed.ns("rtr"), COLLECTOR, dir.path(), &extra);
    let mut extra = vec!["--ring-kb", "16384"];
    if let Some(q) = case.queue_kb {
        extra.extend(["--queue-kb", q]);
    }
    let agent = pi::streaming_agent(&bed, &extra, dir.path());
    pi::warm_up(&bed, &collector, &[]);
    let mut flood = traffic::ping_background(
        &bed,
        "ctr",
        FAR,
        FLOOD_ID,
        &["-q", "-f", "-c", ECHOES, "-W", "2"],
        dir.path(),
    );
    if case.kill_mid_flood {
        collector.wait_count(
            "the flood arriving",
            &format!("SELECT count(*) FROM observations WHERE icmp_id = {FLOOD_ID}"),
            4000,
        );
        collector.kill9();
        std::thread::sleep(Duration::from_secs(1));
        collector.restart();
    }
    // However it ended (a flood may lose an echo), the agent is stopped right after it.
    flood.wait(PATIENCE);
    let (summary, _) = agent.stop_with_signal(case.signal);
    // A slow collector still commits what it was sent after the agent left.
    collector.wait_stable(
        "SELECT coalesce(sum(stored_records), 0) FROM runs",
        Duration::from_millis(1500),
    );
    collector.stop();
    let boards = collector.json("boards", &[]);
    assert_eq!(boards.len(), 1, "{boards:?}");
    let b = &boards[0];
    let n = |k: &str| b[k].as_u64().unwrap_or_else(|| panic!("{k} in {b}"));
    let got = Boards {
        seen: n("seen"),
        stored: n("stored"),
        kernel: n("kernel_drops"),
        queue: n("queue_drops"),
        transit: n("lost_in_transit"),
        lost_batches: n("lost_batches"),
    };
    let rows = collector.count("SELECT count(*) FROM observations") as u64;
    eprintln!(
        "e2e loss {}: agent {summary:?}\n  collector {got:?}, {rows} rows stored",
        case.tag
    );
    let log = std::fs::read_to_string(dir.path().join("agent.err")).unwrap_or_default();
    (summary, got, rows, log)
}

/// What holds in every case.
fn exact(summary: &Summary, b: &Boards, rows: u64) {
    assert_eq!(
        b.seen, summary.kept,
        "the collector's seen = the agent's kept"
    );
    assert_eq!(
        b.stored + b.queue + b.transit,
        b.seen,
        "stored + dropped in the queue + lost in transit = seen"
    );
    assert_eq!(b.stored, rows, "stored = the rows in the database");
    assert_eq!(b.kernel, summary.kernel_drops, "kernel drops");
    assert_eq!(
        summary.records_acked + summary.records_dropped + summary.records_unconfirmed,
        summary.kept,
        "the agent's own account of what it kept"
    );
    // The agent's drops are batches never written: none can be stored.
    assert!(
        summary.records_dropped <= b.queue,
        "the agent claims {} dropped, the collector finds {} lost in the queue",
        summary.records_dropped,
        b.queue
    );
    assert!(
        summary.records_acked <= b.stored,
        "every acked record is stored"
    );
}

/// A healthy collector and a clean stop: nothing lost, one connection, no "lost" line.
fn nothing_lost(summary: &Summary, b: &Boards, log: &str) {
    assert_eq!((b.queue, b.transit, b.lost_batches), (0, 0, 0), "{b:?}");
    assert_eq!(summary.records_dropped, 0);
    assert_eq!(summary.connects, 1, "no reconnect after the bye");
    assert!(
        !log.contains("connection to collector"),
        "a lost connection was logged:\n{log}"
    );
}

#[test]
fn sigterm_right_after_a_flood() {
    let (s, b, rows, log) = flood_and_stop(HEALTHY);
    exact(&s, &b, rows);
    nothing_lost(&s, &b, &log);
}

#[test]
fn sigint_right_after_a_flood() {
    let (s, b, rows, log) = flood_and_stop(Case {
        tag: "int",
        signal: "INT",
        ..HEALTHY
    });
    exact(&s, &b, rows);
    nothing_lost(&s, &b, &log);
}

#[test]
fn a_collector_that_commits_slowly() {
    let (s, b, rows, log) = flood_and_stop(Case {
        tag: "slow",
        commit_delay_ms: 250,
        ..HEALTHY
    });
    exact(&s, &b, rows);
    nothing_lost(&s, &b, &log);
}

#[test]
fn a_slow_collector_and_a_small_queue() {
    let (s, b, rows, log) = flood_and_stop(Case {
        tag: "slowq",
        commit_delay_ms: 250,
        queue_kb: Some("64"),
        ..HEALTHY
    });
    exact(&s, &b, rows);
    assert_eq!(b.transit, 0, "{b:?}");
    assert_eq!(s.connects, 1, "no reconnect");
    assert!(!log.contains("connection to collector"), "{log}");
    assert!(
        s.records_unconfirmed + s.records_dropped > 0,
        "the queue did not overflow: {s:?}"
    );
}

#[test]
fn a_collector_killed_and_restarted_mid_flood() {
    let (s, b, rows, log) = flood_and_stop(Case {
        tag: "kill",
        queue_kb: Some("64"),
        kill_mid_flood: true,
        ..HEALTHY
    });
    exact(&s, &b, rows);
    // Every batch was resent, acknowledged or given up in the ledger: none unexplained.
    assert_eq!(b.transit, 0, "{b:?}");
    assert_eq!(s.connects, 2, "one reconnect, none after the bye");
    assert_eq!(log.matches("connection to collector").count(), 1, "{log}");
}

//! Scaled mode, live, on the Pi+Docker bed: inside the router's namespace a 3-node NATS
//! JetStream cluster (scripts/nats.sh, 3 partitions) and two ClickHouse shards; two ingest
//! nodes (`serve --nats`) and two correlators (`correlate --partition 0/3 --partition 2/3`
//! and `--partition 1/3`) store what one agent (`--collector NODE1,NODE2`) sends. Beside it a
//! second agent streams to an embedded collector (`serve --db`). Mid-run a NATS node is
//! killed, then the agent's ingest node (it moves to the other), then a correlator (started
//! again). Every batch the scaled agent had acknowledged must be stored, once; every stored
//! row must be in one journey the correlators built; every packet both agents saw on all
//! four links must have the same journey from the embedded store, from ClickHouse's rows
//! and among the built journeys. The same on the two-board VXLAN bed, each board's agent
//! through its own ingest node.
//!
//! Root only (namespaces, AF_PACKET). Every process is ours, stopped by PID.

mod ch_shards;
mod e2e;
mod nats_cluster;

use ch_shards::Shards;
use e2e::agent::Agent;
use e2e::bed::{Bed, FAR, POD_A, POD_B};
use e2e::collector::Collector;
use e2e::pi::{self, BOARD, COLLECTOR};
use e2e::proc::Proc;
use e2e::{scratch, traffic};
use nats_cluster::Cluster;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const INGEST: &str = "192.168.43.1:7881";
const INGEST2: &str = "192.168.43.1:7882";

/// Whole journeys (`hops` links) of a store, and those both stores have, with equal hops.
fn same_whole_journeys(
    a: &BTreeMap<String, Vec<String>>,
    b: &BTreeMap<String, Vec<String>>,
    hops: usize,
) -> usize {
    let whole = |j: &BTreeMap<String, Vec<String>>| -> BTreeMap<String, Vec<String>> {
        j.iter()
            .filter(|(_, h)| h.len() == hops)
            .map(|(f, h)| (f.clone(), h.clone()))
            .collect()
    };
    let (a, b) = (whole(a), whole(b));
    let both: Vec<&String> = a.keys().filter(|f| b.contains_key(*f)).collect();
    for f in &both {
        assert_eq!(a[*f], b[*f], "journey {f}");
    }
    both.len()
}

fn correlator(rtr: &str, nats: &Cluster, ch: &str, parts: &[&str], name: &str, dir: &Path) -> Proc {
    let mut args = vec!["correlate", "--nats", &nats.urls, "--clickhouse", ch];
    for p in parts {
        args.extend(["--partition", p]);
    }
    Proc::spawn(rtr, e2e::bins::collector(), &args, name, dir)
}

/// `boards --json` of the ClickHouse store: (stored, seen, lost in transit), summed over its
/// boards.
fn delivery(ns: &str, ch: &str) -> (i64, i64, i64) {
    let out = Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(e2e::bins::collector())
        .args(["boards", "--json", "--clickhouse", ch])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .flat_map(|v| match v {
            Value::Array(a) => a,
            other => vec![other],
        })
        .fold((0, 0, 0), |(s, n, l), b| {
            let get = |k: &str| b[k].as_i64().unwrap_or(0);
            (
                s + get("stored"),
                n + get("seen"),
                l + get("lost_in_transit"),
            )
        })
}

/// [`delivery`] once `want` observations are stored, or after 60 s.
fn delivery_once_stored(ns: &str, ch: &str, want: i64) -> (i64, i64, i64) {
    let end = Instant::now() + Duration::from_secs(60);
    let mut last = delivery(ns, ch);
    while last.0 < want && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(500));
        last = delivery(ns, ch);
    }
    last
}

/// Waits (up to 60 s) until the ClickHouse store has `want` observations.
fn wait_stored(ns: &str, ch: &str, want: i64, when: &str) {
    let got = delivery_once_stored(ns, ch, want).0;
    assert!(got >= want, "{when}: {got} stored, {want} wanted");
}

/// The ClickHouse store's stored count once it has not changed for 2 s (at most 30 s).
fn stored_when_quiet(rtr: &str, ch: &str) -> i64 {
    let end = Instant::now() + Duration::from_secs(30);
    let (mut last, mut since) = (delivery(rtr, ch).0, Instant::now());
    while Instant::now() < end && since.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(250));
        let now = delivery(rtr, ch).0;
        if now != last {
            (last, since) = (now, Instant::now());
        }
    }
    last
}

#[test]
fn agents_through_nats_and_clickhouse_give_the_paths_of_the_embedded_mode() {
    let dir_db = scratch("scaled-db");
    let dir_sc = scratch("scaled-nats");
    let bed = Bed::pi_docker("s");
    let rtr = bed.ns("rtr");
    let ch = Shards::up_in(Some(&rtr), "scaled", 2);
    let spec = ch.spec();
    let nats = Cluster::up_in(Some(&rtr), 1);
    let sqlite = Collector::start(&rtr, COLLECTOR, dir_db.path());
    let mut ingest: Vec<Collector> = [INGEST, INGEST2]
        .iter()
        .map(|addr| {
            Collector::start_with(
                &rtr,
                addr,
                dir_sc.path(),
                &["--nats", &nats.urls, "--partitions", "3"],
            )
        })
        .collect();
    let mut first = correlator(&rtr, &nats, &spec, &["0/3", "2/3"], "corr-a", dir_sc.path());
    let mut second = correlator(&rtr, &nats, &spec, &["1/3"], "corr-b", dir_sc.path());
    let ctr = bed.ns("ctr");
    let into_sqlite = pi::streaming_agent(&bed, &[], dir_db.path());
    let into_nats = Agent::start(
        &bed.ns("pi"),
        &[
            "--id",
            BOARD,
            "--netns",
            &ctr,
            "--collector",
            &format!("{INGEST},{INGEST2}"),
        ],
        2,
        "agent-nats",
        dir_sc.path(),
    );
    pi::warm_up(&bed, &sqlite, &[]);
    traffic::ping(&bed, "ctr", FAR, 1001, 5, "0.05");
    // A NATS node killed mid-run (SIGKILL): the streams keep a quorum of two. The pings
    // after it are stored once the leaders are elected again (seconds).
    let before = stored_when_quiet(&rtr, &spec);
    nats.node("kill", 1);
    traffic::ping(&bed, "ctr", FAR, 1002, 5, "0.05");
    wait_stored(
        &rtr,
        &spec,
        before + 5 * 2 * 4,
        "after the NATS node's death",
    );
    // The agent's ingest node killed (SIGKILL): the agent moves to the other one and sends
    // again what was not acknowledged; the store keeps it once.
    let before = stored_when_quiet(&rtr, &spec);
    ingest[0].kill9();
    traffic::ping(&bed, "ctr", FAR, 1004, 5, "0.05");
    wait_stored(
        &rtr,
        &spec,
        before + 5 * 2 * 4,
        "after the ingest node's death",
    );
    // Then a correlator killed mid-run, and started again: what it had taken and not
    // acknowledged (rows stored, journeys not yet) comes back to it.
    let _ = second.kill();
    traffic::ping(&bed, "ctr", FAR, 1003, 5, "0.05");
    second = correlator(&rtr, &nats, &spec, &["1/3"], "corr-b2", dir_sc.path());
    let into_nats = into_nats.stop();
    into_sqlite.stop();
    // Every observation the agent had acknowledged reaches ClickHouse, once.
    let acked = into_nats.records_acked as i64;
    let last = delivery_once_stored(&rtr, &spec, acked);
    assert_eq!(last.0, acked, "stored, seen, lost in transit: {last:?}");
    assert_eq!(last.2, 0, "nothing lost in transit: {last:?}");
    let from_sqlite = e2e::collector::icmp_journeys(&rtr, &["--db", sqlite.db.to_str().unwrap()]);
    let from_scaled = e2e::collector::icmp_journeys(&rtr, &["--clickhouse", &spec]);
    let both = same_whole_journeys(&from_sqlite, &from_scaled, 4);
    eprintln!(
        "scaled: {acked} observations acknowledged, (stored, seen, lost in transit) {last:?}; \
         {both} packets on all four links in both stores"
    );
    assert!(both >= 20, "sqlite {from_sqlite:?}\nscaled {from_scaled:?}");
    // The journeys the correlators built as the rows came in: the same again, and each
    // stored row in exactly one of them.
    let built = built_journeys(&rtr, &spec, &ch, &from_sqlite, 4);
    eprintln!("scaled: {built} packets on all four links built by the correlators as embedded");
    assert!(built >= 40, "20 pings, request and reply: {built}");
    let _ = first.stop();
    let _ = second.stop();
    ingest[1].stop();
    drop(ingest);
    drop(sqlite);
}

/// `paths --built`: the journeys the correlators stored, once every stored row is in one.
/// Checks that no row is in two journeys, that the whole journeys are the embedded ones,
/// and returns how many whole journeys both have.
fn built_journeys(
    ns: &str,
    spec: &str,
    ch: &Shards,
    embedded: &BTreeMap<String, Vec<String>>,
    hops: usize,
) -> usize {
    let count = |sql: &str| -> u64 { ch.sql(0, sql).trim().parse().unwrap_or(0) };
    let rows = "SELECT count() FROM (SELECT DISTINCT run, seq, row FROM hopcap.observations)";
    let members = "SELECT uniqExact(run, seq, row) FROM hopcap.journey_rows";
    let end = Instant::now() + Duration::from_secs(60);
    let (mut stored, mut in_journeys) = (count(rows), count(members));
    while in_journeys < stored && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(500));
        (stored, in_journeys) = (count(rows), count(members));
    }
    assert_eq!(in_journeys, stored, "stored rows in built journeys");
    let memberships = count("SELECT uniqExact(run, seq, row, id) FROM hopcap.journey_rows");
    assert_eq!(memberships, in_journeys, "a row in two journeys");
    let built = e2e::collector::icmp_journeys(ns, &["--built", "--clickhouse", spec]);
    same_whole_journeys(embedded, &built, hops)
}

#[test]
fn two_boards_through_two_ingest_nodes_give_the_paths_of_the_embedded_mode() {
    const EMBEDDED: &str = "192.168.50.2:7878";
    let ingest = ["192.168.50.2:7881", "192.168.50.2:7882"];
    let dir_db = scratch("scaled2-db");
    let dir_sc = scratch("scaled2-nats");
    let bed = Bed::two_boards("s2");
    let srv = bed.ns("srv");
    let ch = Shards::up_in(Some(&srv), "scaled2", 2);
    let spec = ch.spec();
    let nats = Cluster::up_in(Some(&srv), 2);
    let sqlite = Collector::start(&srv, EMBEDDED, dir_db.path());
    let nodes: Vec<Collector> = ingest
        .iter()
        .map(|addr| {
            Collector::start_with(
                &srv,
                addr,
                dir_sc.path(),
                &["--nats", &nats.urls, "--partitions", "3"],
            )
        })
        .collect();
    let first = correlator(
        &srv,
        &nats,
        &spec,
        &["0/3", "2/3"],
        "corr2-a",
        dir_sc.path(),
    );
    let second = correlator(&srv, &nats, &spec, &["1/3"], "corr2-b", dir_sc.path());
    let mut agents = Vec::new();
    for (i, board) in ["a", "b"].into_iter().enumerate() {
        let pod = bed.ns(&format!("p{board}"));
        for (to, dir, name) in [
            (EMBEDDED, dir_db.path(), format!("agent-db-{board}")),
            (ingest[i], dir_sc.path(), format!("agent-nats-{board}")),
        ] {
            agents.push(Agent::start(
                &bed.ns(board),
                &["--id", board, "--netns", &pod, "--collector", to],
                2,
                &name,
                dir,
            ));
        }
    }
    traffic::ping_until_seen(&bed, "pa", POD_B, 4242, 10, &sqlite, &[]);
    traffic::ping(&bed, "pa", POD_B, 3001, 5, "0.05");
    traffic::ping(&bed, "pb", POD_A, 3002, 5, "0.05");
    let mut acked = 0;
    for (i, a) in agents.into_iter().enumerate() {
        let s = a.stop();
        if i % 2 == 1 {
            acked += s.records_acked as i64;
        }
    }
    let got = delivery_once_stored(&srv, &spec, acked).0;
    assert_eq!(
        got, acked,
        "observations stored of those both agents had acknowledged"
    );
    let from_sqlite = e2e::collector::icmp_journeys(&srv, &["--db", sqlite.db.to_str().unwrap()]);
    let from_scaled = e2e::collector::icmp_journeys(&srv, &["--clickhouse", &spec]);
    let both = same_whole_journeys(&from_sqlite, &from_scaled, 10);
    eprintln!("two boards: {acked} observations acknowledged and stored; {both} packets on all ten links in both stores");
    // The test's 5 pings each way, request and reply: 20, at least.
    assert!(both >= 20, "sqlite {from_sqlite:?}\nscaled {from_scaled:?}");
    // Across the boards: the correlators' clocks come from the crossings all three
    // partitions shared.
    let built = built_journeys(&srv, &spec, &ch, &from_sqlite, 10);
    eprintln!("two boards: {built} packets on all ten links built by the correlators as embedded");
    assert!(built >= 20, "{built}");
    drop((first, second, nodes, sqlite));
}

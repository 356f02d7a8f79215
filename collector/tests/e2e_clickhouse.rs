//! Live, on the Pi+Docker bed (scripts/testbed.sh `up`): two real agents on the same board
//! stream to two real collectors on the router, one storing into SQLite (`--db`), the other
//! into two ClickHouse shards (`--clickhouse`, started inside the router's namespace by
//! scripts/clickhouse.sh). Pings cross the board's four links; both stores must give the same
//! journeys (fingerprint and hops), and each board row the same delivery figures.
//!
//! Root only (namespaces, AF_PACKET). Every process is ours, stopped by PID.

mod ch_shards;
mod e2e;

use ch_shards::Shards;
use e2e::agent::Agent;
use e2e::bed::{Bed, FAR};
use e2e::collector::Collector;
use e2e::pi::{self, BOARD, COLLECTOR};
use e2e::{scratch, traffic};
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Command;

/// The second collector, beside the first on the router.
const COLLECTOR_CH: &str = "192.168.43.1:7879";

/// `paths --json --filter icmp` of a store: each journey's fingerprint and hop links.
fn journeys(rtr: &str, store: &[&str]) -> BTreeSet<String> {
    let out = Command::new("ip")
        .args(["netns", "exec", rtr])
        .arg(e2e::bins::collector())
        .args([&["paths", "--json", "--filter", "icmp"][..], store].concat())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let hops: Vec<String> = v["hops"]
                .as_array()
                .map(|h| h.iter().map(|h| h["link"].to_string()).collect())
                .unwrap_or_default();
            format!("{} {}", v["fingerprint"], hops.join(" "))
        })
        .collect()
}

#[test]
fn agents_into_clickhouse_give_the_paths_of_agents_into_sqlite() {
    let dir_db = scratch("ch-live-db");
    let dir_ch = scratch("ch-live-ch");
    let bed = Bed::pi_docker("k");
    let rtr = bed.ns("rtr");
    let ch = Shards::up_in(Some(&rtr), "live", 2);
    let spec = ch.spec();
    let sqlite = Collector::start(&rtr, COLLECTOR, dir_db.path());
    let clickhouse =
        Collector::start_with(&rtr, COLLECTOR_CH, dir_ch.path(), &["--clickhouse", &spec]);
    let ctr = bed.ns("ctr");
    let into_sqlite = pi::streaming_agent(&bed, &[], dir_db.path());
    let into_clickhouse = Agent::start(
        &bed.ns("pi"),
        &["--id", BOARD, "--netns", &ctr, "--collector", COLLECTOR_CH],
        2,
        "agent",
        dir_ch.path(),
    );
    pi::warm_up(&bed, &sqlite, &[]);
    traffic::ping(&bed, "ctr", FAR, 1001, 5, "0.05");
    // Clean stops: every batch acknowledged, so stored.
    into_sqlite.stop();
    into_clickhouse.stop();
    let from_sqlite = journeys(&rtr, &["--db", sqlite.db.to_str().unwrap()]);
    let from_clickhouse = journeys(&rtr, &["--clickhouse", &spec]);
    assert!(from_sqlite.len() >= 10, "{from_sqlite:?}");
    assert_eq!(from_sqlite, from_clickhouse);
    drop(clickhouse);
    drop(sqlite);
}

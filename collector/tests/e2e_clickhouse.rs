//! Live, on the Pi+Docker bed (scripts/testbed.sh `up`): two real agents on the same board
//! stream to two real collectors on the router, one storing into SQLite (`--db`), the other
//! into two ClickHouse shards (`--clickhouse`, started inside the router's namespace by
//! scripts/clickhouse.sh). Pings cross the board's four links; every packet both agents saw
//! on all four must have the same journey (hops in order) from both stores. (Two agents are
//! two captures: one may miss a packet the other has, e.g. while it attaches to the links;
//! the same observations giving the same output is tests/clickhouse.rs's.)
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
use std::collections::BTreeMap;

/// The second collector, beside the first on the router.
const COLLECTOR_CH: &str = "192.168.43.1:7879";

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
    let from_sqlite = e2e::collector::icmp_journeys(&rtr, &["--db", sqlite.db.to_str().unwrap()]);
    let from_clickhouse = e2e::collector::icmp_journeys(&rtr, &["--clickhouse", &spec]);
    let whole = |j: &BTreeMap<String, Vec<String>>| -> BTreeMap<String, Vec<String>> {
        j.iter()
            .filter(|(_, hops)| hops.len() == 4)
            .map(|(f, h)| (f.clone(), h.clone()))
            .collect()
    };
    let (a, b) = (whole(&from_sqlite), whole(&from_clickhouse));
    let both: Vec<&String> = a.keys().filter(|f| b.contains_key(*f)).collect();
    // The test's 5 pings, both ways, at least.
    assert!(
        both.len() >= 10,
        "sqlite {from_sqlite:?}\nclickhouse {from_clickhouse:?}"
    );
    for f in both {
        assert_eq!(a[f], b[f], "journey {f}");
    }
    drop(clickhouse);
    drop(sqlite);
}

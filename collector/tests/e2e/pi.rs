//! The Pi+Docker bed as the tests use it: the board "pi1" runs the agent (own namespace plus
//! the container's through --netns) and streams to the collector on the router; the route
//! of every packet between the container and the world, and the readiness check.

use super::bed::{Bed, CTR, FAR, WLAN};
use super::collector::{Collector, PATIENCE};
use super::flows::{Ends, Flow, Hop, L4};
use super::proc::Proc;
use super::traffic;
use std::time::{Duration, Instant};

pub const BOARD: &str = "pi1";
pub const COLLECTOR: &str = "192.168.43.1:7878";
/// The ICMP id of readiness pings: no flow of a test uses it.
pub const WARM_UP_ID: u16 = 4242;

/// The container's packets to the world: its eth0, its veth and docker0 on the board, then
/// the uplink (where MASQUERADE has rewritten them). Back: the same links the other way.
pub fn route(bed: &Bed) -> Vec<Hop> {
    let ctr = bed.ns("ctr");
    vec![
        Hop::new(BOARD, &ctr, "eth0", true),
        Hop::new(BOARD, "", "vethctr", false),
        Hop::new(BOARD, "", "docker0", false),
        Hop::new(BOARD, "", "wlan0", true),
    ]
}

/// A flow between the container and the world: `inside` as the container's side shows it
/// going out, `outside` as wlan0 shows it.
pub fn flow(bed: &Bed, name: &'static str, l4: L4, inside: Ends, outside: Ends) -> Flow {
    Flow {
        name,
        l4,
        route: route(bed),
        views: vec![inside, inside, inside, outside],
        tunnel: None,
    }
}

/// The container pinging the far host with ICMP id `id` (masqueraded at wlan0).
pub fn ping_out(bed: &Bed, name: &'static str, id: u16) -> Flow {
    flow(
        bed,
        name,
        L4::Icmp,
        Ends::icmp(CTR, FAR, id),
        Ends::icmp(WLAN, FAR, id),
    )
}

/// The collector starts, then the agents: this pings until every agent's output (the
/// collector's store, `printers`' stdout) shows a ping on all four links, so capture, kernel
/// filters and the export path all work before the test's own traffic starts.
pub fn warm_up(bed: &Bed, collector: &Collector, printers: &[&Proc]) {
    let stored = format!(
        "SELECT count(DISTINCT link) FROM observations WHERE icmp_id = {WARM_UP_ID} AND icmp_type = 8"
    );
    let give_up = Instant::now() + PATIENCE;
    loop {
        traffic::ping(bed, "ctr", FAR, WARM_UP_ID, 1, "0.2");
        std::thread::sleep(Duration::from_millis(300));
        let printed = printers.iter().all(|p| {
            let mut links: Vec<String> = super::sightings(&super::json_lines(&p.stdout()))
                .into_iter()
                .filter(|s| s.l4 == Some(L4::Icmp) && s.sport == WARM_UP_ID)
                .map(|s| s.hop.name())
                .collect();
            links.sort();
            links.dedup();
            links.len() >= 4
        });
        if printed && collector.count(&stored) >= 4 {
            return;
        }
        assert!(
            Instant::now() < give_up,
            "agents not ready after {PATIENCE:?}:\n{}",
            collector.log()
        );
    }
}

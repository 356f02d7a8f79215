//! The Pi+Docker bed as the tests use it: the board "pi1" runs the agent (own namespace plus
//! the container's through --netns) and streams to the collector on the router; the route
//! of every packet between the container and the world, and the readiness check.

use super::agent::Agent;
use super::bed::{Bed, CTR, FAR, WLAN};
use super::collector::Collector;
use super::flows::{Ends, Flow, Hop, L4};
use super::proc::Proc;
use super::traffic;

pub const BOARD: &str = "pi1";
pub const COLLECTOR: &str = "192.168.43.1:7878";
/// The ICMP id of readiness pings: no flow of a test uses it.
pub const WARM_UP_ID: u16 = 4242;

/// The board's agent streaming to the collector: its own namespace and the container's,
/// with `extra` flags (a ring or queue size), logging into `dir`.
pub fn streaming_agent(bed: &Bed, extra: &[&str], dir: &std::path::Path) -> Agent {
    let ctr = bed.ns("ctr");
    let mut args = vec!["--id", BOARD, "--netns", &ctr, "--collector", COLLECTOR];
    args.extend_from_slice(extra);
    Agent::start(&bed.ns("pi"), &args, 2, "agent", dir)
}

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

/// Pings from the container until the collector's store (and every printing agent's
/// stdout) shows a ping on all four links: capture, kernel filters and the export path all
/// work before the test's own traffic starts.
pub fn warm_up(bed: &Bed, collector: &Collector, printers: &[&Proc]) {
    traffic::ping_until_seen(bed, "ctr", FAR, WARM_UP_ID, 4, collector, printers);
}

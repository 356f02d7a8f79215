//! End to end on the Pi+Docker bed (scripts/testbed.sh `up`): the real hopcap-agent on the
//! board (its own namespace, and the container's through --netns) streams to the real
//! hopcap-collector on the router; traffic in both directions through the board's NAT.
//!
//!   ctr eth0 ── vethctr ─ docker0 ══(MASQUERADE out, DNAT in)══ wlan0 ── rtr eth0 (+ far host)
//!
//! - `timeline_and_paths_match_the_traffic`: the merged timeline holds exactly what a second,
//!   independent agent (`--json`, same links) saw of the test's packets (link, direction,
//!   fingerprint, length, addresses); every packet is on
//!   all four links in route order; `paths --json` gives each packet one complete journey
//!   with the right hops and NAT rewrites (SNAT at wlan0 out, DNAT for replies and the port
//!   forwards).
//! - `collector_killed_and_restarted`: SIGKILL of the collector twice (once quiet, then a
//!   flood overflows the agent's small queue; once while traffic flows): the agent reconnects
//!   and resends what was not acknowledged, nothing is stored twice, and every observation
//!   the agent kept is either stored or counted in its queue drops, which `boards` reports.
//!
//! Root only (namespaces, AF_PACKET). Every process is ours, stopped by PID.

mod e2e;

use e2e::agent::Agent;
use e2e::bed::{Bed, CTR, FAR, RTR, WLAN};
use e2e::check::{check_packet, coverage, packets};
use e2e::collector::{Collector, PATIENCE};
use e2e::flows::{Ends, Flow, Sighting, Way, L4};
use e2e::pi::{self, BOARD, COLLECTOR};
use e2e::{json_lines, scratch, sightings, traffic};
use std::collections::BTreeMap;
use std::time::Duration;

const ROUNDS: usize = 3;
const PINGS: usize = 5;
const MARKER_ID: u16 = 1009;

fn ends(src: &'static str, sport: u16, dst: &'static str, dport: u16) -> Ends {
    Ends {
        src,
        sport,
        dst,
        dport,
    }
}

/// Every conversation of the first test, by its container → world direction.
fn flows(bed: &Bed) -> Vec<Flow> {
    vec![
        pi::ping_out(bed, "ping out", 1001),
        // The router pings the container directly (a route, no NAT).
        pi::flow(
            bed,
            "ping in",
            L4::Icmp,
            Ends::icmp(CTR, RTR, 1002),
            Ends::icmp(CTR, RTR, 1002),
        ),
        pi::flow(
            bed,
            "tcp out",
            L4::Tcp,
            ends(CTR, 41001, FAR, 80),
            ends(WLAN, 41001, FAR, 80),
        ),
        pi::flow(
            bed,
            "udp out",
            L4::Udp,
            ends(CTR, 41002, FAR, 53),
            ends(WLAN, 41002, FAR, 53),
        ),
        // The port forwards 8080 → 80 (tcp, the bed's) and 5353 → 5353 (udp, added here).
        pi::flow(
            bed,
            "tcp dnat",
            L4::Tcp,
            ends(CTR, 80, RTR, 41003),
            ends(WLAN, 8080, RTR, 41003),
        ),
        pi::flow(
            bed,
            "udp dnat",
            L4::Udp,
            ends(CTR, 5353, RTR, 41004),
            ends(WLAN, 5353, RTR, 41004),
        ),
        pi::ping_out(bed, "marker", MARKER_ID),
    ]
}

/// Packets per flow and way that the traffic below must produce, at least (TCP: handshake,
/// data and close, whatever the ACKs) and exactly (ping, UDP).
fn expected(name: &str) -> (usize, bool) {
    match name {
        "ping out" | "ping in" => (PINGS, true),
        "udp out" | "udp dnat" => (ROUNDS, true),
        "tcp out" | "tcp dnat" => (ROUNDS + 2, false),
        _ => (1, true),
    }
}

#[test]
fn timeline_and_paths_match_the_traffic() {
    let dir = scratch("pi-paths");
    let bed = Bed::pi_docker("a");
    // The router reaches the container directly; a UDP port forward beside the bed's TCP one.
    bed.sh("rtr", &format!("ip route add 172.17.0.0/16 via {WLAN}"));
    bed.sh(
        "pi",
        "iptables -t nat -A PREROUTING -i wlan0 -p udp --dport 5353 -j DNAT --to-destination 172.17.0.2:5353",
    );
    let mut collector = Collector::start(&bed.ns("rtr"), COLLECTOR, dir.path());
    let ctr = bed.ns("ctr");
    let streamer = pi::streaming_agent(&bed, &[], dir.path());
    // The witness: a second agent on the same links, printing what it sees.
    let witness = Agent::start(
        &bed.ns("pi"),
        &[
            "--id",
            BOARD,
            "--netns",
            &ctr,
            "--json",
            "--filter",
            "not port 7878",
        ],
        2,
        "witness",
        dir.path(),
    );
    pi::warm_up(&bed, &collector, &[&witness.proc]);

    let d = dir.path();
    let mut servers = vec![
        traffic::server(&bed, "rtr", "tcp", FAR, 80, 1, d),
        traffic::server(&bed, "rtr", "udp", FAR, 53, ROUNDS, d),
        traffic::server(&bed, "ctr", "tcp", CTR, 80, 1, d),
        traffic::server(&bed, "ctr", "udp", CTR, 5353, ROUNDS, d),
    ];
    traffic::ping(&bed, "ctr", FAR, 1001, PINGS, "0.05");
    traffic::ping(&bed, "rtr", CTR, 1002, PINGS, "0.05");
    traffic::client(&bed, "ctr", "tcp", (FAR, 80), 41001, ROUNDS);
    traffic::client(&bed, "ctr", "udp", (FAR, 53), 41002, ROUNDS);
    traffic::client(&bed, "rtr", "tcp", (WLAN, 8080), 41003, ROUNDS);
    traffic::client(&bed, "rtr", "udp", (WLAN, 5353), 41004, ROUNDS);
    for s in &mut servers {
        assert!(s.wait(PATIENCE).success(), "{}: {}", s.name, s.stderr());
    }
    // The last packet: once its sightings are stored (and printed), everything before is.
    traffic::ping(&bed, "ctr", FAR, MARKER_ID, 1, "0.2");
    let marker = format!("SELECT count(*) FROM observations WHERE icmp_id = {MARKER_ID}");
    collector.wait_count("the marker ping", &marker, 8);
    let flows = flows(&bed);
    let marker_flow = &flows[flows.len() - 1..];
    let mut witness = witness;
    witness.proc.wait_for("the marker ping", PATIENCE, |p| {
        let seen = sightings(&json_lines(&p.stdout()));
        packets(marker_flow, &seen)
            .values()
            .map(Vec::len)
            .sum::<usize>()
            >= 8
    });
    let witness_out = json_lines(&witness.stop_with_output().1);
    let summary = streamer.stop();
    collector.stop();

    // (a) The merged timeline against the witness, and every packet on its whole route.
    let timeline = sightings(&collector.json("timeline", &[]));
    let in_store = packets(&flows, &timeline);
    let witnessed = packets(&flows, &sightings(&witness_out));
    // Not the timestamps: a frame going up from a bridge port to the bridge carries none,
    // so each capture socket stamps docker0 In with its own clock reading.
    let sorted = |m: &BTreeMap<_, Vec<Sighting>>| {
        let mut v: Vec<Sighting> = m
            .values()
            .flatten()
            .map(|s| Sighting {
                ts_ns: 0,
                ..s.clone()
            })
            .collect();
        v.sort();
        v
    };
    let (stored, seen) = (sorted(&in_store), sorted(&witnessed));
    let only_stored: Vec<_> = stored.iter().filter(|s| !seen.contains(s)).collect();
    let only_seen: Vec<_> = seen.iter().filter(|s| !stored.contains(s)).collect();
    assert!(
        only_stored.is_empty() && only_seen.is_empty() && stored.len() == seen.len(),
        "timeline {} vs witness {} observations; only in the timeline {only_stored:#?}, only \
         seen by the witness {only_seen:#?}",
        stored.len(),
        seen.len()
    );
    let mut per_way: BTreeMap<(&str, Way), usize> = BTreeMap::new();
    for ((f, fp), hops) in &in_store {
        let way =
            check_packet(&flows[*f], hops).unwrap_or_else(|e| panic!("packet {fp:016x}: {e}"));
        *per_way.entry((flows[*f].name, way)).or_default() += 1;
    }
    for f in &flows {
        let (n, exact) = expected(f.name);
        for way in [Way::Forward, Way::Back] {
            let got = per_way.get(&(f.name, way)).copied().unwrap_or(0);
            assert!(
                if exact { got == n } else { got >= n },
                "{} {way:?}: {got} packets, expected {}{n}",
                f.name,
                if exact { "" } else { "at least " }
            );
        }
    }

    // (b) One complete, correct journey per packet.
    let journeys = collector.json("paths", &[]);
    let keys: Vec<_> = in_store.keys().copied().collect();
    let cov = coverage(&flows, &keys, &journeys);
    eprintln!(
        "e2e pi-docker: {} observations of {} packets on 4 hops each; paths: {}\n  agent: {summary:?}",
        stored.len(),
        keys.len(),
        cov.summary()
    );
    assert_eq!(cov.correct, cov.packets, "{}", cov.summary());
    assert_eq!(cov.stray_journeys, 0, "{}", cov.summary());
    assert_eq!(summary.records_dropped, 0);
    assert_eq!(summary.kept, summary.records_acked);
}

#[test]
fn collector_killed_and_restarted() {
    let dir = scratch("pi-kill");
    let bed = Bed::pi_docker("k");
    let mut collector = Collector::start(&bed.ns("rtr"), COLLECTOR, dir.path());
    // A small send queue, so that a flood while the collector is away overflows it.
    let mut agent = pi::streaming_agent(&bed, &["--queue-kb", "64"], dir.path());
    pi::warm_up(&bed, &collector, &[]);
    let lost = |p: &e2e::proc::Proc| p.stderr().matches("connection to collector").count();

    // 1. Killed at a quiet moment (nothing in flight); a flood fills the agent's queue
    //    meanwhile, and it drops the oldest batches, counting their records.
    collector.wait_stable(
        "SELECT count(*) FROM observations",
        Duration::from_millis(600),
    );
    collector.kill9();
    agent
        .proc
        .wait_for("the lost connection", PATIENCE, |p| lost(p) >= 1);
    traffic::ping(&bed, "ctr", FAR, 2002, 2000, "0.001");
    collector.restart();
    agent
        .proc
        .wait_for("a reconnect", PATIENCE, |p| p.connects() >= 2);
    // The agent reports its queue drops with its next stats (every 5 s).
    collector.wait_count(
        "a stats report with the queue drops",
        "SELECT count(*) FROM stats WHERE queue_drops > 0",
        1,
    );

    // 2. Killed while traffic flows: the batch in flight may or may not have been committed
    //    before the kill; either way it is stored once. 20 pings/s stay far below the queue's
    //    budget however long the reconnect takes.
    let mut ping = traffic::ping_background(
        &bed,
        "ctr",
        FAR,
        2003,
        &["-c", "100", "-i", "0.05"],
        dir.path(),
    );
    let flowing = "SELECT count(*) FROM observations WHERE icmp_id = 2003";
    collector.wait_count("ping 2003 stored", flowing, 40);
    collector.kill9();
    agent
        .proc
        .wait_for("the lost connection", PATIENCE, |p| lost(p) >= 2);
    let replies = |p: &e2e::proc::Proc| p.stdout().matches("bytes from").count();
    let at_kill = replies(&ping);
    ping.wait_for("replies while the collector is away", PATIENCE, |p| {
        replies(p) >= at_kill + 10
    });
    collector.restart();
    agent
        .proc
        .wait_for("a reconnect", PATIENCE, |p| p.connects() >= 3);
    assert!(ping.wait(PATIENCE).success(), "ping: {}", ping.stdout());
    traffic::ping(&bed, "ctr", FAR, MARKER_ID, 1, "0.2");
    let marker = format!("SELECT count(*) FROM observations WHERE icmp_id = {MARKER_ID}");
    collector.wait_count("the marker ping", &marker, 8);
    let summary = agent.stop();
    collector.stop();

    // Nothing stored twice.
    let twice = |key: &str| {
        collector.count(&format!(
            "SELECT count(*) FROM (SELECT 1 FROM observations GROUP BY {key} HAVING count(*) > 1)"
        ))
    };
    assert_eq!(
        twice("link, fingerprint, ts_ns"),
        0,
        "observations stored twice"
    );
    assert_eq!(twice("link, fingerprint, ts_ns, agent_order"), 0);
    // Every packet of the ping that ran across the second kill, on its whole route.
    let flow = [pi::ping_out(&bed, "ping across the kill", 2003)];
    let timeline = sightings(&collector.json("timeline", &["--filter", "icmp"]));
    let mut ways: BTreeMap<Way, usize> = BTreeMap::new();
    for ((_, fp), hops) in packets(&flow, &timeline) {
        let way = check_packet(&flow[0], &hops).unwrap_or_else(|e| panic!("{fp:016x}: {e}"));
        *ways.entry(way).or_default() += 1;
    }
    assert_eq!(ways.get(&Way::Forward), Some(&100), "echo requests");
    assert_eq!(ways.get(&Way::Back), Some(&100), "echo replies");

    // The collector's accounting against the agent's own.
    let boards = collector.json("boards", &[]);
    assert_eq!(boards.len(), 1, "{boards:?}");
    let b = &boards[0];
    let stored = collector.count("SELECT count(*) FROM observations");
    let n = |k: &str| b[k].as_u64().unwrap_or_else(|| panic!("{k} in {b}"));
    eprintln!(
        "e2e collector kill: agent {summary:?}\n  stored {stored}, boards: seen {}, stored {}, \
         queue_drops {}, lost_in_transit {}, lost_batches {}, kernel_drops {}",
        n("seen"),
        n("stored"),
        n("queue_drops"),
        n("lost_in_transit"),
        n("lost_batches"),
        n("kernel_drops")
    );
    assert_eq!(summary.connects, 3, "{summary:?}");
    assert!(
        summary.records_dropped > 0,
        "the flood did not overflow the queue: {summary:?}"
    );
    let stored = stored as u64;
    assert_eq!(n("observations"), stored);
    assert_eq!(n("stored"), stored);
    assert_eq!(
        n("kernel_drops"),
        summary.kernel_drops,
        "kernel drops: collector vs agent"
    );
    assert_eq!(
        summary.kept,
        summary.records_acked + summary.records_dropped + summary.records_unconfirmed,
        "the agent accounts for every observation it kept"
    );
    // The collector's reconciliation, exact: what the agent kept is stored, lost in its queue
    // (given up and not stored), or lost in transit (never explained: none here, since every
    // batch was resent or given up).
    assert_eq!(n("seen"), summary.kept, "seen: collector vs agent");
    assert_eq!(
        n("stored") + n("queue_drops") + n("lost_in_transit"),
        n("seen")
    );
    assert_eq!(n("lost_in_transit"), 0);
    assert!(
        summary.records_acked <= stored && summary.records_dropped <= n("queue_drops"),
        "every acknowledged record stored; every record the agent calls dropped lost"
    );
    assert!(n("lost_batches") > 0, "the dropped batches show as a gap");
}

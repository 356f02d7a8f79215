//! End to end across two boards (scripts/testbed.sh `up2`): a k3s-like cluster, pods behind a
//! cni0 bridge on each board, a flannel VXLAN overlay (UDP 8472, vni 1) between the boards'
//! eth0 over a LAN, and the collector on a third host of that LAN. An agent per board (its
//! own namespace and its pod's through --netns) streams to the collector over its eth0 — the
//! same link it captures, so its own export traffic must never show.
//!
//!   pa eth0 ─ vethpa ─ a: cni0 → flannel.1 → eth0 ══ sw0 ══ b: eth0 → flannel.1 → cni0 ─ vethpb ─ pb eth0
//!
//! - `pod_to_pod_paths_cross_both_boards`: ping, TCP and UDP both ways between the pods;
//!   every packet in the merged timeline on all ten links in order, and one complete journey
//!   per packet in `paths --json` with the VXLAN tunnel 192.168.50.11 ↔ 192.168.50.12 vni 1
//!   on the eth0 hops; no observation of port 7878.
//! - `sampling_keeps_the_same_packets_on_both_boards`: `--sample 10` on both agents: the
//!   packets kept are a fraction, and each one kept has its complete path on both boards.
//! - `clock_offset_is_recovered`: agent b shifts its timestamps by 37 000 µs; `paths --json`
//!   corrects for it (its per-board clock line) within 100 µs, and the paths stay right.

mod e2e;

use e2e::agent::Agent;
use e2e::bed::{Bed, BOARD_A, BOARD_B, POD_A, POD_B};
use e2e::check::{check_packet, coverage, packets, Coverage};
use e2e::collector::{Collector, PATIENCE};
use e2e::flows::{Ends, Flow, Hop, Sighting, TunnelSpec, Way, L4};
use e2e::{scratch, sightings, traffic};
use std::collections::BTreeMap;

const COLLECTOR: &str = "192.168.50.2:7878";
/// `serve --metrics` in the collector's namespace.
const METRICS: &str = "127.0.0.1:9187";
const WARM_UP_ID: u16 = 4242;
const MARKER_ID: u16 = 3009;
const SKEW_US: i64 = 37_000;

/// A pod a → pod b packet's links, in order.
fn route(bed: &Bed) -> Vec<Hop> {
    let (pa, pb) = (bed.ns("pa"), bed.ns("pb"));
    vec![
        Hop::new("a", &pa, "eth0", true),
        Hop::new("a", "", "vethpa", false),
        Hop::new("a", "", "cni0", false),
        Hop::new("a", "", "flannel.1", true),
        Hop::new("a", "", "eth0", true),
        Hop::new("b", "", "eth0", false),
        Hop::new("b", "", "flannel.1", false),
        Hop::new("b", "", "cni0", true),
        Hop::new("b", "", "vethpb", true),
        Hop::new("b", &pb, "eth0", false),
    ]
}

/// A conversation between the pods, by its pod a → pod b direction (no NAT on the way).
fn flow(bed: &Bed, name: &'static str, l4: L4, a_to_b: Ends) -> Flow {
    let route = route(bed);
    Flow {
        name,
        l4,
        views: vec![a_to_b; route.len()],
        route,
        tunnel: Some(TunnelSpec {
            kind: "VXLAN",
            id: 1,
            src: BOARD_A,
            dst: BOARD_B,
            dst_port: 8472,
            first: 4,
            last: 5,
        }),
    }
}

fn ping_flows(bed: &Bed) -> Vec<Flow> {
    vec![
        flow(bed, "ping a→b", L4::Icmp, Ends::icmp(POD_A, POD_B, 3001)),
        flow(bed, "ping b→a", L4::Icmp, Ends::icmp(POD_A, POD_B, 3002)),
    ]
}

/// A bed, the collector on srv, and an agent per board with `extra` flags (`b_extra` on b
/// only), warmed up until a ping shows on all ten links.
struct Cluster {
    agents: Vec<Agent>,
    collector: Collector,
    bed: Bed,
    dir: hopcap_testkit::ScratchDir,
}

impl Cluster {
    fn start(tag: &str, extra: &[&str], b_extra: &[&str]) -> Cluster {
        Cluster::start_with(tag, extra, b_extra, &[])
    }

    /// With more `serve` arguments.
    fn start_with(tag: &str, extra: &[&str], b_extra: &[&str], serve: &[&str]) -> Cluster {
        let dir = scratch(&format!("two-{tag}"));
        let bed = Bed::two_boards(tag);
        let collector = Collector::start_with(&bed.ns("srv"), COLLECTOR, dir.path(), serve);
        let mut agents = Vec::new();
        for board in ["a", "b"] {
            let pod = bed.ns(&format!("p{board}"));
            let mut args = vec!["--id", board, "--netns", &pod, "--collector", COLLECTOR];
            args.extend_from_slice(extra);
            if board == "b" {
                args.extend_from_slice(b_extra);
            }
            agents.push(Agent::start(
                &bed.ns(board),
                &args,
                2,
                &format!("agent-{board}"),
                dir.path(),
            ));
        }
        traffic::ping_until_seen(&bed, "pa", POD_B, WARM_UP_ID, 10, &collector, &[]);
        Cluster {
            agents,
            collector,
            bed,
            dir,
        }
    }

    /// A marker through both boards, then both agents stopped (their summaries on stderr).
    fn finish(&mut self) {
        traffic::ping_until_seen(&self.bed, "pa", POD_B, MARKER_ID, 10, &self.collector, &[]);
        for a in self.agents.drain(..) {
            let s = a.stop();
            assert_eq!(s.records_dropped, 0, "{s:?}");
            assert_eq!(s.kept, s.records_acked, "{s:?}");
        }
        self.collector.stop();
    }

    /// Every journey of the flows, checked, with the packets of the merged timeline.
    fn coverage(
        &self,
        flows: &[Flow],
        in_order: bool,
    ) -> (Coverage, BTreeMap<(&'static str, Way), usize>) {
        let timeline = sightings(&self.collector.json("timeline", &[]));
        let in_store = packets(flows, &timeline);
        let mut per_way = BTreeMap::new();
        for ((f, fp), hops) in &in_store {
            let flow = &flows[*f];
            let way = if in_order {
                check_packet(flow, hops).unwrap_or_else(|e| panic!("packet {fp:016x}: {e}"))
            } else {
                // On skewed clocks the raw timeline is not in path order: the hops as a set.
                let mut hops: Vec<_> = hops
                    .iter()
                    .map(|s| Sighting {
                        ts_ns: 0,
                        ..s.clone()
                    })
                    .collect();
                let want = flow.expected(flow.classify(&hops[0]).expect("a packet of the flow"));
                hops.sort_by_key(|s| want.iter().position(|(h, _)| *h == s.hop));
                check_packet(flow, &hops).unwrap_or_else(|e| panic!("packet {fp:016x}: {e}"))
            };
            *per_way.entry((flow.name, way)).or_default() += 1;
        }
        let keys: Vec<_> = in_store.keys().copied().collect();
        let journeys = self.collector.json("paths", &[]);
        (coverage(flows, &keys, &journeys), per_way)
    }

    /// Board b's clock offset against a, as each journey's clock line gives it, sorted.
    fn offsets_of_b(&self) -> Vec<i64> {
        let journeys = self.collector.json("paths", &["--filter", "icmp"]);
        let mut offsets: Vec<i64> = journeys
            .iter()
            .flat_map(|j| j["clock"].as_array().cloned().unwrap_or_default())
            .filter(|c| c["board"] == "b")
            .map(|c| {
                assert_eq!(c["reference"], "a", "{c}");
                c["offset_ns"].as_i64().expect("offset_ns")
            })
            .collect();
        offsets.sort_unstable();
        offsets.dedup();
        offsets
    }
}

#[test]
fn pod_to_pod_paths_cross_both_boards() {
    let mut c = Cluster::start("p", &[], &[]);
    let (bed, d) = (&c.bed, c.dir.path().to_path_buf());
    let mut flows = ping_flows(bed);
    flows.extend([
        flow(
            bed,
            "tcp a→b",
            L4::Tcp,
            Ends {
                src: POD_A,
                sport: 42001,
                dst: POD_B,
                dport: 8000,
            },
        ),
        flow(
            bed,
            "udp a→b",
            L4::Udp,
            Ends {
                src: POD_A,
                sport: 42002,
                dst: POD_B,
                dport: 5300,
            },
        ),
        flow(
            bed,
            "tcp b→a",
            L4::Tcp,
            Ends {
                src: POD_A,
                sport: 8001,
                dst: POD_B,
                dport: 42003,
            },
        ),
        flow(
            bed,
            "udp b→a",
            L4::Udp,
            Ends {
                src: POD_A,
                sport: 5301,
                dst: POD_B,
                dport: 42004,
            },
        ),
    ]);
    let mut servers = vec![
        traffic::server(bed, "pb", "tcp", POD_B, 8000, 1, &d),
        traffic::server(bed, "pb", "udp", POD_B, 5300, 3, &d),
        traffic::server(bed, "pa", "tcp", POD_A, 8001, 1, &d),
        traffic::server(bed, "pa", "udp", POD_A, 5301, 3, &d),
    ];
    traffic::ping(bed, "pa", POD_B, 3001, 10, "0.05");
    traffic::ping(bed, "pb", POD_A, 3002, 10, "0.05");
    traffic::client(bed, "pa", "tcp", (POD_B, 8000), 42001, 3);
    traffic::client(bed, "pa", "udp", (POD_B, 5300), 42002, 3);
    traffic::client(bed, "pb", "tcp", (POD_A, 8001), 42003, 3);
    traffic::client(bed, "pb", "udp", (POD_A, 5301), 42004, 3);
    for s in &mut servers {
        assert!(s.wait(PATIENCE).success(), "{}: {}", s.name, s.stderr());
    }
    c.finish();

    let (cov, per_way) = c.coverage(&flows, true);
    let offsets = c.offsets_of_b();
    eprintln!(
        "e2e two boards: {per_way:?}\n  clock of b vs a (truly 0): {offsets:?} ns\n  paths: {}",
        cov.summary()
    );
    // Both boards read one kernel clock here: the estimate must find them together.
    assert!(
        !offsets.is_empty() && offsets.iter().all(|o| o.abs() <= 100_000),
        "offsets of b {offsets:?} ns, truly 0"
    );
    for (name, n, exact) in [
        ("ping a→b", 10, true),
        ("ping b→a", 10, true),
        ("udp a→b", 3, true),
        ("udp b→a", 3, true),
        ("tcp a→b", 5, false),
        ("tcp b→a", 5, false),
    ] {
        for way in [Way::Forward, Way::Back] {
            let got = per_way.get(&(name, way)).copied().unwrap_or(0);
            assert!(
                if exact { got == n } else { got >= n },
                "{name} {way:?}: {got} packets"
            );
        }
    }
    assert_eq!(cov.correct, cov.packets, "{}", cov.summary());
    assert_eq!(cov.stray_journeys, 0, "{}", cov.summary());
    // The agents' own export connections go out on the eth0 they capture: never seen.
    let own = "SELECT count(*) FROM observations WHERE src_port = 7878 OR dst_port = 7878";
    assert_eq!(c.collector.count(own), 0, "export traffic was captured");
    let journeys = c.collector.json("paths", &[]);
    let export_hops = journeys
        .iter()
        .flat_map(|j| j["hops"].as_array().cloned().unwrap_or_default())
        .filter(|h| h["sport"] == 7878 || h["dport"] == 7878)
        .count();
    assert_eq!(export_hops, 0);
}

#[test]
fn sampling_keeps_the_same_packets_on_both_boards() {
    let mut c = Cluster::start("s", &["--sample", "10"], &[]);
    traffic::ping(&c.bed, "pa", POD_B, 3001, 100, "0.01");
    traffic::ping(&c.bed, "pb", POD_A, 3002, 100, "0.01");
    c.finish();
    let flows = ping_flows(&c.bed);
    let (cov, per_way) = c.coverage(&flows, true);
    let kept: usize = per_way.values().sum();
    eprintln!(
        "e2e sampling 1 in 10: {kept} of 400 packets kept {per_way:?}\n  paths: {}",
        cov.summary()
    );
    assert!(
        kept > 0 && kept < 400 / 2,
        "{kept} of 400 packets kept with --sample 10"
    );
    assert_eq!(cov.correct, cov.packets, "{}", cov.summary());
    assert_eq!(cov.stray_journeys, 0, "{}", cov.summary());
}

#[test]
fn clock_offset_is_recovered() {
    let skew = SKEW_US.to_string();
    let mut c = Cluster::start_with(
        "c",
        &[],
        &["--debug-clock-offset-us", &skew],
        &["--metrics", METRICS],
    );
    traffic::ping(&c.bed, "pa", POD_B, 3001, 20, "0.02");
    traffic::ping(&c.bed, "pb", POD_A, 3002, 20, "0.02");
    // serve --metrics estimates the same offset in the background, and times the hops
    // across both boards.
    let want_s = SKEW_US as f64 / 1e6;
    let give_up = std::time::Instant::now() + PATIENCE;
    let (metric_offset, cross) = loop {
        let samples = c.collector.scrape(METRICS);
        let offset = samples.iter().find(|(n, l, _)| {
            n == "hopcap_board_clock_offset_seconds" && l["board"] == "b" && l["reference"] == "a"
        });
        let cross = samples.iter().find(|(n, l, v)| {
            n == "hopcap_hop_latency_seconds_count"
                && *v > 0.0
                && l["from"].as_str().is_some_and(|f| f.starts_with("a:"))
                && l["to"].as_str().is_some_and(|t| t.starts_with("b:"))
        });
        if let (Some(o), Some(x)) = (offset, cross) {
            break (o.2, x.1.clone());
        }
        assert!(
            std::time::Instant::now() < give_up,
            "no offset of b or no a→b hop latency in the metrics: {samples:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    eprintln!("metrics: offset of b {metric_offset} s, a cross-board pair {cross:?}");
    assert!(
        (metric_offset - want_s).abs() <= 100e-6,
        "metrics offset {metric_offset} s, want {want_s} ± 100 µs"
    );
    c.finish();
    let flows = ping_flows(&c.bed);
    let (cov, _) = c.coverage(&flows, false);
    assert_eq!(cov.correct, cov.packets, "{}", cov.summary());

    let offsets = c.offsets_of_b();
    assert!(!offsets.is_empty(), "no clock line for board b");
    let want = SKEW_US * 1000;
    let worst = offsets
        .iter()
        .map(|o| (o - want).abs())
        .max()
        .unwrap_or_default();
    eprintln!(
        "e2e clock: offset of b recovered {offsets:?} ns (per clock window), worst error \
         {worst} ns; paths: {}",
        cov.summary()
    );
    assert!(
        worst <= 100_000,
        "offsets {offsets:?}, want {want} ± 100 µs"
    );
}

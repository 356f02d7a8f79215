//! The observed topology with the traffic over it, as `diagram` and `report` draw it: one
//! node per hop place (`board:netns:link`, the name `timeline` prints and `--link` takes),
//! one edge per (from hop, to hop) that some journey took, with how many packets, their
//! latency, the NAT rewrites seen on arrival and the tunnel it ran inside. A pure function of
//! the correlator's journeys; the formats (`diagram/`) only draw it.

use super::paths::hop_name;
use crate::correlate::{tunnel_label, Fate, Journey, Report};
use std::collections::{BTreeMap, BTreeSet, HashMap};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Graph {
    /// Sorted by name.
    pub nodes: Vec<Node>,
    /// Sorted by (from name, to name).
    pub edges: Vec<Edge>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// `board:link` or `board:netns:link`.
    pub name: String,
    pub board: String,
    /// '' for the board's own namespace.
    pub netns: String,
    pub link: String,
    /// The link kind the board reported (`veth`, `bridge`, ...), if known.
    pub kind: Option<&'static str>,
    /// Journeys through this hop, and how many began here (the first one's position in the
    /// report): the layout starts from where traffic starts.
    pub seen: usize,
    pub starts: usize,
    pub first_start: Option<usize>,
    /// Journeys that vanished after this hop (the topology said they should have gone on).
    pub lost_after: usize,
    /// Of those, how many while the capture reported drops (maybe not lost at all).
    pub maybe_capture_loss: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Edge {
    /// Positions in [`Graph::nodes`].
    pub from: usize,
    pub to: usize,
    /// Packets (journeys) that went from `from` straight to `to`.
    pub packets: usize,
    /// Their latencies in ns, sorted (on the reference clock; across boards they carry the
    /// clock uncertainty below).
    pub latency_ns: Vec<i64>,
    /// Across boards: the largest clock uncertainty of the two ends, summed (None when one
    /// board's clock is not tied to the reference); Some(0) on one board.
    pub clock_uncertainty_ns: Option<u64>,
    /// Rewrites first seen at `to` coming from `from`: kind (`SNAT`, `DNAT`, `ICMP id`) →
    /// packets.
    pub nat: BTreeMap<&'static str, usize>,
    /// Tunnels both ends of the edge saw the packet in (`VXLAN vni 1 a→b`).
    pub tunnels: BTreeSet<String>,
}

impl Edge {
    pub fn p50(&self) -> Option<i64> {
        percentile(&self.latency_ns, 50)
    }
    pub fn p95(&self) -> Option<i64> {
        percentile(&self.latency_ns, 95)
    }
}

/// Nearest-rank percentile of sorted samples.
pub fn percentile(sorted: &[i64], p: u32) -> Option<i64> {
    let rank = (sorted.len() * p as usize).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// The graph of the report's journeys.
pub fn graph(report: &Report) -> Graph {
    let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
    let mut edges: BTreeMap<(String, String), Edge> = BTreeMap::new();
    for (i, j) in report.journeys.iter().enumerate() {
        add_journey(i, j, &mut nodes, &mut edges);
    }
    let index: HashMap<&str, usize> = nodes
        .keys()
        .enumerate()
        .map(|(i, k)| (k.as_str(), i))
        .collect();
    let edges = edges
        .into_iter()
        .map(|((from, to), mut e)| {
            e.from = index.get(from.as_str()).copied().unwrap_or(0);
            e.to = index.get(to.as_str()).copied().unwrap_or(0);
            e.latency_ns.sort_unstable();
            e
        })
        .collect();
    Graph {
        nodes: nodes.into_values().collect(),
        edges,
    }
}

fn add_journey(
    index: usize,
    j: &Journey,
    nodes: &mut BTreeMap<String, Node>,
    edges: &mut BTreeMap<(String, String), Edge>,
) {
    let names: Vec<String> = j.hops.iter().map(hop_name).collect();
    for (p, (h, name)) in j.hops.iter().zip(&names).enumerate() {
        let node = nodes.entry(name.clone()).or_insert_with(|| Node {
            name: name.clone(),
            board: h.hop.board.clone(),
            netns: h.netns.as_str().into(),
            link: h.link.as_str().into(),
            kind: h.kind.map(|k| k.name()),
            seen: 0,
            starts: 0,
            first_start: None,
            lost_after: 0,
            maybe_capture_loss: 0,
        });
        node.seen += 1;
        if p == 0 {
            node.starts += 1;
            node.first_start = node.first_start.or(Some(index));
        }
        if j.fate.vanished_after() == Some(p) {
            node.lost_after += 1;
            node.maybe_capture_loss += usize::from(matches!(j.fate, Fate::MaybeCaptureLoss(_)));
        }
        let Some(prev) = h.prev else { continue };
        let (Some(from), Some(ph)) = (names.get(prev), j.hops.get(prev)) else {
            continue;
        };
        let e = edges
            .entry((from.clone(), name.clone()))
            .or_insert_with(|| Edge {
                from: 0,
                to: 0,
                packets: 0,
                latency_ns: Vec::new(),
                clock_uncertainty_ns: Some(0),
                nat: BTreeMap::new(),
                tunnels: BTreeSet::new(),
            });
        e.packets += 1;
        e.latency_ns.extend(h.latency_ns);
        if ph.hop.board != h.hop.board {
            let unc = ph
                .clock_uncertainty_ns
                .zip(h.clock_uncertainty_ns)
                .map(|(a, b)| a.saturating_add(b));
            e.clock_uncertainty_ns = e.clock_uncertainty_ns.zip(unc).map(|(a, b)| a.max(b));
        }
        for n in j.nat.iter().filter(|n| n.at == p) {
            *e.nat.entry(n.kind.label()).or_insert(0) += 1;
        }
        for t in j.tunnels.iter().filter(|t| t.first <= prev && p <= t.last) {
            e.tunnels.insert(tunnel_label(&t.tunnel));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::correlate::testbed::{flannel_pings, pi_docker, Bed, BedExt, INTERNET};
    use crate::correlate::{correlate, Config};

    const T0: u64 = 1_700_000_000_000_000_000;

    fn names(g: &Graph) -> Vec<&str> {
        g.nodes.iter().map(|n| n.name.as_str()).collect()
    }

    fn edge<'g>(g: &'g Graph, from: &str, to: &str) -> &'g Edge {
        g.edges
            .iter()
            .find(|e| g.nodes[e.from].name == from && g.nodes[e.to].name == to)
            .unwrap_or_else(|| panic!("no edge {from} → {to} in {:?}", g.edges))
    }

    #[test]
    fn pi_docker_requests_and_replies_aggregate_per_hop_pair() {
        let mut bed = Bed::new();
        let pi = pi_docker(&mut bed);
        for seq in 0..10u16 {
            let t = T0 + u64::from(seq) * 1_000_000_000;
            let out = pi.request(
                &mut bed,
                2 * seq as usize,
                t,
                INTERNET,
                seq,
                [20_000 + u64::from(seq) * 1_000, 300_000, 0],
            );
            pi.reply(
                &mut bed,
                2 * seq as usize + 1,
                out + 5_000_000,
                INTERNET,
                seq,
                [0, 60_000, 20_000],
            );
        }
        let (topo, hops, _) = bed.finish();
        let g = graph(&correlate(hops, &topo, &Config::default()));
        assert_eq!(
            names(&g),
            [
                "pi1:ctr:eth0",
                "pi1:docker0",
                "pi1:vethc426d5b",
                "pi1:wlan0"
            ]
        );
        assert_eq!(g.edges.len(), 6, "three hop pairs, both ways");
        let veth = edge(&g, "pi1:ctr:eth0", "pi1:vethc426d5b");
        assert_eq!(veth.packets, 10);
        assert_eq!(veth.latency_ns.len(), 10);
        assert_eq!((veth.p50(), veth.p95()), (Some(24_000), Some(29_000)));
        assert!(veth.nat.is_empty() && veth.tunnels.is_empty());
        let out = edge(&g, "pi1:docker0", "pi1:wlan0");
        assert_eq!(out.nat.get("SNAT"), Some(&10));
        assert_eq!(out.p50(), Some(300_000));
        let back = edge(&g, "pi1:wlan0", "pi1:docker0");
        assert_eq!(back.nat.get("DNAT"), Some(&10));
        let ctr = &g.nodes[0];
        assert_eq!(
            (ctr.board.as_str(), ctr.netns.as_str(), ctr.link.as_str()),
            ("pi1", "ctr", "eth0")
        );
        assert_eq!((ctr.kind, ctr.seen, ctr.lost_after), (Some("veth"), 20, 0));
    }

    #[test]
    fn flannel_wire_edge_is_in_the_tunnel_and_crosses_clocks() {
        let g = graph(&flannel_pings(20));
        assert_eq!(g.nodes.len(), 10);
        let wire = edge(&g, "pi1:eth0", "pi2:eth0");
        assert_eq!(wire.packets, 20);
        assert_eq!(
            wire.tunnels.iter().collect::<Vec<_>>(),
            ["VXLAN vni 1 192.168.1.11→192.168.1.12"]
        );
        assert!(wire.clock_uncertainty_ns.is_some_and(|u| u > 0));
        assert!((wire.p50().unwrap() - 300_000).abs() < 50_000, "{wire:?}");
        let encap = edge(&g, "pi1:flannel.1", "pi1:eth0");
        assert!(encap.tunnels.is_empty(), "the tunnel starts at pi1:eth0");
        assert_eq!(encap.clock_uncertainty_ns, Some(0));
    }

    #[test]
    fn a_lost_journey_counts_at_its_last_hop() {
        let mut bed = Bed::new();
        let pi = pi_docker(&mut bed);
        pi.request(&mut bed, 0, T0, INTERNET, 0, [23_000, 340_000, 0]);
        let (topo, mut hops, _) = bed.finish();
        hops.retain(|h| h.obs.link != pi.wlan0.1);
        let g = graph(&correlate(hops, &topo, &Config::default()));
        let docker0 = g.nodes.iter().find(|n| n.name == "pi1:docker0").unwrap();
        assert_eq!((docker0.seen, docker0.lost_after), (1, 1));
        assert_eq!(g.edges.len(), 2);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<i64> = (1..=20).collect();
        assert_eq!(percentile(&v, 50), Some(10));
        assert_eq!(percentile(&v, 95), Some(19));
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(percentile(&[7], 95), Some(7));
    }
}

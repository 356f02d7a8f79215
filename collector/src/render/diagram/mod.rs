//! The [`Graph`](super::graph::Graph) drawn: SVG (laid out here, `layout.rs`, drawn by
//! `svg.rs`; no Graphviz needed), or Graphviz dot and Mermaid text for users who have those
//! tools. The words on nodes and edges are made once, here, so every format says the same.

pub mod dot;
pub mod layers;
pub mod layout;
pub mod mermaid;
pub mod svg;

use super::graph::{Edge, Graph, Node};
use super::paths::fmt_ns;
use super::term;
use std::io::{self, Write};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Svg,
    Dot,
    Mermaid,
}

impl Format {
    /// `svg`, `dot` or `mermaid`.
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "svg" => Some(Format::Svg),
            "dot" => Some(Format::Dot),
            "mermaid" => Some(Format::Mermaid),
            _ => None,
        }
    }
}

pub fn write(g: &Graph, format: Format, w: &mut impl Write) -> io::Result<()> {
    match format {
        Format::Svg => svg::write(g, w),
        Format::Dot => dot::write(g, w),
        Format::Mermaid => mermaid::write(g, w),
    }
}

/// Longest label line, in characters: a hostile or generated name stays one column wide.
pub const MAX_LINE: usize = 40;

/// `s` as shown (controls escaped, `term::clean`) and cut to [`MAX_LINE`] characters.
pub fn shown(s: &str) -> String {
    let clean = term::clean(s);
    if clean.chars().count() <= MAX_LINE {
        return clean.into_owned();
    }
    let mut out: String = clean.chars().take(MAX_LINE - 1).collect();
    out.push('…');
    out
}

/// `1 pkt`, `12 pkts`.
fn pkts(n: usize) -> String {
    if n == 1 {
        "1 pkt".into()
    } else {
        format!("{n} pkts")
    }
}

/// A node's lines: its name, then its kind, packets and loss: `veth · 20 pkts · lost 1`.
pub fn node_lines(n: &Node) -> Vec<String> {
    let mut second = n.kind.unwrap_or("link").to_owned();
    second.push_str(&format!(" · {}", pkts(n.seen)));
    if n.lost_after > 0 {
        second.push_str(&format!(" · lost {}", n.lost_after));
    }
    vec![shown(&n.name), second]
}

/// An edge's lines: `10 pkts`, `p50 23µs p95 29µs` (`±1.2µs` across boards, `±?` when the
/// clocks are not tied), then NAT kinds with counts and tunnels.
pub fn edge_lines(e: &Edge) -> Vec<String> {
    let mut out = vec![pkts(e.packets)];
    if let (Some(p50), Some(p95)) = (e.p50(), e.p95()) {
        let mut lat = format!("p50 {} p95 {}", fmt_ns(p50), fmt_ns(p95));
        match e.clock_uncertainty_ns {
            Some(0) => {}
            Some(u) => lat.push_str(&format!(" ±{}", fmt_ns(i64::try_from(u).unwrap_or(0)))),
            None => lat.push_str(" ±?"),
        }
        out.push(lat);
    }
    if !e.nat.is_empty() {
        let nat: Vec<String> = e.nat.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
        out.push(nat.join(", "));
    }
    out.extend(e.tunnels.iter().map(|t| shown(t)));
    out
}

#[cfg(test)]
pub(crate) mod fixture {
    //! A small hand-made graph for the format tests (byte-exact outputs): two boards, a
    //! container namespace, NAT, a tunnel, a clock not tied, and a hostile name.

    use crate::render::graph::{Edge, Graph, Node};
    use std::collections::{BTreeMap, BTreeSet};

    fn node(board: &str, netns: &str, link: &str, kind: &'static str, seen: usize) -> Node {
        Node {
            name: crate::store::link_label(board, netns, link),
            board: board.into(),
            netns: netns.into(),
            link: link.into(),
            kind: Some(kind),
            seen,
            starts: 0,
            first_start: None,
            lost_after: 0,
            maybe_capture_loss: 0,
        }
    }

    fn edge(from: usize, to: usize, lat: &[i64]) -> Edge {
        Edge {
            from,
            to,
            packets: lat.len(),
            latency_ns: lat.to_vec(),
            clock_uncertainty_ns: Some(0),
            nat: BTreeMap::new(),
            tunnels: BTreeSet::new(),
        }
    }

    pub fn graph() -> Graph {
        let mut nodes = vec![
            node("pi1", "ctr", "eth0", "veth", 3),
            node("pi1", "", "docker0", "bridge", 3),
            node("pi1", "", "wlan0", "physical", 3),
            node("pi2", "", "wlan0", "physical", 2),
        ];
        nodes[0].starts = 3;
        nodes[0].first_start = Some(0);
        nodes[2].lost_after = 1;
        let mut hostile = node("x", "", "<script>&\"'\u{1b}", "other", 1);
        hostile.name = "x:<script>alert(1)</script>&\"'\u{1b}[2J".into();
        nodes.push(hostile);
        let mut out = edge(1, 2, &[300_000, 310_000, 900_000]);
        out.nat.insert("SNAT", 3);
        let mut wire = edge(2, 3, &[1_200_000, 1_500_000]);
        wire.clock_uncertainty_ns = None;
        wire.tunnels
            .insert("VXLAN vni 1 192.168.1.11→192.168.1.12".into());
        let mut back = edge(3, 2, &[1_100_000]);
        back.clock_uncertainty_ns = Some(150_000);
        Graph {
            nodes,
            edges: vec![
                edge(0, 1, &[20_000, 23_000, 25_000]),
                out,
                wire,
                back,
                edge(4, 4, &[]),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_say_counts_latency_nat_and_tunnel() {
        let g = fixture::graph();
        assert_eq!(
            node_lines(&g.nodes[2]),
            ["pi1:wlan0", "physical · 3 pkts · lost 1"]
        );
        assert_eq!(
            edge_lines(&g.edges[1]),
            ["3 pkts", "p50 310µs p95 900µs", "SNAT ×3"]
        );
        assert_eq!(
            edge_lines(&g.edges[2]),
            [
                "2 pkts",
                "p50 1.20ms p95 1.50ms ±?",
                "VXLAN vni 1 192.168.1.11→192.168.1.12"
            ]
        );
        assert_eq!(
            edge_lines(&g.edges[3]),
            ["1 pkt", "p50 1.10ms p95 1.10ms ±150µs"]
        );
        assert_eq!(edge_lines(&g.edges[4]), ["0 pkts"]);
    }

    #[test]
    fn long_and_hostile_names_are_cut_and_shown_escaped() {
        let long = "b".repeat(100);
        let s = shown(&long);
        assert_eq!(s.chars().count(), MAX_LINE);
        assert!(s.ends_with('…'));
        assert_eq!(shown("a\x1bb"), "a\\x1bb");
    }
}

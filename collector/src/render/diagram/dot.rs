//! The graph as Graphviz dot (`dot -Tsvg`): boards as clusters, namespaces as clusters inside
//! them, left to right. Node ids are positions (`n0`), never names; every label is a quoted
//! string with `\` and `"` escaped and controls shown escaped, so a name cannot end the string
//! or add attributes.

use super::{edge_lines, node_lines, shown};
use crate::render::graph::Graph;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};

/// `lines` as one dot string: quotes and backslashes escaped, lines joined by `\n`.
fn quoted(lines: &[String]) -> String {
    let mut out = String::from("\"");
    for (i, l) in lines.iter().enumerate() {
        if i > 0 {
            out.push_str("\\n");
        }
        for c in l.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c => out.push(c),
            }
        }
    }
    out.push('"');
    out
}

pub fn to_string(g: &Graph) -> String {
    let mut out = String::from(
        "digraph hopcap {\n  rankdir=LR;\n  node [shape=box, style=\"rounded,filled\", fillcolor=\"#f1f3f4\", fontname=\"monospace\", fontsize=10];\n  edge [fontname=\"monospace\", fontsize=9];\n",
    );
    // board → netns → nodes; BTreeMap keeps the output in name order.
    let mut boards: BTreeMap<&str, BTreeMap<&str, Vec<usize>>> = BTreeMap::new();
    for (i, n) in g.nodes.iter().enumerate() {
        boards
            .entry(&n.board)
            .or_default()
            .entry(&n.netns)
            .or_default()
            .push(i);
    }
    for (b, (board, spaces)) in boards.iter().enumerate() {
        let _ = writeln!(
            out,
            "  subgraph cluster_b{b} {{\n    label={};",
            quoted(&[shown(board)])
        );
        for (s, (netns, members)) in spaces.iter().enumerate() {
            let indent = if netns.is_empty() { "    " } else { "      " };
            if !netns.is_empty() {
                let _ = writeln!(
                    out,
                    "    subgraph cluster_b{b}_{s} {{\n      label={}; style=dashed;",
                    quoted(&[format!("netns {}", shown(netns))])
                );
            }
            for &i in members {
                let n = &g.nodes[i];
                let lost = if n.lost_after > 0 { ", color=red" } else { "" };
                let _ = writeln!(
                    out,
                    "{indent}n{i} [label={}{lost}];",
                    quoted(&node_lines(n))
                );
            }
            if !netns.is_empty() {
                out.push_str("    }\n");
            }
        }
        out.push_str("  }\n");
    }
    for e in &g.edges {
        let style = if e.tunnels.is_empty() {
            ""
        } else {
            ", style=dashed, color=red"
        };
        let _ = writeln!(
            out,
            "  n{} -> n{} [label={}{style}];",
            e.from,
            e.to,
            quoted(&edge_lines(e))
        );
    }
    out.push_str("}\n");
    out
}

pub fn write(g: &Graph, w: &mut impl Write) -> io::Result<()> {
    w.write_all(to_string(g).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::diagram::fixture;

    #[test]
    fn golden() {
        let want = concat!(
            "digraph hopcap {\n",
            "  rankdir=LR;\n",
            "  node [shape=box, style=\"rounded,filled\", fillcolor=\"#f1f3f4\", fontname=\"monospace\", fontsize=10];\n",
            "  edge [fontname=\"monospace\", fontsize=9];\n",
            "  subgraph cluster_b0 {\n",
            "    label=\"pi1\";\n",
            "    n1 [label=\"pi1:docker0\\nbridge · 3 pkts\"];\n",
            "    n2 [label=\"pi1:wlan0\\nphysical · 3 pkts · lost 1\", color=red];\n",
            "    subgraph cluster_b0_1 {\n",
            "      label=\"netns ctr\"; style=dashed;\n",
            "      n0 [label=\"pi1:ctr:eth0\\nveth · 3 pkts\"];\n",
            "    }\n",
            "  }\n",
            "  subgraph cluster_b1 {\n",
            "    label=\"pi2\";\n",
            "    n3 [label=\"pi2:wlan0\\nphysical · 2 pkts\"];\n",
            "  }\n",
            "  subgraph cluster_b2 {\n",
            "    label=\"x\";\n",
            "    n4 [label=\"x:<script>alert(1)</script>&\\\"'\\\\x1b[2J\\nother · 1 pkt\"];\n",
            "  }\n",
            "  n0 -> n1 [label=\"3 pkts\\np50 23µs p95 25µs\"];\n",
            "  n1 -> n2 [label=\"3 pkts\\np50 310µs p95 900µs\\nSNAT ×3\"];\n",
            "  n2 -> n3 [label=\"2 pkts\\np50 1.20ms p95 1.50ms ±?\\nVXLAN vni 1 192.168.1.11→192.168.1.12\", style=dashed, color=red];\n",
            "  n3 -> n2 [label=\"1 pkt\\np50 1.10ms p95 1.10ms ±150µs\"];\n",
            "  n4 -> n4 [label=\"0 pkts\"];\n",
            "}\n",
        );
        assert_eq!(to_string(&fixture::graph()), want);
    }

    #[test]
    fn a_name_cannot_close_its_string() {
        assert_eq!(
            quoted(&["a\"];\\".into(), "b".into()]),
            "\"a\\\"];\\\\\\nb\""
        );
    }
}

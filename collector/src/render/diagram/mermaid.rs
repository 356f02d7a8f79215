//! The graph as a Mermaid flowchart (for Markdown renderers that draw it): boards and
//! namespaces as nested subgraphs, left to right. Ids are positions (`n0`, `b0`); labels are
//! quoted, and every character but letters, digits and a few plain signs is written as a
//! Mermaid entity (`#35;`), so a name cannot end a label, open markup or add a statement.

use super::{edge_lines, node_lines, shown};
use crate::render::graph::Graph;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};

/// `lines` as one quoted Mermaid label, lines joined by `<br>` (the one markup written).
fn quoted(lines: &[String]) -> String {
    let mut out = String::from("\"");
    for (i, l) in lines.iter().enumerate() {
        if i > 0 {
            out.push_str("<br>");
        }
        for c in l.chars() {
            if c.is_alphanumeric() || matches!(c, ' ' | ':' | '.' | ',' | '_' | '-' | '+' | '/') {
                out.push(c);
            } else {
                let _ = write!(out, "#{};", c as u32);
            }
        }
    }
    out.push('"');
    out
}

pub fn to_string(g: &Graph) -> String {
    let mut out = String::from("flowchart LR\n");
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
        let _ = writeln!(out, "  subgraph b{b}[{}]", quoted(&[shown(board)]));
        for (s, (netns, members)) in spaces.iter().enumerate() {
            let indent = if netns.is_empty() { "    " } else { "      " };
            if !netns.is_empty() {
                let title = format!("netns {}", shown(netns));
                let _ = writeln!(out, "    subgraph b{b}_{s}[{}]", quoted(&[title]));
            }
            for &i in members {
                let _ = writeln!(out, "{indent}n{i}[{}]", quoted(&node_lines(&g.nodes[i])));
            }
            if !netns.is_empty() {
                out.push_str("    end\n");
            }
        }
        out.push_str("  end\n");
    }
    for e in &g.edges {
        let arrow = if e.tunnels.is_empty() { "-->" } else { "-.->" };
        let _ = writeln!(
            out,
            "  n{} {arrow}|{}| n{}",
            e.from,
            quoted(&edge_lines(e)),
            e.to
        );
    }
    for (i, n) in g.nodes.iter().enumerate() {
        if n.lost_after > 0 {
            let _ = writeln!(out, "  style n{i} stroke:#d93025,stroke-width:2px");
        }
    }
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
            "flowchart LR\n",
            "  subgraph b0[\"pi1\"]\n",
            "    n1[\"pi1:docker0<br>bridge #183; 3 pkts\"]\n",
            "    n2[\"pi1:wlan0<br>physical #183; 3 pkts #183; lost 1\"]\n",
            "    subgraph b0_1[\"netns ctr\"]\n",
            "      n0[\"pi1:ctr:eth0<br>veth #183; 3 pkts\"]\n",
            "    end\n",
            "  end\n",
            "  subgraph b1[\"pi2\"]\n",
            "    n3[\"pi2:wlan0<br>physical #183; 2 pkts\"]\n",
            "  end\n",
            "  subgraph b2[\"x\"]\n",
            "    n4[\"x:#60;script#62;alert#40;1#41;#60;/script#62;#38;#34;#39;#92;x1b#91;2J<br>other #183; 1 pkt\"]\n",
            "  end\n",
            "  n0 -->|\"3 pkts<br>p50 23µs p95 25µs\"| n1\n",
            "  n1 -->|\"3 pkts<br>p50 310µs p95 900µs<br>SNAT #215;3\"| n2\n",
            "  n2 -.->|\"2 pkts<br>p50 1.20ms p95 1.50ms #177;#63;<br>VXLAN vni 1 192.168.1.11#8594;192.168.1.12\"| n3\n",
            "  n3 -->|\"1 pkt<br>p50 1.10ms p95 1.10ms #177;150µs\"| n2\n",
            "  n4 -->|\"0 pkts\"| n4\n",
            "  style n2 stroke:#d93025,stroke-width:2px\n",
        );
        assert_eq!(to_string(&fixture::graph()), want);
    }
}

//! The graph as SVG, drawn on the [`layout`](super::layout): boards and namespaces as boxes,
//! hops as boxes coloured by link kind (red border: journeys lost after it), edges as curves
//! (dashed inside a tunnel, thicker with more packets) with their label on a white card.
//! Presentation attributes only, no `<style>`: an inline copy in the HTML report styles
//! nothing else. Every agent-given string goes through [`xml::escape`].

use super::layout::{layout, Rect, BOX_PAD, LINE_H};
use super::{edge_lines, node_lines};
use crate::render::graph::Graph;
use crate::render::xml::escape;
use std::fmt::Write as _;
use std::io::{self, Write};

const FONT: &str = "DejaVu Sans Mono, Menlo, Consolas, monospace";
/// From a line's top to its baseline at 12 px.
const ASCENT: i64 = 11;

fn kind_fill(kind: Option<&str>) -> &'static str {
    match kind {
        Some("veth") => "#e8f0fe",
        Some("bridge") => "#fef7e0",
        Some("physical") => "#e6f4ea",
        Some("vxlan" | "geneve" | "gre" | "ipip" | "wireguard" | "tun") => "#fce8e6",
        _ => "#f1f3f4",
    }
}

/// Lines of text from `(x, y)` (top of the first line).
fn text_block(out: &mut String, x: i64, y: i64, lines: &[String], attrs: &str) {
    for (i, l) in lines.iter().enumerate() {
        let _ = writeln!(
            out,
            r#"<text x="{x}" y="{}"{attrs}>{}</text>"#,
            y + ASCENT + i as i64 * LINE_H,
            escape(l)
        );
    }
}

fn rect(out: &mut String, r: &Rect, attrs: &str) {
    let _ = writeln!(
        out,
        r#"<rect x="{}" y="{}" width="{}" height="{}"{attrs}/>"#,
        r.x, r.y, r.w, r.h
    );
}

/// The SVG document as a string (the HTML report inlines it).
pub fn to_string(g: &Graph) -> String {
    let l = layout(g);
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="{FONT}" font-size="12">"#,
        w = l.width,
        h = l.height
    );
    out.push_str("<title>hopcap: hops and the paths over them</title>\n");
    out.push_str(concat!(
        "<defs>",
        r##"<marker id="hc-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerUnits="userSpaceOnUse" markerWidth="9" markerHeight="9" orient="auto"><path d="M0,0L10,5L0,10z" fill="#555"/></marker>"##,
        r##"<marker id="hc-arrow-tunnel" viewBox="0 0 10 10" refX="10" refY="5" markerUnits="userSpaceOnUse" markerWidth="9" markerHeight="9" orient="auto"><path d="M0,0L10,5L0,10z" fill="#c5221f"/></marker>"##,
        "</defs>\n"
    ));
    rect(
        &mut out,
        &Rect {
            x: 0,
            y: 0,
            w: l.width,
            h: l.height,
        },
        r##" fill="#ffffff""##,
    );
    if g.nodes.is_empty() {
        out.push_str("<text x=\"16\" y=\"28\">no paths match</text>\n</svg>\n");
        return out;
    }
    for b in &l.boards {
        rect(
            &mut out,
            &b.rect,
            r##" rx="6" fill="#fafafa" stroke="#80868b""##,
        );
        text_block(
            &mut out,
            b.rect.x + BOX_PAD,
            b.rect.y + 4,
            std::slice::from_ref(&b.title),
            r#" font-weight="bold""#,
        );
    }
    for ns in &l.namespaces {
        rect(
            &mut out,
            &ns.rect,
            r##" rx="4" fill="#f3f0ff" stroke="#9aa0a6" stroke-dasharray="4 2""##,
        );
        text_block(
            &mut out,
            ns.rect.x + 4,
            ns.rect.y + 2,
            std::slice::from_ref(&ns.title),
            r##" fill="#5f6368""##,
        );
    }
    for (e, geom) in g.edges.iter().zip(&l.edges) {
        let (Some(from), Some(to)) = (g.nodes.get(e.from), g.nodes.get(e.to)) else {
            continue;
        };
        let tunnel = !e.tunnels.is_empty();
        let width = 1.0 + (e.packets.max(1) as f64).log10().min(3.0);
        let _ = writeln!(
            out,
            r##"<path d="M{},{} C{},{} {},{} {},{}" fill="none" stroke="{}" stroke-width="{width:.1}"{} marker-end="url(#{})"><title>{} → {}</title></path>"##,
            geom.start.0,
            geom.start.1,
            geom.c1.0,
            geom.c1.1,
            geom.c2.0,
            geom.c2.1,
            geom.end.0,
            geom.end.1,
            if tunnel { "#c5221f" } else { "#555555" },
            if tunnel {
                r#" stroke-dasharray="6 3""#
            } else {
                ""
            },
            if tunnel {
                "hc-arrow-tunnel"
            } else {
                "hc-arrow"
            },
            escape(&from.name),
            escape(&to.name),
        );
    }
    for (n, r) in g.nodes.iter().zip(&l.nodes) {
        let stroke = if n.lost_after > 0 {
            r##" stroke="#d93025" stroke-width="2""##
        } else {
            r##" stroke="#5f6368""##
        };
        let _ = writeln!(out, "<g><title>{}</title>", escape(&n.name));
        rect(
            &mut out,
            r,
            &format!(r#" rx="4" fill="{}"{stroke}"#, kind_fill(n.kind)),
        );
        let lines = node_lines(n);
        text_block(&mut out, r.x + 8, r.y + 8, &lines[..1], "");
        text_block(
            &mut out,
            r.x + 8,
            r.y + 8 + LINE_H,
            &lines[1..],
            r##" fill="#5f6368""##,
        );
        out.push_str("</g>\n");
    }
    for (e, geom) in g.edges.iter().zip(&l.edges) {
        out.push_str("<g>");
        rect(
            &mut out,
            &geom.label,
            r##" rx="3" fill="#ffffff" fill-opacity="0.92" stroke="#dadce0""##,
        );
        text_block(
            &mut out,
            geom.label.x + 4,
            geom.label.y + 4,
            &edge_lines(e),
            "",
        );
        out.push_str("</g>\n");
    }
    out.push_str("</svg>\n");
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
        let svg = to_string(&fixture::graph());
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/render/diagram/golden.svg");
        if std::env::var_os("HOPCAP_BLESS").is_some() {
            std::fs::write(path, &svg).unwrap();
        }
        let want = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            svg == want,
            "SVG differs from {path} (HOPCAP_BLESS=1 rewrites it):\n{svg}"
        );
    }

    #[test]
    fn hostile_names_stay_text_and_the_document_parses() {
        let svg = to_string(&fixture::graph());
        assert!(!svg.contains("<script"), "{svg}");
        assert!(svg.contains("&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;&#39;\\x1b[2J"));
        let doc = roxmltree::Document::parse(&svg).expect("well-formed SVG");
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "svg");
        let texts: Vec<&str> = root
            .descendants()
            .filter(|n| n.has_tag_name("title"))
            .filter_map(|n| n.text())
            .collect();
        assert!(
            texts.contains(&"x:<script>alert(1)</script>&\"'\\x1b[2J"),
            "{texts:?}"
        );
        assert!(root.descendants().all(|n| !n.has_tag_name("script")));
    }

    #[test]
    fn every_control_character_in_a_name_still_parses() {
        let mut g = fixture::graph();
        let all: String = (0u32..0x200)
            .chain([0x202e, 0xfffe, 0xffff, 0x1f600])
            .filter_map(char::from_u32)
            .collect();
        g.nodes[0].name = all.clone();
        g.nodes[0].board = all.clone();
        g.nodes[0].netns = all;
        let svg = to_string(&g);
        roxmltree::Document::parse(&svg).expect("well-formed SVG");
    }

    #[test]
    fn an_empty_graph_says_so() {
        let svg = to_string(&Graph::default());
        roxmltree::Document::parse(&svg).unwrap();
        assert!(svg.contains("no paths match"));
    }
}

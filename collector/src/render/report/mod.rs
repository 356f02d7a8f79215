//! `report --html`: one self-contained page (inline CSS and SVG, no script, nothing fetched)
//! with the diagram, the flows and their paths, latency histograms per hop pair, loss per hop
//! and per board, the boards' clock offsets and the capture drops. Sections have fixed ids
//! (`diagram`, `flows`, `latency`, `loss`, `clocks`, `drops`) that tests look for.

pub mod histogram;
pub mod tables;

use super::diagram::svg;
use super::graph::graph;
use super::xml::escape as esc;
use crate::correlate::{DropInterval, Report};
use crate::store::BoardRow;
use std::io::{self, Write};

/// What the page shows.
#[derive(Debug)]
pub struct PageInput<'a> {
    pub report: &'a Report,
    pub boards: &'a [BoardRow],
    pub drops: &'a [DropInterval],
    /// What was asked for (`--since … --filter …`), shown as given.
    pub selection: &'a str,
    /// When the page was made (RFC 3339).
    pub generated: &'a str,
}

const CSS: &str = "\
body{font-family:system-ui,sans-serif;margin:24px;color:#202124;max-width:1400px}\
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #dadce0}\
table{border-collapse:collapse;font-size:13px;margin:8px 0}\
th,td{border:1px solid #dadce0;padding:3px 8px;text-align:left;vertical-align:top}\
th{background:#f1f3f4}td.n{text-align:right;font-variant-numeric:tabular-nums}\
td.path{font-family:monospace;font-size:12px}.lat{color:#188038}.bad{color:#d93025;font-weight:bold}\
.note{color:#5f6368;font-size:12px}.scroll{overflow-x:auto;border:1px solid #dadce0}\
.hists{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0;border:1px solid #dadce0;padding:6px}\
figcaption{font-family:monospace;font-size:12px;margin-bottom:4px}";

/// The page as a string.
pub fn page(input: &PageInput) -> String {
    let report = input.report;
    let g = graph(report);
    let mut out = String::with_capacity(64 * 1024);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/>");
    // No fetch of any kind: this policy forbids scripts and every external load.
    out.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\"/>");
    out.push_str("<title>hopcap report</title><style>");
    out.push_str(CSS);
    out.push_str("</style></head><body>\n<h1>hopcap report</h1>\n");
    let lost = report
        .journeys
        .iter()
        .filter(|j| !j.fate.is_complete())
        .count();
    out.push_str(&format!(
        "<p>{} packets (journeys) in {} flows over {} hops and {} hop pairs; {} did not arrive. Selection: <code>{}</code>. Made {}; times in UTC.</p>\n",
        report.journeys.len(),
        report.flows,
        g.nodes.len(),
        g.edges.len(),
        lost,
        esc(input.selection),
        esc(input.generated),
    ));
    if report.journeys.is_empty() {
        out.push_str("<p class=\"bad\">No observations match the selection.</p>\n");
    }
    out.push_str("<section id=\"diagram\"><h2>Diagram</h2><p class=\"note\">Hops as <code>board:netns:link</code> inside their board and namespace; edges with packets, latency (p50, p95; ± clock uncertainty across boards), NAT rewrites and tunnels (dashed). Red border: packets lost after that hop.</p><div class=\"scroll\">\n");
    out.push_str(&svg::to_string(&g));
    out.push_str("</div></section>\n");
    out.push_str("<section id=\"flows\"><h2>Flows and paths</h2>\n");
    tables::flows(&mut out, report);
    out.push_str("</section>\n<section id=\"latency\"><h2>Latency per hop pair</h2>\n");
    tables::histograms(&mut out, &g);
    out.push_str("</section>\n<section id=\"loss\"><h2>Loss per hop</h2><p class=\"note\">Journeys that should have gone on after the hop and were never seen again.</p>\n");
    tables::hop_loss(&mut out, &g);
    out.push_str("<h2>Delivery per board</h2><p class=\"note\">Observations the agents kept (seen) = stored + queue drops + lost in transit; kernel drops were never seen.</p>\n");
    tables::board_delivery(&mut out, input.boards);
    out.push_str("</section>\n<section id=\"clocks\"><h2>Clock offsets</h2><p class=\"note\">Estimated from matched two-way traffic (minimum-delay filtering, per window).</p>\n");
    tables::clocks(&mut out, report);
    out.push_str("</section>\n<section id=\"drops\"><h2>Capture drops</h2>\n");
    tables::capture_drops(&mut out, input.boards, input.drops);
    out.push_str("</section>\n</body></html>\n");
    out
}

pub fn write_page(input: &PageInput, w: &mut impl Write) -> io::Result<()> {
    w.write_all(page(input).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::correlate::testbed::flannel_pings;
    use crate::store::BoardId;

    const T0: u64 = 1_700_000_000_000_000_000;

    fn board(name: &str) -> BoardRow {
        BoardRow {
            id: BoardId::from_raw(1),
            name: name.into(),
            boot_id: None,
            agent_version: None,
            capture: None,
            remote: None,
            first_seen_ns: 0,
            last_seen_ns: 0,
            state: "connected".into(),
            clock_offset_ns: None,
            batches: 3,
            observations: 300,
            lost_batches: 1,
            kernel_drops: 4,
            queue_drops: 100,
            links_present: 5,
            seen: 400,
            stored: 300,
            lost_in_transit: 0,
            reported_queue_drops: 100,
            clock_synced: Some(true),
            clock_max_error_us: None,
            clock_steps: 0,
            last_clock_step_ns: None,
        }
    }

    fn flannel_report() -> Report {
        flannel_pings(20)
    }

    #[test]
    fn the_page_has_every_section_and_is_well_formed() {
        let report = flannel_report();
        let boards = [board("pi1"), board("<b>pi2</b>")];
        let drops = [DropInterval {
            board: "pi1".into(),
            start_ns: T0,
            end_ns: T0 + 1_000_000_000,
            dropped: 4,
        }];
        let html = page(&PageInput {
            report: &report,
            boards: &boards,
            drops: &drops,
            selection: "--filter 'icmp' & <x>",
            generated: "2026-12-03T00:00:00Z",
        });
        // The page is XHTML-clean enough to parse as XML (after its doctype): every tag
        // closed, every name escaped.
        let xml = html.trim_start_matches("<!DOCTYPE html>\n");
        let doc = roxmltree::Document::parse(xml).expect("well-formed");
        for id in ["diagram", "flows", "latency", "loss", "clocks", "drops"] {
            assert!(
                doc.descendants().any(|n| n.attribute("id") == Some(id)),
                "section {id}"
            );
        }
        assert!(!html.contains("<b>pi2</b>") && html.contains("&lt;b&gt;pi2&lt;/b&gt;"));
        assert!(html.contains("&#39;icmp&#39; &amp; &lt;x&gt;"));
        assert!(!html.contains("<script") && only_svg_ns(&html));
        // pi2's clock, 37 ms ahead, with its uncertainty.
        assert!(
            html.contains("<td class=\"n\">+37.00ms</td><td class=\"n\">±"),
            "{html}"
        );
        assert!(html.contains("VXLAN vni 1"));
        let figures = doc
            .descendants()
            .filter(|n| n.has_tag_name("figure"))
            .count();
        assert_eq!(figures, 18, "one histogram per hop pair: 9 each way");
    }

    /// The only URL in the page is the SVG namespace (not fetched).
    fn only_svg_ns(html: &str) -> bool {
        html.matches("http://").count() == html.matches("http://www.w3.org/2000/svg").count()
    }

    #[test]
    fn an_empty_report_still_makes_a_page() {
        let html = page(&PageInput {
            report: &Report::default(),
            boards: &[],
            drops: &[],
            selection: "",
            generated: "now",
        });
        assert!(html.contains("No observations match"));
        assert!(html.contains("no paths match"));
    }
}

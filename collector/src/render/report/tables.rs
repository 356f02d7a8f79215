//! The report's tables as HTML: flows and their paths, loss per hop and per board, clock
//! offsets, capture drops, and the latency histograms per hop pair. Every string from the
//! store or an agent goes through [`esc`].

use super::histogram;
use crate::correlate::{DropInterval, Report};
use crate::render::flows::flow_stats;
use crate::render::graph::Graph;
use crate::render::paths::fmt_ns;
use crate::render::xml::escape as esc;
use crate::store::BoardRow;
use crate::time::format_rfc3339;
use std::fmt::Write as _;

/// At most this many rows in one table (flows, drop intervals, histograms); the page says
/// how many were left out.
pub const MAX_ROWS: usize = 200;
const MAX_HISTOGRAMS: usize = 40;

fn left_out(out: &mut String, shown: usize, total: usize, what: &str) {
    if total > shown {
        let _ = writeln!(
            out,
            "<p class=\"note\">{} more {what} not shown (at most {shown}).</p>",
            total - shown
        );
    }
}

/// `+37.00ms`, `-4µs`: an offset's sign always shown.
fn signed(ns: i64) -> String {
    if ns > 0 {
        format!("+{}", fmt_ns(ns))
    } else {
        fmt_ns(ns)
    }
}

fn pct(part: i64, whole: i64) -> String {
    if whole <= 0 {
        return "-".into();
    }
    format!("{:.2}%", 100.0 * part as f64 / whole as f64)
}

/// Flows, each with its paths: packets, fate counts, and the hops with their median latency.
pub fn flows(out: &mut String, report: &Report) {
    let all = flow_stats(report);
    out.push_str("<table><thead><tr><th>flow</th><th>packets</th><th>bytes</th><th>span</th><th>path</th><th>packets</th><th>complete</th><th>lost</th><th>hops (median latency from the previous hop)</th></tr></thead><tbody>\n");
    for f in all.iter().take(MAX_ROWS) {
        for (i, p) in f.paths.iter().enumerate() {
            out.push_str("<tr>");
            if i == 0 {
                let rows = f.paths.len();
                let _ = write!(
                    out,
                    "<td rowspan=\"{rows}\">{} {}</td><td rowspan=\"{rows}\" class=\"n\">{}</td><td rowspan=\"{rows}\" class=\"n\">{}</td><td rowspan=\"{rows}\" class=\"n\">{}</td>",
                    f.flow,
                    esc(&f.label),
                    f.journeys,
                    f.bytes,
                    fmt_ns(f.span_ns)
                );
            }
            let hops: Vec<String> = p
                .hops
                .iter()
                .map(|h| match h.p50_ns {
                    Some(l) => format!("{} <span class=\"lat\">+{}</span>", esc(&h.hop), fmt_ns(l)),
                    None => esc(&h.hop).into_owned(),
                })
                .collect();
            let lost = p.lost + p.maybe_capture_loss;
            let _ = writeln!(
                out,
                "<td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n{}\">{lost}</td><td class=\"path\">{}</td></tr>",
                i + 1,
                p.count,
                p.complete,
                if lost > 0 { " bad" } else { "" },
                hops.join(" → ")
            );
        }
    }
    out.push_str("</tbody></table>\n");
    left_out(out, MAX_ROWS, all.len(), "flows");
}

/// One histogram per hop pair, the busiest first.
pub fn histograms(out: &mut String, g: &Graph) {
    let mut edges: Vec<_> = g
        .edges
        .iter()
        .filter(|e| !e.latency_ns.is_empty())
        .collect();
    edges.sort_by_key(|e| std::cmp::Reverse(e.latency_ns.len()));
    out.push_str("<div class=\"hists\">\n");
    for e in edges.iter().take(MAX_HISTOGRAMS) {
        let (Some(from), Some(to), Some(chart)) = (
            g.nodes.get(e.from),
            g.nodes.get(e.to),
            histogram::svg(&e.latency_ns),
        ) else {
            continue;
        };
        let p = |v: Option<i64>| v.map_or("-".into(), fmt_ns);
        let unc = match e.clock_uncertainty_ns {
            Some(0) => String::new(),
            Some(u) => format!(", clocks ±{}", fmt_ns(i64::try_from(u).unwrap_or(i64::MAX))),
            None => ", clocks not tied".into(),
        };
        let _ = writeln!(
            out,
            "<figure><figcaption>{} → {}<br/><span class=\"note\">p50 {} · p95 {}{unc}</span></figcaption>{chart}</figure>",
            esc(&from.name),
            esc(&to.name),
            p(e.p50()),
            p(e.p95()),
        );
    }
    out.push_str("</div>\n");
    left_out(out, MAX_HISTOGRAMS, edges.len(), "hop pairs");
}

/// Per hop: journeys through it, lost after it (and of those, maybe capture loss).
pub fn hop_loss(out: &mut String, g: &Graph) {
    out.push_str("<table><thead><tr><th>hop</th><th>kind</th><th>journeys</th><th>lost after</th><th>of which maybe capture loss</th><th>loss</th></tr></thead><tbody>\n");
    let mut nodes: Vec<_> = g.nodes.iter().collect();
    nodes.sort_by_key(|n| (std::cmp::Reverse(n.lost_after), n.name.as_str()));
    for n in nodes {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n{}\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&n.name),
            n.kind.unwrap_or("-"),
            n.seen,
            if n.lost_after > 0 { " bad" } else { "" },
            n.lost_after,
            n.maybe_capture_loss,
            pct(n.lost_after as i64, n.seen as i64),
        );
    }
    out.push_str("</tbody></table>\n");
}

/// Per board: the store's reconciled delivery (seen = stored + queue drops + in transit)
/// and the kernel's drops.
pub fn board_delivery(out: &mut String, boards: &[BoardRow]) {
    out.push_str("<table><thead><tr><th>board</th><th>state</th><th>seen</th><th>stored</th><th>queue drops</th><th>lost in transit</th><th>kernel drops</th><th>lost batches</th><th>not stored</th></tr></thead><tbody>\n");
    for b in boards {
        let missing = b.queue_drops.saturating_add(b.lost_in_transit);
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n{}\">{}</td></tr>",
            esc(&b.name),
            esc(&b.state),
            b.seen,
            b.stored,
            b.queue_drops,
            b.lost_in_transit,
            b.kernel_drops,
            b.lost_batches,
            if missing > 0 { " bad" } else { "" },
            pct(missing, b.seen),
        );
    }
    out.push_str("</tbody></table>\n");
}

/// Per board: the offset from the reference clock estimated from matched packets (the
/// latest window), its uncertainty, the range over all windows, and the chain it goes
/// through.
pub fn clocks(out: &mut String, report: &Report) {
    let reference = report.clock.reference.as_deref().unwrap_or("-");
    let _ = writeln!(
        out,
        "<p>Reference clock: <b>{}</b>. Offset = board clock − reference clock.</p>",
        esc(reference)
    );
    out.push_str("<table><thead><tr><th>board</th><th>offset (latest window)</th><th>uncertainty</th><th>offset range over windows</th><th>windows</th><th>crossings</th><th>via</th></tr></thead><tbody>\n");
    for b in &report.clock.boards {
        let name = esc(&b.board);
        if b.board == reference {
            let _ = writeln!(
                out,
                "<tr><td>{name}</td><td class=\"n\">0 (reference)</td><td class=\"n\">0</td><td></td><td></td><td></td><td></td></tr>"
            );
            continue;
        }
        let Some(last) = b.points.last() else {
            let _ = writeln!(
                out,
                "<tr><td>{name}</td><td colspan=\"6\" class=\"bad\">not tied to {} (no two-board traffic matched)</td></tr>",
                esc(reference)
            );
            continue;
        };
        let unc = last.uncertainty_ns.map_or("one-sided bound".into(), |u| {
            format!("±{}", fmt_ns(i64::try_from(u).unwrap_or(i64::MAX)))
        });
        let lo = b.points.iter().map(|p| p.offset_ns).min().unwrap_or(0);
        let hi = b.points.iter().map(|p| p.offset_ns).max().unwrap_or(0);
        let crossings: u64 = b.points.iter().map(|p| u64::from(p.samples)).sum();
        let via: Vec<String> = b.via.iter().map(|v| esc(v).into_owned()).collect();
        let _ = writeln!(
            out,
            "<tr><td>{name}</td><td class=\"n\">{}</td><td class=\"n\">{unc}</td><td class=\"n\">{} … {}</td><td class=\"n\">{}</td><td class=\"n\">{crossings}</td><td>{}</td></tr>",
            signed(last.offset_ns),
            signed(lo),
            signed(hi),
            b.points.len(),
            via.join(" → ")
        );
    }
    out.push_str("</tbody></table>\n");
}

/// Per board the agents' drop counters, then the intervals between stats reports in which
/// the capture dropped packets (on the board's clock).
pub fn capture_drops(out: &mut String, boards: &[BoardRow], drops: &[DropInterval]) {
    out.push_str("<table><thead><tr><th>board</th><th>kernel drops</th><th>agent queue drops (stored ledger)</th><th>agent queue drops (agent's count)</th></tr></thead><tbody>\n");
    for b in boards {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"n{}\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&b.name),
            if b.kernel_drops > 0 { " bad" } else { "" },
            b.kernel_drops,
            b.queue_drops,
            b.reported_queue_drops,
        );
    }
    out.push_str("</tbody></table>\n");
    if drops.is_empty() {
        out.push_str("<p>No interval with capture drops in the stats reports.</p>\n");
        return;
    }
    out.push_str("<table><thead><tr><th>board</th><th>from</th><th>to</th><th>dropped</th></tr></thead><tbody>\n");
    for d in drops.iter().take(MAX_ROWS) {
        let t = |ns: u64| format_rfc3339(i64::try_from(ns).unwrap_or(i64::MAX));
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n bad\">{}</td></tr>",
            esc(&d.board),
            t(d.start_ns),
            t(d.end_ns),
            d.dropped
        );
    }
    out.push_str("</tbody></table>\n");
    left_out(out, MAX_ROWS, drops.len(), "intervals");
}

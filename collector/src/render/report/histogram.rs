//! One hop pair's latencies as a small inline SVG bar chart: 24 bins, on a log scale when the
//! samples span more than a decade (queueing tails are long), else linear; the median and
//! p95 marked. Numbers only: the caller titles it.

use crate::render::graph::percentile;
use crate::render::paths::fmt_ns;
use std::fmt::Write as _;

const BINS: usize = 24;
const W: i64 = 360;
const H: i64 = 110;
/// Plot area: left, top, right, bottom.
const PLOT: (i64, i64, i64, i64) = (8, 8, W - 8, H - 30);

/// Maps a latency to [0, 1] along the axis, and back.
#[derive(Clone, Copy, Debug)]
struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
}

impl Axis {
    fn of(sorted: &[i64]) -> Axis {
        let (lo, hi) = (
            sorted.first().copied().unwrap_or(0) as f64,
            sorted.last().copied().unwrap_or(0) as f64,
        );
        let log = lo > 0.0 && hi / lo > 10.0;
        let (lo, hi) = if log { (lo.ln(), hi.ln()) } else { (lo, hi) };
        // One value only: a span of 1 keeps the divisions finite.
        Axis {
            lo,
            hi: if hi > lo { hi } else { lo + 1.0 },
            log,
        }
    }
    fn pos(&self, v: i64) -> f64 {
        let v = if self.log {
            (v.max(1) as f64).ln()
        } else {
            v as f64
        };
        ((v - self.lo) / (self.hi - self.lo)).clamp(0.0, 1.0)
    }
    fn value(&self, pos: f64) -> i64 {
        let v = self.lo + pos * (self.hi - self.lo);
        (if self.log { v.exp() } else { v }).round() as i64
    }
}

/// Counts per bin.
fn bins(sorted: &[i64], axis: Axis) -> [usize; BINS] {
    let mut out = [0; BINS];
    for &v in sorted {
        let b = ((axis.pos(v) * BINS as f64) as usize).min(BINS - 1);
        out[b] += 1;
    }
    out
}

/// The chart (an `<svg>` element), or None without samples.
pub fn svg(sorted: &[i64]) -> Option<String> {
    if sorted.is_empty() {
        return None;
    }
    let axis = Axis::of(sorted);
    let counts = bins(sorted, axis);
    let peak = counts.iter().copied().max().unwrap_or(1).max(1) as f64;
    let (l, t, r, b) = PLOT;
    let bar_w = (r - l) as f64 / BINS as f64;
    let mut out = String::new();
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="monospace" font-size="10" role="img">"##
    );
    let _ = write!(
        out,
        r##"<rect x="0" y="0" width="{W}" height="{H}" fill="#ffffff"/><line x1="{l}" y1="{b}" x2="{r}" y2="{b}" stroke="#5f6368"/>"##
    );
    for (i, &n) in counts.iter().enumerate().filter(|(_, &n)| n > 0) {
        let h = ((b - t) as f64 * n as f64 / peak).max(1.0);
        let x = l as f64 + i as f64 * bar_w;
        let (from, to) = (
            axis.value(i as f64 / BINS as f64),
            axis.value((i + 1) as f64 / BINS as f64),
        );
        let _ = write!(
            out,
            r##"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="#1a73e8"><title>{} to {}: {n}</title></rect>"##,
            b as f64 - h,
            (bar_w - 1.0).max(1.0),
            fmt_ns(from),
            fmt_ns(to),
        );
    }
    for (p, colour) in [(50, "#188038"), (95, "#d93025")] {
        let Some(v) = percentile(sorted, p) else {
            continue;
        };
        let x = l as f64 + axis.pos(v) * (r - l) as f64;
        let _ = write!(
            out,
            r##"<line x1="{x:.1}" y1="{t}" x2="{x:.1}" y2="{b}" stroke="{colour}" stroke-dasharray="3 2"><title>p{p} {}</title></line>"##,
            fmt_ns(v)
        );
    }
    let (lo, hi) = (sorted[0], sorted[sorted.len() - 1]);
    let scale = if axis.log { "log scale" } else { "linear" };
    let _ = write!(
        out,
        r##"<text x="{l}" y="{}">{}</text><text x="{r}" y="{}" text-anchor="end">{}</text><text x="{}" y="{}" text-anchor="middle" fill="#5f6368">{} samples, {scale}</text></svg>"##,
        b + 13,
        fmt_ns(lo),
        b + 13,
        fmt_ns(hi),
        (l + r) / 2,
        b + 26,
        sorted.len(),
    );
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_cover_every_sample() {
        let v: Vec<i64> = (1..=1000).map(|i| i * 1_000).collect();
        let a = Axis::of(&v);
        assert!(a.log, "three decades");
        let c = bins(&v, a);
        assert_eq!(c.iter().sum::<usize>(), 1000);
        assert!(
            c[BINS - 1] > c[0],
            "log bins: more samples in the top decade"
        );
        let same = [5_000; 7];
        let c = bins(&same, Axis::of(&same));
        assert_eq!(c.iter().sum::<usize>(), 7);
        // Negative latencies (clock error across boards) stay on a linear axis.
        let neg = [-3_000, 2_000, 9_000];
        assert!(!Axis::of(&neg).log);
        assert_eq!(bins(&neg, Axis::of(&neg)).iter().sum::<usize>(), 3);
    }

    #[test]
    fn the_chart_is_xml_with_the_bars_and_markers() {
        let v: Vec<i64> = (0..100).map(|i| 20_000 + i * 100).collect();
        let s = svg(&v).unwrap();
        let doc = roxmltree::Document::parse(&s).unwrap();
        let bars = doc.descendants().filter(|n| n.has_tag_name("rect")).count();
        assert!(bars > 10, "{s}");
        assert!(
            s.contains("p50 25µs") && s.contains("100 samples, linear"),
            "{s}"
        );
        assert!(svg(&[]).is_none());
    }
}

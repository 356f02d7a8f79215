//! Flows: the distinct paths each flow's journeys took, how often, latency percentiles per
//! hop, and loss per hop. A flow is named by its first journey's first hop (the 5-tuple
//! before NAT); request and reply journeys are both in it, as different paths.
//!
//! # JSON lines: one object per flow
//! `flow` (number), `label`, `journeys` (count: one per packet), `bytes` (on the wire at
//! their first hop), `first` and `last` (the first hop's time of the earliest and latest,
//! on the reference clock, as `timeline --json` writes times), `paths`: array of `count`,
//! `complete`,
//! `lost`, `maybe_capture_loss` (journey counts) and `hops`: array of `hop` (name),
//! `board`, `netns`, `link`, `dir`, `samples`, `p50_ns`, `p90_ns`, `p99_ns` (latency from
//! the previous hop; null on the first); `loss`: array of `hop`, `seen` (journeys through
//! it), `lost` (journeys that vanished after it), `maybe_capture_loss` (of those, how many
//! while the capture dropped packets).

// Nothing in the binary calls in yet; tests reach everything.

use super::paths::{fmt_ns, hop_name};
use crate::correlate::{flow_label, Fate, Journey, JourneyHop, Report};
use hopcap_proto::print::Epoch;
use serde::Serialize;
use std::collections::HashMap;
use std::io::{self, Write};

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FlowStats {
    pub flow: usize,
    pub label: String,
    pub journeys: usize,
    pub bytes: u64,
    pub first: String,
    pub last: String,
    #[serde(skip)]
    pub span_ns: i64,
    pub paths: Vec<PathStats>,
    pub loss: Vec<HopLoss>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PathStats {
    pub count: usize,
    pub complete: usize,
    pub lost: usize,
    pub maybe_capture_loss: usize,
    pub hops: Vec<HopStats>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HopStats {
    pub hop: String,
    pub board: String,
    pub netns: String,
    pub link: String,
    pub dir: &'static str,
    pub samples: usize,
    pub p50_ns: Option<i64>,
    pub p90_ns: Option<i64>,
    pub p99_ns: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HopLoss {
    pub hop: String,
    pub seen: usize,
    pub lost: usize,
    pub maybe_capture_loss: usize,
}

fn dir(h: &JourneyHop) -> &'static str {
    if h.out() {
        "Out"
    } else {
        "In"
    }
}

fn hop_key(h: &JourneyHop) -> String {
    format!("{} {}", hop_name(h), dir(h))
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[i64], p: u32) -> Option<i64> {
    let n = sorted.len();
    let rank = (n * p as usize).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

pub fn flow_stats(report: &Report) -> Vec<FlowStats> {
    let mut by_flow: Vec<Vec<&Journey>> = vec![Vec::new(); report.flows];
    for j in &report.journeys {
        if let Some(f) = by_flow.get_mut(j.flow) {
            f.push(j);
        }
    }
    by_flow
        .into_iter()
        .enumerate()
        .filter(|(_, js)| !js.is_empty())
        .map(|(flow, js)| one_flow(flow, &js))
        .collect()
}

fn one_flow(flow: usize, js: &[&Journey]) -> FlowStats {
    let label = js[0]
        .hops
        .first()
        .map(|h| flow_label(h.summary()))
        .unwrap_or_default();
    let mut paths: Vec<(Vec<String>, Vec<&Journey>)> = Vec::new();
    let mut index: HashMap<Vec<String>, usize> = HashMap::new();
    let mut loss: Vec<HopLoss> = Vec::new();
    for &j in js {
        let key: Vec<String> = j.hops.iter().map(hop_key).collect();
        for (p, k) in key.iter().enumerate() {
            let slot = match loss.iter().position(|l| l.hop == *k) {
                Some(i) => i,
                None => {
                    loss.push(HopLoss {
                        hop: k.clone(),
                        seen: 0,
                        lost: 0,
                        maybe_capture_loss: 0,
                    });
                    loss.len() - 1
                }
            };
            let l = &mut loss[slot];
            l.seen += 1;
            if j.fate.vanished_after() == Some(p) {
                l.lost += 1;
                l.maybe_capture_loss += usize::from(matches!(j.fate, Fate::MaybeCaptureLoss(_)));
            }
        }
        let next = paths.len();
        let i = *index.entry(key.clone()).or_insert(next);
        if i == next {
            paths.push((key, Vec::new()));
        }
        paths[i].1.push(j);
    }
    let mut paths: Vec<PathStats> = paths.into_iter().map(|(_, js)| path_stats(&js)).collect();
    paths.sort_by_key(|p| std::cmp::Reverse(p.count));
    let firsts = js.iter().filter_map(|j| j.hops.first());
    let bytes = firsts.clone().map(|h| u64::from(h.hop.obs.wire_len)).sum();
    let (first, last) = firsts.fold((i64::MAX, i64::MIN), |(a, b), h| {
        (a.min(h.t_ns), b.max(h.t_ns))
    });
    let epoch = |t: i64| Epoch(u64::try_from(t).unwrap_or(0)).to_string();
    FlowStats {
        flow,
        label,
        journeys: js.len(),
        bytes,
        first: epoch(first),
        last: epoch(last),
        span_ns: last.saturating_sub(first).max(0),
        paths,
        loss,
    }
}

fn path_stats(js: &[&Journey]) -> PathStats {
    let first = js[0];
    let hops = first
        .hops
        .iter()
        .enumerate()
        .map(|(p, h)| {
            let mut lat: Vec<i64> = js
                .iter()
                .filter_map(|j| j.hops.get(p)?.latency_ns)
                .collect();
            lat.sort_unstable();
            HopStats {
                hop: hop_key(h),
                board: h.hop.board.clone(),
                netns: h.netns.as_str().into(),
                link: h.link.as_str().into(),
                dir: dir(h),
                samples: lat.len(),
                p50_ns: percentile(&lat, 50),
                p90_ns: percentile(&lat, 90),
                p99_ns: percentile(&lat, 99),
            }
        })
        .collect();
    let count_of = |f: fn(Fate) -> bool| js.iter().filter(|j| f(j.fate)).count();
    PathStats {
        count: js.len(),
        complete: count_of(Fate::is_complete),
        lost: count_of(|f| matches!(f, Fate::LostAfter(_))),
        maybe_capture_loss: count_of(|f| matches!(f, Fate::MaybeCaptureLoss(_))),
        hops,
    }
}

pub fn write_text(report: &Report, w: &mut impl Write) -> io::Result<()> {
    use super::term::clean;
    for f in flow_stats(report) {
        writeln!(
            w,
            "flow {} {}: {} packets, {} bytes over {}, {} paths",
            f.flow,
            clean(&f.label),
            f.journeys,
            f.bytes,
            fmt_ns(f.span_ns),
            f.paths.len()
        )?;
        for (i, p) in f.paths.iter().enumerate() {
            let mut fate = format!("{} complete", p.complete);
            if p.lost > 0 {
                fate += &format!(", {} lost", p.lost);
            }
            if p.maybe_capture_loss > 0 {
                fate += &format!(", {} maybe capture loss", p.maybe_capture_loss);
            }
            writeln!(w, "  path {}: {} journeys ({fate})", i + 1, p.count)?;
            let width = p
                .hops
                .iter()
                .map(|h| clean(&h.hop).chars().count())
                .max()
                .unwrap_or(0);
            for h in &p.hops {
                match (h.p50_ns, h.p90_ns, h.p99_ns) {
                    (Some(a), Some(b), Some(c)) => writeln!(
                        w,
                        "    {:width$}  p50 {}  p90 {}  p99 {}",
                        clean(&h.hop),
                        fmt_ns(a),
                        fmt_ns(b),
                        fmt_ns(c)
                    )?,
                    _ => writeln!(w, "    {}", clean(&h.hop))?,
                }
            }
        }
        for l in f.loss.iter().filter(|l| l.lost > 0) {
            let pct = 100.0 * l.lost as f64 / l.seen.max(1) as f64;
            let maybe = if l.maybe_capture_loss > 0 {
                format!(", {} maybe capture loss", l.maybe_capture_loss)
            } else {
                String::new()
            };
            writeln!(
                w,
                "  lost after {}: {}/{} ({pct:.2}%){maybe}",
                clean(&l.hop),
                l.lost,
                l.seen
            )?;
        }
    }
    Ok(())
}

pub fn write_json(report: &Report, w: &mut impl Write) -> io::Result<()> {
    for f in flow_stats(report) {
        serde_json::to_writer(&mut *w, &f)?;
        writeln!(w)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::correlate::testbed::{pi_docker, Bed, BedExt, INTERNET};
    use crate::correlate::{correlate, Config};

    const T0: u64 = 1_700_000_000_000_000_000;

    /// 100 pings out with veth latencies 1..=100 µs, replies back, and 4 more requests
    /// dropped at the bridge.
    fn report() -> Report {
        let mut bed = Bed::new();
        let pi = pi_docker(&mut bed);
        for i in 0..100u16 {
            let t = T0 + u64::from(i) * 10_000_000;
            let back = pi.request(
                &mut bed,
                2 * i as usize,
                t,
                INTERNET,
                i,
                [u64::from(i + 1) * 1000, 300_000, 0],
            );
            pi.reply(
                &mut bed,
                2 * i as usize + 1,
                back + 5_000_000,
                INTERNET,
                i,
                [0, 50_000, 20_000],
            );
        }
        let (topo, mut hops, truth) = bed.finish();
        // Requests 0, 25, 50, 75 never leave: drop their wlan0 hops.
        let wlan0 = pi.wlan0.1;
        let mut i = 0;
        hops.retain(|h| {
            let keep =
                !(h.obs.link == wlan0 && h.obs.pkttype.direction() == "Out" && truth[i] % 50 == 0);
            i += 1;
            keep
        });
        correlate(hops, &topo, &Config::default())
    }

    #[test]
    fn paths_counts_percentiles_and_loss() {
        let f = flow_stats(&report());
        assert_eq!(f.len(), 1);
        let f = &f[0];
        assert_eq!(f.label, "ICMP 172.17.0.2 > 198.51.100.101 id 16384");
        assert_eq!(f.journeys, 200);
        // 200 echoes of 98 bytes; requests 10 ms apart, the last reply 990 ms after the first
        // request (plus its round trip).
        assert_eq!(f.bytes, 200 * 98);
        assert!(
            (990_000_000..1_000_000_000).contains(&f.span_ns),
            "{}",
            f.span_ns
        );
        assert!(f.first.starts_with("1700000000.") && f.first < f.last);
        let counts: Vec<usize> = f.paths.iter().map(|p| p.count).collect();
        assert_eq!(counts, [100, 96, 4]);
        let full = f.paths.iter().find(|p| p.count == 96).unwrap();
        assert_eq!(full.complete, 96);
        let veth = &full.hops[1];
        assert_eq!(
            (veth.hop.as_str(), veth.samples),
            ("pi1:vethc426d5b In", 96)
        );
        // Latencies 1..=100 µs minus the four dropped (1, 26, 51, 76 µs).
        let kept: Vec<i64> = (1..=100)
            .filter(|v| (v - 1) % 25 != 0)
            .map(|v| v * 1000)
            .collect();
        assert_eq!(veth.p50_ns, Some(kept[47]));
        assert_eq!(veth.p90_ns, Some(kept[86]));
        assert_eq!(veth.p99_ns, Some(kept[95]));
        let lost = f.paths.iter().find(|p| p.count == 4).unwrap();
        assert_eq!((lost.lost, lost.complete), (4, 0));
        let bridge = f.loss.iter().find(|l| l.hop == "pi1:docker0 In").unwrap();
        assert_eq!((bridge.seen, bridge.lost), (100, 4));
        let mut text = Vec::new();
        write_text(&report(), &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.contains("lost after pi1:docker0 In: 4/100 (4.00%)"),
            "{text}"
        );
        assert!(
            text.contains(": 200 packets, 19600 bytes over 995.40ms, 3 paths"),
            "{text}"
        );
    }

    #[test]
    fn json_line_per_flow() {
        let mut out = Vec::new();
        write_json(&report(), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 1);
        let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(v["journeys"], 200);
        assert_eq!(v["paths"][0]["hops"][0]["p50_ns"], serde_json::Value::Null);
        assert_eq!(v["paths"][0]["hops"][1]["dir"], "Out");
    }

    #[test]
    fn nearest_rank() {
        let v: Vec<i64> = (1..=10).collect();
        assert_eq!(
            (percentile(&v, 50), percentile(&v, 90), percentile(&v, 99)),
            (Some(5), Some(9), Some(10))
        );
        assert_eq!(percentile(&[], 50), None);
    }
}

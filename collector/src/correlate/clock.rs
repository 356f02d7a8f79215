//! Board clock offsets from matched packets (minimum-delay filtering, Paxson 1998).
//!
//! For a packet sent by board A and received by board B, `d_AB = t_B − t_A = delay + θ`
//! where θ is B's clock minus A's. The other way, `d_BA = delay − θ`. Delays are never
//! negative, so `−min d_BA ≤ θ ≤ min d_AB`: the estimate is the middle of that interval,
//! `(min d_AB − min d_BA) / 2`, and its half width `(min d_AB + min d_BA) / 2` bounds the
//! error (it is at most half the smallest round trip). Minima are taken per time window so a
//! drifting clock is followed; between windows the offset is interpolated.
//!
//! Boards are chained to the reference through the pairs with the tightest bounds.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BinaryHeap};

/// One matched crossing: sent by board `from` at `t_send` (its clock), received by board
/// `to` `d` ns later as the two raw clocks read it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Sample {
    pub from: u32,
    pub to: u32,
    pub t_send: u64,
    pub d: i64,
}

/// Every board's offset from the reference board over time.
#[derive(Clone, Debug, Default)]
pub struct ClockModel {
    pub reference: Option<String>,
    /// One entry per board seen, the reference included (offset 0).
    pub boards: Vec<BoardClock>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct BoardClock {
    pub board: String,
    /// The boards whose matched traffic the estimate chains through, reference first and
    /// this board last; empty when no traffic links this board to the reference.
    pub via: Vec<String>,
    /// The offset (this board's clock − the reference clock) at the middle of each window.
    pub points: Vec<ClockPoint>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClockPoint {
    /// Middle of the window, ns since the epoch (on the clocks of the boards compared).
    pub t_ns: u64,
    pub offset_ns: i64,
    /// Half width of the interval the offset must lie in; `None` when packets were only
    /// matched in one direction, which bounds the offset on one side only (the estimate is
    /// then the smallest correction consistent with that bound).
    pub uncertainty_ns: Option<u64>,
    /// Matched crossings in the window, both directions.
    pub samples: u32,
}

impl ClockModel {
    pub fn board(&self, name: &str) -> Option<&BoardClock> {
        self.boards.iter().find(|b| b.board == name)
    }
}

impl BoardClock {
    /// Whether matched traffic ties this board's clock to the reference.
    pub fn corrected(&self) -> bool {
        !self.points.is_empty()
    }

    /// The offset at `t_ns`: linear between window points, flat outside them, 0 when
    /// uncorrected. The uncertainty is the larger of the two neighbouring points'.
    pub fn at(&self, t_ns: u64) -> (i64, Option<u64>) {
        interpolate(&self.points, t_ns).unwrap_or((0, None))
    }
}

fn interpolate(points: &[ClockPoint], t: u64) -> Option<(i64, Option<u64>)> {
    let after = points.partition_point(|p| p.t_ns <= t);
    let (a, b) = match (
        after.checked_sub(1).and_then(|i| points.get(i)),
        points.get(after),
    ) {
        (Some(a), Some(b)) => (a, b),
        (Some(p), None) | (None, Some(p)) => return Some((p.offset_ns, p.uncertainty_ns)),
        (None, None) => return None,
    };
    let span = b.t_ns.saturating_sub(a.t_ns).max(1) as f64;
    let frac = t.saturating_sub(a.t_ns) as f64 / span;
    let off = a.offset_ns as f64 + (b.offset_ns - a.offset_ns) as f64 * frac;
    let unc = a
        .uncertainty_ns
        .zip(b.uncertainty_ns)
        .map(|(x, y)| x.max(y));
    Some((off.round() as i64, unc))
}

/// The minimum delays of one board pair in one clock window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// Minima of d from the board first by name to the other, and back.
    fwd: Option<i64>,
    rev: Option<i64>,
    n: u32,
}

impl Window {
    fn merge(&mut self, o: &Window) {
        let min = |a: Option<i64>, b: Option<i64>| match (a, b) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
        self.fwd = min(self.fwd, o.fwd);
        self.rev = min(self.rev, o.rev);
        self.n = self.n.saturating_add(o.n);
    }
}

/// What the clock estimate is made from: per board pair (by name, the first by name first)
/// and per clock window (on that first board's clock), the minimum delay each way and the
/// number of crossings. Minima of minima are minima, so crossings counted apart (by the
/// correlators of different partitions) and [`merged`](Crossings::merge) estimate exactly
/// what all the traffic in one place estimates.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Crossings {
    pub window_ns: u64,
    pub pairs: BTreeMap<(String, String), BTreeMap<u64, Window>>,
}

impl Crossings {
    /// The crossings of `samples` (board ids index `names`, which is sorted).
    pub(super) fn of(samples: &[Sample], names: &[String], window_ns: u64) -> Crossings {
        let mut out = Crossings {
            window_ns,
            pairs: BTreeMap::new(),
        };
        for s in samples.iter().filter(|s| s.from != s.to) {
            let (lo, hi) = (s.from.min(s.to), s.from.max(s.to));
            let (Some(a), Some(b)) = (names.get(lo as usize), names.get(hi as usize)) else {
                continue;
            };
            // Windows are placed on lo's clock: a sample's time is when lo sent or received it.
            let t_lo = if s.from == lo {
                s.t_send
            } else {
                s.t_send.saturating_add_signed(s.d)
            };
            let w = out
                .pairs
                .entry((a.clone(), b.clone()))
                .or_default()
                .entry(t_lo / window_ns.max(1))
                .or_default();
            let slot = if s.from == lo { &mut w.fwd } else { &mut w.rev };
            *slot = Some(slot.map_or(s.d, |m| m.min(s.d)));
            w.n += 1;
        }
        out
    }

    /// Adds `other`'s crossings (of the same window length; others are ignored, with false).
    pub fn merge(&mut self, other: &Crossings) -> bool {
        if self.pairs.is_empty() && self.window_ns != other.window_ns {
            self.window_ns = other.window_ns;
        }
        if other.window_ns != self.window_ns {
            return other.pairs.is_empty();
        }
        for (pair, wins) in &other.pairs {
            let mine = self.pairs.entry(pair.clone()).or_default();
            for (i, w) in wins {
                mine.entry(*i).or_default().merge(w);
            }
        }
        true
    }

    /// Keeps, of each pair, the windows within `span_ns` of its newest: a correlator that
    /// runs for days shares a bounded record. Per pair, because windows are on the first
    /// board's clock, and a board's clock may be years off (a Pi without a real-time clock).
    pub fn keep_last(&mut self, span_ns: u64) {
        let span = span_ns / self.window_ns.max(1);
        for wins in self.pairs.values_mut() {
            if let Some(&newest) = wins.keys().last() {
                *wins = wins.split_off(&newest.saturating_sub(span));
            }
        }
        self.pairs.retain(|_, w| !w.is_empty());
    }

    /// Every board named in a pair.
    pub fn boards(&self) -> impl Iterator<Item = &String> {
        self.pairs.keys().flat_map(|(a, b)| [a, b])
    }
}

/// The offset of a pair's second board relative to its first over time.
fn pair_series(wins: &BTreeMap<u64, Window>, window_ns: u64) -> Vec<ClockPoint> {
    let mid = |i: u64| i.saturating_mul(window_ns).saturating_add(window_ns / 2);
    let two_sided: Vec<ClockPoint> = wins
        .iter()
        .filter_map(|(&i, w)| {
            let (f, r) = (w.fwd?, w.rev?);
            let unc = (f.saturating_add(r) / 2).unsigned_abs();
            Some(ClockPoint {
                t_ns: mid(i),
                offset_ns: (f - r) / 2,
                uncertainty_ns: Some(unc),
                samples: w.n,
            })
        })
        .collect();
    if !two_sided.is_empty() {
        return two_sided;
    }
    // One direction only: θ ≤ min d_fwd, or θ ≥ −min d_rev. Keep the clocks as they are if
    // that is consistent, else correct just enough.
    let fwd = wins.values().filter_map(|w| w.fwd).min();
    let rev = wins.values().filter_map(|w| w.rev).min();
    let offset_ns = match (fwd, rev) {
        (Some(f), _) => f.min(0),
        (None, Some(r)) => (-r).max(0),
        (None, None) => return Vec::new(),
    };
    let (first, last) = (
        wins.keys().next().copied().unwrap_or(0),
        wins.keys().last().copied().unwrap_or(0),
    );
    let t_ns = (mid(first) / 2).saturating_add(mid(last) / 2);
    let samples = wins.values().map(|w| w.n).sum();
    vec![ClockPoint {
        t_ns,
        offset_ns,
        uncertainty_ns: None,
        samples,
    }]
}

/// A one-sided edge costs more than any measured bound, so it is used only when needed.
const ONE_SIDED_COST: u64 = 1 << 50;

fn cost(points: &[ClockPoint]) -> u64 {
    let n = points.len().max(1) as u64;
    points
        .iter()
        .map(|p| p.uncertainty_ns.unwrap_or(ONE_SIDED_COST))
        .sum::<u64>()
        / n
}

/// The board to measure the others' clocks from, when none is asked for: the one tied by
/// crossings to the most other boards (then with the most samples; then the first by name).
/// Not simply the first by name: a board that shares no traffic (or an agent that picked a
/// name sorting first) would leave every other board "not tied".
pub(super) fn best_reference(c: &Crossings, names: &[String]) -> u32 {
    let index = |n: &String| names.iter().position(|x| x == n);
    let mut peers: BTreeMap<usize, std::collections::BTreeSet<usize>> = BTreeMap::new();
    let mut count = vec![0u64; names.len()];
    for ((a, b), wins) in &c.pairs {
        let (Some(a), Some(b)) = (index(a), index(b)) else {
            continue;
        };
        let n: u64 = wins.values().map(|w| u64::from(w.n)).sum();
        for (x, y) in [(a, b), (b, a)] {
            peers.entry(x).or_default().insert(y);
            count[x] += n;
        }
    }
    (0..names.len())
        .max_by_key(|&b| {
            let tied = peers.get(&b).map_or(0, |p| p.len());
            (tied, count[b], std::cmp::Reverse(&names[b]))
        })
        .unwrap_or(0) as u32
}

/// Estimates every board's offset from `reference` (board ids index `names`).
#[cfg(test)]
pub(super) fn estimate(
    samples: &[Sample],
    names: &[String],
    reference: u32,
    window_ns: u64,
) -> ClockModel {
    estimate_from(&Crossings::of(samples, names, window_ns), names, reference)
}

/// Estimates every board's offset from `reference` (board ids index `names`; pairs of
/// boards not in `names` are left out).
pub(super) fn estimate_from(c: &Crossings, names: &[String], reference: u32) -> ClockModel {
    let n = names.len();
    let window_ns = c.window_ns;
    let index = |x: &String| names.iter().position(|y| y == x).map(|i| i as u32);
    // Edge (lo, hi) → series of θ_hi − θ_lo (ids in name order, as the pairs are).
    let edges: BTreeMap<(u32, u32), Vec<ClockPoint>> = c
        .pairs
        .iter()
        .filter_map(|((a, b), wins)| {
            let (lo, hi) = (index(a)?, index(b)?);
            let mut pts = pair_series(wins, window_ns);
            if lo > hi {
                // Not in name order (names unsorted): the other way round.
                for p in &mut pts {
                    p.offset_ns = -p.offset_ns;
                }
            }
            Some(((lo.min(hi), lo.max(hi)), pts))
        })
        .filter(|(_, p)| !p.is_empty())
        .collect();
    // Dijkstra from the reference on summed uncertainty.
    let mut dist = vec![u64::MAX; n];
    let mut prev: Vec<Option<u32>> = vec![None; n];
    let mut heap = BinaryHeap::new();
    if let Some(d) = dist.get_mut(reference as usize) {
        *d = 0;
        heap.push(std::cmp::Reverse((0u64, reference)));
    }
    while let Some(std::cmp::Reverse((d, b))) = heap.pop() {
        if d > dist[b as usize] {
            continue;
        }
        for (&(lo, hi), pts) in &edges {
            let next = if lo == b {
                hi
            } else if hi == b {
                lo
            } else {
                continue;
            };
            let nd = d.saturating_add(cost(pts));
            if nd < dist[next as usize] {
                dist[next as usize] = nd;
                prev[next as usize] = Some(b);
                heap.push(std::cmp::Reverse((nd, next)));
            }
        }
    }
    let boards = (0..n as u32)
        .map(|b| {
            let mut path = vec![b];
            while let Some(p) = prev[*path.last().unwrap_or(&b) as usize] {
                path.push(p);
            }
            path.reverse();
            let points = if b == reference {
                Vec::new()
            } else if path.first() == Some(&reference) {
                compose(&path, &edges)
            } else {
                path.clear();
                Vec::new()
            };
            let via = if points.is_empty() {
                Vec::new()
            } else {
                path.iter().map(|&i| names[i as usize].clone()).collect()
            };
            BoardClock {
                board: names[b as usize].clone(),
                via,
                points,
            }
        })
        .collect();
    ClockModel {
        reference: names.get(reference as usize).cloned(),
        boards,
    }
}

/// Sums the edge offsets along `path` at every time any of its edges has a point.
fn compose(path: &[u32], edges: &BTreeMap<(u32, u32), Vec<ClockPoint>>) -> Vec<ClockPoint> {
    let steps: Vec<(i64, &[ClockPoint])> = path
        .windows(2)
        .filter_map(|w| {
            let (a, b) = (w[0], w[1]);
            let pts = edges.get(&(a.min(b), a.max(b)))?;
            Some((if a < b { 1 } else { -1 }, pts.as_slice()))
        })
        .collect();
    let mut times: Vec<u64> = steps
        .iter()
        .flat_map(|(_, p)| p.iter().map(|p| p.t_ns))
        .collect();
    times.sort_unstable();
    times.dedup();
    times
        .into_iter()
        .map(|t| {
            let mut point = ClockPoint {
                t_ns: t,
                offset_ns: 0,
                uncertainty_ns: Some(0),
                samples: 0,
            };
            for (sign, pts) in &steps {
                let (off, unc) = interpolate(pts, t).unwrap_or((0, None));
                point.offset_ns += sign * off;
                point.uncertainty_ns = point.uncertainty_ns.zip(unc).map(|(a, b)| a + b);
                point.samples += pts.iter().find(|p| p.t_ns == t).map_or(0, |p| p.samples);
            }
            point
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::correlate::testbed::Rng;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("pi{i}")).collect()
    }

    /// Crossings both ways between boards a and b, b's clock `skew` ahead, delays 300 µs plus
    /// exponential queueing jitter (mean 2 ms).
    fn crossings(
        rng: &mut Rng,
        a: u32,
        b: u32,
        skew: impl Fn(u64) -> i64,
        secs: u64,
    ) -> Vec<Sample> {
        let mut out = Vec::new();
        for i in 0..secs * 50 {
            let t = 1_700_000_000_000_000_000 + i * 20_000_000;
            for (from, to, sign) in [(a, b, 1), (b, a, -1)] {
                let delay = 300_000 + rng.exp(2_000_000.0) as i64;
                let t_send = if from == a {
                    t
                } else {
                    t.saturating_add_signed(skew(t))
                };
                out.push(Sample {
                    from,
                    to,
                    t_send,
                    d: delay + sign * skew(t),
                });
            }
        }
        out
    }

    #[test]
    fn recovers_a_37ms_skew_within_100us() {
        let mut rng = Rng::new(7);
        let s = crossings(&mut rng, 0, 1, |_| 37_000_000, 60);
        let model = estimate(&s, &names(2), 0, 10_000_000_000);
        let b = model.board("pi1").unwrap();
        assert_eq!(b.via, vec!["pi0", "pi1"]);
        for p in &b.points {
            assert!((p.offset_ns - 37_000_000).abs() < 100_000, "{p:?}");
            // The bound holds the truth and is about the min delay (300 µs).
            let unc = p.uncertainty_ns.unwrap() as i64;
            assert!(
                (p.offset_ns - 37_000_000).abs() <= unc && unc < 1_000_000,
                "{p:?}"
            );
        }
        let (off, _) = b.at(1_700_000_030_000_000_000);
        assert!((off - 37_000_000).abs() < 100_000);
        assert_eq!(model.board("pi0").unwrap().at(0), (0, None));
    }

    #[test]
    fn follows_a_drifting_clock() {
        // 50 ppm drift: the offset moves 3 ms over the minute.
        let mut rng = Rng::new(9);
        let t0 = 1_700_000_000_000_000_000u64;
        let skew = |t: u64| -5_000_000 + (t - t0) as i64 / 20_000;
        let s = crossings(&mut rng, 0, 1, skew, 60);
        let model = estimate(&s, &names(2), 0, 2_000_000_000);
        let b = model.board("pi1").unwrap();
        for t in [t0 + 7_000_000_000, t0 + 31_000_000_000, t0 + 52_000_000_000] {
            let (off, _) = b.at(t);
            assert!(
                (off - skew(t)).abs() < 100_000,
                "at {t}: {off} vs {}",
                skew(t)
            );
        }
    }

    #[test]
    fn chains_through_a_middle_board_and_leaves_strangers_alone() {
        let mut rng = Rng::new(11);
        let mut s = crossings(&mut rng, 0, 1, |_| 2_000_000, 20);
        s.extend(crossings(&mut rng, 1, 2, |_| -7_000_000, 20));
        let model = estimate(&s, &names(4), 0, 10_000_000_000);
        let c = model.board("pi2").unwrap();
        assert_eq!(c.via, vec!["pi0", "pi1", "pi2"]);
        let (off, unc) = c.at(1_700_000_010_000_000_000);
        assert!((off - -5_000_000).abs() < 100_000, "{off}");
        assert!(unc.is_some());
        assert!(!model.board("pi3").unwrap().corrected());
    }

    #[test]
    fn one_direction_corrects_only_as_much_as_the_bound_demands() {
        // Only pi0 → pi1; pi1's clock 10 ms behind: d = delay − 10 ms < 0 proves it is behind.
        let s: Vec<Sample> = (0..100)
            .map(|i| Sample {
                from: 0,
                to: 1,
                t_send: i * 1_000_000,
                d: 400_000 - 10_000_000 + i as i64,
            })
            .collect();
        let p = estimate(&s, &names(2), 0, 10_000_000_000).boards[1]
            .points
            .clone();
        assert_eq!(p.len(), 1);
        assert_eq!(
            (p[0].offset_ns, p[0].uncertainty_ns),
            (400_000 - 10_000_000, None)
        );
        // A positive minimum is consistent with synchronised clocks: no correction.
        let s2: Vec<Sample> = s
            .iter()
            .map(|x| Sample {
                d: x.d + 20_000_000,
                ..*x
            })
            .collect();
        assert_eq!(
            estimate(&s2, &names(2), 0, 10_000_000_000).boards[1].points[0].offset_ns,
            0
        );
    }

    /// What a partition shares of a board pair (2 minutes: 12 windows, crossings both
    /// ways every 20 ms) is a few hundred bytes: thousands of pairs fit in NATS's 1 MiB.
    #[test]
    fn two_minutes_of_a_pair_is_a_small_record() {
        let mut rng = Rng::new(3);
        let s = crossings(&mut rng, 0, 1, |_| 37_000_000, 120);
        let c = Crossings::of(&s, &names(2), 10_000_000_000);
        assert_eq!(c.pairs.values().map(BTreeMap::len).sum::<usize>(), 12);
        let bytes = postcard::to_allocvec(&c).unwrap().len();
        assert!(bytes < 300, "{bytes} bytes");
    }

    /// Each pair keeps its own last windows: a pair whose first board's clock is a year
    /// behind is not forgotten for it.
    #[test]
    fn each_pair_keeps_its_own_last_windows() {
        let mut rng = Rng::new(5);
        let mut s = crossings(&mut rng, 0, 1, |_| 0, 60);
        let year = 365 * 86_400_000_000_000u64;
        s.extend(
            crossings(&mut rng, 2, 3, |_| 0, 60)
                .into_iter()
                .map(|x| Sample {
                    t_send: x.t_send - year,
                    ..x
                }),
        );
        let mut c = Crossings::of(&s, &names(4), 10_000_000_000);
        c.keep_last(20_000_000_000);
        let kept: Vec<usize> = c.pairs.values().map(BTreeMap::len).collect();
        assert_eq!(kept, vec![3, 3]);
    }
}

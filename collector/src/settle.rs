//! `paths --follow`: which journeys of repeated correlations ([`Correlated`]) to print, and
//! when. A journey is printed once it has *settled*: no new sighting of its packet for a
//! settle time on the follower's own clock (so board clocks do not matter). Each store row
//! is printed at most once: a journey is identified by its rows, and one that holds a row
//! already handled (printed, or passed over by the selection) is a late sighting of a
//! journey that is over, and is dropped rather than printed twice.
//!
//! The caller feeds every row that arrived since it started ([`Settler::arrived`]) and
//! correlates from [`Settler::horizon`] on: the oldest row still open, minus enough context
//! for the journey window and the clock estimate, so that each correlation sees what a
//! later `paths` over the whole window sees.

use crate::correlate::{Config, Journey};
use crate::load::Correlated;
use crate::store::Cursor;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// The default settle time: the correlator's journey window (1 s: every sighting of a
/// packet lies within it) plus a second for the agents' batching and the collector's commit.
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(2);

/// Rows remembered for flow numbers this long (capture time) behind the horizon.
const FLOW_MEMORY_NS: i64 = 60_000_000_000;

#[derive(Debug)]
pub struct Settler {
    settle: Duration,
    /// Rows not yet handled, with their capture time. A row not here is handled.
    open: HashMap<Cursor, i64>,
    /// Journeys seen but not settled, by their first row: how many rows, since when.
    pending: HashMap<Cursor, (usize, Instant)>,
    /// Flow numbers given out, by the rows of the journeys printed with them.
    flow_of_row: HashMap<Cursor, (usize, i64)>,
    next_flow: usize,
    next_journey: usize,
}

/// One journey to print: its index in the report, its number among those printed, and its
/// flow number (stable across correlations, unlike the report's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settled {
    pub index: usize,
    pub number: usize,
    pub flow: usize,
}

impl Settler {
    pub fn new(settle: Duration) -> Settler {
        Settler {
            settle,
            open: HashMap::new(),
            pending: HashMap::new(),
            flow_of_row: HashMap::new(),
            next_flow: 0,
            next_journey: 0,
        }
    }

    /// What was stored when the follower started, correlated: the journeys with a sighting
    /// at or after `in_flight_from_ns` (capture time) may still grow and wait to settle like
    /// new ones; the others are printed at once, as `paths` prints them (the first `limit`
    /// wanted ones).
    pub fn start(
        &mut self,
        c: &Correlated,
        in_flight_from_ns: i64,
        limit: Option<usize>,
    ) -> Vec<Settled> {
        let flows = self.stable_flows(c);
        let mut out = Vec::new();
        for (index, j) in c.report.journeys.iter().enumerate() {
            let newest = j.inputs().map(|i| c.ts_ns[i]).max();
            if newest.is_some_and(|t| t >= in_flight_from_ns) {
                for i in j.inputs() {
                    self.arrived(c.cursors[i], c.ts_ns[i]);
                }
                continue;
            }
            if crate::load::wants(&c.wanted, j) && limit.is_none_or(|l| out.len() < l) {
                for i in j.inputs() {
                    self.flow_of_row
                        .insert(c.cursors[i], (flows[index], c.ts_ns[i]));
                }
                out.push(Settled {
                    index,
                    number: self.next_journey,
                    flow: flows[index],
                });
                self.next_journey += 1;
            }
        }
        out
    }

    /// A row stored after the follower started (or one of a journey still in flight then).
    pub fn arrived(&mut self, cursor: Cursor, ts_ns: i64) {
        self.open.insert(cursor, ts_ns);
    }

    /// Whether anything is left to settle.
    pub fn is_idle(&self) -> bool {
        self.open.is_empty()
    }

    /// Where the next correlation starts (capture time, ns): the oldest open row minus the
    /// clock window, which also covers the journey window. `None` when nothing is open.
    pub fn horizon(&self) -> Option<i64> {
        let context = i64::try_from(Config::default().clock_window_ns).unwrap_or(i64::MAX);
        let oldest = self.open.values().min()?;
        Some(oldest.saturating_sub(context))
    }

    /// The journeys of `c` that have settled by `now` and the selection wants, in report
    /// order; their rows, and those of settled journeys it does not want, become handled.
    /// `c` must hold every open row (it was correlated from [`horizon`](Self::horizon) on).
    pub fn settled(&mut self, c: &Correlated, now: Instant) -> Vec<Settled> {
        let mut out = Vec::new();
        let mut still_pending = HashSet::new();
        let mut in_some_journey = HashSet::new();
        let flows = self.stable_flows(c);
        for (index, j) in c.report.journeys.iter().enumerate() {
            let rows: Vec<Cursor> = j.inputs().map(|i| c.cursors[i]).collect();
            in_some_journey.extend(rows.iter().copied());
            let open = rows.iter().filter(|r| self.open.contains_key(r)).count();
            if open == 0 {
                continue;
            }
            if open < rows.len() {
                // Late sightings of a journey already handled.
                self.close(&rows);
                continue;
            }
            let Some(&first) = rows.iter().min() else {
                continue;
            };
            let entry = self.pending.entry(first).or_insert((rows.len(), now));
            if entry.0 != rows.len() {
                *entry = (rows.len(), now);
            }
            if now.duration_since(entry.1) < self.settle {
                still_pending.insert(first);
                continue;
            }
            self.pending.remove(&first);
            self.close(&rows);
            if crate::load::wants(&c.wanted, j) {
                let flow = flows[index];
                for (r, i) in rows.iter().zip(j.inputs()) {
                    self.flow_of_row.insert(*r, (flow, c.ts_ns[i]));
                }
                out.push(Settled {
                    index,
                    number: self.next_journey,
                    flow,
                });
                self.next_journey += 1;
            }
        }
        // Open rows in no journey (their link unknown, or outside --since/--until) can
        // never be printed.
        self.open.retain(|r, _| in_some_journey.contains(r));
        self.pending
            .retain(|first, _| still_pending.contains(first));
        if let Some(h) = self.horizon() {
            let keep_from = h.saturating_sub(FLOW_MEMORY_NS);
            self.flow_of_row.retain(|_, (_, ts)| *ts >= keep_from);
        }
        out
    }

    /// Rows handled: printed, passed over, or late.
    fn close(&mut self, rows: &[Cursor]) {
        for r in rows {
            self.open.remove(r);
        }
    }

    /// A flow number per journey of `c`: the one already given to a printed journey of the
    /// same flow, else a new one.
    fn stable_flows(&mut self, c: &Correlated) -> Vec<usize> {
        let mut by_report_flow: HashMap<usize, usize> = HashMap::new();
        for j in &c.report.journeys {
            let known = j
                .inputs()
                .find_map(|i| self.flow_of_row.get(&c.cursors[i]).map(|f| f.0));
            if let Some(f) = known {
                by_report_flow.entry(j.flow).or_insert(f);
            }
        }
        c.report
            .journeys
            .iter()
            .map(|j: &Journey| {
                *by_report_flow.entry(j.flow).or_insert_with(|| {
                    self.next_flow += 1;
                    self.next_flow - 1
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::correlate::testbed::*;
    use crate::correlate::{correlate, Config};

    /// The flannel bed's pings (two boards, skewed clocks) as rows that arrive in the
    /// order they were seen: cursor i is hop i.
    fn bed(pings: u16) -> (Topology, Vec<crate::correlate::Hop>) {
        let (topo, hops, _) = hopcap_testkit::bed::flannel_pings(pings).finish();
        (topo, hops)
    }

    use crate::correlate::Topology;

    /// The first `n` rows correlated, as the follower would see them.
    fn first(topo: &Topology, hops: &[crate::correlate::Hop], n: usize) -> Correlated {
        let hops = hops[..n].to_vec();
        Correlated {
            cursors: (0..n as i64).map(Cursor::from_raw).collect(),
            ts_ns: hops.iter().map(|h| h.obs.ts_ns as i64).collect(),
            wanted: vec![true; n],
            report: correlate(hops, topo, &Config::default()),
        }
    }

    fn rows(c: &Correlated, s: &Settled) -> Vec<Cursor> {
        c.report.journeys[s.index]
            .inputs()
            .map(|i| c.cursors[i])
            .collect()
    }

    #[test]
    fn each_journey_is_printed_once_after_it_settles() {
        let (topo, hops) = bed(6);
        let settle = Duration::from_secs(2);
        let mut s = Settler::new(settle);
        let t0 = Instant::now();
        let all = first(&topo, &hops, hops.len());
        let mut printed: Vec<Vec<Cursor>> = Vec::new();
        let mut flow_of: HashMap<Cursor, usize> = HashMap::new();
        // Rows arrive a few at a time, one poll per 250 ms, then nothing for a while.
        let mut arrived = 0;
        let polls = u32::try_from(hops.len() / 3).unwrap() + 20;
        for poll in 0..polls {
            let now = t0 + Duration::from_millis(250) * poll;
            let upto = (arrived + 3).min(hops.len());
            for (i, h) in hops.iter().enumerate().take(upto).skip(arrived) {
                s.arrived(Cursor::from_raw(i as i64), h.obs.ts_ns as i64);
            }
            arrived = upto;
            let c = first(&topo, &hops, arrived);
            let got = s.settled(&c, now);
            if poll * 250 < 2000 {
                assert!(
                    got.is_empty(),
                    "nothing settles within 2 s of its last sighting"
                );
            }
            for g in &got {
                assert_eq!(g.number, printed.len());
                printed.push(rows(&c, g));
                flow_of.extend(rows(&c, g).into_iter().map(|r| (r, g.flow)));
            }
        }
        assert!(s.is_idle());
        // Exactly the journeys of one correlation of everything, each once.
        let mut want: Vec<Vec<Cursor>> = all
            .report
            .journeys
            .iter()
            .map(|j| j.hops.iter().map(|h| all.cursors[h.input]).collect())
            .collect();
        want.sort();
        printed.sort();
        assert_eq!(printed, want);
        assert_eq!(want.len(), 12, "6 requests and 6 replies");
        // Flow numbers group the journeys as one correlation of everything does.
        for a in &all.report.journeys {
            for b in &all.report.journeys {
                let flow = |j: &Journey| flow_of[&all.cursors[j.hops[0].input]];
                assert_eq!(a.flow == b.flow, flow(a) == flow(b));
            }
        }
    }

    #[test]
    fn a_journey_that_grows_waits_and_late_sightings_are_dropped() {
        let (topo, hops) = bed(1);
        let request_len = first(&topo, &hops, hops.len()).report.journeys[0]
            .hops
            .len();
        let mut s = Settler::new(Duration::from_secs(2));
        let t0 = Instant::now();
        for i in 0..2 {
            s.arrived(Cursor::from_raw(i), hops[i as usize].obs.ts_ns as i64);
        }
        assert!(s.settled(&first(&topo, &hops, 2), t0).is_empty());
        // A third sighting at 1.5 s restarts the wait.
        s.arrived(Cursor::from_raw(2), hops[2].obs.ts_ns as i64);
        let c = first(&topo, &hops, 3);
        assert!(s.settled(&c, t0 + Duration::from_millis(1500)).is_empty());
        assert!(s.settled(&c, t0 + Duration::from_millis(3000)).is_empty());
        let got = s.settled(&c, t0 + Duration::from_millis(3500));
        assert_eq!(got.len(), 1);
        assert_eq!(rows(&c, &got[0]).len(), 3);
        assert!(
            request_len > 3,
            "the bed's request has more hops than arrived"
        );
        // The rest of that request comes too late: its journey is not printed again.
        for (i, h) in hops.iter().enumerate().take(request_len).skip(3) {
            s.arrived(Cursor::from_raw(i as i64), h.obs.ts_ns as i64);
        }
        let c = first(&topo, &hops, request_len);
        assert!(s.settled(&c, t0 + Duration::from_secs(10)).is_empty());
        assert!(s.is_idle());
    }

    #[test]
    fn unwanted_journeys_are_passed_over() {
        let (topo, hops) = bed(2);
        let mut s = Settler::new(Duration::ZERO);
        let now = Instant::now();
        let mut c = first(&topo, &hops, hops.len());
        for (i, h) in hops.iter().enumerate() {
            s.arrived(Cursor::from_raw(i as i64), h.obs.ts_ns as i64);
        }
        // Only the first journey is wanted (as --filter or --link would pick it).
        let keep = rows(
            &c,
            &Settled {
                index: 0,
                number: 0,
                flow: 0,
            },
        );
        c.wanted = c.cursors.iter().map(|r| keep.contains(r)).collect();
        assert_eq!(c.report.journeys.len(), 4);
        let got = s.settled(&c, now);
        assert_eq!(
            got,
            [Settled {
                index: 0,
                number: 0,
                flow: 0
            }]
        );
        assert!(s.is_idle(), "the unwanted ones are handled too");
        assert!(s.settled(&c, now).is_empty());
    }
}

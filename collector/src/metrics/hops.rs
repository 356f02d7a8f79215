//! Per hop pair latency, from a background correlation of what recently arrived: ingest is
//! untouched (the collector does not correlate as it stores), and the cost is bounded.
//!
//! Every tick the sampler reads the observations that arrived since the last one (arrival
//! order, at most [`MAX_ROWS_PER_TICK`]), keeps the last [`TICKS_KEPT`] ticks' worth and
//! correlates them. Each hop of a journey with a predecessor is one latency of the pair
//! (predecessor's hop name, hop's name), counted once: in the tick after the later of its
//! two observations arrived, so that a packet's observations from boards whose batches
//! arrive a tick apart are paired, and an edge is never counted again as its journey grows.
//! More arrivals than the bound in a tick: the rest of that tick's arrivals are skipped (the
//! histograms become a sample; [`HopSampler::skips`] counts it). The same correlation gives
//! each board's clock offset (Paxson, as `paths` estimates it) over the kept window.
//!
//! Hop pairs are capped at [`MAX_PAIRS`]: every pair is a histogram of
//! `HOP_BOUNDS_NS.len() + 3` series, and link names come from the agents (a board may report
//! thousands of links), so an unbounded set would let one board blow up Prometheus's memory.
//! Latencies of pairs past the cap are counted, not kept.

use super::histogram::{Histogram, Snapshot, HOP_BOUNDS_NS};
use crate::correlate::{correlate, Config, Hop};
use crate::load::{topology, topology_links};
use crate::render::paths::hop_name;
use crate::store::{Cursor, LinkId, QueryError, StoreReader, TimelineQuery};
use std::collections::{BTreeMap, VecDeque};

/// Observations correlated per tick, at most: with [`TICKS_KEPT`] ticks kept, a pass
/// correlates at most 30 000 observations (about 0.1 s of one core, by the correlate
/// benchmark's 320 000 observations/s).
pub const MAX_ROWS_PER_TICK: usize = 10_000;
/// Ticks of arrivals correlated together.
pub const TICKS_KEPT: u64 = 3;
/// Hop pairs with a histogram, at most (128 × 21 series).
pub const MAX_PAIRS: usize = 128;

/// A board's clock offset as the last correlation estimated it.
#[derive(Debug, Clone, PartialEq)]
pub struct BoardOffset {
    /// This board's clock minus the reference board's.
    pub offset_ns: i64,
    /// Half width of the interval the offset lies in (None: traffic went one way only).
    pub uncertainty_ns: Option<u64>,
}

/// What one tick found.
#[derive(Debug, Default)]
pub struct Pass {
    /// `((from, to), latency ns)`, negative latencies (clock uncertainty) counted as 0.
    pub latencies: Vec<((String, String), u64)>,
    pub reference: Option<String>,
    /// Boards tied to the reference by traffic in the window (the reference included).
    pub offsets: Vec<(String, BoardOffset)>,
    pub observations: usize,
}

#[derive(Debug)]
pub struct HopSampler {
    cursor: Cursor,
    tick: u64,
    kept: VecDeque<(u64, Vec<(LinkId, Hop)>)>,
    /// Ticks whose arrivals exceeded [`MAX_ROWS_PER_TICK`] (the rest were skipped).
    pub skips: u64,
}

impl HopSampler {
    /// Starts after what the store holds now: only new arrivals are timed.
    pub fn new(reader: &dyn StoreReader) -> Result<HopSampler, QueryError> {
        Ok(HopSampler {
            cursor: reader.last_cursor()?,
            tick: 0,
            kept: VecDeque::new(),
            skips: 0,
        })
    }

    pub fn tick(&mut self, reader: &dyn StoreReader) -> Result<Pass, QueryError> {
        self.tick += 1;
        let mut rows = Vec::new();
        let q = TimelineQuery {
            after: Some(self.cursor),
            limit: Some(MAX_ROWS_PER_TICK as i64),
            ..TimelineQuery::default()
        };
        let last = reader.arrived(&q, &mut |r| {
            rows.push((
                r.link_id,
                Hop {
                    board: r.board,
                    obs: r.obs,
                },
            ));
            true
        })?;
        self.cursor = last.unwrap_or(self.cursor).max(self.cursor);
        if rows.len() >= MAX_ROWS_PER_TICK {
            self.cursor = reader.last_cursor()?.max(self.cursor);
            self.skips += 1;
        }
        self.kept.push_back((self.tick, rows));
        while self
            .kept
            .front()
            .is_some_and(|(t, _)| t + TICKS_KEPT <= self.tick)
        {
            self.kept.pop_front();
        }
        let links = topology_links(reader)?;
        let topo = topology(&links);
        let mut hops = Vec::new();
        let mut arrived = Vec::new();
        for (t, rows) in &self.kept {
            for (link, hop) in rows {
                if let Some((_, info)) = links.get(link) {
                    let mut hop = hop.clone();
                    hop.obs.link = info.key;
                    hops.push(hop);
                    arrived.push(*t);
                }
            }
        }
        let observations = hops.len();
        let report = correlate(hops, &topo, &Config::default());
        let due = self.tick.saturating_sub(1);
        let mut latencies = Vec::new();
        for j in &report.journeys {
            for h in &j.hops {
                let (Some(p), Some(lat)) = (h.prev, h.latency_ns) else {
                    continue;
                };
                let Some(p) = j.hops.get(p) else { continue };
                let when = arrived.get(h.input).max(arrived.get(p.input));
                if when != Some(&due) {
                    continue;
                }
                // Across boards whose clocks no traffic ties together, the difference of
                // capture times is not a latency.
                let untied = h.clock_uncertainty_ns.is_none() || p.clock_uncertainty_ns.is_none();
                if h.hop.board != p.hop.board && untied {
                    continue;
                }
                latencies.push(((hop_name(p), hop_name(h)), lat.max(0) as u64));
            }
        }
        let reference = report.clock.reference.clone();
        let offsets = report
            .clock
            .boards
            .iter()
            .filter_map(|b| {
                let figure = if Some(&b.board) == reference.as_ref() {
                    BoardOffset {
                        offset_ns: 0,
                        uncertainty_ns: Some(0),
                    }
                } else {
                    let p = b.points.last()?;
                    BoardOffset {
                        offset_ns: p.offset_ns,
                        uncertainty_ns: p.uncertainty_ns,
                    }
                };
                Some((b.board.clone(), figure))
            })
            .collect();
        Ok(Pass {
            latencies,
            reference,
            offsets,
            observations,
        })
    }
}

/// The hop pairs' histograms, capped at [`MAX_PAIRS`].
#[derive(Debug, Default)]
pub struct HopHistograms {
    pairs: BTreeMap<(String, String), Histogram>,
    /// Latencies of pairs past the cap, not kept.
    pub overflow: u64,
}

impl HopHistograms {
    pub fn observe(&mut self, pair: (String, String), ns: u64) {
        if let Some(h) = self.pairs.get(&pair) {
            h.observe_ns(ns);
        } else if self.pairs.len() < MAX_PAIRS {
            let h = Histogram::new(HOP_BOUNDS_NS);
            h.observe_ns(ns);
            self.pairs.insert(pair, h);
        } else {
            self.overflow += 1;
        }
    }

    /// Every pair, by name.
    pub fn snapshots(&self) -> Vec<(&str, &str, Snapshot)> {
        self.pairs
            .iter()
            .map(|((from, to), h)| (from.as_str(), to.as_str(), h.snapshot()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_past_the_cap_are_counted_not_kept() {
        let mut h = HopHistograms::default();
        for i in 0..MAX_PAIRS + 5 {
            h.observe((format!("a{i}"), "b".into()), 10);
        }
        h.observe(("a0".into(), "b".into()), 20);
        assert_eq!(h.snapshots().len(), MAX_PAIRS);
        assert_eq!(h.overflow, 5);
        let a0 = h.snapshots().into_iter().find(|s| s.0 == "a0").unwrap().2;
        assert_eq!(a0.count, 2);
    }
}

//! A fixed-bucket histogram that many threads observe into without a lock (one atomic add
//! per bucket hit), and the bucket bounds the collector's histograms use. A leaf: it imports
//! nothing of the crate, so ingest can count into one without depending on the rest of
//! metrics.

use std::sync::atomic::{AtomicU64, Ordering};

/// Ack latency: the writer commits every 20 ms at most (more under load or a slow disk).
pub const ACK_BOUNDS_NS: &[u64] = &[
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// Hop latency: microseconds inside a board (veth, bridge), milliseconds across boards and
/// radio links.
pub const HOP_BOUNDS_NS: &[u64] = &[
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    1_000_000_000,
];

#[derive(Debug)]
pub struct Histogram {
    /// Upper bounds (inclusive, ns), rising; a last bucket above them all (+Inf).
    bounds: &'static [u64],
    /// Per bucket, not cumulative (one add per observation).
    counts: Vec<AtomicU64>,
    sum_ns: AtomicU64,
}

/// A histogram as read at one moment, in the exposition's terms.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// `(le in ns, cumulative count)` per bound; `count` is the +Inf bucket.
    pub buckets: Vec<(u64, u64)>,
    pub count: u64,
    pub sum_ns: u64,
}

impl Histogram {
    pub fn new(bounds: &'static [u64]) -> Histogram {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
        }
    }

    pub fn observe_ns(&self, ns: u64) {
        let i = self.bounds.partition_point(|&b| b < ns);
        if let Some(c) = self.counts.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Cumulative counts; the total is their sum, so the +Inf bucket always equals `count`
    /// even while other threads observe.
    pub fn snapshot(&self) -> Snapshot {
        let mut total = 0u64;
        let mut buckets = Vec::with_capacity(self.bounds.len());
        for (i, c) in self.counts.iter().enumerate() {
            total = total.saturating_add(c.load(Ordering::Relaxed));
            if let Some(&le) = self.bounds.get(i) {
                buckets.push((le, total));
            }
        }
        Snapshot {
            buckets,
            count: total,
            sum_ns: self.sum_ns.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_bounds_inclusive() {
        let h = Histogram::new(&[10, 100]);
        for ns in [5, 10, 11, 100, 1000] {
            h.observe_ns(ns);
        }
        let s = h.snapshot();
        assert_eq!(s.buckets, [(10, 2), (100, 4)]);
        assert_eq!((s.count, s.sum_ns), (5, 1126));
    }

    #[test]
    fn bounds_rise() {
        for b in [ACK_BOUNDS_NS, HOP_BOUNDS_NS] {
            assert!(b.windows(2).all(|w| w[0] < w[1]));
        }
    }
}

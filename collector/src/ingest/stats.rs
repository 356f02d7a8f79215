//! What ingest counts as it goes, for metrics: records and batches received, connections
//! open, and how long a batch waits between its arrival and its acknowledgement. Atomics
//! only: counting costs a connection thread a few relaxed adds per batch.

use crate::metrics::histogram::{Histogram, ACK_BOUNDS_NS};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

#[derive(Debug)]
pub struct IngestStats {
    records: AtomicU64,
    batches: AtomicU64,
    pub(super) connections: AtomicUsize,
    ack_latency: Histogram,
}

impl Default for IngestStats {
    fn default() -> Self {
        IngestStats {
            records: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            connections: AtomicUsize::new(0),
            ack_latency: Histogram::new(ACK_BOUNDS_NS),
        }
    }
}

impl IngestStats {
    /// Records decoded from batches, duplicates and undecodable tails aside.
    pub fn records(&self) -> u64 {
        self.records.load(Ordering::Relaxed)
    }

    pub fn batches(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    pub fn ack_latency(&self) -> &Histogram {
        &self.ack_latency
    }

    pub(super) fn batch(&self, records: usize) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.records.fetch_add(records as u64, Ordering::Relaxed);
    }
}

/// Batches of one connection not yet acknowledged: when each arrived. Bounded: an agent
/// keeps a window of unacknowledged batches far smaller; past the bound the newest are not
/// timed (their ack still goes out).
#[derive(Debug, Default)]
pub(super) struct AckTimer {
    waiting: VecDeque<(u64, Instant)>,
}

const MAX_TIMED: usize = 4096;

impl AckTimer {
    pub(super) fn received(&mut self, seq: u64) {
        if self.waiting.len() < MAX_TIMED {
            self.waiting.push_back((seq, Instant::now()));
        }
    }

    /// Every batch below `committed` (the cumulative ack's watermark) is acknowledged now.
    pub(super) fn acknowledged(&mut self, committed: u64, stats: &IngestStats) {
        while let Some(&(seq, at)) = self.waiting.front() {
            if seq >= committed {
                break;
            }
            let ns = u64::try_from(at.elapsed().as_nanos()).unwrap_or(u64::MAX);
            stats.ack_latency.observe_ns(ns);
            self.waiting.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_time_every_batch_below_the_watermark_once() {
        let stats = IngestStats::default();
        let mut t = AckTimer::default();
        for seq in [0, 1, 2] {
            t.received(seq);
        }
        t.acknowledged(2, &stats);
        assert_eq!(stats.ack_latency().snapshot().count, 2);
        t.acknowledged(2, &stats);
        t.acknowledged(3, &stats);
        assert_eq!(stats.ack_latency().snapshot().count, 3);
    }
}

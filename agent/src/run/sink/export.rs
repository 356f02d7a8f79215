//! `--collector`: observations batched for the exporter, together with the topology changes
//! and stats that must reach the collector in order with them.

use super::{Captured, Counts, Sink};
use crate::clock::monotonic_ns;
use crate::clock_watch::Step;
use crate::export::{lock, ExportTotals, Exporter};
use crate::links::{Change, LinkTable};
use crate::run::hello::{control_frame, links_frames, Topology};
use hopcap_proto::batch::BatchEncoder;
use hopcap_proto::frame::encode;
use hopcap_proto::message::{
    Bye, ClockStep, LinkRemoved, LinkStats, Message, Stats, STATS_PER_MESSAGE,
};
use std::io;
use std::time::Duration;

/// Bytes per batch: small enough to ship every 200 ms on a quiet board, large enough to
/// amortise the header and flow definitions under load.
const BATCH_BYTES: usize = 16 * 1024;

/// How long the end of a run waits for the collector to acknowledge what is queued.
const FINAL_GRACE: Duration = Duration::from_secs(3);

pub struct ExportSink {
    encoder: Box<BatchEncoder>,
    exporter: Option<Exporter>,
    topology: Topology,
    /// Control frames (topology changes, stats) that travel in front of the next batch.
    control: Vec<u8>,
    frame: Vec<u8>,
    last_monotonic: u64,
}

impl std::fmt::Debug for ExportSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportSink")
            .field("records", &self.encoder.count())
            .field("control_bytes", &self.control.len())
            .field("exporter", &self.exporter)
            .finish_non_exhaustive()
    }
}

/// The batch encoder (~230 KB) is built by value and then boxed: building it touches that
/// much stack twice over, and those pages stay resident on the thread that did it (measured:
/// 460 KB of the capture thread's stack, a fifth of the agent's RSS). A short-lived thread
/// builds it instead, and its stack goes with it.
fn boxed_encoder(board: &str, snap_bytes: u16) -> Box<BatchEncoder> {
    let spawned = std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("hopcap-init".into())
            .spawn_scoped(s, || build_encoder(board, snap_bytes))
            .ok()
            .and_then(|t| t.join().ok())
    });
    spawned.unwrap_or_else(|| build_encoder(board, snap_bytes))
}

/// Not inlined: a caller holding the by-value encoder in its own frame would touch every page
/// of it (stack probes) even on the path that does not build it.
#[inline(never)]
fn build_encoder(board: &str, snap_bytes: u16) -> Box<BatchEncoder> {
    Box::new(BatchEncoder::with_snap_bytes(
        board,
        BATCH_BYTES,
        snap_bytes,
    ))
}

impl ExportSink {
    /// `snap_bytes`: frame bytes shipped with each observation (0: none).
    pub fn new(board: &str, exporter: Exporter, topology: Topology, snap_bytes: u16) -> ExportSink {
        ExportSink {
            encoder: boxed_encoder(board, snap_bytes),
            exporter: Some(exporter),
            topology,
            control: Vec::new(),
            frame: vec![0; BATCH_BYTES + 1024],
            last_monotonic: monotonic_ns(),
        }
    }

    /// Closes the current batch and queues it with the control frames in front of it. Every
    /// batch starts from fresh codec state so it decodes on its own: a queue that drops or
    /// resends batches never desynchronises the collector.
    fn ship(&mut self) {
        self.ship_with(&[], false);
    }

    /// [`ship`](Self::ship), with `trailer` (frames) after the batch; `last`: the run's last.
    fn ship_with(&mut self, trailer: &[u8], last: bool) {
        let seq = self.encoder.next_seq();
        let records = self.encoder.count();
        let body = self.encoder.finish();
        let n = match encode(&Message::Batch(body), &mut self.frame) {
            Ok(n) => n,
            Err(err) => {
                log::error!("cannot frame batch {seq}: {err}");
                0
            }
        };
        let mut item = std::mem::take(&mut self.control);
        item.extend_from_slice(&self.frame[..n]);
        item.extend_from_slice(trailer);
        match &self.exporter {
            Some(x) if last => x.push_last(seq, item, records),
            Some(x) => x.push(seq, item, records),
            None => {}
        }
    }

    /// Closes the batch in progress (its observations are on the old clock), and has the
    /// exporter tell the collector that the batches before the next one are.
    fn clock_stepped(&mut self, step: &Step) {
        if !self.encoder.is_empty() {
            self.ship();
        }
        if let Some(x) = &self.exporter {
            x.clock_step(ClockStep {
                first_batch: self.encoder.next_seq(),
                delta_ns: step.delta_ns,
                at_ns: step.at_real_ns,
            });
        }
    }

    /// Queues the Stats frames of `counts` in front of the next batch.
    fn queue_stats(&mut self, counts: Counts<'_>, interval: Duration) {
        let now = monotonic_ns();
        self.last_monotonic = now;
        let Some(exporter) = &self.exporter else {
            return;
        };
        let totals = exporter.counters().totals();
        let (kernel_drops, freeze, losing) = counts.namespaces.iter().fold((0, 0, 0), |a, s| {
            (
                a.0 + s.stats.kernel_drops,
                a.1 + s.stats.freeze_q,
                a.2 + s.stats.losing_frames,
            )
        });
        let clock_sync = crate::sys::time::clock_sync();
        let mut keys: Vec<_> = counts.per_link.iter().collect();
        keys.sort();
        let mut chunks: Vec<&[_]> = keys.chunks(STATS_PER_MESSAGE).collect();
        if chunks.is_empty() {
            chunks.push(&[]);
        }
        for (i, chunk) in chunks.iter().enumerate() {
            let mut links = heapless::Vec::new();
            for (key, packets) in chunk.iter() {
                let _ = links.push(LinkStats {
                    key: **key,
                    packets: **packets,
                    ..LinkStats::default()
                });
            }
            let stats = Stats {
                monotonic_ns: now,
                interval_ns: interval.as_nanos() as u64,
                // Dropped for certain (never written); the unconfirmed are the collector's to judge.
                queue_drops: totals.records_dropped,
                records_sent: totals.records_sent,
                batches_sent: totals.batches_sent,
                // Socket-wide counters go with the first message only.
                kernel_drops: if i == 0 { kernel_drops } else { 0 },
                freeze_count: if i == 0 { freeze } else { 0 },
                losing_frames: if i == 0 { losing } else { 0 },
                links,
                clock: clock_sync,
            };
            if let Some(f) = control_frame(&Message::Stats(stats)) {
                self.control.extend_from_slice(&f);
            }
        }
    }
}

/// The agent's own account of delivery. It claims no drop it cannot know of: a batch given up
/// after it was written may have been stored, so its records are "unconfirmed", and the
/// collector's `boards` has their fate.
pub fn summary_line(t: &ExportTotals) -> String {
    // Tenths in integers: float formatting would cost the binary ~15 KB for two numbers.
    let tenths = (u128::from(t.bytes_sent) * 10 + u128::from(t.records_sent) / 2)
        .checked_div(u128::from(t.records_sent))
        .unwrap_or(0);
    format!(
        "collector: {} records in {} batches acknowledged ({} bytes sent, {}.{} bytes/record), {} records dropped, {} records unconfirmed{}, {} connects, {} failed connects",
        t.records_sent,
        t.batches_sent,
        t.bytes_sent,
        tenths / 10,
        tenths % 10,
        t.records_dropped,
        t.records_unconfirmed,
        if t.records_unconfirmed > 0 {
            " (sent, not acknowledged: `hopcap-collector boards` says whether they were stored)"
        } else {
            ""
        },
        t.connects,
        t.connect_failures
    )
}

impl Sink for ExportSink {
    fn clock_step(&mut self, step: &Step) {
        self.clock_stepped(step);
    }

    fn push(&mut self, packet: &Captured<'_>) {
        // The encoder keeps the first `snap_bytes` of the frame (none when that is 0).
        if self
            .encoder
            .push_with_bytes(packet.obs, packet.bytes())
            .is_err()
        {
            self.ship();
            // A fresh batch always has room for one record.
            let _ = self.encoder.push_with_bytes(packet.obs, packet.bytes());
        }
    }

    /// The collector learns topology changes before any record that names a new link.
    fn topology(&mut self, changes: &[Change]) {
        let mut changed = Vec::new();
        for c in changes {
            match c {
                Change::Added(l) | Change::Updated(l) => {
                    lock(&self.topology).insert(l.key, l.clone());
                    changed.push(l.clone());
                }
                Change::Removed(key) => {
                    lock(&self.topology).remove(key);
                    let removed = Message::LinkRemoved(LinkRemoved { key: *key });
                    if let Some(f) = control_frame(&removed) {
                        self.control.extend_from_slice(&f);
                    }
                }
                Change::NetnsAdded(_) | Change::NetnsRemoved(_) => {}
            }
        }
        for f in links_frames(&changed, false).into_iter().flatten() {
            self.control.extend_from_slice(&f);
        }
    }

    fn stats(&mut self, counts: Counts<'_>, interval: Duration) {
        self.queue_stats(counts, interval);
    }

    fn flush(&mut self) {
        if !self.encoder.is_empty() || !self.control.is_empty() {
            self.ship();
        }
    }

    /// Final stats, the Bye, and up to [`FINAL_GRACE`] to deliver what is queued.
    fn finish(&mut self, _links: &LinkTable, counts: Counts<'_>) -> io::Result<Vec<String>> {
        self.flush();
        let interval = Duration::from_nanos(monotonic_ns().saturating_sub(self.last_monotonic));
        self.queue_stats(counts, interval);
        // The Bye rides behind the last batch, so the collector reads it last.
        let bye = Bye {
            batches_sent: self.encoder.next_seq() + 1,
        };
        self.ship_with(&control_frame(&Message::Bye(bye)).unwrap_or_default(), true);
        let Some(exporter) = self.exporter.take() else {
            return Ok(Vec::new());
        };
        let t = exporter.shutdown(FINAL_GRACE);
        Ok(vec![summary_line(&t)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_per_record_is_rounded_to_tenths_without_floats() {
        let t = ExportTotals {
            records_sent: 150,
            batches_sent: 12,
            bytes_sent: 3_165,
            ..ExportTotals::default()
        };
        assert!(summary_line(&t).contains("(3165 bytes sent, 21.1 bytes/record)"));
        let none = ExportTotals::default();
        assert!(summary_line(&none).contains("(0 bytes sent, 0.0 bytes/record)"));
        let half = ExportTotals {
            records_sent: 20,
            bytes_sent: 1,
            ..ExportTotals::default()
        };
        assert!(
            summary_line(&half).contains("0.1 bytes/record"),
            "{}",
            summary_line(&half)
        );
    }
}

//! Where observations go: printed locally, or batched for the collector together with the
//! topology changes and stats that must reach it in order.

use super::hello::{control_frame, links_frames, monotonic_ns, Topology};
use crate::capture::NsStats;
use crate::cli::OutputMode;
use crate::export::lock;
use crate::export::Exporter;
use crate::links::{Change, LinkTable};
use hopcap_proto::batch::BatchEncoder;
use hopcap_proto::frame::encode;
use hopcap_proto::message::{Bye, LinkRemoved, LinkStats, Message, Stats, STATS_PER_MESSAGE};
use hopcap_proto::print::{write_json_observation, write_line};
use hopcap_proto::record::{LinkKey, Observation};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, BufWriter, Stdout, Write};
use std::time::{Duration, Instant};

/// Bytes per batch: small enough to ship every 200 ms on a quiet board, large enough to
/// amortise the header and flow definitions under load.
const BATCH_BYTES: usize = 16 * 1024;

pub enum Sink {
    Print(PrintSink),
    Export(Box<ExportSink>),
}

pub struct PrintSink {
    mode: OutputMode,
    board: String,
    out: BufWriter<Stdout>,
    /// Reused for every line: no allocation per packet once it has grown.
    line: String,
    /// Observations held back so that lines from all namespaces come out in time order:
    /// a ring hands out a block up to its retire timeout (50 ms) after its first frame.
    pending: Vec<(Instant, Observation)>,
}

/// How long an observation waits for earlier ones from other sockets.
const HOLD: Duration = Duration::from_millis(150);

pub struct ExportSink {
    encoder: Box<BatchEncoder>,
    exporter: Option<Exporter>,
    topology: Topology,
    /// Control frames (topology changes, stats) that travel in front of the next batch.
    control: Vec<u8>,
    frame: Vec<u8>,
    last_monotonic: u64,
}

impl Sink {
    pub fn print(mode: OutputMode, board: &str) -> Sink {
        Sink::Print(PrintSink {
            mode,
            board: board.to_string(),
            out: BufWriter::with_capacity(64 * 1024, io::stdout()),
            line: String::with_capacity(256),
            pending: Vec::with_capacity(4096),
        })
    }

    pub fn export(board: &str, exporter: Exporter, topology: Topology) -> Sink {
        Sink::Export(Box::new(ExportSink {
            encoder: Box::new(BatchEncoder::new(board, BATCH_BYTES)),
            exporter: Some(exporter),
            topology,
            control: Vec::new(),
            frame: vec![0; BATCH_BYTES + 1024],
            last_monotonic: monotonic_ns(),
        }))
    }

    pub fn push(&mut self, obs: &Observation) {
        match self {
            Sink::Print(p) => p.pending.push((Instant::now(), obs.clone())),
            Sink::Export(e) => {
                if e.encoder.push(obs).is_err() {
                    e.ship();
                    // A fresh batch always has room for one record.
                    let _ = e.encoder.push(obs);
                }
            }
        }
    }

    /// Prints what has waited long enough (everything when `all`), in time order; equal
    /// timestamps keep arrival order, which within one socket is capture order.
    pub fn release(&mut self, links: &LinkTable, all: bool) -> io::Result<()> {
        let Sink::Print(p) = self else { return Ok(()) };
        if p.pending.is_empty() {
            return Ok(());
        }
        p.pending.sort_by_key(|(_, o)| o.ts_ns);
        let cutoff = Instant::now().checked_sub(HOLD);
        let upto = if all {
            u64::MAX
        } else {
            p.pending
                .iter()
                .filter(|(t, _)| cutoff.is_some_and(|c| *t <= c))
                .map(|(_, o)| o.ts_ns)
                .max()
                .unwrap_or(0)
        };
        let n = p.pending.partition_point(|(_, o)| o.ts_ns <= upto);
        let mut result = Ok(());
        // Taken out and put back, so the buffer keeps its capacity across calls.
        let mut pending = std::mem::take(&mut p.pending);
        for (_, obs) in pending.drain(..n) {
            if result.is_ok() {
                result = p.write(&obs, links);
            }
        }
        p.pending = pending;
        result?;
        p.out.flush()
    }
}

impl PrintSink {
    fn write(&mut self, obs: &Observation, links: &LinkTable) -> io::Result<()> {
        {
            {
                let p = &mut *self;
                let (netns, name) = links
                    .link(obs.link)
                    .map_or(("", "?"), |l| (l.netns.as_str(), l.name.as_str()));
                p.line.clear();
                let r = match p.mode {
                    OutputMode::Print => {
                        let label = LinkLabel { netns, name };
                        // A small stack buffer would do, but the label is written once per line.
                        let mut l = heapless::String::<80>::new();
                        let _ = write!(l, "{label}");
                        write_line(
                            &mut p.line,
                            obs.ts_ns,
                            &l,
                            Some(obs.pkttype),
                            &obs.summary,
                            obs.wire_len,
                        )
                    }
                    OutputMode::Json => {
                        write_json_observation(&mut p.line, &p.board, netns, name, obs)
                    }
                };
                r.map_err(|_| io::Error::other("formatting failed"))?;
                p.line.push('\n');
                p.out.write_all(p.line.as_bytes())
            }
        }
    }
}

impl Sink {
    /// Topology changes: the collector learns them before any record that names a new link.
    pub fn topology(&mut self, changes: &[Change]) {
        let Sink::Export(e) = self else { return };
        let mut changed = Vec::new();
        for c in changes {
            match c {
                Change::Added(l) | Change::Updated(l) => {
                    lock(&e.topology).insert(l.key, l.clone());
                    changed.push(l.clone());
                }
                Change::Removed(key) => {
                    lock(&e.topology).remove(key);
                    if let Some(f) = control_frame(&Message::LinkRemoved(LinkRemoved { key: *key }))
                    {
                        e.control.extend_from_slice(&f);
                    }
                }
                Change::NetnsAdded(_) | Change::NetnsRemoved(_) => {}
            }
        }
        for f in links_frames(&changed, false).into_iter().flatten() {
            e.control.extend_from_slice(&f);
        }
    }

    pub fn stats(&mut self, ns: &[NsStats], per_link: &HashMap<LinkKey, u64>, interval: Duration) {
        let Sink::Export(e) = self else { return };
        for f in e.stats_frames(ns, per_link, interval) {
            e.control.extend_from_slice(&f);
        }
    }

    /// Ships the current batch (with any control frames) to the exporter.
    pub fn flush(&mut self) {
        if let Sink::Export(e) = self {
            if !e.encoder.is_empty() || !e.control.is_empty() {
                e.ship();
            }
        }
    }

    /// Final stats, the Bye, and up to 3 s to deliver what is queued.
    pub fn finish(&mut self, ns: &[NsStats], per_link: &HashMap<LinkKey, u64>) -> Vec<String> {
        let Sink::Export(e) = self else {
            return Vec::new();
        };
        let interval = Duration::from_nanos(monotonic_ns().saturating_sub(e.last_monotonic));
        for f in e.stats_frames(ns, per_link, interval) {
            e.control.extend_from_slice(&f);
        }
        // The Bye rides behind the last batch, so the collector reads it last.
        let bye = Bye {
            batches_sent: e.encoder.next_seq() + 1,
        };
        e.ship_with(&control_frame(&Message::Bye(bye)).unwrap_or_default());
        let Some(exporter) = e.exporter.take() else {
            return Vec::new();
        };
        let t = exporter.shutdown(Duration::from_secs(3));
        vec![format!(
            "collector: {} records in {} batches acknowledged ({} bytes sent, {:.1} bytes/record), {} records dropped, {} connects, {} failed connects",
            t.records_sent,
            t.batches_sent,
            t.bytes_sent,
            if t.records_sent > 0 { t.bytes_sent as f64 / t.records_sent as f64 } else { 0.0 },
            t.records_dropped,
            t.connects,
            t.connect_failures
        )]
    }
}

impl ExportSink {
    /// Closes the current batch and queues it with the control frames in front of it. Every
    /// batch starts from fresh codec state so it decodes on its own: a queue that drops or
    /// resends batches never desynchronises the collector.
    fn ship(&mut self) {
        self.ship_with(&[]);
    }

    /// [`ship`](Self::ship), with `trailer` (frames) after the batch.
    fn ship_with(&mut self, trailer: &[u8]) {
        let seq = self.encoder.next_seq();
        let records = self.encoder.count();
        let body = self.encoder.finish();
        let n = match encode(&Message::Batch(body), &mut self.frame) {
            Ok(n) => n,
            Err(err) => {
                log::error!("cannot frame batch {seq}: {err:?}");
                0
            }
        };
        let mut item = std::mem::take(&mut self.control);
        item.extend_from_slice(&self.frame[..n]);
        item.extend_from_slice(trailer);
        self.encoder.reset();
        if let Some(x) = &self.exporter {
            x.push(seq, item, records);
        }
    }

    fn stats_frames(
        &mut self,
        ns: &[NsStats],
        per_link: &HashMap<LinkKey, u64>,
        interval: Duration,
    ) -> Vec<Vec<u8>> {
        let now = monotonic_ns();
        self.last_monotonic = now;
        let Some(exporter) = &self.exporter else {
            return Vec::new();
        };
        let totals = exporter.counters().totals();
        let (kernel_drops, freeze, losing) = ns.iter().fold((0, 0, 0), |a, s| {
            (
                a.0 + s.stats.kernel_drops,
                a.1 + s.stats.freeze_q,
                a.2 + s.stats.losing_frames,
            )
        });
        let mut keys: Vec<_> = per_link.iter().collect();
        keys.sort();
        let mut chunks: Vec<Vec<(&LinkKey, &u64)>> =
            keys.chunks(STATS_PER_MESSAGE).map(<[_]>::to_vec).collect();
        if chunks.is_empty() {
            chunks.push(Vec::new());
        }
        let mut out = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            let mut links = heapless::Vec::new();
            for (key, packets) in chunk {
                let _ = links.push(LinkStats {
                    key: **key,
                    packets: **packets,
                    ..LinkStats::default()
                });
            }
            let stats = Stats {
                monotonic_ns: now,
                interval_ns: interval.as_nanos() as u64,
                queue_drops: totals.records_dropped,
                records_sent: totals.records_sent,
                batches_sent: totals.batches_sent,
                // Socket-wide counters go with the first message only.
                kernel_drops: if i == 0 { kernel_drops } else { 0 },
                freeze_count: if i == 0 { freeze } else { 0 },
                losing_frames: if i == 0 { losing } else { 0 },
                links,
            };
            if let Some(f) = control_frame(&Message::Stats(stats)) {
                out.push(f);
            }
        }
        out
    }
}

struct LinkLabel<'a> {
    netns: &'a str,
    name: &'a str,
}

impl std::fmt::Display for LinkLabel<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.netns.is_empty() {
            f.write_str(self.name)
        } else {
            write!(f, "{}:{}", self.netns, self.name)
        }
    }
}

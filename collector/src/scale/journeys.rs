//! A partition consumer's journey building around [`Builder`]: the messages held until
//! their rows are in stored journeys, redelivered rows that are members already, the tick
//! that settles and stores journeys, and the clock crossings shared with the other
//! partitions.

use super::build::{rows_of, Builder, Links, MessageKey};
use super::clock_share;
use super::consume::{IntakeCounts, JourneyBuilding};
use crate::correlate::{Config, Topology};
use crate::load::{drop_intervals, sampling_boards, topology, topology_links, StoreLinks};
use crate::store::{JourneyStore, LinkId, QueryError, RowKey, StoreReader};
use async_nats::jetstream::kv;
use async_nats::jetstream::{AckKind, Message};
use hopcap_proto::record::Observation;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How often waiting rows are correlated.
const TICK: Duration = Duration::from_millis(500);
/// How often the links are read again while rows wait (a board's links arrive on the meta
/// stream, possibly after its first rows), and the capture drops and sampling boards.
const LINKS_EVERY: Duration = Duration::from_secs(1);
const BOARDS_EVERY: Duration = Duration::from_secs(5);
/// A held message is told to JetStream to be in progress this often, so that its ack wait
/// (30 s) does not run out while a journey of it grows or the journey store is down.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// A stored batch part's rows.
pub(super) struct PartRows {
    pub key: MessageKey,
    pub positions: Vec<u32>,
    pub rows: Vec<(LinkId, Observation)>,
}

pub(super) struct Journeys {
    k: u32,
    of: u32,
    builder: Builder,
    /// Messages whose rows wait, with when JetStream last heard of them.
    held: HashMap<MessageKey, (Message, Instant)>,
    store: Box<dyn JourneyStore>,
    reader: Box<dyn StoreReader + Send>,
    bucket: kv::Store,
    links: StoreLinks,
    topology: Topology,
    links_at: Option<Instant>,
    cfg: Config,
    boards_at: Option<Instant>,
    ticked: Instant,
}

impl Journeys {
    pub(super) fn new(k: u32, of: u32, b: JourneyBuilding, bucket: kv::Store) -> Journeys {
        let cfg = Config::default();
        Journeys {
            k,
            of,
            builder: Builder::new(k, b.settle, cfg.clock_window_ns),
            held: HashMap::new(),
            store: b.journeys,
            reader: b.reader,
            bucket,
            links: StoreLinks::new(),
            topology: Topology::default(),
            links_at: None,
            cfg,
            boards_at: None,
            ticked: Instant::now(),
        }
    }

    /// Takes stored messages' rows; returns what to acknowledge now (messages left with no
    /// row to wait for) or give back (when the journey store cannot say which redelivered
    /// rows it has).
    pub(super) fn take(
        &mut self,
        stored: Vec<(Message, Box<PartRows>)>,
        counts: &IntakeCounts,
    ) -> Vec<(Message, AckKind)> {
        let mut out = Vec::new();
        let redelivered: Vec<_> = stored
            .iter()
            .filter(|(m, _)| m.info().is_ok_and(|i| i.delivered > 1))
            .map(|(_, p)| (p.key.0, p.key.1))
            .collect();
        let members: HashSet<RowKey> = if redelivered.is_empty() {
            HashSet::new()
        } else {
            match self.store.members_of(&redelivered) {
                Ok(m) => m.into_iter().collect(),
                Err(e) => {
                    log::warn!("journeys: which redelivered rows are stored: {e}; given back");
                    return stored
                        .into_iter()
                        .map(|(m, _)| (m, AckKind::Nak(Some(Duration::from_secs(1)))))
                        .collect();
                }
            }
        };
        let now = Instant::now();
        for (m, p) in stored {
            let PartRows {
                key,
                positions,
                rows,
            } = *p;
            let mut rows = rows_of(key.0, key.1, &positions, rows);
            let before = rows.len();
            rows.retain(|r| !members.contains(&r.key));
            counts
                .rows_in_journeys_already
                .fetch_add((before - rows.len()) as u64, Ordering::Relaxed);
            // A message delivered again while its rows wait replaces the older delivery.
            self.builder.take(key, rows, now);
            if self.builder.done(&key) {
                out.push((m, AckKind::Ack));
            } else {
                self.held.insert(key, (m, now));
            }
        }
        counts
            .waiting_rows
            .store(self.builder.waiting() as u64, Ordering::Relaxed);
        out
    }

    /// Every [`TICK`]: settles, stores and acknowledges.
    pub(super) fn tick(&mut self, rt: &tokio::runtime::Runtime, counts: &IntakeCounts) {
        let now = Instant::now();
        if now.duration_since(self.ticked) < TICK || self.builder.waiting() == 0 {
            return;
        }
        self.ticked = now;
        let stale = |at: Option<Instant>, every| at.is_none_or(|t| now.duration_since(t) >= every);
        if stale(self.links_at, LINKS_EVERY) {
            match topology_links(self.reader.as_ref()) {
                Ok(l) => {
                    self.topology = topology(&l);
                    self.links = l;
                    self.links_at = Some(now);
                }
                Err(e) => log::warn!("journeys: the store's links: {e}"),
            }
        }
        if stale(self.boards_at, BOARDS_EVERY) {
            match self.boards() {
                Ok(()) => self.boards_at = Some(now),
                Err(e) => log::warn!("journeys: the store's boards: {e}"),
            }
        }
        match rt.block_on(clock_share::gather(&self.bucket, self.k, self.of)) {
            Ok(mut c) => {
                // With this partition's own, of the journeys it stored before.
                c.merge(self.builder.crossings());
                self.cfg.shared_crossings = Some(c);
            }
            Err(e) => log::warn!("journeys: the other partitions' clock crossings: {e}"),
        }
        let links = Links {
            by_id: &self.links,
            topology: &self.topology,
        };
        let settled = self.builder.settle(&links, &self.cfg, now);
        let n = settled.journeys.len();
        if n > 0 {
            if let Err(e) = self.store.store_journeys(&settled.journeys) {
                log::warn!("journeys: {n} not stored: {e}; tried again");
                return;
            }
        }
        counts.journeys.fetch_add(n as u64, Ordering::Relaxed);
        counts
            .unlinked_rows
            .fetch_add(settled.unlinked as u64, Ordering::Relaxed);
        let mut acks = Vec::new();
        for key in self.builder.stored(settled) {
            if let Some((m, _)) = self.held.remove(&key) {
                acks.push((m, AckKind::Ack));
            }
        }
        counts
            .waiting_rows
            .store(self.builder.waiting() as u64, Ordering::Relaxed);
        let mut progress = Vec::new();
        for (m, at) in self.held.values_mut() {
            if now.duration_since(*at) >= PROGRESS_EVERY {
                *at = now;
                progress.push(m.clone());
            }
        }
        rt.block_on(async {
            if n > 0 {
                let shared = clock_share::publish(&self.bucket, self.k, self.builder.crossings());
                if let Err(e) = shared.await {
                    log::warn!("journeys: sharing clock crossings: {e}");
                }
            }
            for (m, kind) in acks {
                if let Err(e) = m.ack_with(kind).await {
                    log::debug!("journeys: ack: {e}");
                }
            }
            for m in progress {
                if let Err(e) = m.ack_with(AckKind::Progress).await {
                    log::debug!("journeys: in progress: {e}");
                }
            }
        });
    }

    /// Gives the held messages back at once (a correlator that stops): the next correlator
    /// of the partition takes them without waiting for their ack wait to run out.
    pub(super) fn give_back(self, rt: &tokio::runtime::Runtime) {
        let held = self.held.len();
        rt.block_on(async {
            for (m, _) in self.held.into_values() {
                if let Err(e) = m.ack_with(AckKind::Nak(None)).await {
                    log::debug!("journeys: give back: {e}");
                }
            }
        });
        if held > 0 {
            log::info!(
                "partition {}: {held} messages given back ({} rows had not settled)",
                self.k,
                self.builder.waiting()
            );
        }
    }

    fn boards(&mut self) -> Result<(), QueryError> {
        self.cfg.drops = drop_intervals(&self.reader.drop_samples()?);
        self.cfg.sampling = sampling_boards(&self.reader.boards()?);
        Ok(())
    }
}

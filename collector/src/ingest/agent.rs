//! One agent's state between frames: its board session, link table, batch decoder, and
//! what it does with each message (the store's writer does the writing).

use super::ack::encode_ack;
use super::budget::{Budget, Permit};
use super::close::{Close, ProtocolError};
use super::seq::{judge, Verdict};
use super::stats::{AckTimer, IngestStats};
use crate::store::{
    BoardHello, BoardId, BoardStats, FrameBytes, LinkId, ObservationBatch, RunId, RunTally,
    StoreWriter, COMMIT_FAILED,
};
use hopcap_proto::batch::{BatchDecoder, BatchHeader};
use hopcap_proto::message::{ClockStep, Hello, LinkStats, Links, Message, Stats, Tally};
use hopcap_proto::record::{LinkInfo, LinkKey, LinkKind, Observation};
use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Records one batch may decode to: a full batch of the agent (64 KiB) holds a few thousand;
/// more is a forged batch built to blow up in memory (a record of a few bytes decodes to a
/// few hundred).
pub const MAX_RECORDS_PER_BATCH: usize = 65_536;
/// Link keys a connection may use without describing them first (each becomes a placeholder
/// link row): an agent never does; a few are tolerated.
pub const MAX_UNDESCRIBED_KEYS: usize = 64;
/// How long a waiting budget request sleeps between looks at the stop flag.
const BUDGET_POLL: Duration = Duration::from_millis(50);

/// The connection's state between frames.
pub(super) struct Agent {
    pub(super) store: Arc<dyn StoreWriter>,
    pub(super) peer: String,
    /// Set by hello.
    pub(super) session: Option<Session>,
    /// Made at the first batch.
    batches: Option<Box<BatchDecoder>>,
    /// A link dump being received in chunks.
    dump: Vec<LinkInfo>,
    link_stats: HashMap<LinkKey, LinkStats>,
    socket_kernel_drops: u64,
    /// Raised by the writer after each committed batch (seq + 1); 0 = none yet.
    committed: Arc<AtomicU64>,
    acked: u64,
    received_batches: u64,
    budget: Budget,
    /// The memory of the link dump being received.
    dump_hold: Permit,
    undescribed: usize,
    stats: Arc<IngestStats>,
    ack_timer: AckTimer,
}

pub(super) struct Session {
    name: String,
    pub(super) board: BoardId,
    run: RunId,
    last_seq: Option<u64>,
    links: HashMap<LinkKey, LinkId>,
    /// The run's clock steps this connection was told of: a batch numbered before a step's
    /// `first_batch` is on the clock before it, and is moved as it is stored.
    clock_steps: Vec<ClockStep>,
}

/// The largest clock step taken as real: 100 years, so that moved times cannot overflow.
const MAX_CLOCK_STEP_NS: u64 = 100 * 365 * 86_400 * 1_000_000_000;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// More links than any board has: a dump past this is refused (it would only grow memory).
const MAX_LINKS: usize = 4 * 1024;

fn too_many_links() -> Close {
    Close::Protocol(ProtocolError::TooManyLinks { limit: MAX_LINKS })
}

/// The hello's session (borrowing only that field, so the rest of the agent stays usable).
fn sess(session: &mut Option<Session>) -> Result<&mut Session, Close> {
    session
        .as_mut()
        .ok_or(Close::Protocol(ProtocolError::NoSession))
}

impl Agent {
    pub(super) fn new(
        store: Arc<dyn StoreWriter>,
        peer: String,
        budget: Budget,
        stats: Arc<IngestStats>,
    ) -> Agent {
        Agent {
            stats,
            ack_timer: AckTimer::default(),
            dump_hold: Permit::empty(&budget.frames),
            budget,
            undescribed: 0,
            store,
            peer,
            session: None,
            batches: None,
            dump: Vec::new(),
            link_stats: HashMap::new(),
            socket_kernel_drops: 0,
            committed: Arc::new(AtomicU64::new(0)),
            acked: 0,
            received_batches: 0,
        }
    }

    fn session(&mut self) -> Result<&mut Session, Close> {
        sess(&mut self.session)
    }

    fn on_hello(&mut self, h: &Hello) -> Result<(), Close> {
        if self.session.is_some() {
            return Err(Close::Protocol(ProtocolError::SecondHello));
        }
        if h.agent_id.is_empty() {
            return Err(Close::Protocol(ProtocolError::EmptyAgentId));
        }
        // Over Noise the board is who its key says, whatever the hello claims.
        if let Some(key_of) = super::transport::authenticated_board() {
            if h.agent_id.as_str() != key_of {
                return Err(Close::Protocol(ProtocolError::NotItsName {
                    claimed: h.agent_id.to_string(),
                    key_of,
                }));
            }
        }
        use hopcap_proto::frame::{MAX_VERSION, MIN_VERSION};
        if !(MIN_VERSION..=MAX_VERSION).contains(&h.version) {
            return Err(Close::Protocol(ProtocolError::Version(h.version)));
        }
        let hello = BoardHello {
            name: h.agent_id.to_string(),
            // Batch sequence numbers restart with every agent run, so the run is part of the
            // identity that keeps `last_seq` (duplicate detection) valid.
            boot_id: format!("{}:{:x}", hex(&h.boot_id), h.run_id),
            agent_version: h.agent_version.to_string(),
            capture: format!(
                "{}, snaplen {}, sample 1/{}, protocol {}",
                match h.capture {
                    hopcap_proto::message::CaptureMode::Ring => "ring",
                    hopcap_proto::message::CaptureMode::Recv => "recv",
                },
                h.snaplen,
                h.sample,
                h.version
            ),
            remote: self.peer.clone(),
            board_clock_ns: i64::try_from(h.clock.realtime_ns).ok(),
        };
        let s = self.store.hello(hello)?;
        log::info!(
            "{}: board {:?} connected (id {})",
            self.peer,
            h.agent_id.as_str(),
            s.board.raw()
        );
        self.session = Some(Session {
            name: h.agent_id.to_string(),
            board: s.board,
            run: s.run,
            last_seq: s.last_seq,
            links: HashMap::new(),
            clock_steps: Vec::new(),
        });
        Ok(())
    }

    fn on_links(&mut self, l: &Links, stop: &AtomicBool) -> Result<(), Close> {
        let board = self.session()?.board;
        if l.chunk >= l.count {
            return Err(Close::Protocol(ProtocolError::LinksChunk {
                chunk: l.chunk,
                count: l.count,
            }));
        }
        if !l.replace {
            let ids = self.store.links(board, l.links.to_vec(), false)?;
            let links = &mut self.session()?.links;
            // A key whose link now has another row (its namespace was relabelled, e.g. a
            // container's transient name replaced by its Docker name): the old row is gone.
            let moved: Vec<LinkId> = ids
                .into_iter()
                .filter_map(|(key, id)| links.insert(key, id).filter(|old| *old != id))
                .collect();
            if links.len() > MAX_LINKS {
                return Err(too_many_links());
            }
            if !moved.is_empty() {
                self.store.links_removed(board, moved)?;
            }
            return Ok(());
        }
        if l.chunk == 0 {
            self.dump.clear();
        }
        if self.dump.len() + l.links.len() > MAX_LINKS {
            return Err(too_many_links());
        }
        self.dump.reserve_exact(l.links.len());
        let bytes = self.dump.capacity() * std::mem::size_of::<LinkInfo>();
        if !self.dump_hold.resize(bytes, stop, BUDGET_POLL) {
            return Err(Close::Shutdown);
        }
        self.dump.extend(l.links.iter().cloned());
        if l.chunk + 1 == l.count {
            let links = std::mem::take(&mut self.dump);
            let ids = self.store.links(board, links, true)?;
            self.dump_hold.resize(0, stop, BUDGET_POLL);
            self.session()?.links = ids.into_iter().collect();
        }
        Ok(())
    }

    /// Placeholders for the keys of `decoded` no link report named (the observations are
    /// kept; such a link shows as `key<N>`), in one request to the store.
    fn describe_unknown(&mut self, decoded: &[(Observation, &[u8])]) -> Result<(), Close> {
        let s = sess(&mut self.session)?;
        let unknown: BTreeSet<LinkKey> = decoded
            .iter()
            .map(|(o, _)| o.link)
            .filter(|k| !s.links.contains_key(k))
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        self.undescribed += unknown.len();
        if self.undescribed > MAX_UNDESCRIBED_KEYS {
            return Err(Close::Protocol(ProtocolError::UndescribedLinks {
                limit: MAX_UNDESCRIBED_KEYS,
            }));
        }
        let (board, name) = (s.board, s.name.clone());
        crate::warn_limited!(
            "undescribed-link",
            "{}: board {name:?} sent link keys {unknown:?} before describing them",
            self.peer
        );
        let infos = unknown
            .iter()
            .map(|&key| {
                let mut info = LinkInfo {
                    key,
                    netns: Default::default(),
                    name: Default::default(),
                    ifindex: 0,
                    kind: LinkKind::Other,
                    mac: Default::default(),
                    mtu: 0,
                    addrs: Default::default(),
                    master: None,
                    peer: None,
                    up: true,
                };
                let _ = info.name.push_str(&format!("key{key}"));
                info
            })
            .collect();
        let ids = self.store.links(board, infos, false)?;
        sess(&mut self.session)?.links.extend(ids);
        Ok(())
    }

    fn on_batch(&mut self, bytes: &[u8], stop: &AtomicBool) -> Result<(), Close> {
        let board = self.session()?.board;
        self.received_batches += 1;
        let decoder = self
            .batches
            .get_or_insert_with(|| Box::new(BatchDecoder::new()));
        // Counted first, so that the memory of the decoded rows is had from the budget before
        // it is taken (a few bytes on the wire decode to a few hundred).
        let mut records = 0usize;
        let _ = decoder.decode(bytes, |_| records += 1);
        if records > MAX_RECORDS_PER_BATCH {
            return Err(Close::Protocol(ProtocolError::BatchTooLarge {
                records,
                limit: MAX_RECORDS_PER_BATCH,
            }));
        }
        let row = std::mem::size_of::<(LinkId, Observation)>();
        let obs = std::mem::size_of::<Observation>();
        let Some(mut hold) = self
            .budget
            .batches
            // Frame bytes (agent --snap-bytes) are copied out of the batch: no more than it.
            .acquire(records * (row + obs) + bytes.len(), stop, BUDGET_POLL)
        else {
            return Err(Close::Shutdown);
        };
        let mut decoded: Vec<(Observation, &[u8])> = Vec::with_capacity(records);
        let result = decoder.decode_with_bytes(bytes, |obs, frame| {
            if decoded.len() < records {
                decoded.push((obs, frame))
            }
        });
        // The sequence number also of a batch that failed to decode (its header may still
        // parse), to judge and acknowledge it.
        let seq = match &result {
            Ok(info) => Some(info.header.seq),
            Err(_) => postcard::take_from_bytes::<BatchHeader>(bytes)
                .ok()
                .map(|(h, _)| h.seq),
        };
        self.stats.batch(decoded.len());
        if let Some(seq) = seq {
            self.ack_timer.received(seq);
        }
        let s = sess(&mut self.session)?;
        let run = s.run;
        // Judged against what this connection knows, for the gap count and the log only: the
        // store decides whether the batch is new (another connection of the run may have
        // stored it, or not yet).
        let verdict = seq.map(|seq| judge(s.last_seq, seq));
        if let (Some(Verdict::TooFar { last }), Some(seq)) = (verdict, seq) {
            return Err(Close::Protocol(ProtocolError::SeqJump { seq, last }));
        }
        if let (Some(Verdict::New { .. }), Some(seq)) = (verdict, seq) {
            s.last_seq = Some(seq);
        }
        let (mut lost, duplicate) = match verdict {
            Some(Verdict::New { lost }) => (lost, false),
            Some(Verdict::Duplicate) => (0, true),
            Some(Verdict::TooFar { .. }) | None => (0, false),
        };
        if lost > 0 {
            crate::warn_limited!(
                "batches-lost",
                "{}: board {:?} lost {lost} batches before #{seq:?}",
                self.peer,
                s.name
            );
        }
        if let Err(e) = &result {
            if duplicate {
                log::debug!("{}: resent batch #{seq:?} already stored ({e})", self.peer);
            } else {
                // Keep what decoded; the rest of this batch is lost (the next one decodes on
                // its own).
                crate::warn_limited!(
                    "batch-undecodable",
                    "{}: undecodable batch #{seq:?} ({} records kept): {e}",
                    self.peer,
                    decoded.len()
                );
                lost = lost.saturating_add(1);
            }
        }
        self.describe_unknown(&decoded)?;
        let s = sess(&mut self.session)?;
        if let Some(seq) = seq {
            let delta = s
                .clock_steps
                .iter()
                .filter(|step| seq < step.first_batch)
                .fold(0i64, |sum, step| sum.saturating_add(step.delta_ns));
            if delta != 0 {
                for (obs, _) in &mut decoded {
                    obs.ts_ns = obs.ts_ns.saturating_add_signed(delta);
                }
            }
        }
        let links = &s.links;
        let with_frames = decoded.iter().any(|(_, f)| !f.is_empty());
        let mut frames = FrameBytes::default();
        let rows: Vec<(LinkId, Observation)> = decoded
            .into_iter()
            .filter_map(|(obs, frame)| {
                let id = links.get(&obs.link)?;
                if with_frames {
                    frames.push(frame);
                }
                Some((*id, obs))
            })
            .collect();
        hold.resize(rows.capacity() * row + frames.byte_len(), stop, BUDGET_POLL);
        let batch = ObservationBatch {
            board,
            run: Some(run),
            seq,
            lost_batches: lost,
            duplicate: false,
            rows,
            frames,
            committed: seq.map(|_| Arc::clone(&self.committed)),
            hold: Some(Arc::new(hold)),
        };
        Ok(self.store.batch(batch)?)
    }

    fn on_tally(&mut self, t: &Tally) -> Result<(), Close> {
        let run = self.session()?.run;
        if let Some(bad) = t
            .clock_steps
            .iter()
            .find(|s| s.delta_ns.unsigned_abs() > MAX_CLOCK_STEP_NS)
        {
            return Err(Close::Protocol(ProtocolError::ClockStep {
                delta_ns: bad.delta_ns,
            }));
        }
        let s = self.session()?;
        for step in &t.clock_steps {
            if !s.clock_steps.contains(step) {
                log::info!(
                    "board {:?}: its clock was stepped by {} ms at {}; batches before #{} \
                     are moved onto the new clock",
                    s.name,
                    step.delta_ns / 1_000_000,
                    hopcap_proto::print::Epoch(step.at_ns),
                    step.first_batch
                );
                s.clock_steps.push(*step);
            }
        }
        let tally = RunTally {
            batches: t.batches,
            records: t.records,
            gave_up: t.gave_up.to_vec(),
            clock_steps: t.clock_steps.to_vec(),
        };
        Ok(self.store.tally(run, tally)?)
    }

    fn on_stats(&mut self, st: &Stats) -> Result<(), Close> {
        let board = self.session()?.board;
        for l in &st.links {
            self.link_stats.insert(l.key, *l);
        }
        // Socket-wide drops come in the first message of a report and 0 in the others; the
        // counter is cumulative, so the largest value seen is the current one.
        self.socket_kernel_drops = self.socket_kernel_drops.max(st.kernel_drops);
        let stats = BoardStats {
            kernel_packets: self.link_stats.values().map(|l| l.packets).sum(),
            kernel_drops: self.socket_kernel_drops
                + self
                    .link_stats
                    .values()
                    .map(|l| l.kernel_drops)
                    .sum::<u64>(),
            queue_drops: st.queue_drops,
            clock: st.clock,
        };
        Ok(self.store.stats(board, stats)?)
    }

    pub(super) fn on_message(&mut self, msg: &Message<'_>, stop: &AtomicBool) -> Result<(), Close> {
        if self.session.is_none() && !matches!(msg, Message::Hello(_)) {
            return Err(Close::Protocol(ProtocolError::BeforeHello(
                msg.message_type(),
            )));
        }
        match msg {
            Message::Hello(h) => self.on_hello(h),
            Message::Links(l) => self.on_links(l, stop),
            Message::LinkRemoved(r) => {
                let board = self.session()?.board;
                if let Some(id) = self.session()?.links.remove(&r.key) {
                    self.store.links_removed(board, vec![id])?;
                }
                Ok(())
            }
            Message::Batch(bytes) => self.on_batch(bytes, stop),
            Message::Stats(st) => self.on_stats(st),
            Message::Tally(t) => self.on_tally(t),
            Message::Ack(_) => Err(Close::Protocol(ProtocolError::AckFromAgent)),
            Message::Bye(b) => {
                let s = sess(&mut self.session)?;
                log::info!(
                    "{}: board {:?} says bye after {} batches (received {})",
                    self.peer,
                    s.name,
                    b.batches_sent,
                    self.received_batches
                );
                Err(Close::Bye)
            }
        }
    }

    /// Sends an acknowledgement if the writer committed more since the last one.
    pub(super) fn acknowledge(&mut self, stream: &mut dyn Write) -> Result<(), Close> {
        let committed = self.committed.load(Ordering::Acquire);
        if committed & COMMIT_FAILED != 0 {
            // A batch of this connection was not stored: a later cumulative ack would cover
            // it. The agent sends it again after reconnecting.
            return Err(Close::Store(
                "a batch could not be stored; nothing more is acknowledged".into(),
            ));
        }
        if committed > self.acked {
            stream
                .write_all(&encode_ack(committed - 1))
                .map_err(Close::Io)?;
            self.acked = committed;
            self.ack_timer.acknowledged(committed, &self.stats);
        }
        Ok(())
    }

    /// Waits (briefly) for everything sent to be committed, then acknowledges it.
    pub(super) fn final_ack(&mut self, stream: &mut dyn Write) {
        if self.store.flush(Duration::from_secs(5)) {
            let _ = self.acknowledge(stream);
        }
    }
}

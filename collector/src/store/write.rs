//! The write side of a store, as ingest sees it: a board says hello, reports its links and
//! stats, and sends batches of observations; the store says when a batch is durable.

use super::ids::{BoardId, LinkId, RunId};
use hopcap_proto::message::{ClockStep, ClockSync, GaveUp};
use hopcap_proto::record::{LinkInfo, LinkKey, Observation};
use serde::{Deserialize, Serialize};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

/// What a board says about itself when it connects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoardHello {
    pub name: String,
    pub boot_id: String,
    pub agent_version: String,
    /// How it captures: `ring, snaplen 192, sample 1/1`.
    pub capture: String,
    /// The peer address of the connection.
    pub remote: String,
    /// The board's clock at hello, if it sent one (ns since epoch).
    pub board_clock_ns: Option<i64>,
}

/// One statistics report: the agent run's totals so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BoardStats {
    pub kernel_packets: u64,
    pub kernel_drops: u64,
    pub queue_drops: u64,
    pub clock: ClockSync,
}

/// The answer to a hello: the board's id and what the store already holds of this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardSession {
    pub board: BoardId,
    /// This run of the board's agent (the hello's boot and run id).
    pub run: RunId,
    /// The last batch sequence number stored from this run of the board's agent.
    pub last_seq: Option<u64>,
    pub links: Vec<(LinkKey, LinkId)>,
}

/// Observations of one received batch, their links already resolved to [`LinkId`]s.
#[derive(Debug, Clone)]
pub struct ObservationBatch {
    pub board: BoardId,
    /// The agent run the batch belongs to: with `seq`, the store keeps each batch of a run
    /// once (a copy sent again is acknowledged but not written), and knows which sequence
    /// numbers it holds, to reconcile the agent's tally with.
    pub run: Option<RunId>,
    /// The batch's sequence number (kept as the board's `last_seq`).
    pub seq: Option<u64>,
    /// Batches found missing (sequence gap) just before this one.
    pub lost_batches: u64,
    /// A batch already stored (sent again after a reconnect): nothing is written, but its
    /// acknowledgement still waits for the commit of everything before it.
    pub duplicate: bool,
    pub rows: Vec<(LinkId, Observation)>,
    /// The first captured bytes of each row's frame (`agent --snap-bytes`); empty when the
    /// agent sent none.
    pub frames: FrameBytes,
    /// Raised to `seq + 1` once the batch is stored (or found stored earlier by the same run);
    /// [`COMMIT_FAILED`] is set in it instead if the batch could not be stored: the connection
    /// acknowledges nothing more then (a later cumulative ack would cover the lost batch).
    pub committed: Option<Arc<AtomicU64>>,
    /// Memory the batch holds against its sender's budget, given back when the store drops
    /// the batch (after its commit).
    pub hold: Option<Arc<dyn std::any::Any + Send + Sync>>,
}

/// Which part of a batch split by partition: `index` of `of` (`crate::scale`), and where
/// each of its rows was in the agent's batch (`rows[i]` for the part's row `i`), so a row
/// keeps the same identity (run, seq, row) however the batch was split.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BatchPart {
    pub index: u16,
    pub of: u16,
    pub rows: Vec<u32>,
}

/// Set in a batch's `committed` watermark when the store could not store it (sequence
/// numbers stay far below this bit).
pub const COMMIT_FAILED: u64 = 1 << 63;

impl ObservationBatch {
    /// A new batch of `rows`: no sequence number, nothing lost, not a duplicate, no one
    /// waiting for its commit.
    pub fn new(board: BoardId, rows: Vec<(LinkId, Observation)>) -> ObservationBatch {
        ObservationBatch {
            board,
            run: None,
            seq: None,
            lost_batches: 0,
            duplicate: false,
            rows,
            frames: FrameBytes::default(),
            committed: None,
            hold: None,
        }
    }
}

/// Frame bytes by row, in one buffer: row `i`'s are `bytes[ends[i-1]..ends[i]]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameBytes {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl FrameBytes {
    /// The next row's bytes.
    pub fn push(&mut self, frame: &[u8]) {
        self.bytes.extend_from_slice(frame);
        self.ends.push(self.bytes.len());
    }

    /// Row `row`'s bytes (`None` past the rows pushed).
    pub fn get(&self, row: usize) -> Option<&[u8]> {
        let end = *self.ends.get(row)?;
        let start = row.checked_sub(1).map_or(0, |p| self.ends[p]);
        self.bytes.get(start..end)
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Bytes held in all.
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }
}

/// An agent run's delivery ledger (proto's `Tally`): batches `0..batches` hold `records`
/// observations, and the agent gave up on the ranges in `gave_up`. Cumulative: the store keeps
/// the largest totals and each range (keyed by its first sequence number) at its largest.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RunTally {
    pub batches: u64,
    pub records: u64,
    pub gave_up: Vec<GaveUp>,
    /// The run's real-time clock steps: the store moves the observations of the batches
    /// before each one's `first_batch` that it holds by the step's delta, once per step.
    pub clock_steps: Vec<ClockStep>,
}

/// Why a store did not take a write.
#[derive(Debug)]
pub enum StoreError {
    /// The store is shut down (or its writer died): nothing more can be written.
    Gone,
    /// The store refused this request (the backend's reason).
    Refused(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Gone => write!(f, "the store is gone"),
            StoreError::Refused(why) => write!(f, "store refused: {why}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// The write side of a store. Calls from many connection threads at once; each call may
/// block (back-pressure) but never drops what it was given without an error.
pub trait StoreWriter: Send + Sync {
    /// Registers a board's connection; answers once that is durable.
    fn hello(&self, hello: BoardHello) -> Result<BoardSession, StoreError>;

    /// Adds or refreshes links (`full_report`: the board's whole table, others are gone);
    /// answers each link's id once durable.
    fn links(
        &self,
        board: BoardId,
        links: Vec<LinkInfo>,
        full_report: bool,
    ) -> Result<Vec<(LinkKey, LinkId)>, StoreError>;

    fn links_removed(&self, board: BoardId, links: Vec<LinkId>) -> Result<(), StoreError>;

    /// Queues a batch; its `committed` watermark rises once it is durable.
    fn batch(&self, batch: ObservationBatch) -> Result<(), StoreError>;

    /// Queues one part of a batch that scaled mode split by partition (`crate::scale`):
    /// the batch counts as stored once all `part.of` parts are, and each part is kept once
    /// however often it comes. `committed` rises to `seq + 1` once this part is durable
    /// (parts come from many writers, so there is no order between them). A store that
    /// cannot keep parts refuses them.
    fn batch_part(&self, batch: ObservationBatch, part: BatchPart) -> Result<(), StoreError> {
        let _ = (batch, part);
        Err(StoreError::Refused(
            "this store does not take partitioned batches (scaled mode needs --clickhouse)".into(),
        ))
    }

    fn stats(&self, board: BoardId, stats: BoardStats) -> Result<(), StoreError>;

    /// Records an agent run's tally; it is durable before any batch queued after it.
    fn tally(&self, run: RunId, tally: RunTally) -> Result<(), StoreError>;

    /// A connection ended; `remote` names it, so the end of an old connection does not mark
    /// a board disconnected that has already connected again.
    fn disconnected(&self, board: BoardId, remote: String) -> Result<(), StoreError>;

    /// Waits up to `timeout` for everything sent before to be durable; false if it was not.
    fn flush(&self, timeout: Duration) -> bool;
}

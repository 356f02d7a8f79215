//! The compact batch codec: many [`Observation`]s in few bytes (target: under 24 bytes per
//! observation for ordinary traffic seen on several hops). API first; see the codec notes
//! in `codec.rs` (being written).

use crate::message::MAX_AGENT_ID;
use crate::record::Observation;
use heapless::String;

/// The largest batch (header + records) an encoder produces.
pub const MAX_BATCH_BYTES: usize = 64 * 1024;

/// The header at the start of every batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    pub version: u16,
    pub agent_id: String<MAX_AGENT_ID>,
    /// Consecutive per agent connection, from 0.
    pub seq: u64,
    pub count: u32,
    /// Time of the first record, ns since the Unix epoch (agent clock).
    pub base_ts_ns: u64,
    /// The encoder forgot its state before this batch: it decodes on its own.
    pub reset: bool,
}

/// What a decoded batch said about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchInfo {
    pub header: BatchHeader,
    /// Batches missing between the previous one decoded and this one.
    pub lost_before: u64,
}

/// `push` found no room for one more record: `finish` the batch and push again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchFull;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchError {
    /// The batch header did not parse.
    Header(postcard::Error),
    UnsupportedVersion {
        got: u16,
    },
    /// A batch that depends on earlier state arrived after a gap or an error.
    Desync {
        expected_seq: u64,
        got_seq: u64,
    },
    /// Record `index` failed at byte `offset` of the batch.
    Record {
        index: u32,
        offset: usize,
        error: RecordError,
    },
    /// All `count` records decoded but bytes remain.
    TrailingBytes {
        offset: usize,
        len: usize,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordError {
    UnexpectedEnd,
    BadVarint,
    /// A value out of its range: which field (see the codec notes) and the value.
    BadValue {
        field: u8,
        value: u64,
    },
    /// A flow index beyond the table.
    BadFlow {
        index: u64,
    },
    /// A back-reference further than the records kept.
    BadBackref {
        distance: u64,
        available: u64,
    },
    /// A nested postcard value (stop, tunnel, address) did not parse.
    Postcard,
}

/// Encodes observations into batches; keeps per-connection state (mirror of [`BatchDecoder`]).
#[derive(Debug)]
pub struct BatchEncoder {
    _todo: (),
}

impl BatchEncoder {
    /// `agent_id` is cut to [`MAX_AGENT_ID`] bytes; `max_bytes` is capped at [`MAX_BATCH_BYTES`].
    pub fn new(agent_id: &str, max_bytes: usize) -> BatchEncoder {
        let _ = (agent_id, max_bytes);
        todo!()
    }
    pub fn push(&mut self, obs: &Observation) -> Result<(), BatchFull> {
        let _ = obs;
        todo!()
    }
    /// Records in the current batch.
    pub fn count(&self) -> u32 {
        todo!()
    }
    pub fn is_empty(&self) -> bool {
        self.count() == 0
    }
    /// Bytes the current batch would take if finished now.
    pub fn len(&self) -> usize {
        todo!()
    }
    /// Closes the current batch and returns its bytes (valid until the next call); the
    /// sequence number advances. A batch of zero records is valid.
    pub fn finish(&mut self) -> &[u8] {
        todo!()
    }
    /// Forget the shared state: the next batch decodes on its own. Call after dropping a
    /// finished batch instead of sending it, or on a new connection.
    pub fn reset(&mut self) {
        todo!()
    }
}

/// Decodes batches of one connection, in order.
#[derive(Debug)]
pub struct BatchDecoder {
    _todo: (),
}

impl Default for BatchDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchDecoder {
    pub fn new() -> BatchDecoder {
        todo!()
    }
    /// Decodes one batch, calling `out` for each observation in order. On error, the
    /// observations already passed to `out` are valid and the decoder waits for a `reset` batch.
    pub fn decode(
        &mut self,
        bytes: &[u8],
        out: impl FnMut(Observation),
    ) -> Result<BatchInfo, BatchError> {
        let _ = (bytes, out);
        todo!()
    }
}

//! The compact batch codec: many [`Observation`]s in few bytes.
//!
//! A batch is a postcard [`BatchHeader`] followed by `count` records. Every batch is
//! self-contained: the encoder starts each one from fresh state and the decoder does the
//! same, so a batch decodes on its own whatever was lost, resent or reordered before it
//! (the collector judges sequence numbers itself). Within one batch both keep:
//! - a flow table ([`state::FLOWS`] slots, CLOCK replacement): a flow is everything that
//!   stays the same for consecutive packets of one flow *on one link* (link, VLAN, tunnels,
//!   addresses, protocol, ports or ICMP id), plus that flow's last packet and the last
//!   differences (strides) of its counters. A record names its flow by a one-byte slot, or
//!   defines a new flow as a diff against an existing one (same packet on another link,
//!   the reverse direction, the same hosts with other ports);
//! - a ring of the last [`state::RING`] records' fingerprints and hop-invariant fields: the
//!   same packet on the next hop is a back-reference (a distance, usually one byte) instead
//!   of a fingerprint and those fields;
//! - the last capture order per link.
//!
//! # Record layout
//! ```text
//! head    u8   bit0 back-reference, bit1 new flow, bit2 hop mask follows,
//!              bit3 invariant masks follow, bits4-7 order nibble
//! flow    u8 slot | flow definition: varint base (0 none, else slot+1), key mask u8,
//!              then per mask bit: link, vlan+1, tunnels, src, dst, ports, (swap), shape
//! fp      varint distance back in the ring | 8 bytes LE fingerprint
//! ts      zigzag varint ns since the previous record (the first: since base_ts_ns)
//! order   nibble < 15: predicted + nibble; 15: zigzag varint from predicted
//!         (predicted = last order on this link + 1)
//! inv     (fresh records only) masks if bit3 (else the flow's last masks), then
//!         ip id / seq / ack / payload length as same | +stride | +delta | +stride+delta,
//!         and flags, window, UDP length, ICMP type/code/seq, fragment, ARP when changed
//! hop     (if bit2) mask u8, then TTL, tunnel outer ids, wire length, captured length,
//!         packet type, stop, TCP header length (u8), each only when it differs from the
//!         prediction
//! ```
//! With `snap_bytes` > 0 in the header, every record is followed by the first captured bytes
//! of its frame (`agent --snap-bytes`, for pcapng export): a varint length (at most
//! `snap_bytes`) and that many bytes. With 0 (the default) records carry nothing more.
//!
//! Predictions come from the flow's last packet: the same TTL, packet type, stop and TCP
//! header length (for a back-reference: the referenced record's; 0 for flows that are not
//! TCP, so never written for them); outer
//! ids advanced by their stride; the wire length moved by the change in IP payload length;
//! the captured length equal to the wire length, or clipped as the last one was.

mod decode;
mod encode;
mod error;
mod fields;
mod index;
mod parts;
mod state;
mod varint;

use crate::message::{MAX_AGENT_ID, PROTOCOL_VERSION};
use crate::record::Observation;
use heapless::String;
use serde::{Deserialize, Serialize};
use state::SharedState;
use varint::{Reader, Writer};

pub use error::{BatchError, BatchFull, Field, RecordError};

/// The largest batch (header + records) an encoder produces.
pub const MAX_BATCH_BYTES: usize = 64 * 1024;
/// The most bytes one record can take (a new flow with every field spelled out), without
/// its frame bytes.
pub const MAX_RECORD_BYTES: usize = 320;
/// The most frame bytes a record may carry (`BatchHeader::snap_bytes`): a full Ethernet
/// frame with room to spare, and still several records to a batch.
pub const MAX_SNAP_BYTES: u16 = 2048;
/// Room kept before the records for the header, which is written last.
const HEADER_RESERVE: usize = 100;

/// The header at the start of every batch. Gaps and duplicates in `seq` are the receiver's
/// business; the codec only carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchHeader {
    pub version: u16,
    pub agent_id: String<MAX_AGENT_ID>,
    /// Consecutive per encoder (one agent run, across reconnects), from 0.
    pub seq: u64,
    pub count: u32,
    /// Time of the first record, ns since the Unix epoch (agent clock).
    pub base_ts_ns: u64,
    /// Always `true`: the batch decodes on its own. (The flag dates from codec state that
    /// spanned batches; it stays so the header's bytes stay the same, and a `false` is
    /// rejected.)
    pub reset: bool,
    /// Frame bytes per record at most (0: none follow the records; see the module docs).
    /// At most [`MAX_SNAP_BYTES`].
    pub snap_bytes: u16,
}

/// What a decoded batch said about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchInfo {
    pub header: BatchHeader,
}

/// Encodes observations into batches, each from fresh state (the mirror of
/// [`BatchDecoder`]). About 230 KB (64 KB of it the batch buffer): keep it in a `Box`.
#[derive(Debug)]
pub struct BatchEncoder {
    agent_id: String<MAX_AGENT_ID>,
    max_bytes: usize,
    seq: u64,
    count: u32,
    base_ts: u64,
    prev_ts: u64,
    /// A record overflowed (cannot happen within MAX_RECORD_BYTES): refuse until `finish`.
    broken: bool,
    /// Frame bytes kept per record (0: none).
    snap_bytes: u16,
    state: encode::EncoderState,
    records_end: usize,
    buf: [u8; MAX_BATCH_BYTES],
}

impl BatchEncoder {
    /// `agent_id` is cut to [`MAX_AGENT_ID`] bytes (at a char boundary); `max_bytes` is
    /// clamped to what one record needs and [`MAX_BATCH_BYTES`].
    pub fn new(agent_id: &str, max_bytes: usize) -> BatchEncoder {
        BatchEncoder::with_snap_bytes(agent_id, max_bytes, 0)
    }

    /// [`new`](Self::new) for batches whose records carry up to `snap_bytes` bytes of their
    /// frame each (clamped to [`MAX_SNAP_BYTES`]; 0 is `new`).
    pub fn with_snap_bytes(agent_id: &str, max_bytes: usize, snap_bytes: u16) -> BatchEncoder {
        let snap_bytes = snap_bytes.min(MAX_SNAP_BYTES);
        let mut id = String::new();
        for c in agent_id.chars() {
            if id.push(c).is_err() {
                break;
            }
        }
        BatchEncoder {
            agent_id: id,
            max_bytes: max_bytes.clamp(HEADER_RESERVE + record_room(snap_bytes), MAX_BATCH_BYTES),
            seq: 0,
            count: 0,
            base_ts: 0,
            prev_ts: 0,
            broken: false,
            snap_bytes,
            state: encode::EncoderState::new(),
            records_end: HEADER_RESERVE,
            buf: [0; MAX_BATCH_BYTES],
        }
    }

    /// Adds one observation to the current batch.
    pub fn push(&mut self, obs: &Observation) -> Result<(), BatchFull> {
        self.push_with_bytes(obs, &[])
    }

    /// Adds one observation with the first captured bytes of its frame: up to the encoder's
    /// `snap_bytes` of `frame` go with it (none when that is 0).
    pub fn push_with_bytes(&mut self, obs: &Observation, frame: &[u8]) -> Result<(), BatchFull> {
        let room = record_room(self.snap_bytes);
        if self.broken || self.records_end + room > self.max_bytes {
            return Err(BatchFull);
        }
        if self.count == 0 {
            self.base_ts = obs.ts_ns;
            self.prev_ts = obs.ts_ns;
        }
        let room = &mut self.buf[self.records_end..self.records_end + room];
        let mut w = Writer::new(room);
        self.state.encode(obs, &mut self.prev_ts, &mut w);
        if self.snap_bytes > 0 {
            let kept = frame.get(..usize::from(self.snap_bytes)).unwrap_or(frame);
            w.varint(kept.len() as u64);
            w.bytes(kept);
        }
        if w.overflow {
            // The state moved past what was written: close this batch (the next one starts
            // from fresh state anyway).
            self.broken = true;
            return Err(BatchFull);
        }
        self.records_end += w.pos;
        self.count += 1;
        Ok(())
    }

    /// Records in the current batch.
    pub fn count(&self) -> u32 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes of records in the current batch (the header adds up to 96).
    pub fn len(&self) -> usize {
        self.records_end - HEADER_RESERVE
    }

    /// The sequence number the next finished batch gets.
    pub fn next_seq(&self) -> u64 {
        self.seq
    }

    /// Frame bytes kept per record (0: none).
    pub fn snap_bytes(&self) -> u16 {
        self.snap_bytes
    }

    /// Closes the current batch and returns its bytes (valid until the next call); the
    /// sequence number advances and the next batch starts from fresh state. A batch of zero
    /// records is valid.
    pub fn finish(&mut self) -> &[u8] {
        let header = BatchHeader {
            version: PROTOCOL_VERSION,
            agent_id: self.agent_id.clone(),
            seq: self.seq,
            count: self.count,
            base_ts_ns: self.base_ts,
            reset: true,
            snap_bytes: self.snap_bytes,
        };
        let mut tmp = [0u8; HEADER_RESERVE];
        // The header's largest form (3 + 65 + 10 + 5 + 10 + 1 + 3 bytes) fits the reserve.
        let used = postcard::to_slice(&header, &mut tmp).map_or(0, |b| b.len());
        let start = HEADER_RESERVE - used;
        self.buf[start..HEADER_RESERVE].copy_from_slice(&tmp[..used]);
        let end = self.records_end;
        self.seq += 1;
        self.count = 0;
        self.base_ts = 0;
        self.records_end = HEADER_RESERVE;
        self.state.reset();
        self.broken = false;
        &self.buf[start..end]
    }
}

/// Decodes batches, each on its own and in any order. Holds the state one batch builds up
/// (about 120 KB: keep it in a `Box`, and reuse it), cleared at the start of every batch.
#[derive(Debug)]
pub struct BatchDecoder {
    state: SharedState,
}

impl Default for BatchDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchDecoder {
    pub fn new() -> BatchDecoder {
        BatchDecoder {
            state: SharedState::new(),
        }
    }

    /// Decodes one batch, calling `out` for each observation in order. On error, the
    /// observations already passed to `out` are valid; the rest of the batch is lost.
    pub fn decode(
        &mut self,
        bytes: &[u8],
        mut out: impl FnMut(Observation),
    ) -> Result<BatchInfo, BatchError> {
        self.decode_with_bytes(bytes, |obs, _| out(obs))
    }

    /// [`decode`](Self::decode), with each record's frame bytes (empty when the batch
    /// carries none).
    pub fn decode_with_bytes<'b>(
        &mut self,
        bytes: &'b [u8],
        mut out: impl FnMut(Observation, &'b [u8]),
    ) -> Result<BatchInfo, BatchError> {
        // The version first: an older or newer header may not parse as this one.
        let (version, _) = postcard::take_from_bytes::<u16>(bytes).map_err(BatchError::Header)?;
        if version != PROTOCOL_VERSION {
            return Err(BatchError::UnsupportedVersion {
                got: version,
                supported: PROTOCOL_VERSION,
            });
        }
        let (header, rest) =
            postcard::take_from_bytes::<BatchHeader>(bytes).map_err(BatchError::Header)?;
        if !header.reset {
            return Err(BatchError::NotSelfContained { seq: header.seq });
        }
        if header.snap_bytes > MAX_SNAP_BYTES {
            return Err(BatchError::SnapBytes {
                got: header.snap_bytes,
                max: MAX_SNAP_BYTES,
            });
        }
        self.state.reset();
        let mut r = Reader::new(bytes, bytes.len() - rest.len());
        let mut prev_ts = header.base_ts_ns;
        for index in 0..header.count {
            let start = r.pos;
            let record = decode::decode_record(&mut self.state, &mut prev_ts, &mut r)
                .and_then(|obs| Ok((obs, frame_bytes(&mut r, header.snap_bytes)?)));
            match record {
                Ok((obs, frame)) => out(obs, frame),
                Err(error) => {
                    return Err(BatchError::Record {
                        index,
                        start,
                        offset: r.pos,
                        error,
                    })
                }
            }
        }
        if r.remaining() > 0 {
            return Err(BatchError::TrailingBytes {
                offset: r.pos,
                len: r.remaining(),
            });
        }
        Ok(BatchInfo { header })
    }
}

/// Bytes the encoder keeps free for one record carrying up to `snap_bytes` frame bytes.
fn record_room(snap_bytes: u16) -> usize {
    if snap_bytes == 0 {
        MAX_RECORD_BYTES
    } else {
        MAX_RECORD_BYTES + 3 + usize::from(snap_bytes)
    }
}

/// The frame bytes after a record (none when the batch carries none).
fn frame_bytes<'a>(r: &mut Reader<'a>, snap_bytes: u16) -> Result<&'a [u8], RecordError> {
    if snap_bytes == 0 {
        return Ok(&[]);
    }
    let len = r.varint()?;
    if len > u64::from(snap_bytes) {
        return Err(RecordError::BadValue {
            field: Field::SnapLen,
            value: len,
        });
    }
    r.take(len as usize)
}

#[cfg(test)]
mod robustness;
#[cfg(test)]
mod snap_tests;

//! The messages an agent sends to the collector, one per [`crate::frame`].
//!
//! Order on a connection: `Hello`, then `Links` (the full topology, possibly in chunks),
//! then any mix of `Batch`, `Links`, `LinkRemoved`, `Stats` and `Tally`, and finally `Bye`.
//! Every message except `Batch` is a postcard body; a `Batch` body is the bytes of
//! [`crate::batch`] verbatim (its own header carries the version, agent and sequence).
//! All sizes are bounded (heapless), so decoding a message never allocates.

use crate::record::{LinkInfo, LinkKey};
use heapless::{String, Vec};
use serde::{Deserialize, Serialize};

/// The version of frames, messages and the batch codec. Bumped on any incompatible change.
/// 3: the `Tally` message (exact loss accounting). 4: clock steps in the `Tally`, clock
/// synchronisation in `Stats`. 5: `snap_bytes` in the batch header (records may carry their
/// frame's first bytes). 6: `--sample` keeps packets by the sample key
/// ([`crate::sample`]), which a packet keeps through GSO, GRO and fragmentation, not by
/// fingerprint: boards that sample must agree on which packets they keep.
pub const PROTOCOL_VERSION: u16 = 6;

/// Longest agent id (UTF-8 bytes), e.g. the board's hostname.
pub const MAX_AGENT_ID: usize = 64;
/// Links per `Links` message: a larger topology is sent in several chunks.
pub const LINKS_PER_CHUNK: usize = 16;
/// Per-link counters per `Stats` message: more links are spread over several messages.
pub const STATS_PER_MESSAGE: usize = 32;
/// Given-up ranges per `Tally` message: more are spread over several messages.
pub const GAVE_UP_PER_TALLY: usize = 32;
/// Clock steps an agent run reports (every `Tally` carries them all): later ones are logged
/// by the agent but left uncorrected. A board steps its clock once or twice after boot.
pub const MAX_CLOCK_STEPS: usize = 8;

/// How the agent reads packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CaptureMode {
    /// TPACKET_V3 mmap rings (the normal path).
    Ring,
    /// recvfrom() on plain AF_PACKET sockets, when rings could not be set up.
    Recv,
}

/// The agent's clocks read together at hello time, so the collector can relate them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockInfo {
    /// CLOCK_REALTIME in ns since the Unix epoch, with `debug_offset_ns` already added.
    pub realtime_ns: u64,
    /// CLOCK_MONOTONIC in ns, read next to `realtime_ns`.
    pub monotonic_ns: u64,
    /// The artificial offset the agent adds to every timestamp (a test knob; 0 normally).
    /// Observation times carry it too.
    pub debug_offset_ns: i64,
}

/// The first message of a connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The [`PROTOCOL_VERSION`] the agent speaks.
    pub version: u16,
    pub agent_id: String<MAX_AGENT_ID>,
    /// /proc/sys/kernel/random/boot_id as 16 bytes: a new value means the board rebooted
    /// (its monotonic clock and link ifindexes restarted).
    pub boot_id: [u8; 16],
    /// Distinguishes runs of the agent on one boot (its start time in ns): batch sequence
    /// numbers restart at 0 with each run.
    pub run_id: u64,
    pub clock: ClockInfo,
    pub capture: CaptureMode,
    /// Bytes captured per frame at most.
    pub snaplen: u32,
    /// Keeps packets with `sample_key % sample == 0` ([`crate::sample`]); 1 keeps all.
    pub sample: u32,
    /// The agent's own version (its crate version, e.g. `0.1.0`).
    pub agent_version: String<MAX_AGENT_VERSION>,
}

/// Bytes of [`Hello::agent_version`] at most.
pub const MAX_AGENT_VERSION: usize = 32;

/// Part of the link table. A dump is `count` chunks numbered `0..count`; a dump replaces the
/// collector's table for this connection once its last chunk has arrived (links missing from
/// it are gone). A single changed link may be sent as a dump of one chunk with `replace: false`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Links {
    pub chunk: u16,
    pub count: u16,
    /// `true` for a full topology dump, `false` for an update of the listed links only.
    pub replace: bool,
    pub links: Vec<LinkInfo, LINKS_PER_CHUNK>,
}

impl Links {
    /// A full topology dump of `all` as `Links` chunks (one empty chunk if there are no links).
    pub fn dump(all: &[LinkInfo]) -> impl Iterator<Item = Links> + '_ {
        let count = all.len().div_ceil(LINKS_PER_CHUNK).max(1);
        (0..count).map(move |chunk| {
            let part = all.chunks(LINKS_PER_CHUNK).nth(chunk).unwrap_or(&[]);
            let mut links = Vec::new();
            for l in part {
                // Cannot fail: a chunk holds at most LINKS_PER_CHUNK.
                let _ = links.push(l.clone());
            }
            Links {
                chunk: chunk as u16,
                count: count as u16,
                replace: true,
                links,
            }
        })
    }
}

/// A link disappeared; its key may be reused by a later `Links`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkRemoved {
    pub key: LinkKey,
}

/// Counters of one link, cumulative since the hello (a lost or repeated message loses nothing).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkStats {
    pub key: LinkKey,
    /// Frames the agent read from this link's ring or socket.
    pub packets: u64,
    /// PACKET_STATISTICS tp_drops of the socket behind this link.
    pub kernel_drops: u64,
    /// PACKET_STATISTICS tp_freeze_q_cnt (TPACKET_V3: times the ring was full).
    pub freeze_count: u64,
    /// Blocks seen with TP_STATUS_LOSING set.
    pub losing_blocks: u64,
}

/// Periodic health counters, cumulative since the hello.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Agent monotonic time of this report, ns, and the time since the previous report.
    pub monotonic_ns: u64,
    pub interval_ns: u64,
    /// Observations dropped because the agent's send queue was full.
    pub queue_drops: u64,
    /// Observations and batches handed to the connection.
    pub records_sent: u64,
    pub batches_sent: u64,
    /// Socket-wide kernel counters summed over the agent's capture sockets (one per
    /// namespace), cumulative: PACKET_STATISTICS drops, ring freezes, frames flagged
    /// TP_STATUS_LOSING. Sent in full with the first message of a report, 0 in the others.
    pub kernel_drops: u64,
    pub freeze_count: u64,
    /// Frames the kernel flagged TP_STATUS_LOSING: captured while a drop was not yet read
    /// from PACKET_STATISTICS. The kernel flags every frame until then, so this counts
    /// frames, not losses: diagnostic only (nothing shows it as a loss; `kernel_drops`
    /// is the count of frames lost).
    pub losing_frames: u64,
    /// A subset of the links when there are more than [`STATS_PER_MESSAGE`].
    pub links: Vec<LinkStats, STATS_PER_MESSAGE>,
    /// The kernel's view of the real-time clock (adjtimex), as of this report.
    pub clock: ClockSync,
}

/// Whether the board's real-time clock is disciplined (NTP, chrony, systemd-timesyncd), from
/// adjtimex: a board without a real-time clock (most Raspberry Pis) runs unsynchronised
/// from the last saved time until NTP steps it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockSync {
    /// `None`: adjtimex could not be read.
    pub synced: Option<bool>,
    /// The kernel's maximum error bound, microseconds (grows by 500 ppm while unsynchronised).
    pub max_error_us: u64,
}

/// The board's real-time clock was stepped (NTP, `date -s`) by `delta_ns` while the agent
/// ran. Batches before `first_batch` carry times of the clock before the step; the agent
/// placed every later observation on the new clock itself (those captured before the step
/// included), so the collector moves exactly the batches before `first_batch` by `delta_ns`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockStep {
    pub first_batch: u64,
    /// New clock minus old clock.
    pub delta_ns: i64,
    /// When the agent saw it, on the new clock (ns since the Unix epoch).
    pub at_ns: u64,
}

/// Consecutive batches the agent removed from its queue without an acknowledgement: batch
/// sequence numbers `first..=last`, holding `records` observations together. Some of them
/// may have been written before they were given up, and stored: the collector decides.
/// Keyed by `first`: a range only ever grows at its end (a later report of the same `first`
/// with a larger `last` replaces the earlier one).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GaveUp {
    pub first: u64,
    pub last: u64,
    pub records: u64,
}

/// The agent's delivery ledger of this run, sent by its exporter (never queued, so never
/// dropped with a batch) after the greeting of every connection and before any batch whenever
/// it changed: batches `0..batches` were made, holding `records` observations in all (the
/// observations the agent kept), and `gave_up` lists ranges it gave up on (a connection gets
/// every range once; more than [`GAVE_UP_PER_TALLY`] come in several tallies). Every batch
/// written on a connection comes after a tally that counts it, so the collector always knows
/// how many observations the batches it stored belong to. Cumulative: a repeated or late
/// tally changes nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub batches: u64,
    pub records: u64,
    pub gave_up: Vec<GaveUp, GAVE_UP_PER_TALLY>,
    /// Every clock step of the run so far, in order.
    pub clock_steps: Vec<ClockStep, MAX_CLOCK_STEPS>,
}

/// The last message of a clean shutdown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bye {
    /// Batches sent on this connection, so the collector can tell whether it got them all.
    pub batches_sent: u64,
}

/// The collector's reply: every batch with a sequence number up to `seq` (of this agent
/// run) is stored. The agent keeps a batch until it is acknowledged, so a connection that
/// breaks loses nothing: unacknowledged batches are sent again and the collector drops
/// the copies it already has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub seq: u64,
}

/// The one-byte message type of a frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MessageType {
    Hello = 1,
    Links = 2,
    LinkRemoved = 3,
    Batch = 4,
    Stats = 5,
    Bye = 6,
    Ack = 7,
    Tally = 8,
}

impl core::fmt::Display for MessageType {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            MessageType::Hello => "hello",
            MessageType::Links => "links",
            MessageType::LinkRemoved => "link-removed",
            MessageType::Batch => "batch",
            MessageType::Stats => "stats",
            MessageType::Bye => "bye",
            MessageType::Ack => "ack",
            MessageType::Tally => "tally",
        })
    }
}

impl MessageType {
    pub fn from_u8(value: u8) -> Option<MessageType> {
        Some(match value {
            1 => MessageType::Hello,
            2 => MessageType::Links,
            3 => MessageType::LinkRemoved,
            4 => MessageType::Batch,
            5 => MessageType::Stats,
            6 => MessageType::Bye,
            7 => MessageType::Ack,
            8 => MessageType::Tally,
            _ => return None,
        })
    }
}

/// One message. `Batch` borrows the received bytes (decode them with
/// [`crate::batch::BatchDecoder`]).
// Links is large (5 KB) but a message only lives on the stack while it is encoded or
// handled, and there is no heap to box it on.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    Hello(Hello),
    Links(Links),
    LinkRemoved(LinkRemoved),
    Batch(&'a [u8]),
    Stats(Stats),
    Bye(Bye),
    /// Collector → agent.
    Ack(Ack),
    Tally(Tally),
}

impl Message<'_> {
    pub fn message_type(&self) -> MessageType {
        match self {
            Message::Hello(_) => MessageType::Hello,
            Message::Links(_) => MessageType::Links,
            Message::LinkRemoved(_) => MessageType::LinkRemoved,
            Message::Batch(_) => MessageType::Batch,
            Message::Stats(_) => MessageType::Stats,
            Message::Bye(_) => MessageType::Bye,
            Message::Ack(_) => MessageType::Ack,
            Message::Tally(_) => MessageType::Tally,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(key: u16) -> LinkInfo {
        LinkInfo {
            key,
            netns: String::new(),
            name: String::try_from("veth0").unwrap(),
            ifindex: u32::from(key) + 2,
            kind: crate::record::LinkKind::Veth,
            mac: crate::types::Mac::default(),
            mtu: 1500,
            addrs: Vec::new(),
            master: None,
            peer: None,
            up: true,
        }
    }

    #[test]
    fn a_dump_numbers_its_chunks_and_keeps_every_link_once() {
        let all: [LinkInfo; 35] = core::array::from_fn(|i| link(i as u16));
        let chunks: heapless::Vec<Links, 8> = Links::dump(&all).collect();
        assert_eq!(chunks.len(), 3);
        let mut next_key = 0;
        for (i, c) in chunks.iter().enumerate() {
            assert_eq!((c.chunk, c.count, c.replace), (i as u16, 3, true));
            for l in &c.links {
                assert_eq!(l.key, next_key);
                next_key += 1;
            }
        }
        assert_eq!(next_key, 35);
        assert_eq!(chunks[2].links.len(), 3);
        let none: heapless::Vec<Links, 2> = Links::dump(&[]).collect();
        assert_eq!((none.len(), none[0].count, none[0].links.len()), (1, 1, 0));
    }

    #[test]
    fn message_type_numbers_round_trip() {
        for n in 0..=255u8 {
            if let Some(t) = MessageType::from_u8(n) {
                assert_eq!(t as u8, n);
            } else {
                assert!(n == 0 || n > 8, "{n}");
            }
        }
    }
}

//! The sample key: one 64-bit value that a packet keeps on every hop even where it is split
//! or merged on the way, so `--sample N` (`key % N == 0`) keeps a packet and all of its
//! pieces, or none of them, on every board. The [fingerprint](crate::fingerprint) cannot do
//! this: it hashes TCP seq, lengths, fragment fields and payload bytes, which differ between
//! a GSO super-packet and its segments, or a datagram and its fragments.
//!
//! # What goes in
//! - **A TCP segment carrying data** (payload after the TCP header, or more fragments to
//!   come; neither SYN nor RST): the ack, the window, the flags without CWR, PSH and FIN,
//!   and the TSval of the timestamp option when there is one. GSO copies the TCP header to
//!   every segment (seq advances; CWR stays on the first, PSH/FIN on the last) and GRO
//!   merges only segments whose ack, window, flags but those three and options are equal,
//!   so a super-packet and its segments share these. Its data is known by the IP payload
//!   length, or (that length 0 under segmentation offload) by the captured payload.
//! - **Any other TCP segment** (SYN, pure ACK, RST): its fingerprint (nothing splits it).
//! - **Any other packet, and a first fragment** (offset 0): the fingerprint's inputs without
//!   the fragment offset, more-fragments, the IP payload length and the IPv6 fragment id
//!   (an unfragmented IPv6 packet has none). The IPv4 id, the protocol, the transport fields
//!   (UDP length = the whole datagram's, ICMP type, code, sequence) and the first payload
//!   bytes stay in: a first fragment carries them as the whole datagram does.
//! - **A later fragment** (offset > 0 at the outermost fragmented IP layer): it carries no
//!   transport header, so [`SampleKeys`] remembers the key of the first fragment with the
//!   same source, destination, id and protocol at that layer for [`MAX_AGE_NS`]. For a
//!   tunnel packet whose outer IP is fragmented, that key is the inner packet's (the first
//!   outer fragment carries the inner headers), so all outer fragments agree with the inner
//!   packet seen unencapsulated.
//!
//! - **A UDP GSO segment** (an unfragmented, unencapsulated UDP datagram that fits a
//!   1500-byte link: UDP payload ≤ [`MAX_SEGMENT_V4`] or [`MAX_SEGMENT_V6`]): a sender's
//!   `UDP_SEGMENT` send crosses veths and bridges as one datagram of up to 64 KiB (the
//!   *whole*) and leaves a link that cannot segment as datagrams of the segment size, each
//!   with its own header. On the board that segments, the agent sees the whole first, so
//!   [`SampleKeys`] remembers the keys of larger datagrams for [`MAX_AGE_NS`] and a segment
//!   takes the key of the one it belongs to: the same source or the same destination
//!   (address and port: NAT rewrites only one side), and it is that whole's next segment:
//!   segments leave in order right after their whole, the first sets the segment size,
//!   every one but the last has it, the last ends the whole; for IPv4 segment k carries the
//!   whole's id + k (the ids of a flow's consecutive wholes advance by as little as 1, so
//!   their ranges overlap: only the next expected id counts). Several fitting (IPv6 has no
//!   id): the one sharing both ends, then the oldest. Any other UDP datagram keys as a
//!   packet.
//!
//! # What stays out, and why
//! Everything the fingerprint leaves out (TTL, checksums, addresses, ports, tunnel outer
//! headers: NAT, routers and tunnels rewrite them), and for TCP data the seq, the IPv4 id
//! and the lengths (they advance from segment to segment).
//!
//! # Known limits
//! - A later fragment seen before its first (Linux sends them in order; a reordering path
//!   does not), or more than [`MAX_AGE_NS`] after it, or after [`FRAGMENT_SLOTS`] other
//!   first fragments: its key is the hash of its (source, destination, id, protocol),
//!   which NAT changes from hop to hop.
//! - A TCP timestamp option cut inside its TSval by the snap length counts as absent: the key
//!   then differs from a hop that captured it (the default snaplen, 192, holds all options).
//! - Without timestamps, the data segments a sender sends while ack and window stay still
//!   share one key: sampling keeps or drops such a run together, not one in N of it.
//! - UDP GSO segments on a board that never saw their whole (the receiving board, or a
//!   sender whose whole did not cross a captured link) key each on its own: no exact key
//!   exists for them. A segment after the first carries nothing of the whole but its flow:
//!   its payload lies beyond the whole's captured headers, its id is the whole's plus a
//!   position it does not know, and its length is the segment size, which the whole's
//!   headers do not hold. A key every segment and its whole could compute alone would
//!   then depend on the flow only, and NAT rewrites that. Such a board keeps about 1 in N
//!   of the segments of a whole that was kept elsewhere, and keeps some of wholes dropped
//!   elsewhere: the collector, told which boards sample, does not call the missing ones lost.
//! - A UDP GSO whole that fits a 1500-byte link (segmented only on a narrower one), or
//!   segments larger than that (jumbo links): each keys on its own.
//! - A first fragment that holds fewer than the fingerprint's 16 payload bytes (only attack
//!   tools fragment so early), or too short to hold a tunnel's inner headers: its key (and
//!   its later fragments') differs from the whole datagram's.
//!
//! Fixed within a [`crate::message::PROTOCOL_VERSION`]: agents on different boards must
//! agree on which packets they keep.

use crate::fingerprint::{fingerprint, gather, hashed_payload, Gather, Scope};
use crate::layer::{Decoded, Layer};
use crate::summary::{Net, Summary, Transport};
use crate::types::Addr;
use crate::wire::tcp;

/// First fragments remembered at once; the oldest gives way.
pub const FRAGMENT_SLOTS: usize = 64;

/// UDP datagrams remembered at once as wholes that may be segmented; the oldest gives way.
pub const GSO_SLOTS: usize = 16;

/// The most UDP payload one datagram carries on a 1500-byte link: IPv4, IPv6. Larger ones
/// may be UDP GSO wholes; smaller ones may be their segments.
pub const MAX_SEGMENT_V4: u16 = 1500 - 20 - 8;
pub const MAX_SEGMENT_V6: u16 = 1500 - 40 - 8;

/// Segments per UDP GSO whole the kernel allows (`UDP_MAX_SEGMENTS`: 64, 128 since 6.11).
const MAX_GSO_SEGMENTS: u16 = 128;

/// How long a first fragment's key serves its later fragments: reassembly gives up after
/// 30 s, but the fragments of one datagram leave a sender within microseconds.
pub const MAX_AGE_NS: u64 = 2_000_000_000;

/// The flags GSO sets on one segment only: CWR on the first, PSH and FIN on the last.
const SEGMENT_FLAGS: u16 = tcp::FLAG_CWR | tcp::FLAG_PSH | tcp::FLAG_FIN;

/// Tags that set the TCP-data keys and the fragment fallbacks apart from the gathered packet
/// fields (a clash would only make two packets sampled alike).
const TAG_TCP_DATA: u8 = 0xff;
const TAG_FRAGMENT: u8 = 0xfe;

/// The sample keys of a capture: [`key`](Self::key) per frame, in capture order. Holds the
/// keys of recent first fragments (fixed size, no allocation) for their later fragments.
#[derive(Clone, Debug)]
pub struct SampleKeys {
    slots: [Option<Remembered>; FRAGMENT_SLOTS],
    /// The slot the next first fragment takes (the oldest).
    next: usize,
    wholes: [Option<Whole>; GSO_SLOTS],
    /// The slot the next UDP whole takes (the oldest).
    next_whole: usize,
}

/// A UDP datagram too large for a 1500-byte link: its key, for its GSO segments.
#[derive(Clone, Copy, Debug)]
struct Whole {
    flow: Udp,
    /// Payload bytes its segments took so far, and how many they were.
    taken: u16,
    segments: u16,
    /// The segment size: the first segment's payload (0 before it).
    size: u16,
    key: u64,
    at_ns: u64,
}

/// An unfragmented, unencapsulated UDP datagram's header fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Udp {
    v6: bool,
    /// (address, port); an IPv4 address in the first 4 bytes.
    src: ([u8; 16], u16),
    dst: ([u8; 16], u16),
    /// The IPv4 id (0 for IPv6).
    id: u16,
    /// UDP payload bytes (by the UDP length).
    payload: u16,
}

impl Udp {
    fn may_be_whole(&self) -> bool {
        self.payload
            > if self.v6 {
                MAX_SEGMENT_V6
            } else {
                MAX_SEGMENT_V4
            }
    }

    /// Whether this datagram can be `w`'s next segment (see "What goes in"): segments leave
    /// in order, each the segment size but the last, which ends the whole.
    fn is_next_segment_of(&self, w: &Whole) -> bool {
        let f = &w.flow;
        let shares_an_end = self.src == f.src || self.dst == f.dst;
        if self.v6 != f.v6 || !shares_an_end || self.payload >= f.payload {
            return false;
        }
        let Some(end) = w.taken.checked_add(self.payload) else {
            return false;
        };
        let fits = match w.size {
            0 => end < f.payload,
            size => end <= f.payload && (self.payload == size || end == f.payload),
        };
        let in_order =
            self.v6 || (w.segments < MAX_GSO_SEGMENTS && self.id == f.id.wrapping_add(w.segments));
        fits && in_order
    }
}

/// A first fragment's key.
#[derive(Clone, Copy, Debug)]
struct Remembered {
    /// The hash of its IP layer's (source, destination, id, protocol).
    datagram: u64,
    key: u64,
    at_ns: u64,
}

impl Default for SampleKeys {
    fn default() -> SampleKeys {
        SampleKeys::new()
    }
}

impl SampleKeys {
    pub const fn new() -> SampleKeys {
        SampleKeys {
            slots: [None; FRAGMENT_SLOTS],
            next: 0,
            wholes: [None; GSO_SLOTS],
            next_whole: 0,
        }
    }

    /// The sample key of a frame captured at `now_ns` (any clock in ns, the same for every
    /// call). `decoded` is the frame's decoding and `summary` its summary (from
    /// [`Summary::set_from_decoded`]).
    pub fn key(&mut self, decoded: &Decoded, frame: &[u8], summary: &Summary, now_ns: u64) -> u64 {
        match outermost_fragment(decoded) {
            None => match udp_datagram(summary) {
                Some(udp) => self.udp_key(&udp, decoded, frame, summary, now_ns),
                None => packet_key(decoded, frame, summary),
            },
            Some(Fragment {
                datagram,
                first: true,
            }) => {
                let key = packet_key(decoded, frame, summary);
                self.remember(datagram, key, now_ns);
                key
            }
            Some(Fragment {
                datagram,
                first: false,
            }) => self.recall(datagram, now_ns).unwrap_or(datagram),
        }
    }

    /// A UDP datagram's key: its whole's if it is a GSO segment of a remembered one, else
    /// its own (remembered if it may be a whole).
    fn udp_key(
        &mut self,
        udp: &Udp,
        decoded: &Decoded,
        frame: &[u8],
        summary: &Summary,
        now_ns: u64,
    ) -> u64 {
        if udp.may_be_whole() {
            let key = packet_key(decoded, frame, summary);
            self.remember_whole(udp, key, now_ns);
            return key;
        }
        match self.whole_of(udp, now_ns) {
            Some(key) => key,
            None => packet_key(decoded, frame, summary),
        }
    }

    fn remember_whole(&mut self, udp: &Udp, key: u64, at_ns: u64) {
        // The same whole on its next link keeps its slot (and what its segments took). The
        // key tells it from the flow's next whole of one size (IPv6 has no id).
        let same = self
            .wholes
            .iter_mut()
            .flatten()
            .find(|w| w.flow == *udp && w.key == key);
        if let Some(w) = same {
            w.at_ns = at_ns;
            return;
        }
        if let Some(slot) = self.wholes.get_mut(self.next_whole) {
            *slot = Some(Whole {
                flow: *udp,
                taken: 0,
                segments: 0,
                size: 0,
                key,
                at_ns,
            });
        }
        self.next_whole = (self.next_whole + 1) % GSO_SLOTS;
    }

    /// The key of the whole `udp` is the next segment of. Several may fit (two flows to one
    /// destination; IPv6): the one that shares both ends, then the oldest (segments leave
    /// in the order their wholes came). A whole whose segments are all out gives way.
    fn whole_of(&mut self, udp: &Udp, now_ns: u64) -> Option<u64> {
        let mut best: Option<(usize, (bool, core::cmp::Reverse<u64>))> = None;
        for (i, w) in self.wholes.iter().enumerate() {
            let Some(w) = w else { continue };
            if w.at_ns.abs_diff(now_ns) > MAX_AGE_NS || !udp.is_next_segment_of(w) {
                continue;
            }
            let rank = (
                udp.src == w.flow.src && udp.dst == w.flow.dst,
                core::cmp::Reverse(w.at_ns),
            );
            if best.is_none_or(|(_, b)| rank > b) {
                best = Some((i, rank));
            }
        }
        let slot = self.wholes.get_mut(best?.0)?;
        let w = slot.as_mut()?;
        let key = w.key;
        w.taken = w.taken.saturating_add(udp.payload);
        w.segments = w.segments.saturating_add(1);
        if w.size == 0 {
            w.size = udp.payload;
        }
        if w.taken >= w.flow.payload {
            *slot = None;
        }
        Some(key)
    }

    fn remember(&mut self, datagram: u64, key: u64, at_ns: u64) {
        let entry = Remembered {
            datagram,
            key,
            at_ns,
        };
        // A first fragment sent again takes its own slot back.
        let same = self
            .slots
            .iter_mut()
            .flatten()
            .find(|r| r.datagram == datagram);
        if let Some(slot) = same {
            *slot = entry;
            return;
        }
        if let Some(slot) = self.slots.get_mut(self.next) {
            *slot = Some(entry);
        }
        self.next = (self.next + 1) % FRAGMENT_SLOTS;
    }

    fn recall(&self, datagram: u64, now_ns: u64) -> Option<u64> {
        self.slots
            .iter()
            .flatten()
            // Either way: frames of several rings may come a little out of order.
            .find(|r| r.datagram == datagram && r.at_ns.abs_diff(now_ns) <= MAX_AGE_NS)
            .map(|r| r.key)
    }
}

/// The outermost fragmented IP layer of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Fragment {
    /// The hash of its (source, destination, id, protocol): the same in every fragment.
    datagram: u64,
    /// Offset 0: the transport header (or a tunnel's inner packet) follows.
    first: bool,
}

/// The outermost IP layer that is one fragment of several (an IPv6 atomic fragment,
/// offset 0 and no more to come, is a whole packet).
fn outermost_fragment(decoded: &Decoded) -> Option<Fragment> {
    let mut v6 = None;
    for layer in &decoded.layers {
        match *layer {
            Layer::Ipv4 {
                src,
                dst,
                id,
                mf,
                frag_offset,
                proto,
                ..
            } if mf || frag_offset != 0 => {
                return Some(Fragment {
                    datagram: datagram_hash(4, &src, &dst, u32::from(id), proto.0),
                    first: frag_offset == 0,
                });
            }
            Layer::Ipv6 { src, dst, .. } => v6 = Some((src, dst)),
            Layer::Ipv6Ext {
                next_header,
                frag: Some(frag),
                ..
            } if frag.more || frag.offset != 0 => {
                let (src, dst) = v6?;
                return Some(Fragment {
                    datagram: datagram_hash(6, &src, &dst, frag.ident, next_header.0),
                    first: frag.offset == 0,
                });
            }
            // What follows a transport is payload or an ICMP error's quote.
            Layer::Tcp { .. } | Layer::Icmp { .. } | Layer::Icmpv6 { .. } => return None,
            _ => {}
        }
    }
    None
}

/// The frame's UDP datagram, if it is one: not a fragment (the caller checked), not in a
/// tunnel. From the summary, which holds the innermost headers: no second look at the layers.
fn udp_datagram(summary: &Summary) -> Option<Udp> {
    let (
        Net::Ip(ip),
        Transport::Udp {
            src_port,
            dst_port,
            length,
        },
    ) = (summary.net, summary.transport)
    else {
        return None;
    };
    if !summary.tunnels.is_empty() || length < 8 {
        return None;
    }
    let wide = |a: Addr| match a {
        Addr::V4(v4) => {
            let mut w = [0u8; 16];
            w[..4].copy_from_slice(&v4);
            w
        }
        Addr::V6(v6) => v6,
    };
    let v6 = matches!(ip.src, Addr::V6(_));
    Some(Udp {
        v6,
        src: (wide(ip.src), src_port),
        dst: (wide(ip.dst), dst_port),
        id: if v6 { 0 } else { ip.id as u16 },
        payload: length - 8,
    })
}

/// The key of a later fragment whose first was not seen.
fn datagram_hash(version: u8, src: &[u8], dst: &[u8], id: u32, proto: u8) -> u64 {
    let mut h = Gather::new();
    h.u8(TAG_FRAGMENT);
    h.u8(version);
    h.bytes(src);
    h.bytes(dst);
    h.u32(id);
    h.u8(proto);
    h.finish()
}

/// The key of a whole packet or a first fragment (see "What goes in").
fn packet_key(decoded: &Decoded, frame: &[u8], summary: &Summary) -> u64 {
    let payload = hashed_payload(decoded, frame);
    match summary.transport {
        Transport::Tcp {
            ack,
            flags,
            window,
            hdr_len,
            ..
        } => {
            if flags & (tcp::FLAG_SYN | tcp::FLAG_RST) != 0
                || !carries_data(decoded, summary, hdr_len)
            {
                return fingerprint(summary, payload);
            }
            let mut h = Gather::new();
            h.u8(TAG_TCP_DATA);
            h.u32(ack);
            h.u16(window);
            h.u16(flags & !SEGMENT_FLAGS);
            match tsval(decoded, frame) {
                Some(tsval) => {
                    h.u8(1);
                    h.u32(tsval);
                }
                None => h.u8(0),
            }
            h.finish()
        }
        _ => gather(summary, payload, Scope::Whole).finish(),
    }
}

/// Whether a TCP segment (header `hdr_len` bytes) carries data: by the IP payload length,
/// by more fragments to come, or, the length 0 that segmentation offload leaves, by the
/// payload captured after a whole header.
fn carries_data(decoded: &Decoded, summary: &Summary, hdr_len: u8) -> bool {
    let by_length = match summary.net {
        Net::Ip(ip) => ip.payload_len > u16::from(hdr_len) || ip.more_fragments,
        _ => false,
    };
    by_length || (decoded.stop.is_none() && decoded.payload_len > 0)
}

/// The TSval of the innermost TCP header's timestamp option, as far as captured.
fn tsval(decoded: &Decoded, frame: &[u8]) -> Option<u32> {
    let start = usize::from(decoded.tcp_offset()?);
    let segment = tcp::Packet::new_checked(frame.get(start..)?).ok()?;
    tcp::timestamp_value(segment.options())
}

#[cfg(test)]
mod corpus_tests;
#[cfg(test)]
mod tests;

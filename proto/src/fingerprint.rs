//! The hop-invariant fingerprint: one 64-bit value that a packet keeps from link to link, so
//! the collector can find the same packet on every hop. (`--sample N` keeps packets by
//! [`crate::sample`]'s key instead, which a packet also keeps when it is segmented, merged
//! or fragmented on the way.)
//!
//! # What goes in, in this order (integers big-endian)
//! 1. the innermost EtherType (IPv4/IPv6/ARP/...);
//! 2. the network layer, after a tag byte (0 none, 1 ARP, 4 IPv4, 6 IPv6):
//!    - ARP: op, sender and target protocol address (nothing rewrites ARP);
//!    - IP: protocol, identification (IPv4 id or IPv6 fragment id, 32 bits), fragment offset,
//!      more-fragments, and the payload length (bytes after the IP header(s));
//! 3. the transport layer, after a tag byte (0 none, 1 TCP, 2 UDP, 3 ICMP):
//!    - TCP: seq, ack, the 12 flag bits and the window (the window tells a window update
//!      from the ACK before it; nothing on the path of a board rewrites it);
//!    - UDP: the length field; ICMP: type, code, echo sequence;
//! 4. the first [`FP_PAYLOAD_BYTES`] bytes of the innermost payload and their count, no
//!    further than the IP/UDP lengths allow (Ethernet padding is left out; nothing for ARP).
//!    For an ICMP error (v4 types 3/4/5/11/12, v6 types 1-4) the payload is the quoted
//!    packet, whose addresses, ports and checksums NAT rewrites; from it only the quoted IP
//!    length, id, fragment and protocol fields (IPv6: payload length and next header), the
//!    quoted TCP seq / UDP length / ICMP echo sequence, and the first [`FP_PAYLOAD_BYTES`]
//!    bytes of the quoted transport payload and their count go in (that payload tells apart
//!    the errors for a run of same-sized probes, e.g. traceroute's: IPv6 quotes carry no id).
//!
//! [`fingerprint_frame`] is the entry point (with [`fingerprint_summarized`] for a frame
//! already summarised): it takes the decoder's output and picks those bytes itself (the
//! innermost payload, or the quote of an ICMP error), so no caller can hand it the wrong
//! ones.
//!
//! # What stays out, and why
//! TTL/hop limit (every router), checksums (follow every rewrite), DSCP/ECN (remarked on the
//! way), MAC addresses (every hop), IP addresses, ports and the ICMP echo id (NAT), VLAN tags
//! (added and removed by bridges and NICs), the outer headers of tunnels (the overlay packet
//! and its VXLAN/Geneve/GRE copy on the underlay hash the same), IP and TCP options (MSS
//! clamping rewrites the SYN's MSS in place) and with them the TCP header length (the
//! summary carries it, but a middlebox that adds or strips an option changes it), the IPv6
//! flow label (some hosts and tunnels
//! set it on the way), and where decoding stopped (a shorter snaplen stops elsewhere).
//!
//! # Known collisions (different packets, same fingerprint)
//! - IPv6 (no id unless fragmented) packets with the same lengths and payload start.
//! - Repeated identical UDP datagrams that carry IPv4 id 0 (Linux does so for DF packets of
//!   sockets with IP_PMTUDISC_DO; kernel 6.18 gives other unconnected sockets real ids), or
//!   any identical IPv6 datagrams.
//! - TCP pure ACKs repeating seq, ack and window (duplicate ACKs); keep-alives.
//! - ARP requests repeated with the same addresses (retries).
//! - ICMP errors of one type and length whose quoted packets differ only in what NAT
//!   rewrites (addresses, ports): the same datagram of two flows.
//! - (Rare split) a TCP segment under 6 bytes with exactly 4 bytes of options, padded on
//!   one link only: the padding cannot be told from data, as the TCP header length is left
//!   out (the decoder's payload that [`fingerprint_frame`] hashes ends at the IP length,
//!   which prevents this for captured frames).
//!
//! # Known splits (one packet, different fingerprints on different hops)
//! - NAT helpers (FTP, SIP ALG) that rewrite the payload start.
//! - MSS clamping that *adds* an MSS option (TCP header, so IP payload length, grows by 4).
//! - IP fragmentation on the way: each fragment is its own packet.
//! - GSO/GRO: a merged super-packet on one link, its segments on another.
//!
//! (Sampling does not use the fingerprint: [`crate::sample`]'s key stays the same through
//! these two.)
//! - Middleboxes that rewrite the IPv4 id or randomise TCP sequence numbers; NAT64.
//! - A snaplen that captures fewer than [`FP_PAYLOAD_BYTES`] payload bytes on one link only.
//!
//! # Hash
//! The bytes above are gathered first (at most [`FP_MAX_BYTES`]), then hashed 16 at a time
//! with the folded multiply of wyhash/foldhash (the 128-bit product of two 64-bit words, its
//! halves xored): `h = fold(a ^ S1, b ^ h)` per 16-byte block (two little-endian words, the
//! last block zero-padded), starting from `S0 ^ length`, and finished with murmur3's `fmix64`
//! so every output bit, the low ones included (sampling), depends on every input bit. This
//! replaced FNV-1a 64 in protocol version 5: FNV takes one multiply per byte, in a chain, and
//! was a tenth of the agent's CPU under a flood. Fixed forever within a
//! [`crate::message::PROTOCOL_VERSION`]: agents on different boards must agree.

use crate::layer::Decoded;
use crate::summary::{Net, Summary, Transport};
use crate::types::{Addr, IpProto};

/// How many bytes of the innermost payload go into the fingerprint.
pub const FP_PAYLOAD_BYTES: usize = 16;

/// The most bytes a fingerprint hashes (the largest case, an IPv4 ICMP error quoting a TCP
/// segment, takes 46; a test checks it).
pub const FP_MAX_BYTES: usize = 64;

/// wyhash's first two secrets: odd 64-bit constants with balanced bits.
const S0: u64 = 0xa076_1d64_78bd_642f;
const S1: u64 = 0xe703_7ed1_a0b4_28db;

/// The fingerprinted bytes, gathered in order (see "What goes in"); [`crate::sample`]
/// gathers its keys here too, so both share one hash.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Gather {
    buf: [u8; FP_MAX_BYTES],
    len: usize,
}

impl Gather {
    pub(crate) fn new() -> Gather {
        Gather {
            buf: [0; FP_MAX_BYTES],
            len: 0,
        }
    }
    pub(crate) fn bytes(&mut self, bytes: &[u8]) {
        // Cannot be cut short: every case fits FP_MAX_BYTES (tested).
        debug_assert!(self.len + bytes.len() <= FP_MAX_BYTES, "{}", self.len);
        let end = (self.len + bytes.len()).min(FP_MAX_BYTES);
        let n = end - self.len;
        self.buf[self.len..end].copy_from_slice(&bytes[..n]);
        self.len = end;
    }
    /// A fixed-size write: a store, where [`bytes`](Self::bytes) takes a copy loop.
    fn array<const N: usize>(&mut self, v: [u8; N]) {
        debug_assert!(self.len + N <= FP_MAX_BYTES, "{}", self.len);
        if let Some(dst) = self.buf.get_mut(self.len..self.len + N) {
            dst.copy_from_slice(&v);
            self.len += N;
        }
    }
    pub(crate) fn u8(&mut self, v: u8) {
        self.array([v]);
    }
    pub(crate) fn u16(&mut self, v: u16) {
        self.array(v.to_be_bytes());
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.array(v.to_be_bytes());
    }
    /// The hash of the bytes gathered. The buffer past them is still zero, so its 16-byte
    /// blocks are the zero-padded ones "Hash" describes, read in place.
    pub(crate) fn finish(&self) -> u64 {
        let mut h = S0 ^ self.len as u64;
        let word = |at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&self.buf[at..at + 8]);
            u64::from_le_bytes(w)
        };
        for at in (0..self.len).step_by(16) {
            h = fold(word(at) ^ S1, word(at + 8) ^ h);
        }
        fmix64(h)
    }
}

/// The 128-bit product of `a` and `b`, its halves xored.
fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    p as u64 ^ (p >> 64) as u64
}

/// The fingerprint's hash of `bytes` (at most [`FP_MAX_BYTES`]; see "Hash").
#[cfg(test)]
fn hash(bytes: &[u8]) -> u64 {
    let mut g = Gather::new();
    g.bytes(bytes);
    g.finish()
}

/// murmur3's 64-bit finaliser: a bijection with full avalanche.
pub fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// The summary of a decoded frame and its fingerprint. `frame` is the buffer `decoded` was
/// decoded from. For an ICMP/ICMPv6 error the quoted packet is hashed (from
/// [`Decoded::quote_offset`]), otherwise the start of the innermost payload.
pub fn fingerprint_frame(decoded: &Decoded, frame: &[u8]) -> (Summary, u64) {
    let mut summary = Summary::empty();
    let fp = fingerprint_frame_into(decoded, frame, &mut summary);
    (summary, fp)
}

/// [`fingerprint_frame`] with the summary written into `summary` (reused by the capture
/// loop, so it is not moved per packet).
pub fn fingerprint_frame_into(decoded: &Decoded, frame: &[u8], summary: &mut Summary) -> u64 {
    summary.set_from_decoded(decoded);
    fingerprint_summarized(decoded, frame, summary)
}

/// The fingerprint of a frame already summarised: `summary` must be `decoded`'s (from
/// [`Summary::set_from_decoded`]). For a caller that looks at the summary first and may not
/// need the fingerprint: the agent's capture loop, which samples before it hashes.
pub fn fingerprint_summarized(decoded: &Decoded, frame: &[u8], summary: &Summary) -> u64 {
    fingerprint(summary, hashed_payload(decoded, frame))
}

/// The bytes of `frame` that go in after the headers: the quoted packet of an ICMP error,
/// otherwise the start of the innermost payload.
pub(crate) fn hashed_payload<'f>(decoded: &Decoded, frame: &'f [u8]) -> &'f [u8] {
    let payload = match decoded.quote_offset {
        Some(quote) => frame.get(usize::from(quote)..),
        None => {
            let start = usize::from(decoded.payload_offset);
            let len = usize::from(decoded.payload_len).min(FP_PAYLOAD_BYTES);
            frame.get(start..).map(|p| p.get(..len).unwrap_or(p))
        }
    };
    payload.unwrap_or(&[])
}

/// The fingerprint of a packet from its summary and the start of its innermost payload
/// (any length; the first [`FP_PAYLOAD_BYTES`] are used), or for an ICMP error the quoted
/// packet. Only [`fingerprint_frame`] knows which bytes those are in a frame.
pub(crate) fn fingerprint(summary: &Summary, payload: &[u8]) -> u64 {
    gather(summary, payload, Scope::Piece).finish()
}

/// Which IP fields [`gather`] takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    /// All of "What goes in": each fragment is a packet of its own (the fingerprint).
    Piece,
    /// Without the fragment offset, more-fragments, the IP payload length and the IPv6
    /// fragment id, which differ between a datagram and its first fragment (the sample key).
    Whole,
}

/// The bytes [`fingerprint`] hashes (`Scope::Piece`), or those a datagram shares with its
/// first fragment (`Scope::Whole`).
pub(crate) fn gather(summary: &Summary, payload: &[u8], scope: Scope) -> Gather {
    let mut h = Gather::new();
    h.u16(summary.ethertype.0);
    let mut ip_proto = None;
    match summary.net {
        Net::None => h.u8(0),
        Net::Arp { op, spa, tpa } => {
            h.u8(1);
            h.u16(op);
            h.bytes(&spa);
            h.bytes(&tpa);
        }
        Net::Ip(ip) => {
            h.u8(match ip.src {
                Addr::V4(_) => 4,
                Addr::V6(_) => 6,
            });
            h.u8(ip.proto.0);
            match scope {
                Scope::Piece => {
                    h.u32(ip.id);
                    h.u16(ip.frag_offset);
                    h.u8(u8::from(ip.more_fragments));
                    h.u16(ip.payload_len);
                }
                // An unfragmented IPv6 packet has no id, so its fragments' id stays out.
                Scope::Whole => h.u32(match ip.src {
                    Addr::V4(_) => ip.id,
                    Addr::V6(_) => 0,
                }),
            }
            ip_proto = Some(ip.proto);
        }
    }
    let mut icmp_error = false;
    match summary.transport {
        Transport::None => h.u8(0),
        Transport::Tcp {
            seq,
            ack,
            flags,
            window,
            // Not `hdr_len`: see "What stays out".
            ..
        } => {
            h.u8(1);
            h.u32(seq);
            h.u32(ack);
            h.u16(flags);
            h.u16(window);
        }
        Transport::Udp { length, .. } => {
            h.u8(2);
            h.u16(length);
        }
        Transport::Icmp { ty, code, seq, .. } => {
            h.u8(3);
            h.u8(ty);
            h.u8(code);
            h.u16(seq);
            icmp_error = match ip_proto {
                Some(IpProto::ICMP) => matches!(ty, 3 | 4 | 5 | 11 | 12),
                Some(IpProto::ICMPV6) => matches!(ty, 1..=4),
                _ => false,
            };
        }
    }
    let payload = payload.get(..l4_payload_bound(summary)).unwrap_or(payload);
    if icmp_error {
        quoted_packet(&mut h, payload);
    } else {
        let start = payload.get(..FP_PAYLOAD_BYTES).unwrap_or(payload);
        h.u8(start.len() as u8);
        h.bytes(start);
    }
    h
}

/// The most payload bytes the headers allow, so Ethernet padding after a short packet (a
/// pure ACK, an ARP) is never hashed: NICs pad on the wire, veths and bridges do not.
/// For TCP, 20 (no options) is assumed: the header length is left out on purpose (above).
fn l4_payload_bound(summary: &Summary) -> usize {
    let ip_payload = match summary.net {
        Net::Arp { .. } => return 0,
        Net::Ip(ip) => usize::from(ip.payload_len),
        Net::None => usize::MAX,
    };
    let l4_header = match summary.transport {
        Transport::Udp { length, .. } => {
            return usize::from(length).saturating_sub(8).min(ip_payload)
        }
        Transport::Tcp { .. } => 20,
        Transport::Icmp { .. } => 8,
        Transport::None => 0,
    };
    ip_payload.saturating_sub(l4_header)
}

/// Hashes the NAT-proof fields of the packet quoted in an ICMP error, as far as captured.
fn quoted_packet(h: &mut Gather, quoted: &[u8]) {
    let (proto, l4) = match quoted.first().map(|b| b >> 4) {
        Some(4) => {
            let ihl = usize::from(quoted[0] & 0x0f) * 4;
            // total length, id, flags + fragment offset; then protocol
            h.bytes(quoted.get(2..8).unwrap_or(&[]));
            let proto = quoted.get(9).copied();
            h.bytes(quoted.get(9..10).unwrap_or(&[]));
            (proto, quoted.get(ihl.max(20)..))
        }
        Some(6) => {
            // payload length, next header
            h.bytes(quoted.get(4..7).unwrap_or(&[]));
            (quoted.get(6).copied(), quoted.get(40..))
        }
        _ => {
            h.u8(0xff);
            return;
        }
    };
    let l4 = l4.unwrap_or(&[]);
    // (the invariant field, the header length when it is known)
    let (invariant, header_len) = match proto.map(IpProto) {
        Some(IpProto::TCP) => {
            let data_offset = l4.get(12).map(|b| usize::from(b >> 4) * 4);
            (l4.get(4..8), data_offset.filter(|&len| len >= 20)) // seq
        }
        Some(IpProto::UDP) => (l4.get(4..6), Some(8)), // length
        Some(IpProto::ICMP | IpProto::ICMPV6) => (l4.get(6..8), Some(8)), // echo sequence
        _ => (None, None),
    };
    h.bytes(invariant.unwrap_or(&[]));
    let data = header_len.and_then(|len| l4.get(len..)).unwrap_or(&[]);
    let start = data.get(..FP_PAYLOAD_BYTES).unwrap_or(data);
    h.u8(start.len() as u8);
    h.bytes(start);
}

#[cfg(test)]
mod icmp_errors;
#[cfg(test)]
mod tests;

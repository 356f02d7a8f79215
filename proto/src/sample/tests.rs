//! Byte fixtures of packets split and merged on the way: each whole and its pieces must get
//! one key, on hops that NAT, route (TTL - 1) and tunnel them.

extern crate std;

use super::*;
use crate::decode::{decode, DecodeOptions};
use crate::fingerprint::fingerprint_frame;
use crate::summary::TunnelKind;
use crate::types::{Addr, LinkType};
use std::vec;
use std::vec::Vec;

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;
const TCP: u8 = 6;
const UDP: u8 = 17;
const FRAG6: u8 = 44;
const MF: u16 = 0x2000;
const DF: u16 = 0x4000;
const ACK: u16 = tcp::FLAG_ACK;
const PSH_ACK: u16 = tcp::FLAG_PSH | tcp::FLAG_ACK;

const CONTAINER: [u8; 4] = [172, 17, 0, 2];
const BOARD: [u8; 4] = [192, 168, 43, 116];
const SERVER: [u8; 4] = [93, 184, 216, 34];
const V6_A: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const V6_B: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
const SECOND_NS: u64 = 1_000_000_000;

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    cat(&[
        &[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1],
        &ethertype.to_be_bytes(),
        payload,
    ])
}

/// An IPv4 header's variable fields.
#[derive(Clone, Copy)]
struct V4 {
    src: [u8; 4],
    dst: [u8; 4],
    id: u16,
    ttl: u8,
    /// Flags and fragment offset (in bytes here; written in 8-byte units).
    flags: u16,
    offset: usize,
    proto: u8,
}

impl V4 {
    fn new(src: [u8; 4], dst: [u8; 4], id: u16, proto: u8) -> V4 {
        V4 {
            src,
            dst,
            id,
            ttl: 64,
            flags: DF,
            offset: 0,
            proto,
        }
    }

    /// After a router and SNAT: new source, TTL - 1 (checksums are not checked).
    fn natted(self, src: [u8; 4]) -> V4 {
        V4 {
            src,
            ttl: self.ttl - 1,
            ..self
        }
    }

    fn packet(&self, payload: &[u8]) -> Vec<u8> {
        let mut h = [0u8; 20];
        h[0] = 0x45;
        h[2..4].copy_from_slice(&(20 + payload.len() as u16).to_be_bytes());
        h[4..6].copy_from_slice(&self.id.to_be_bytes());
        let word = self.flags | (self.offset / 8) as u16;
        h[6..8].copy_from_slice(&word.to_be_bytes());
        h[8] = self.ttl;
        h[9] = self.proto;
        h[12..16].copy_from_slice(&self.src);
        h[16..20].copy_from_slice(&self.dst);
        cat(&[&h, payload])
    }

    /// The Ethernet frames of `payload` fragmented into pieces of at most `piece` bytes
    /// (a multiple of 8), as a router with a smaller MTU sends them.
    fn fragments(&self, payload: &[u8], piece: usize) -> Vec<Vec<u8>> {
        let chunks: Vec<&[u8]> = payload.chunks(piece).collect();
        let last = chunks.len() - 1;
        chunks
            .iter()
            .enumerate()
            .map(|(i, chunk)| {
                let v4 = V4 {
                    flags: if i == last { 0 } else { MF },
                    offset: i * piece,
                    ..*self
                };
                eth(ETH_IPV4, &v4.packet(chunk))
            })
            .collect()
    }
}

fn ipv6(src: [u8; 16], dst: [u8; 16], hop_limit: u8, next: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = [0u8; 40];
    h[0] = 0x60;
    h[4..6].copy_from_slice(&(payload.len() as u16).to_be_bytes());
    h[6] = next;
    h[7] = hop_limit;
    h[8..24].copy_from_slice(&src);
    h[24..40].copy_from_slice(&dst);
    cat(&[&h, payload])
}

fn frag6(next: u8, offset: usize, more: bool, ident: u32, payload: &[u8]) -> Vec<u8> {
    let word = ((offset / 8) as u16) << 3 | u16::from(more);
    cat(&[
        &[next, 0],
        &word.to_be_bytes(),
        &ident.to_be_bytes(),
        payload,
    ])
}

/// A TCP header's fields.
#[derive(Clone, Copy)]
struct Seg {
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u16,
    window: u16,
    /// NOP, NOP, timestamp (TSval, TSecr 77) when set.
    tsval: Option<u32>,
}

const SEG: Seg = Seg {
    sport: 40000,
    dport: 443,
    seq: 2_771_915_314,
    ack: 3_919_648_298,
    flags: PSH_ACK,
    window: 63,
    tsval: Some(0x1234_5678),
};

impl Seg {
    fn bytes(&self, payload: &[u8]) -> Vec<u8> {
        let options: Vec<u8> = match self.tsval {
            Some(v) => cat(&[&[1, 1, 8, 10], &v.to_be_bytes(), &77u32.to_be_bytes()]),
            None => Vec::new(),
        };
        let words = ((20 + options.len()) / 4) as u16;
        cat(&[
            &self.sport.to_be_bytes(),
            &self.dport.to_be_bytes(),
            &self.seq.to_be_bytes(),
            &self.ack.to_be_bytes(),
            &((words << 12) | self.flags).to_be_bytes(),
            &self.window.to_be_bytes(),
            &[0xbe, 0xef, 0, 0],
            &options,
            payload,
        ])
    }
}

fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    cat(&[
        &sport.to_be_bytes(),
        &dport.to_be_bytes(),
        &(8 + payload.len() as u16).to_be_bytes(),
        &[0xca, 0xfe],
        payload,
    ])
}

fn vxlan(vni: u32, inner_frame: &[u8]) -> Vec<u8> {
    let v = vni.to_be_bytes();
    cat(&[&[0x08, 0, 0, 0, v[1], v[2], v[3], 0], inner_frame])
}

/// `len` bytes that differ from position to position.
fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn decoded(frame: &[u8]) -> (Decoded, Summary, u64) {
    let d = decode(LinkType::ETHERNET, frame, &DecodeOptions::default());
    let (summary, fp) = fingerprint_frame(&d, frame);
    (d, summary, fp)
}

/// The key of `frame` at `now_ns` with the capture's `keys`.
fn key_at(keys: &mut SampleKeys, frame: &[u8], now_ns: u64) -> u64 {
    let (d, summary, _) = decoded(frame);
    keys.key(&d, frame, &summary, now_ns)
}

/// The key of a frame that needs no earlier one.
fn key(frame: &[u8]) -> u64 {
    key_at(&mut SampleKeys::new(), frame, 0)
}

/// The keys of frames captured in order on one link, 1 µs apart.
fn keys(frames: &[Vec<u8>]) -> Vec<u64> {
    let mut keys = SampleKeys::new();
    frames
        .iter()
        .enumerate()
        .map(|(i, f)| key_at(&mut keys, f, 1_000 * i as u64))
        .collect()
}

/// The GSO super-packet of `seg` with `n` segments of 1448 bytes, and the segments after
/// MASQUERADE (source address and port) and a router (TTL - 1), as on wlan0: seq and IPv4
/// id advance, CWR stays on the first, PSH on the last.
fn gso(seg: Seg, n: usize) -> (Vec<u8>, Vec<Vec<u8>>) {
    let payload = data(1448 * n, 1);
    let v4 = V4::new(CONTAINER, SERVER, 100, TCP);
    let whole = eth(ETH_IPV4, &v4.packet(&seg.bytes(&payload)));
    let segments = payload
        .chunks(1448)
        .enumerate()
        .map(|(i, chunk)| {
            let last = i == n - 1;
            let mut flags = seg.flags & !(tcp::FLAG_PSH | tcp::FLAG_FIN | tcp::FLAG_CWR);
            if i == 0 {
                flags |= seg.flags & tcp::FLAG_CWR;
            }
            if last {
                flags |= seg.flags & (tcp::FLAG_PSH | tcp::FLAG_FIN);
            }
            let piece = Seg {
                sport: 61000,
                seq: seg.seq.wrapping_add(1448 * i as u32),
                flags,
                ..seg
            };
            let hop = V4 {
                id: 100 + i as u16,
                ..v4.natted(BOARD)
            };
            eth(ETH_IPV4, &hop.packet(&piece.bytes(chunk)))
        })
        .collect();
    (whole, segments)
}

#[test]
fn a_gso_super_packet_and_its_segments_after_nat_share_a_key() {
    let (whole, segments) = gso(SEG, 5);
    assert_eq!(segments.len(), 5);
    let key_whole = key(&whole);
    for (i, segment) in segments.iter().enumerate() {
        assert_eq!(key(segment), key_whole, "segment {i}");
    }
    // Their fingerprints differ (seq, id, length): why sampling needs the key.
    assert_ne!(decoded(&whole).2, decoded(&segments[0]).2);
    // CWR on the first segment only, FIN on the last only.
    let (whole, segments) = gso(
        Seg {
            flags: PSH_ACK | tcp::FLAG_CWR | tcp::FLAG_FIN,
            ..SEG
        },
        5,
    );
    assert!(keys(&segments).iter().all(|&k| k == key(&whole)));
}

#[test]
fn segments_without_timestamps_share_a_key_too() {
    let (whole, segments) = gso(Seg { tsval: None, ..SEG }, 5);
    assert!(keys(&segments).iter().all(|&k| k == key(&whole)));
    assert_ne!(key(&whole), key(&gso(SEG, 5).0), "the TSval goes in");
}

#[test]
fn a_gro_merged_packet_equals_its_pieces() {
    // Three segments received on eth0, merged by GRO before the bridge sees them: the
    // merged packet keeps the first one's header, PSH from the last.
    let seg = Seg {
        sport: 443,
        dport: 40000,
        seq: 81_000,
        ack: 17,
        flags: ACK,
        window: 501,
        tsval: Some(3_000_000_001),
    };
    let payload = data(3 * 1448, 9);
    let received = V4::new(SERVER, BOARD, 5000, TCP);
    let pieces: Vec<Vec<u8>> = payload
        .chunks(1448)
        .enumerate()
        .map(|(i, chunk)| {
            let piece = Seg {
                seq: seg.seq + 1448 * i as u32,
                flags: if i == 2 { PSH_ACK } else { ACK },
                ..seg
            };
            let v4 = V4 {
                id: 5000 + i as u16,
                ..received
            };
            eth(ETH_IPV4, &v4.packet(&piece.bytes(chunk)))
        })
        .collect();
    // DNAT back to the container, TTL - 1.
    let forwarded = V4 {
        dst: CONTAINER,
        ttl: 63,
        ..received
    };
    let merged_seg = Seg {
        dport: 55555,
        flags: PSH_ACK,
        ..seg
    };
    let merged = eth(ETH_IPV4, &forwarded.packet(&merged_seg.bytes(&payload)));
    assert!(keys(&pieces).iter().all(|&k| k == key(&merged)));
}

#[test]
fn syn_pure_ack_and_rst_use_the_fingerprint() {
    let v4 = V4::new(CONTAINER, SERVER, 7, TCP);
    for (flags, payload) in [
        (tcp::FLAG_SYN, &b""[..]),
        (tcp::FLAG_SYN, b"TFO data"),
        (tcp::FLAG_SYN | ACK, b""),
        (ACK, b""),
        (ACK | tcp::FLAG_FIN, b""),
        (tcp::FLAG_RST, b""),
        (tcp::FLAG_RST | ACK, b"why"),
    ] {
        let frame = eth(ETH_IPV4, &v4.packet(&Seg { flags, ..SEG }.bytes(payload)));
        assert_eq!(key(&frame), decoded(&frame).2, "flags {flags:#x}");
    }
    // A duplicate ACK and its original: one fingerprint, so one key (a known collision).
    let ack = eth(ETH_IPV4, &v4.packet(&Seg { flags: ACK, ..SEG }.bytes(b"")));
    assert_eq!(key(&ack), key(&ack));
}

#[test]
fn ethernet_padding_does_not_make_a_pure_ack_carry_data() {
    let v4 = V4::new(CONTAINER, SERVER, 7, TCP);
    let seg = Seg {
        flags: ACK,
        tsval: None,
        ..SEG
    };
    let ack = eth(ETH_IPV4, &v4.packet(&seg.bytes(b"")));
    let padded = cat(&[&ack, &[0; 6]]);
    assert_eq!(key(&padded), decoded(&ack).2);
}

/// A 3000-byte UDP datagram (2992 bytes of data) with id `id`.
fn datagram(id: u16, seed: u8) -> (V4, Vec<u8>) {
    let v4 = V4 {
        flags: 0,
        ..V4::new(CONTAINER, SERVER, id, UDP)
    };
    (v4, udp(5000, 6000, &data(2992, seed)))
}

#[test]
fn a_udp_datagram_and_its_three_fragments_share_a_key() {
    let (v4, datagram) = datagram(0x2b67, 3);
    let whole = eth(ETH_IPV4, &v4.packet(&datagram));
    let fragments = v4.natted(BOARD).fragments(&datagram, 1480);
    assert_eq!(fragments.len(), 3);
    // The first by its transport header, the others from the cache.
    let (first, _, _) = decoded(&fragments[0]);
    assert!(matches!(first.layers.last(), Some(Layer::Udp { .. })));
    assert!(matches!(
        decoded(&fragments[1]).0.layers.last(),
        Some(Layer::Ipv4 {
            frag_offset: 185,
            ..
        })
    ));
    let k = keys(&fragments);
    assert_eq!(k, [key(&whole); 3]);
    // Out of order after the first (as zeek_ipv4-fragmented-4.pcap has them): still one.
    let reordered = [
        fragments[0].clone(),
        fragments[2].clone(),
        fragments[1].clone(),
    ];
    assert_eq!(keys(&reordered), [key(&whole); 3]);
}

/// The UDP datagram of a VXLAN packet (flannel's port 8472) carrying `inner_frame`.
fn vxlan_packet(inner_frame: &[u8]) -> Vec<u8> {
    udp(39000, 8472, &vxlan(1, inner_frame))
}

#[test]
fn a_vxlan_packet_with_its_outer_header_fragmented_equals_the_inner_packet() {
    let pod_a = [10, 244, 0, 2];
    let pod_b = [10, 244, 1, 3];
    let node = V4 {
        flags: 0,
        ..V4::new([192, 168, 1, 10], [192, 168, 1, 11], 0x7001, UDP)
    };
    let inner_udp = V4 {
        flags: 0,
        ..V4::new(pod_a, pod_b, 0x0c01, UDP)
    }
    .packet(&udp(5353, 5353, &data(1600, 4)));
    let inner_tcp = V4::new(pod_a, pod_b, 0x0c02, TCP).packet(&SEG.bytes(&data(1448, 5)));
    for inner in [inner_udp, inner_tcp] {
        // On cni0, unencapsulated; then on the node's uplink with MTU 1500.
        let plain = eth(ETH_IPV4, &inner);
        let outer_payload = vxlan_packet(&eth(ETH_IPV4, &inner));
        let fragments = node.fragments(&outer_payload, 1480);
        assert_eq!(fragments.len(), 2);
        // The decoder walks the first outer fragment into the tunnel.
        let (_, first, _) = decoded(&fragments[0]);
        assert!(matches!(
            first.tunnels.first().map(|t| t.kind),
            Some(TunnelKind::Vxlan { vni: 1 })
        ));
        let Net::Ip(ip) = first.net else {
            panic!("{:?}", first.net)
        };
        assert_eq!(ip.src, Addr::V4(pod_a));
        // The second carries only the outer header.
        let (second, _, _) = decoded(&fragments[1]);
        assert_eq!(second.layers.len(), 2);
        assert_eq!(keys(&fragments), [key(&plain); 2]);
    }
}

#[test]
fn ipv6_fragments_equal_the_unfragmented_packet() {
    let datagram = udp(53, 51851, &data(3222, 6));
    let whole = eth(ETH_IPV6, &ipv6(V6_A, V6_B, 64, UDP, &datagram));
    let chunks: Vec<&[u8]> = datagram.chunks(1432).collect();
    let fragments: Vec<Vec<u8>> = chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let more = i + 1 < chunks.len();
            let body = frag6(UDP, i * 1432, more, 0x8f1d_0c2a, chunk);
            eth(ETH_IPV6, &ipv6(V6_A, V6_B, 63, FRAG6, &body))
        })
        .collect();
    assert_eq!(fragments.len(), 3);
    assert_eq!(keys(&fragments), [key(&whole); 3]);
    // An atomic fragment (offset 0, no more) is a whole packet of its own.
    let atomic = eth(
        ETH_IPV6,
        &ipv6(V6_A, V6_B, 63, FRAG6, &frag6(UDP, 0, false, 9, &datagram)),
    );
    assert_eq!(key(&atomic), key(&whole));
}

#[test]
fn a_later_fragment_whose_first_was_not_seen_gets_its_datagrams_hash() {
    let (v4, datagram) = datagram(0x2b67, 3);
    let fragments = v4.fragments(&datagram, 1480);
    let alone = key(&fragments[1]);
    assert_eq!(alone, datagram_hash(4, &CONTAINER, &SERVER, 0x2b67, UDP));
    assert_eq!(key(&fragments[2]), alone, "its siblings agree on this hop");
    // A known limit: after NAT, the next hop's miss hashes another source.
    let natted = v4.natted(BOARD).fragments(&datagram, 1480);
    assert_ne!(key(&natted[1]), alone);
    // Seen before its first (a reordering path), it misses; the first still fills the cache.
    let mut keys = SampleKeys::new();
    let early = key_at(&mut keys, &fragments[1], 0);
    let first = key_at(&mut keys, &fragments[0], 1_000);
    let last = key_at(&mut keys, &fragments[2], 2_000);
    assert_eq!((early, last), (alone, first));
}

#[test]
fn a_first_fragment_serves_its_later_ones_for_two_seconds() {
    let (v4, datagram) = datagram(0x0101, 3);
    let fragments = v4.fragments(&datagram, 1480);
    let t0 = 1_764_720_000 * SECOND_NS;
    let mut keys = SampleKeys::new();
    let first = key_at(&mut keys, &fragments[0], t0);
    let miss = datagram_hash(4, &CONTAINER, &SERVER, 0x0101, UDP);
    assert_eq!(key_at(&mut keys, &fragments[1], t0 + MAX_AGE_NS), first);
    assert_eq!(key_at(&mut keys, &fragments[1], t0 + MAX_AGE_NS + 1), miss);
    // A clock stepped back by more than that is no better.
    assert_eq!(key_at(&mut keys, &fragments[1], t0 - 3 * SECOND_NS), miss);
}

#[test]
fn the_oldest_first_fragment_gives_way() {
    let mut keys = SampleKeys::new();
    let (v4, datagram) = datagram(1, 3);
    let fragments = v4.fragments(&datagram, 1480);
    let first = key_at(&mut keys, &fragments[0], 0);
    // As many other datagrams' first fragments as there are slots, less one: still there.
    for id in 2..=FRAGMENT_SLOTS as u16 {
        let (v4, d) = datagram_of(id);
        key_at(&mut keys, &v4.fragments(&d, 1480)[0], 0);
    }
    assert_eq!(key_at(&mut keys, &fragments[1], 0), first);
    // A first fragment sent again keeps its slot.
    assert_eq!(key_at(&mut keys, &fragments[0], 0), first);
    let (v4, d) = datagram_of(999);
    key_at(&mut keys, &v4.fragments(&d, 1480)[0], 0);
    assert_eq!(
        key_at(&mut keys, &fragments[2], 0),
        datagram_hash(4, &CONTAINER, &SERVER, 1, UDP)
    );
}

fn datagram_of(id: u16) -> (V4, Vec<u8>) {
    datagram(id, id as u8)
}

#[test]
fn distinct_packets_get_distinct_keys() {
    let (v4, a) = datagram(10, 3);
    let (_, b) = datagram(10, 4);
    let whole = |v4: V4, d: &[u8]| eth(ETH_IPV4, &v4.packet(d));
    assert_ne!(key(&whole(v4, &a)), key(&whole(v4, &b)), "payload");
    let v4_other_id = V4 { id: 11, ..v4 };
    assert_ne!(key(&whole(v4, &a)), key(&whole(v4_other_id, &a)), "IPv4 id");
    let tcp = |seg: Seg| {
        eth(
            ETH_IPV4,
            &V4::new(CONTAINER, SERVER, 1, TCP).packet(&seg.bytes(b"x")),
        )
    };
    let acked = Seg {
        ack: SEG.ack + 1448,
        ..SEG
    };
    assert_ne!(key(&tcp(SEG)), key(&tcp(acked)), "ack");
    let window = Seg { window: 64, ..SEG };
    assert_ne!(key(&tcp(SEG)), key(&tcp(window)), "window");
    let later = Seg {
        tsval: Some(0x1234_5679),
        ..SEG
    };
    assert_ne!(key(&tcp(SEG)), key(&tcp(later)), "TSval");
    let urgent = Seg {
        flags: PSH_ACK | 0x020,
        ..SEG
    };
    assert_ne!(key(&tcp(SEG)), key(&tcp(urgent)), "URG");
    // Two datagrams' later fragments, each after its own first.
    let (v4b, b) = datagram(11, 4);
    let frames: Vec<Vec<u8>> = [v4.fragments(&a, 1480), v4b.fragments(&b, 1480)].concat();
    let k = keys(&frames);
    assert_ne!(k[2], k[5]);
}

#[test]
fn known_limit_a_timestamp_cut_by_the_snap_length_counts_as_absent() {
    let frame = eth(
        ETH_IPV4,
        &V4::new(CONTAINER, SERVER, 1, TCP).packet(&SEG.bytes(&data(100, 1))),
    );
    // Ethernet 14 + IPv4 20 + TCP 20 + NOP NOP + 4 of the timestamp's 10 bytes.
    let cut = &frame[..60];
    assert_eq!(decoded(cut).0.tcp_offset(), Some(34));
    let no_ts = eth(
        ETH_IPV4,
        &V4::new(CONTAINER, SERVER, 1, TCP).packet(&Seg { tsval: None, ..SEG }.bytes(b"y")),
    );
    assert_eq!(key(cut), key(&no_ts));
    assert_ne!(key(cut), key(&frame));
    // Cut after the TSval, it is there.
    assert_eq!(key(&frame[..64]), key(&frame));
}

#[test]
fn known_limit_without_timestamps_a_run_of_segments_shares_a_key() {
    let v4 = V4::new(CONTAINER, SERVER, 1, TCP);
    let seg = Seg {
        tsval: None,
        flags: ACK,
        ..SEG
    };
    let one = eth(ETH_IPV4, &v4.packet(&seg.bytes(&data(1448, 1))));
    let next = Seg {
        seq: seg.seq + 1448,
        ..seg
    };
    let two = eth(
        ETH_IPV4,
        &V4 { id: 2, ..v4 }.packet(&next.bytes(&data(1448, 2))),
    );
    assert_eq!(key(&one), key(&two));
}

#[test]
fn known_limit_a_tiny_first_fragment_splits_from_its_datagram() {
    let (v4, datagram) = datagram(0x0bad, 3);
    let whole = eth(ETH_IPV4, &v4.packet(&datagram));
    // 8 bytes of UDP header and 8 of data: fewer than the 16 payload bytes that go in.
    let tiny = v4.fragments(&datagram, 16);
    let k = keys(&tiny[..3]);
    assert_eq!((k[1], k[2]), (k[0], k[0]), "its fragments still agree");
    assert_ne!(k[0], key(&whole));
    // An outer first fragment too short for the inner headers: the same.
    let inner = V4 {
        flags: 0,
        ..V4::new([10, 244, 0, 2], [10, 244, 1, 3], 3, UDP)
    }
    .packet(&udp(1, 2, &data(1600, 4)));
    let node = V4 {
        flags: 0,
        ..V4::new([192, 168, 1, 10], [192, 168, 1, 11], 4, UDP)
    };
    let fragments = node.fragments(&vxlan_packet(&eth(ETH_IPV4, &inner)), 40);
    let k = keys(&fragments[..2]);
    assert_eq!(k[1], k[0]);
    assert_ne!(k[0], key(&eth(ETH_IPV4, &inner)));
}

#[test]
fn tcp_data_in_a_first_fragment_is_known_by_more_fragments() {
    // A first fragment that ends with the TCP header (32 bytes with the timestamp): the
    // datagram still carries data.
    let v4 = V4 {
        flags: 0,
        ..V4::new(CONTAINER, SERVER, 0x4242, TCP)
    };
    let segment = SEG.bytes(&data(100, 1));
    let whole = eth(ETH_IPV4, &v4.packet(&segment));
    let fragments = v4.fragments(&segment, 32);
    assert_eq!(decoded(&fragments[0]).0.payload_len, 0);
    assert_eq!(keys(&fragments), [key(&whole); 5]);
}

#[test]
fn any_bytes_get_a_key_without_panic() {
    let (whole, segments) = gso(SEG, 2);
    let mut keys = SampleKeys::new();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..4000u64 {
        let base = if round % 2 == 0 { &whole } else { &segments[0] };
        let mut frame = base[..base.len().min(200)].to_vec();
        // xorshift: flip a few bytes, cut at some length.
        for _ in 0..4 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let at = (seed % frame.len() as u64) as usize;
            frame[at] = (seed >> 32) as u8;
        }
        frame.truncate((seed >> 40) as usize % (frame.len() + 1));
        key_at(&mut keys, &frame, round);
    }
}

/// A UDP GSO send of 7 × 1400 + 1100 bytes from the container (IPv4 id 100): the whole,
/// and its segments after MASQUERADE (new source address and port), ids 100..=107.
fn udp_gso() -> (Vec<u8>, Vec<Vec<u8>>) {
    udp_gso_send(100, 5)
}

/// [`udp_gso`] with IPv4 id `id` and payload `seed`.
fn udp_gso_send(id: u16, seed: u8) -> (Vec<u8>, Vec<Vec<u8>>) {
    let payload = data(10_900, seed);
    let v4 = V4 {
        flags: 0,
        ..V4::new(CONTAINER, SERVER, id, UDP)
    };
    let whole = eth(ETH_IPV4, &v4.packet(&udp(5000, 6000, &payload)));
    let segments = payload
        .chunks(1400)
        .enumerate()
        .map(|(k, chunk)| {
            let hop = V4 {
                id: id.wrapping_add(k as u16),
                ..v4.natted(BOARD)
            };
            eth(ETH_IPV4, &hop.packet(&udp(61000, 6000, chunk)))
        })
        .collect();
    (whole, segments)
}

#[test]
fn udp_gso_segments_after_nat_take_their_wholes_key() {
    let (whole, segments) = udp_gso();
    assert_eq!(segments.len(), 8);
    // The whole on the container's eth0, the veth and docker0, then the segments.
    let mut frames = vec![whole.clone(), whole.clone(), whole.clone()];
    frames.extend(segments.iter().cloned());
    assert_eq!(keys(&frames), [key(&whole); 11]);
    // Alone (a board that never saw the whole), each keys on its own.
    let alone: Vec<u64> = segments.iter().map(|s| key(s)).collect();
    assert!(alone.iter().all(|&k| k != key(&whole)));
}

#[test]
fn udp_datagrams_that_are_not_segments_keep_their_own_key() {
    let (whole, segments) = udp_gso();
    let mut keys_ = SampleKeys::new();
    assert_eq!(key_at(&mut keys_, &whole, 0), key(&whole));
    // Another flow (neither end shared), with the whole's ids.
    let other = V4 {
        flags: 0,
        ..V4::new(BOARD, [10, 0, 0, 9], 101, UDP)
    };
    let other = eth(ETH_IPV4, &other.packet(&udp(7000, 7001, &data(1400, 9))));
    assert_eq!(key_at(&mut keys_, &other, 1_000), key(&other));
    // The flow's next datagram without GSO: its id is past the whole's segments.
    let next = V4 {
        flags: 0,
        ..V4::new(CONTAINER, SERVER, 108, UDP)
    };
    let next = eth(ETH_IPV4, &next.packet(&udp(5000, 6000, &data(1400, 7))));
    assert_eq!(key_at(&mut keys_, &next, 2_000), key(&next));
    // A segment more than MAX_AGE_NS after its whole.
    let late = &segments[1];
    assert_eq!(key_at(&mut keys_, late, 3 * SECOND_NS), key(late));
}

#[test]
fn ipv6_udp_gso_segments_take_the_oldest_whole_with_bytes_left() {
    // Two sends of one flow back to back (IPv6: no id), the second seen before the first
    // one's last segments left: each segment still takes its own whole's key.
    let send = |seed: u8| -> (Vec<u8>, Vec<Vec<u8>>) {
        let payload = data(4000, seed);
        let whole = eth(
            ETH_IPV6,
            &ipv6(V6_A, V6_B, 64, UDP, &udp(5000, 6000, &payload)),
        );
        let segments = payload
            .chunks(1400)
            .map(|c| eth(ETH_IPV6, &ipv6(V6_A, V6_B, 63, UDP, &udp(5000, 6000, c))))
            .collect();
        (whole, segments)
    };
    let (a, a_segs) = send(1);
    let (b, b_segs) = send(2);
    assert_ne!(key(&a), key(&b));
    let mut frames = vec![a.clone(), a_segs[0].clone(), b.clone()];
    frames.extend(a_segs[1..].iter().cloned());
    frames.extend(b_segs.iter().cloned());
    let (ka, kb) = (key(&a), key(&b));
    assert_eq!(keys(&frames), [ka, ka, kb, ka, ka, kb, kb, kb]);
}

#[test]
fn udp_gso_sends_whose_id_ranges_overlap_keep_their_own_segments() {
    // Linux gives an unconnected socket's sends ids a few apart (seen: 10877, 10880), so
    // segment ids of consecutive sends overlap; a send dropped before segmentation (id 97)
    // stays in the cache, waiting for a segment that never comes.
    let (dropped, _) = udp_gso_send(97, 1);
    let (a, a_segs) = udp_gso_send(100, 2);
    let (b, b_segs) = udp_gso_send(103, 3);
    let mut frames = vec![dropped.clone(), a.clone(), a.clone()];
    frames.extend(a_segs.iter().cloned());
    frames.extend([b.clone(), b.clone()]);
    frames.extend(b_segs.iter().cloned());
    let (kd, ka, kb) = (key(&dropped), key(&a), key(&b));
    let mut want = vec![kd, ka, ka];
    want.extend([ka; 8]);
    want.extend([kb; 10]);
    assert_eq!(keys(&frames), want);
}

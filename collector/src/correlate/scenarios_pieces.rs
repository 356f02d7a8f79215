//! Packets that split and merge on the synthetic Pi + Docker bed: GSO segments, GRO merges,
//! IP fragments, and the losses among them.

use super::scenarios::{path, run, T0};
use super::testbed::*;
use super::*;
use hopcap_proto::summary::{Ip, Net, Transport};
use hopcap_proto::types::{Addr, IpProto};

const SEQ: u32 = 4_294_960_000; // wraps inside the first super-packet

#[test]
fn a_gso_super_packet_and_its_segments_are_one_journey() {
    let mut bed = Bed::new();
    let pi = pi_docker(&mut bed);
    upload(&mut bed, &pi, 0, T0, SEQ, 5, 100, &[]);
    let (r, _) = run(bed, &Config::default());
    assert_eq!(r.journeys.len(), 1, "{:#?}", r.journeys);
    let j = &r.journeys[0];
    assert_eq!(
        path(j),
        [
            "pi1/ctr:eth0 Out",
            "pi1/:vethc426d5b In",
            "pi1/:docker0 In",
            "pi1/:wlan0 Out"
        ]
    );
    assert_eq!(j.fate, Fate::Complete);
    assert_eq!(j.lost_range, None);
    assert_eq!(
        j.whole,
        Whole {
            seq: Some(SEQ),
            len: 5 * u64::from(MSS)
        }
    );
    assert_eq!(
        j.events,
        [PieceEvent {
            kind: PieceEventKind::Segmented,
            at: 3,
            from: 1,
            into: 5
        }]
    );
    assert!(j.hops[..3].iter().all(|h| h.pieces.is_empty()));
    let pieces = &j.hops[3].pieces;
    let got: Vec<(u64, u64, Option<u32>)> =
        pieces.iter().map(|p| (p.offset, p.len, p.seq)).collect();
    let want: Vec<(u64, u64, Option<u32>)> = (0..5u32)
        .map(|k| {
            (
                u64::from(k * MSS),
                u64::from(MSS),
                Some(SEQ.wrapping_add(k * MSS)),
            )
        })
        .collect();
    assert_eq!(got, want);
    // The masquerade still shows, between docker0 and the first segment on wlan0.
    assert_eq!(j.nat.len(), 1);
    assert_eq!(j.nat[0].at, 3);
    // Every observation is in the journey once.
    let mut inputs: Vec<usize> = j.inputs().collect();
    inputs.sort_unstable();
    assert_eq!(inputs, (0..8).collect::<Vec<_>>());
}

#[test]
fn a_segment_that_never_left_is_the_lost_range() {
    let mut bed = Bed::new();
    let pi = pi_docker(&mut bed);
    upload(&mut bed, &pi, 0, T0, 1000, 5, 100, &[2]);
    let (r, _) = run(bed, &Config::default());
    assert_eq!(r.journeys.len(), 1);
    let j = &r.journeys[0];
    assert_eq!(j.fate, Fate::LostAfter(2), "lost after docker0");
    let third = 1000 + 2 * MSS;
    assert_eq!(
        j.lost_range,
        Some(LostRange {
            start: u64::from(third),
            end: u64::from(third + MSS),
            seq: true
        })
    );
}

#[test]
fn the_segments_of_a_retransmission_go_with_it_not_with_the_lost_original() {
    let mut bed = Bed::new();
    let pi = pi_docker(&mut bed);
    // The original is dropped after docker0 (no segment leaves); 200 ms later the sender
    // retransmits the same bytes (new IP id), and those leave as segments.
    upload(&mut bed, &pi, 0, T0, 1000, 3, 100, &[0, 1, 2]);
    upload(&mut bed, &pi, 1, T0 + 200_000_000, 1000, 3, 200, &[]);
    let (r, _) = run(bed, &Config::default());
    assert_eq!(r.journeys.len(), 2, "{:#?}", r.journeys);
    let (orig, re) = (&r.journeys[0], &r.journeys[1]);
    assert_eq!(orig.fate, Fate::LostAfter(2));
    assert_eq!(
        orig.lost_range,
        Some(LostRange {
            start: 1000,
            end: u64::from(1000 + 3 * MSS),
            seq: true
        })
    );
    assert_eq!(re.fate, Fate::Complete);
    assert_eq!(re.hops[3].pieces.len(), 3);
}

#[test]
fn gro_merging_on_receive_is_the_mirror_case() {
    let mut bed = Bed::new();
    let pi = pi_docker(&mut bed);
    // A download: three segments reach wlan0 (to the board's address, before the reverse
    // masquerade), GRO merges them, and the container's hops see one packet.
    let down = |seq: u32, id: u16, data: u32, dst: [u8; 4]| {
        tcp4((INTERNET, 5201), (dst, 40000), seq, 0x010, id, data as u16)
    };
    let mut t = T0;
    for k in 0..3u32 {
        bed.see(
            0,
            pi.wlan0,
            false,
            t,
            &down(7000 + k * MSS, 50 + k as u16, MSS, PI1_WLAN),
        );
        t += 2_000;
    }
    let merged = down(7000, 50, 3 * MSS, CTR);
    walk(
        &mut bed,
        0,
        t,
        &[
            (pi.docker0, true, 10_000, &merged),
            (pi.veth, true, 2_000, &merged),
            (pi.eth0, false, 20_000, &merged),
        ],
    );
    let (r, _) = run(bed, &Config::default());
    assert_eq!(r.journeys.len(), 1, "{:#?}", r.journeys);
    let j = &r.journeys[0];
    assert_eq!(j.fate, Fate::Complete);
    assert_eq!(j.hops.len(), 4);
    assert_eq!(j.hops[0].pieces.len(), 3);
    assert_eq!(
        j.events,
        [PieceEvent {
            kind: PieceEventKind::Merged,
            at: 1,
            from: 3,
            into: 1
        }]
    );
    assert_eq!(
        j.whole,
        Whole {
            seq: Some(7000),
            len: 3 * u64::from(MSS)
        }
    );
}

/// An IPv4 UDP datagram (or a fragment of one) of `payload` IP payload bytes.
fn udp(src: [u8; 4], id: u16, offset: u16, more: bool, payload: u16, first: bool) -> Summary {
    Summary {
        ethertype: hopcap_proto::types::EtherType::IPV4,
        net: Net::Ip(Ip {
            src: Addr::V4(src),
            dst: Addr::V4(INTERNET),
            proto: IpProto::UDP,
            ttl: 64,
            id: u32::from(id),
            frag_offset: offset / 8,
            more_fragments: more,
            payload_len: payload,
        }),
        transport: if first {
            Transport::Udp {
                src_port: 40001,
                dst_port: 9000,
                length: 3008,
            }
        } else {
            Transport::None
        },
        ..Summary::empty()
    }
}

/// The three fragments of a 3008-byte UDP payload on a 1500-byte MTU.
fn fragments(src: [u8; 4], id: u16) -> [Summary; 3] {
    [
        udp(src, id, 0, true, 1480, true),
        udp(src, id, 1480, true, 1480, false),
        udp(src, id, 2960, false, 48, false),
    ]
}

#[test]
fn a_datagram_fragmented_on_the_way_is_one_journey() {
    let mut bed = Bed::new();
    let pi = pi_docker(&mut bed);
    let whole = udp(CTR, 77, 0, false, 3008, true);
    let mut t = walk(
        &mut bed,
        0,
        T0,
        &[
            (pi.eth0, true, 0, &whole),
            (pi.veth, false, 20_000, &whole),
            (pi.docker0, false, 0, &whole),
        ],
    );
    for f in fragments(PI1_WLAN, 77) {
        t += 4_000;
        bed.see(0, pi.wlan0, true, t, &f);
    }
    // Another flow's datagram with the same id, whole all the way, stays apart.
    let other = Summary {
        transport: Transport::Udp {
            src_port: 5353,
            dst_port: 5353,
            length: 1008,
        },
        ..udp(PI1_WLAN, 77, 0, false, 1008, true)
    };
    bed.see(1, pi.wlan0, true, t + 1_000, &other);
    let (r, _) = run(bed, &Config::default());
    assert_eq!(r.journeys.len(), 2, "{:#?}", r.journeys);
    let j = &r.journeys[0];
    assert_eq!(j.fate, Fate::Complete);
    assert_eq!(
        j.whole,
        Whole {
            seq: None,
            len: 3008
        }
    );
    assert_eq!(
        j.events,
        [PieceEvent {
            kind: PieceEventKind::Fragmented,
            at: 3,
            from: 1,
            into: 3
        }]
    );
    let offsets: Vec<(u64, u64)> = j.hops[3].pieces.iter().map(|p| (p.offset, p.len)).collect();
    assert_eq!(offsets, [(0, 1480), (1480, 1480), (2960, 48)]);
    assert_eq!(r.journeys[1].hops.len(), 1);
}

#[test]
fn fragments_seen_as_fragments_everywhere_are_one_journey() {
    let mut bed = Bed::new();
    let pi = pi_docker(&mut bed);
    let (inside, outside) = (fragments(CTR, 9), fragments(PI1_WLAN, 9));
    let mut t = T0;
    for (a, b) in inside.iter().zip(&outside) {
        t = walk(
            &mut bed,
            0,
            t,
            &[
                (pi.eth0, true, 1_000, a),
                (pi.veth, false, 20_000, a),
                (pi.docker0, false, 0, a),
                (pi.wlan0, true, 30_000, b),
            ],
        );
    }
    let (r, _) = run(bed, &Config::default());
    assert_eq!(r.journeys.len(), 1, "{:#?}", r.journeys);
    let j = &r.journeys[0];
    assert_eq!(j.fate, Fate::Complete);
    assert_eq!(
        j.whole,
        Whole {
            seq: None,
            len: 3008
        }
    );
    assert!(j.events.is_empty());
    assert!(j.hops.iter().all(|h| h.pieces.len() == 3));
}

#[test]
fn a_lost_fragment_is_the_lost_range() {
    let mut bed = Bed::new();
    let pi = pi_docker(&mut bed);
    let whole = udp(CTR, 78, 0, false, 3008, true);
    let mut t = walk(
        &mut bed,
        0,
        T0,
        &[
            (pi.eth0, true, 0, &whole),
            (pi.veth, false, 20_000, &whole),
            (pi.docker0, false, 0, &whole),
        ],
    );
    let [a, _, c] = fragments(PI1_WLAN, 78);
    for f in [a, c] {
        t += 4_000;
        bed.see(0, pi.wlan0, true, t, &f);
    }
    let (r, _) = run(bed, &Config::default());
    assert_eq!(r.journeys.len(), 1, "{:#?}", r.journeys);
    let j = &r.journeys[0];
    assert_eq!(j.fate, Fate::LostAfter(2));
    assert_eq!(
        j.lost_range,
        Some(LostRange {
            start: 1480,
            end: 2960,
            seq: false
        })
    );
}

#[test]
fn unrelated_journeys_are_left_as_they_were() {
    // Pings and small TCP exchanges: no family has two members that could be pieces.
    let mut bed = Bed::new();
    let pi = pi_docker(&mut bed);
    let mut t = T0;
    for seq in 0..20u16 {
        t = pi.request(
            &mut bed,
            usize::from(seq),
            t + 1_000_000,
            INTERNET,
            seq,
            [23_000, 340_000, 0],
        );
    }
    let (r, truth) = run(bed, &Config::default());
    assert_eq!(r.journeys.len(), 20);
    assert!(r
        .journeys
        .iter()
        .all(|j| j.events.is_empty() && j.hops.iter().all(|h| h.pieces.is_empty())));
    let s = score(&r, &truth);
    assert_eq!((s.complete, s.false_merges), (20, 0), "{s:?}");
}

#[test]
fn a_whole_and_its_pieces_share_the_partition_key() {
    // Scaled mode partitions by this key: the super-packet and its segments (after
    // masquerade, with the edge flags and their own IP ids) must meet in one correlator.
    let whole = up(SEQ, 0x018, 100, 5 * MSS);
    let key = piece_family_key(&whole);
    assert!(key.is_some());
    for k in 0..5u32 {
        let flags = if k == 4 { 0x018 } else { 0x010 };
        let seg = with_src(
            &up(SEQ.wrapping_add(k * MSS), flags, 100 + k as u16, MSS),
            PI1_WLAN,
            None,
        );
        assert_eq!(piece_family_key(&seg), key, "segment {k}");
    }
    // Another ack (the next round of the same flow) is another family.
    let mut other = up(SEQ, 0x018, 100, MSS);
    if let Transport::Tcp { ack, .. } = &mut other.transport {
        *ack += 1;
    }
    assert_ne!(piece_family_key(&other), key);
    // A pure ACK carries no bytes: it has no family, and keys by its fingerprint.
    assert_eq!(piece_family_key(&up(SEQ, 0x010, 7, 0)), None);
}

// UDP GSO: one `UDP_SEGMENT` send of 7 × 1400 + 1100 bytes.

/// The UDP payload of the GSO sends, and their segment size.
const GSO_LEN: u16 = 10_900;
const GSO_SIZE: u16 = 1400;

/// An IPv4 UDP datagram of `payload` UDP payload bytes.
fn udp4(src: ([u8; 4], u16), dst: ([u8; 4], u16), id: u16, payload: u16) -> Summary {
    Summary {
        ethertype: hopcap_proto::types::EtherType::IPV4,
        net: Net::Ip(Ip {
            src: Addr::V4(src.0),
            dst: Addr::V4(dst.0),
            proto: IpProto::UDP,
            ttl: 64,
            id: u32::from(id),
            frag_offset: 0,
            more_fragments: false,
            payload_len: payload + 8,
        }),
        transport: Transport::Udp {
            src_port: src.1,
            dst_port: dst.1,
            length: payload + 8,
        },
        ..Summary::empty()
    }
}

/// The segments' payload sizes of a `len`-byte send cut at `size`.
fn cut(len: u16, size: u16) -> Vec<u16> {
    (0..len.div_ceil(size))
        .map(|k| size.min(len - k * size))
        .collect()
}

/// A UDP GSO send from the container (`sport` → INTERNET:9000, IPv4 id `id`): whole on the
/// container's hops, segments (masqueraded, the port kept) on wlan0 Out, those in `missing`
/// never. Returns the last time.
fn gso_send(
    bed: &mut Bed,
    pi: &PiDocker,
    pkt: usize,
    t: u64,
    (sport, id): (u16, u16),
    missing: &[u16],
) -> u64 {
    let whole = udp4((CTR, sport), (INTERNET, 9000), id, GSO_LEN);
    let mut t = walk(
        bed,
        pkt,
        t,
        &[
            (pi.eth0, true, 0, &whole),
            (pi.veth, false, 20_000, &whole),
            (pi.docker0, false, 0, &whole),
        ],
    );
    for (k, size) in cut(GSO_LEN, GSO_SIZE).into_iter().enumerate() {
        let k = k as u16;
        t += 2_000;
        if !missing.contains(&k) {
            let seg = udp4(
                (PI1_WLAN, sport),
                (INTERNET, 9000),
                id.wrapping_add(k),
                size,
            );
            bed.see(pkt, pi.wlan0, true, t, &seg);
        }
    }
    t
}

fn offsets(h: &JourneyHop) -> Vec<(u64, u64)> {
    h.pieces.iter().map(|p| (p.offset, p.len)).collect()
}

fn cut_offsets() -> Vec<(u64, u64)> {
    (0..8u64)
        .map(|k| (k * 1400, if k == 7 { 1100 } else { 1400 }))
        .collect()
}

#[test]
fn a_udp_gso_send_and_its_segments_are_one_journey() {
    let mut bed = Bed::new();
    let pi = pi_docker(&mut bed);
    // The id wraps inside the send.
    gso_send(&mut bed, &pi, 0, T0, (40001, 65_533), &[]);
    let (r, _) = run(bed, &Config::default());
    assert_eq!(r.journeys.len(), 1, "{:#?}", r.journeys);
    let j = &r.journeys[0];
    assert_eq!(
        path(j),
        [
            "pi1/ctr:eth0 Out",
            "pi1/:vethc426d5b In",
            "pi1/:docker0 In",
            "pi1/:wlan0 Out"
        ]
    );
    assert_eq!((j.fate, j.lost_range), (Fate::Complete, None));
    assert_eq!(
        j.whole,
        Whole {
            seq: None,
            len: u64::from(GSO_LEN)
        }
    );
    assert_eq!(
        j.events,
        [PieceEvent {
            kind: PieceEventKind::Segmented,
            at: 3,
            from: 1,
            into: 8
        }]
    );
    assert!(j.hops[..3].iter().all(|h| h.pieces.is_empty()));
    assert_eq!(offsets(&j.hops[3]), cut_offsets());
    assert_eq!((j.nat.len(), j.nat[0].at), (1, 3), "the masquerade shows");
    let mut inputs: Vec<usize> = j.inputs().collect();
    inputs.sort_unstable();
    assert_eq!(inputs, (0..11).collect::<Vec<_>>());
}

#[test]
fn a_lost_udp_segment_is_the_lost_range() {
    let mut bed = Bed::new();
    let pi = pi_docker(&mut bed);
    gso_send(&mut bed, &pi, 0, T0, (40001, 300), &[3]);
    let (r, _) = run(bed, &Config::default());
    assert_eq!(r.journeys.len(), 1, "{:#?}", r.journeys);
    let j = &r.journeys[0];
    assert_eq!(j.fate, Fate::LostAfter(2), "lost after docker0");
    assert_eq!(
        j.lost_range,
        Some(LostRange {
            start: 4200,
            end: 5600,
            seq: false
        })
    );
    assert_eq!(j.hops[3].pieces.len(), 7);
}

#[test]
fn the_first_udp_segment_lost_still_ties_the_rest() {
    let mut bed = Bed::new();
    let pi = pi_docker(&mut bed);
    gso_send(&mut bed, &pi, 0, T0, (40001, 300), &[0]);
    let (r, _) = run(bed, &Config::default());
    assert_eq!(r.journeys.len(), 1, "{:#?}", r.journeys);
    let j = &r.journeys[0];
    assert_eq!(j.fate, Fate::LostAfter(2));
    assert_eq!(j.lost_range.map(|l| (l.start, l.end)), Some((0, 1400)));
}

#[test]
fn udp_gso_sends_of_two_flows_with_one_id_stay_apart() {
    // Two sockets' sends to one destination, the same id and size, 10 µs apart; their
    // segments interleave on wlan0. Each send keeps its own segments (the masquerade kept
    // the ports); a third flow's datagrams with the same ids, to another port, join neither.
    let mut bed = Bed::new();
    let pi = pi_docker(&mut bed);
    let sends = [(40001u16, 0usize), (40002, 1)];
    let mut t = T0;
    for &(sport, pkt) in &sends {
        let whole = udp4((CTR, sport), (INTERNET, 9000), 300, GSO_LEN);
        walk(
            &mut bed,
            pkt,
            t,
            &[
                (pi.eth0, true, 0, &whole),
                (pi.veth, false, 20_000, &whole),
                (pi.docker0, false, 0, &whole),
            ],
        );
        t += 10_000;
    }
    // After the second send reached docker0.
    t += 20_000;
    for (k, size) in cut(GSO_LEN, GSO_SIZE).into_iter().enumerate() {
        for &(sport, pkt) in &sends {
            t += 1_000;
            let seg = udp4((PI1_WLAN, sport), (INTERNET, 9000), 300 + k as u16, size);
            bed.see(pkt, pi.wlan0, true, t, &seg);
        }
        let other = udp4((PI1_WLAN, 5353), (INTERNET, 5353), 300 + k as u16, GSO_SIZE);
        bed.see(2 + k, pi.wlan0, true, t + 500, &other);
    }
    let (r, truth) = run(bed, &Config::default());
    let split: Vec<&Journey> = r.journeys.iter().filter(|j| !j.events.is_empty()).collect();
    assert_eq!(split.len(), 2, "{:#?}", r.journeys);
    for j in &split {
        let pkts: std::collections::BTreeSet<usize> = j.inputs().map(|i| truth[i]).collect();
        assert_eq!(pkts.len(), 1, "one send's observations only: {pkts:?}");
        assert_eq!(j.fate, Fate::Complete);
        assert_eq!(offsets(&j.hops[3]), cut_offsets());
    }
    assert_eq!(r.journeys.len(), 2 + 8, "the other flow's datagrams alone");
}

#[test]
fn a_lost_udp_send_is_not_tied_to_later_datagrams_of_its_flow() {
    // The send is dropped at docker0; the socket then sends 1400-byte datagrams without
    // GSO (ids after the send's), which cross every hop: they share links with the send, so
    // none of them is its segment, and the send reads lost.
    let mut bed = Bed::new();
    let pi = pi_docker(&mut bed);
    gso_send(
        &mut bed,
        &pi,
        0,
        T0,
        (40001, 300),
        &[0, 1, 2, 3, 4, 5, 6, 7],
    );
    let mut t = T0 + 1_000_000;
    for k in 0..8u16 {
        let inside = udp4((CTR, 40001), (INTERNET, 9000), 300 + k, GSO_SIZE);
        let outside = udp4((PI1_WLAN, 40001), (INTERNET, 9000), 300 + k, GSO_SIZE);
        t = walk(
            &mut bed,
            1 + usize::from(k),
            t + 100_000,
            &[
                (pi.eth0, true, 0, &inside),
                (pi.veth, false, 20_000, &inside),
                (pi.docker0, false, 0, &inside),
                (pi.wlan0, true, 30_000, &outside),
            ],
        );
    }
    let (r, _) = run(bed, &Config::default());
    assert_eq!(r.journeys.len(), 9, "{:#?}", r.journeys);
    assert_eq!(r.journeys[0].fate, Fate::LostAfter(2));
    assert!(r.journeys.iter().all(|j| j.events.is_empty()));
    assert!(r.journeys[1..].iter().all(|j| j.fate == Fate::Complete));
}

#[test]
fn udp_gro_merging_on_receive_is_the_mirror_case() {
    // Segments of a download reach wlan0 (to the board's address); UDP GRO merges them
    // (the merged datagram keeps the first one's id) and the container's hops see one.
    let mut bed = Bed::new();
    let pi = pi_docker(&mut bed);
    let mut t = T0;
    for (k, size) in cut(GSO_LEN, GSO_SIZE).into_iter().enumerate() {
        let seg = udp4((INTERNET, 9000), (PI1_WLAN, 40001), 500 + k as u16, size);
        bed.see(0, pi.wlan0, false, t, &seg);
        t += 2_000;
    }
    let merged = udp4((INTERNET, 9000), (CTR, 40001), 500, GSO_LEN);
    walk(
        &mut bed,
        0,
        t,
        &[
            (pi.docker0, true, 10_000, &merged),
            (pi.veth, true, 2_000, &merged),
            (pi.eth0, false, 20_000, &merged),
        ],
    );
    let (r, _) = run(bed, &Config::default());
    assert_eq!(r.journeys.len(), 1, "{:#?}", r.journeys);
    let j = &r.journeys[0];
    assert_eq!(j.fate, Fate::Complete);
    assert_eq!(offsets(&j.hops[0]), cut_offsets());
    assert_eq!(
        j.events,
        [PieceEvent {
            kind: PieceEventKind::Merged,
            at: 1,
            from: 8,
            into: 1
        }]
    );
}

/// An IPv6 UDP datagram of `payload` bytes between fd00::`src` and fd00::`dst`. `salt`
/// stands for the payload bytes the fingerprint hashes (the bed has none): segments of one
/// send differ there.
fn udp6(src: (u8, u16), dst: (u8, u16), payload: u16, salt: u32) -> Summary {
    let v6 = |last: u8| {
        let mut a = [0u8; 16];
        a[0] = 0xfd;
        a[15] = last;
        Addr::V6(a)
    };
    Summary {
        ethertype: hopcap_proto::types::EtherType::IPV6,
        net: Net::Ip(Ip {
            src: v6(src.0),
            dst: v6(dst.0),
            proto: IpProto::UDP,
            ttl: 64,
            id: salt,
            frag_offset: 0,
            more_fragments: false,
            payload_len: payload + 8,
        }),
        transport: Transport::Udp {
            src_port: src.1,
            dst_port: dst.1,
            length: payload + 8,
        },
        ..Summary::empty()
    }
}

#[test]
fn ipv6_udp_gso_sends_take_their_own_segments_and_a_gap_unties() {
    // Three sends of one flow back to back: the second loses a segment. The first and third
    // are tied to exactly their segments; the second, without an id to place the rest, is
    // left untied rather than guessed.
    let mut bed = Bed::new();
    let pi = pi_docker(&mut bed);
    let mut t = T0;
    let mut salt = 0;
    for send in 0..3usize {
        salt += 100;
        let whole = udp6((2, 40001), (9, 9000), GSO_LEN, salt);
        t = walk(
            &mut bed,
            send,
            t + 50_000,
            &[
                (pi.eth0, true, 0, &whole),
                (pi.veth, false, 20_000, &whole),
                (pi.docker0, false, 0, &whole),
            ],
        );
        for (k, size) in cut(GSO_LEN, GSO_SIZE).into_iter().enumerate() {
            t += 2_000;
            if send == 1 && k == 4 {
                continue;
            }
            let seg = udp6((2, 40001), (9, 9000), size, salt + 1 + k as u32);
            bed.see(send, pi.wlan0, true, t, &seg);
        }
    }
    let (r, truth) = run(bed, &Config::default());
    let split: Vec<&Journey> = r.journeys.iter().filter(|j| !j.events.is_empty()).collect();
    assert_eq!(split.len(), 2, "{:#?}", r.journeys);
    for j in &split {
        let pkts: std::collections::BTreeSet<usize> = j.inputs().map(|i| truth[i]).collect();
        assert_eq!(pkts.len(), 1, "{pkts:?}");
        assert!(pkts.contains(&0) || pkts.contains(&2), "{pkts:?}");
        assert_eq!(offsets(&j.hops[3]), cut_offsets());
    }
    assert_eq!(r.journeys.len(), 2 + 1 + 7);
}

#[test]
fn udp_segments_missing_on_a_sampling_board_are_not_lost() {
    // A send to Pi 2: Pi 1 kept it and all its segments (its sample key), Pi 2, which
    // never saw the whole, kept the segments whose own key it keeps: 2 of 8.
    let seen_on_pi2 = |bed: &mut Bed, pi: &PiDocker| {
        let whole = udp4((CTR, 40001), (PI2_WLAN, 9000), 300, GSO_LEN);
        let mut t = walk(
            bed,
            0,
            T0,
            &[
                (pi.eth0, true, 0, &whole),
                (pi.veth, false, 20_000, &whole),
                (pi.docker0, false, 0, &whole),
            ],
        );
        for (k, size) in cut(GSO_LEN, GSO_SIZE).into_iter().enumerate() {
            t += 2_000;
            let seg = udp4((PI1_WLAN, 40001), (PI2_WLAN, 9000), 300 + k as u16, size);
            bed.see(0, pi.wlan0, true, t, &seg);
            if k == 2 || k == 5 {
                bed.see(0, pi.pi2_wlan0, false, t + 500_000, &seg);
            }
        }
    };
    for (sampling, want) in [
        (vec![], Fate::LostAfter(3)),
        (vec!["pi2".to_string()], Fate::Complete),
    ] {
        let mut bed = Bed::new();
        let pi = pi_docker(&mut bed);
        seen_on_pi2(&mut bed, &pi);
        let cfg = Config {
            sampling,
            ..Config::default()
        };
        let (r, _) = run(bed, &cfg);
        assert_eq!(r.journeys.len(), 1, "{:#?}", r.journeys);
        assert_eq!(r.journeys[0].fate, want, "{:?}", cfg.sampling);
    }
}

#[test]
fn back_to_back_udp_gso_sends_with_overlapping_ids_keep_their_segments() {
    // An unconnected socket's sends get ids a few apart (Linux reserves one id per send,
    // seen 10877 then 10880), so segment ids of consecutive sends overlap: send 0's fourth
    // segment and send 1's first both carry id 303. Unpaced: each send's segments leave
    // right after it reached docker0, before the next send.
    // Ids 1 apart (the e2e bed's sends got those) or 3; sends 5 µs or 5 ms apart.
    for (step, pause) in [(1u16, 5_000u64), (3, 5_000), (1, 5_000_000)] {
        let mut bed = Bed::new();
        let pi = pi_docker(&mut bed);
        let mut t = T0;
        for send in 0..6u16 {
            let id = 300 + step * send;
            t = gso_send(
                &mut bed,
                &pi,
                usize::from(send),
                t + pause,
                (40001, id),
                &[],
            );
        }
        let (r, truth) = run(bed, &Config::default());
        assert_eq!(r.journeys.len(), 6, "{step} {pause}: {:#?}", r.journeys);
        for (n, j) in r.journeys.iter().enumerate() {
            let pkts: std::collections::BTreeSet<usize> = j.inputs().map(|i| truth[i]).collect();
            assert_eq!(
                pkts,
                [n].into(),
                "{step} {pause}: send {n}'s own segments only"
            );
            assert_eq!(j.fate, Fate::Complete);
            assert_eq!(offsets(&j.hops[3]), cut_offsets());
        }
    }
}

#[test]
fn a_lost_udp_gso_send_does_not_take_the_next_sends_segments() {
    // Send 0 (id 300) is dropped at docker0; send 1 (id 303) leaves: its first five
    // segments (ids 303..=307, 1400 bytes) fit send 0's id range and sizes too, but lie
    // nearer their own send.
    let mut bed = Bed::new();
    let pi = pi_docker(&mut bed);
    let t = gso_send(
        &mut bed,
        &pi,
        0,
        T0,
        (40001, 300),
        &[0, 1, 2, 3, 4, 5, 6, 7],
    );
    gso_send(&mut bed, &pi, 1, t + 5_000_000, (40001, 303), &[]);
    let (r, truth) = run(bed, &Config::default());
    assert_eq!(r.journeys.len(), 2, "{:#?}", r.journeys);
    let (lost, sent) = (&r.journeys[0], &r.journeys[1]);
    assert_eq!(lost.fate, Fate::LostAfter(2));
    assert!(lost.events.is_empty());
    assert!(lost.inputs().all(|i| truth[i] == 0));
    assert_eq!(sent.fate, Fate::Complete);
    assert_eq!(offsets(&sent.hops[3]), cut_offsets());
}

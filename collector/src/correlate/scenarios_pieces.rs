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

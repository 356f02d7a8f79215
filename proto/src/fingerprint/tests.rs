extern crate std;

use super::*;
use crate::layer::{LayerKind, StopReason};
use crate::summary::{Ip, Stop, Tunnel, TunnelKind};
use crate::types::EtherType;

fn ipv4(proto: IpProto, id: u32, payload_len: u16) -> Ip {
    Ip {
        src: Addr::V4([10, 0, 0, 2]),
        dst: Addr::V4([93, 184, 216, 34]),
        proto,
        ttl: 64,
        id,
        frag_offset: 0,
        more_fragments: false,
        payload_len,
    }
}

fn with(net: Net, transport: Transport) -> Summary {
    let mut s = Summary::empty();
    s.ethertype = match net {
        Net::Ip(Ip {
            src: Addr::V6(_), ..
        }) => EtherType::IPV6,
        Net::Arp { .. } => EtherType::ARP,
        _ => EtherType::IPV4,
    };
    s.net = net;
    s.transport = transport;
    s
}

fn tcp(seq: u32, ack: u32, flags: u16, window: u16, payload_len: u16) -> Summary {
    let t = Transport::Tcp {
        src_port: 40000,
        dst_port: 443,
        seq,
        ack,
        flags,
        window,
        hdr_len: 20,
    };
    with(Net::Ip(ipv4(IpProto::TCP, 0x1234, payload_len)), t)
}

fn udp6(src_port: u16, len: u16) -> Summary {
    let ip = Ip {
        src: Addr::V6([0xfd; 16]),
        dst: Addr::V6([0xfe; 16]),
        proto: IpProto::UDP,
        id: 0,
        ..ipv4(IpProto::UDP, 0, len)
    };
    with(
        Net::Ip(ip),
        Transport::Udp {
            src_port,
            dst_port: 53,
            length: len,
        },
    )
}

const DATA: [u8; 24] = *b"GET / HTTP/1.1\r\nHost: ex";

#[test]
fn the_hash_matches_an_independent_implementation_and_mixes() {
    // Known answers from a separate implementation of "Hash" (Python, 2026-12-04): a change
    // here is a protocol change.
    assert_eq!(hash(b""), 0x05f8_0708_adb6_c5a9);
    assert_eq!(hash(b"a"), 0xf998_50ed_93cd_c014);
    let ramp: std::vec::Vec<u8> = (0..54).collect();
    assert_eq!(hash(&ramp), 0x190a_af39_22ea_ff5c);
    // The length goes in: trailing zeros are not the same bytes.
    assert_ne!(hash(&[1, 0]), hash(&[1]));
    assert_eq!(fmix64(0), 0);
    // One flipped input bit flips about half the output bits, in every block.
    for bit in [0, 7, 64, 127, 128, 400] {
        let mut flipped = ramp.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        let n = (hash(&ramp) ^ hash(&flipped)).count_ones();
        assert!((16..=48).contains(&n), "bit {bit}: {n} bits changed");
    }
}

#[test]
fn the_largest_case_fits_the_gathered_bytes() {
    // An IPv4 ICMP error quoting a TCP segment with 16+ payload bytes: 46 bytes.
    let mut quote = std::vec![0x45, 0, 0, 60, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0];
    quote.extend_from_slice(&[10, 0, 0, 2, 93, 184, 216, 34]);
    quote.extend_from_slice(&[0x1f, 0x90, 0, 80, 1, 2, 3, 4, 0, 0, 0, 0, 0x50, 0x18, 1, 0]);
    quote.extend_from_slice(&[0, 0, 0, 0]);
    quote.extend_from_slice(&DATA);
    let mut s = with(
        Net::Ip(ipv4(IpProto::ICMP, 7, 8 + quote.len() as u16)),
        Transport::Icmp {
            ty: 11,
            code: 0,
            id: 0,
            seq: 0,
        },
    );
    s.ethertype = EtherType(0x0800);
    // Gather never cuts (it debug-asserts): this is the most it is given.
    assert_eq!(gather(&s, &quote, Scope::Piece).len, 46);
    const { assert!(46 <= FP_MAX_BYTES) };
}

#[test]
fn the_hashed_bytes_are_the_documented_ones() {
    let s = tcp(0x0102_0304, 0x0506_0708, 0x018, 502, 40);
    let mut doc = std::vec::Vec::new();
    doc.extend_from_slice(&[0x08, 0x00]); // ethertype
    doc.extend_from_slice(&[4, 6, 0, 0, 0x12, 0x34, 0, 0, 0, 0, 40]); // IPv4: proto id frag mf len
    doc.extend_from_slice(&[1, 1, 2, 3, 4, 5, 6, 7, 8, 0x00, 0x18, 0x01, 0xf6]); // TCP
    doc.push(16);
    doc.extend_from_slice(&DATA[..16]);
    assert_eq!(fingerprint(&s, &DATA), hash(&doc));
}

#[test]
fn what_changes_per_hop_does_not_change_it() {
    let base = tcp(1000, 2000, 0x10, 500, 52);
    let fp = fingerprint(&base, &DATA);
    let mut hop = base.clone();
    let Net::Ip(ref mut ip) = hop.net else {
        unreachable!()
    };
    ip.ttl = 63;
    ip.src = Addr::V4([192, 168, 1, 10]); // masquerade
    hop.transport = Transport::Tcp {
        src_port: 61000,
        dst_port: 443,
        seq: 1000,
        ack: 2000,
        flags: 0x10,
        window: 500,
        // A middlebox added an option: the header length is not hashed.
        hdr_len: 32,
    };
    hop.vlan = Some(100);
    hop.stop = Some(Stop {
        offset: 60,
        kind: LayerKind::Tcp,
        reason: StopReason::Truncated { needed: 20, had: 4 },
    });
    assert_eq!(fingerprint(&hop, &DATA), fp);
    // Payload beyond the first FP_PAYLOAD_BYTES does not count.
    let mut longer = DATA;
    longer[FP_PAYLOAD_BYTES] ^= 0xff;
    assert_eq!(fingerprint(&base, &longer), fp);

    let echo = |id, ttl| {
        let ip = Ip {
            ttl,
            ..ipv4(IpProto::ICMP, 7, 64)
        };
        with(
            Net::Ip(ip),
            Transport::Icmp {
                ty: 8,
                code: 0,
                id,
                seq: 3,
            },
        )
    };
    assert_eq!(
        fingerprint(&echo(1, 64), &DATA),
        fingerprint(&echo(999, 60), &DATA)
    );
}

#[test]
fn the_overlay_packet_and_its_vxlan_copy_hash_the_same() {
    let inner = tcp(5, 6, 0x18, 300, 1480);
    let mut underlay = inner.clone();
    underlay
        .tunnels
        .push(Tunnel {
            kind: TunnelKind::Vxlan { vni: 42 },
            src: Addr::V4([192, 168, 1, 10]),
            dst: Addr::V4([192, 168, 1, 11]),
            outer_id: 777,
            src_port: 50123,
            dst_port: 4789,
        })
        .unwrap();
    assert_eq!(fingerprint(&inner, &DATA), fingerprint(&underlay, &DATA));
}

#[test]
fn every_included_field_changes_it() {
    let base = tcp(1000, 2000, 0x10, 500, 52);
    let fp = fingerprint(&base, &DATA);
    let tcp_variants = [
        tcp(1001, 2000, 0x10, 500, 52),
        tcp(1000, 2001, 0x10, 500, 52),
        tcp(1000, 2000, 0x18, 500, 52),
        tcp(1000, 2000, 0x10, 501, 52),
        tcp(1000, 2000, 0x10, 500, 53),
    ];
    for v in &tcp_variants {
        assert_ne!(fingerprint(v, &DATA), fp, "{v:?}");
    }
    let ip_edits: [fn(&mut Ip); 4] = [
        |i| i.id ^= 1,
        |i| i.frag_offset = 1,
        |i| i.more_fragments = true,
        |i| i.proto = IpProto(99),
    ];
    for edit in ip_edits {
        let mut s = base.clone();
        let Net::Ip(ref mut ip) = s.net else {
            unreachable!()
        };
        edit(ip);
        assert_ne!(fingerprint(&s, &DATA), fp, "{s:?}");
    }
    let mut s = base.clone();
    s.ethertype = EtherType(0x0801);
    assert_ne!(fingerprint(&s, &DATA), fp);
    for i in 0..FP_PAYLOAD_BYTES {
        let mut p = DATA;
        p[i] ^= 1;
        assert_ne!(fingerprint(&base, &p), fp, "payload byte {i}");
    }
    let udp = |length| {
        with(
            Net::Ip(ipv4(IpProto::UDP, 1, 40)),
            Transport::Udp {
                src_port: 1,
                dst_port: 2,
                length,
            },
        )
    };
    assert_ne!(fingerprint(&udp(40), &DATA), fingerprint(&udp(41), &DATA));
    let icmp = |ty, code, seq| {
        with(
            Net::Ip(ipv4(IpProto::ICMP, 1, 64)),
            Transport::Icmp {
                ty,
                code,
                id: 5,
                seq,
            },
        )
    };
    let fp_icmp = fingerprint(&icmp(8, 0, 1), &DATA);
    for v in [icmp(0, 0, 1), icmp(8, 1, 1), icmp(8, 0, 2)] {
        assert_ne!(fingerprint(&v, &DATA), fp_icmp);
    }
    let arp = |op, spa, tpa| with(Net::Arp { op, spa, tpa }, Transport::None);
    let fp_arp = fingerprint(&arp(1, [1, 1, 1, 1], [2, 2, 2, 2]), &[]);
    for v in [
        arp(2, [1, 1, 1, 1], [2, 2, 2, 2]),
        arp(1, [1, 1, 1, 3], [2, 2, 2, 2]),
        arp(1, [1, 1, 1, 1], [2, 2, 2, 3]),
    ] {
        assert_ne!(fingerprint(&v, &[]), fp_arp);
    }
}

/// An ICMP time-exceeded quoting an IPv4/UDP packet, with the quoted source as given.
fn time_exceeded(
    quoted_src: [u8; 4],
    quoted_sport: u16,
    quoted_id: u16,
) -> (Summary, std::vec::Vec<u8>) {
    let s = with(
        Net::Ip(ipv4(IpProto::ICMP, 99, 36)),
        Transport::Icmp {
            ty: 11,
            code: 0,
            id: 0,
            seq: 0,
        },
    );
    let mut q = std::vec::Vec::new();
    q.extend_from_slice(&[0x45, 0, 0, 60]);
    q.extend_from_slice(&quoted_id.to_be_bytes());
    q.extend_from_slice(&[0, 0, 1, 17]); // flags/frag, TTL 1, UDP
    q.extend_from_slice(&quoted_src.wrapping_add_checksum()); // checksum follows the source
    q.extend_from_slice(&quoted_src);
    q.extend_from_slice(&[8, 8, 8, 8]);
    q.extend_from_slice(&quoted_sport.to_be_bytes());
    q.extend_from_slice(&[0x82, 0x9a, 0, 40, 0xab, 0xcd]); // dport, length, checksum
    (s, q)
}

trait FakeChecksum {
    fn wrapping_add_checksum(&self) -> [u8; 2];
}
impl FakeChecksum for [u8; 4] {
    fn wrapping_add_checksum(&self) -> [u8; 2] {
        [self[0] ^ self[2], self[1] ^ self[3]]
    }
}

#[test]
fn an_icmp_error_hashes_the_same_before_and_after_nat_rewrites_the_quote() {
    let (s, inside) = time_exceeded([172, 17, 0, 2], 40000, 0x5555);
    let (_, outside) = time_exceeded([192, 168, 1, 10], 61000, 0x5555);
    assert_ne!(inside, outside);
    assert_eq!(fingerprint(&s, &inside), fingerprint(&s, &outside));
    let (_, other) = time_exceeded([172, 17, 0, 2], 40000, 0x5556);
    assert_ne!(fingerprint(&s, &inside), fingerprint(&s, &other));
    // A quote cut short by the snaplen still hashes what is there.
    assert_ne!(fingerprint(&s, &inside[..10]), fingerprint(&s, &inside));
}

// ---- the documented collisions ----

#[test]
fn collides_ipv6_datagrams_with_the_same_lengths_and_payload() {
    // Different flows even (ports are left out for NAT).
    assert_eq!(
        fingerprint(&udp6(5000, 40), &DATA),
        fingerprint(&udp6(6000, 40), &DATA)
    );
}

#[test]
fn collides_repeated_identical_udp_datagrams_with_ip_id_zero() {
    let dgram = |ttl| {
        let ip = Ip {
            ttl,
            ..ipv4(IpProto::UDP, 0, 40)
        };
        with(
            Net::Ip(ip),
            Transport::Udp {
                src_port: 123,
                dst_port: 123,
                length: 40,
            },
        )
    };
    // The first datagram on its second hop and the repeat on its first.
    assert_eq!(
        fingerprint(&dgram(63), &DATA),
        fingerprint(&dgram(64), &DATA)
    );
    // With a changing id (connected sockets, no DF) they are told apart.
    let next = with(
        Net::Ip(ipv4(IpProto::UDP, 1, 40)),
        Transport::Udp {
            src_port: 123,
            dst_port: 123,
            length: 40,
        },
    );
    assert_ne!(fingerprint(&dgram(64), &DATA), fingerprint(&next, &DATA));
}

#[test]
fn collides_duplicate_pure_acks_unless_the_ip_id_moved() {
    let ack = tcp(1000, 2000, 0x10, 500, 20);
    let Net::Ip(ip) = ack.net else { unreachable!() };
    // The duplicate, seen after NAT on the uplink, next to the original seen inside.
    let mut dup = ack.clone();
    dup.net = Net::Ip(Ip {
        src: Addr::V4([192, 168, 1, 10]),
        ttl: 63,
        ..ip
    });
    dup.transport = Transport::Tcp {
        src_port: 61000,
        dst_port: 443,
        seq: 1000,
        ack: 2000,
        flags: 0x10,
        window: 500,
        hdr_len: 20,
    };
    assert_eq!(fingerprint(&ack, &[]), fingerprint(&dup, &[]));
    dup.net = Net::Ip(Ip {
        id: ip.id + 1,
        ..ip
    });
    assert_ne!(fingerprint(&ack, &[]), fingerprint(&dup, &[]));
    // A window update (same seq/ack) is told apart by the window.
    assert_ne!(
        fingerprint(&ack, &[]),
        fingerprint(&tcp(1000, 2000, 0x10, 501, 20), &[])
    );
}

#[test]
fn collides_arp_retries_whatever_the_padding() {
    let who_has = with(
        Net::Arp {
            op: 1,
            spa: [10, 0, 0, 1],
            tpa: [10, 0, 0, 2],
        },
        Transport::None,
    );
    // The retry, padded to 60 bytes by a NIC with stale bytes, vs the unpadded original.
    assert_eq!(
        fingerprint(&who_has, &[]),
        fingerprint(&who_has, &[0xde; 18])
    );
}

#[test]
fn ethernet_padding_after_a_short_packet_is_not_hashed() {
    let ack = tcp(1, 2, 0x10, 500, 20);
    assert_eq!(
        fingerprint(&ack, &[]),
        fingerprint(&ack, &[0, 0, 0, 0, 0, 0])
    );
    let dns = with(
        Net::Ip(ipv4(IpProto::UDP, 3, 12)),
        Transport::Udp {
            src_port: 5,
            dst_port: 53,
            length: 12,
        },
    );
    assert_eq!(fingerprint(&dns, &DATA[..4]), fingerprint(&dns, &DATA));
    assert_ne!(fingerprint(&dns, &DATA[..3]), fingerprint(&dns, &DATA));
}

// ---- the documented splits ----

#[test]
fn splits_when_a_nat_helper_rewrites_the_payload() {
    let s = tcp(1, 1, 0x18, 500, 20 + 26 + 200);
    let inside = *b"PORT 172,17,0,2,156,64\r\n..";
    let outside = *b"PORT 192,168,1,10,156,64\r\n";
    assert_ne!(fingerprint(&s, &inside), fingerprint(&s, &outside));
}

#[test]
fn splits_when_mss_clamping_adds_an_option_but_not_when_it_rewrites_one() {
    let syn = tcp(77, 0, 0x002, 64240, 40);
    let clamped_in_place = syn.clone(); // option bytes are not in the summary nor the payload
    let grown = tcp(77, 0, 0x002, 64240, 44);
    assert_eq!(fingerprint(&syn, &[]), fingerprint(&clamped_in_place, &[]));
    assert_ne!(fingerprint(&syn, &[]), fingerprint(&grown, &[]));
}

#[test]
fn splits_when_the_packet_is_fragmented_on_the_way() {
    let whole = with(
        Net::Ip(ipv4(IpProto::UDP, 9, 2008)),
        Transport::Udp {
            src_port: 1,
            dst_port: 2,
            length: 2008,
        },
    );
    let mut first = whole.clone();
    first.net = Net::Ip(Ip {
        more_fragments: true,
        payload_len: 1480,
        ..ipv4(IpProto::UDP, 9, 0)
    });
    let mut second = with(
        Net::Ip(Ip {
            frag_offset: 185,
            payload_len: 528,
            ..ipv4(IpProto::UDP, 9, 0)
        }),
        Transport::None,
    );
    second.ethertype = EtherType::IPV4;
    let fps = [
        fingerprint(&whole, &DATA),
        fingerprint(&first, &DATA),
        fingerprint(&second, &DATA[8..]),
    ];
    assert_ne!(fps[0], fps[1]);
    assert_ne!(fps[1], fps[2]);
}

#[test]
fn splits_between_a_gro_super_packet_and_its_segments() {
    let segment = tcp(1000, 1, 0x10, 500, 32 + 1448);
    let merged = tcp(1000, 1, 0x10, 500, 32 + 2 * 1448);
    assert_ne!(fingerprint(&segment, &DATA), fingerprint(&merged, &DATA));
}

#[test]
fn splits_when_a_middlebox_rewrites_the_ip_id_or_sequence() {
    let s = tcp(1000, 1, 0x10, 500, 52);
    let Net::Ip(ip) = s.net else { unreachable!() };
    let mut id = s.clone();
    id.net = Net::Ip(Ip { id: 0x9999, ..ip });
    assert_ne!(fingerprint(&s, &DATA), fingerprint(&id, &DATA));
    assert_ne!(
        fingerprint(&s, &DATA),
        fingerprint(&tcp(0xdead_beef, 1, 0x10, 500, 52), &DATA)
    );
}

#[test]
fn splits_when_one_link_captures_fewer_payload_bytes() {
    let s = tcp(1, 1, 0x18, 500, 1480);
    assert_ne!(fingerprint(&s, &DATA[..8]), fingerprint(&s, &DATA));
}

#[test]
fn low_bits_are_uniform_for_sampling() {
    // A bulk transfer: seq +1448, id +1, identical payload starts (worst case for a weak hash).
    let mut buckets = [0u32; 16];
    let n = 1 << 16;
    for i in 0..n {
        let mut s = tcp(i * 1448, 7, 0x10, 500, 1480);
        if let Net::Ip(ref mut ip) = s.net {
            ip.id = i & 0xffff;
        }
        buckets[(fingerprint(&s, &[0; 16]) % 16) as usize] += 1;
    }
    let expected = n / 16;
    for (b, &count) in buckets.iter().enumerate() {
        assert!(
            count.abs_diff(expected) < expected / 20,
            "bucket {b}: {count} vs {expected}"
        );
    }
}

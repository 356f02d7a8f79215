extern crate std;

use super::*;
use crate::layer::{Invalid, LayerKind, StopReason};
use crate::summary::{Ip, Net, Stop, Summary, Transport, Tunnel, TunnelKind};
use crate::types::{Addr, EtherType, IpProto, PacketType};
use hopcap_testkit::Rng;
use std::boxed::Box;
use std::vec::Vec as StdVec;

/// Encodes `obs` into batches of at most `max_bytes`, returns the batches.
fn encode_all(obs: &[Observation], max_bytes: usize) -> StdVec<StdVec<u8>> {
    let mut enc = Box::new(BatchEncoder::new("board-1", max_bytes));
    let mut batches = StdVec::new();
    for o in obs {
        if enc.push(o).is_err() {
            batches.push(enc.finish().to_vec());
            enc.push(o).expect("a record fits an empty batch");
        }
    }
    batches.push(enc.finish().to_vec());
    batches
}

fn decode_all(batches: &[StdVec<u8>]) -> StdVec<Observation> {
    let mut dec = Box::new(BatchDecoder::new());
    let mut out = StdVec::new();
    for (i, b) in batches.iter().enumerate() {
        let info = dec
            .decode(b, |o| out.push(o))
            .unwrap_or_else(|e| panic!("batch {i}: {e:?}"));
        assert_eq!(info.header.seq, i as u64);
        assert!(info.header.reset);
    }
    out
}

fn assert_round_trip(obs: &[Observation], max_bytes: usize) -> usize {
    let batches = encode_all(obs, max_bytes);
    let back = decode_all(&batches);
    assert_eq!(back.len(), obs.len());
    for (i, (a, b)) in obs.iter().zip(&back).enumerate() {
        assert_eq!(a, b, "record {i}");
    }
    batches.iter().map(|b| b.len()).sum()
}

// ---- randomised round trips over every summary shape ----

fn addr(rng: &mut Rng) -> Addr {
    let pool = [
        Addr::V4([10, 0, 0, 1]),
        Addr::V4([10, 0, 0, 2]),
        Addr::V6([0xfe; 16]),
    ];
    if rng.chance(700) {
        pool[rng.below(3) as usize]
    } else if rng.chance(500) {
        Addr::V4((rng.next_u64() as u32).to_be_bytes())
    } else {
        Addr::V6((u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64())).to_be_bytes())
    }
}

fn wild(rng: &mut Rng) -> u64 {
    match rng.below(4) {
        0 => 0,
        1 => u64::MAX,
        2 => rng.below(300),
        _ => rng.next_u64(),
    }
}

fn stop(rng: &mut Rng) -> Option<Stop> {
    let kinds = [
        LayerKind::Ethernet,
        LayerKind::Ipv4,
        LayerKind::Ipv6Ext,
        LayerKind::Tcp,
        LayerKind::Gtpu,
        LayerKind::Other,
    ];
    let reason = match rng.below(5) {
        0 => StopReason::Truncated {
            needed: rng.next_u64() as u16,
            had: rng.next_u64() as u16,
        },
        1 => StopReason::Invalid(Invalid::ArpLengths {
            hlen: rng.next_u64() as u8,
            plen: 4,
        }),
        2 => StopReason::Invalid(Invalid::Ipv4TotalLen(rng.next_u64() as u16)),
        3 => StopReason::Unsupported(rng.next_u64() as u16),
        _ => StopReason::TooDeep,
    };
    rng.chance(300).then(|| Stop {
        offset: rng.next_u64() as u16,
        kind: kinds[rng.below(6) as usize],
        reason,
    })
}

fn tunnel(rng: &mut Rng) -> Tunnel {
    let kind = match rng.below(5) {
        0 => TunnelKind::Vxlan {
            vni: rng.next_u64() as u32 & 0xff_ffff,
        },
        1 => TunnelKind::Geneve {
            vni: rng.next_u64() as u32,
        },
        2 => TunnelKind::Gre {
            key: rng.chance(500).then(|| rng.next_u64() as u32),
        },
        3 => TunnelKind::Gtpu {
            teid: rng.next_u64() as u32,
        },
        _ => TunnelKind::IpInIp,
    };
    Tunnel {
        kind,
        src: addr(rng),
        dst: addr(rng),
        outer_id: rng.next_u64() as u16,
        src_port: rng.next_u64() as u16,
        dst_port: 4789,
    }
}

fn random_summary(rng: &mut Rng) -> Summary {
    let mut s = Summary::empty();
    s.vlan = rng.chance(200).then(|| rng.next_u64() as u16);
    s.ethertype = [
        EtherType::IPV4,
        EtherType::IPV6,
        EtherType::ARP,
        EtherType(rng.next_u64() as u16),
    ][rng.below(4) as usize];
    for _ in 0..rng.below(3) {
        let _ = s.tunnels.push(tunnel(rng));
    }
    s.net = match rng.below(4) {
        0 => Net::None,
        1 => Net::Arp {
            op: rng.next_u64() as u16,
            spa: (rng.next_u64() as u32).to_be_bytes(),
            tpa: [1, 2, 3, 4],
        },
        _ => Net::Ip(Ip {
            src: addr(rng),
            dst: addr(rng),
            proto: IpProto(rng.next_u64() as u8),
            ttl: rng.next_u64() as u8,
            id: wild(rng) as u32,
            frag_offset: rng.next_u64() as u16 & 0x1fff,
            more_fragments: rng.chance(100),
            payload_len: wild(rng) as u16,
        }),
    };
    let (sp, dp) = (rng.below(4) as u16 * 1000, rng.next_u64() as u16);
    s.transport = match rng.below(4) {
        0 => Transport::None,
        1 => Transport::Tcp {
            src_port: sp,
            dst_port: dp,
            seq: wild(rng) as u32,
            ack: wild(rng) as u32,
            flags: rng.next_u64() as u16 & 0xfff,
            window: rng.next_u64() as u16,
            hdr_len: match rng.below(3) {
                0 => 20,
                1 => 32,
                _ => rng.next_u64() as u8,
            },
        },
        2 => Transport::Udp {
            src_port: sp,
            dst_port: dp,
            length: wild(rng) as u16,
        },
        _ => Transport::Icmp {
            ty: rng.next_u64() as u8,
            code: rng.next_u64() as u8,
            id: sp,
            seq: wild(rng) as u16,
        },
    };
    s.stop = stop(rng);
    s
}

/// Random observations: fresh packets, and copies of recent ones with hop-like changes
/// (other link, TTL, NAT, tunnels added or removed) or, rarely, changed invariant fields.
fn random_observations(seed: u64, n: usize) -> StdVec<Observation> {
    let mut rng = Rng::new(seed);
    let mut out: StdVec<Observation> = StdVec::new();
    let mut ts = wild(&mut rng);
    let mut order = wild(&mut rng);
    for _ in 0..n {
        ts = match rng.below(10) {
            0 => wild(&mut rng),
            1 => ts.wrapping_sub(rng.below(1_000_000)),
            _ => ts.wrapping_add(rng.below(2_000_000)),
        };
        order = if rng.chance(900) {
            order.wrapping_add(rng.below(20))
        } else {
            wild(&mut rng)
        };
        let mut o = match out
            .len()
            .checked_sub(1 + rng.below(40) as usize)
            .map(|i| out[i].clone())
        {
            Some(mut prev) if rng.chance(600) => {
                if let Net::Ip(ref mut ip) = prev.summary.net {
                    ip.ttl = ip.ttl.wrapping_sub(rng.below(2) as u8);
                    if rng.chance(200) {
                        ip.src = addr(&mut rng);
                    }
                    if rng.chance(50) {
                        ip.id ^= 1;
                    }
                }
                if rng.chance(200) {
                    prev.summary.tunnels.clear();
                    let _ = prev.summary.tunnels.push(tunnel(&mut rng));
                }
                if rng.chance(100) {
                    prev.summary.tunnels.clear();
                }
                prev.wire_len = prev.wire_len.wrapping_add(rng.below(3) as u32 * 25);
                prev
            }
            _ => Observation {
                ts_ns: 0,
                link: 0,
                order: 0,
                pkttype: PacketType(0),
                wire_len: wild(&mut rng) as u32,
                cap_len: 0,
                fingerprint: if rng.chance(50) { 0 } else { rng.next_u64() },
                summary: random_summary(&mut rng),
            },
        };
        o.ts_ns = ts;
        o.order = order;
        o.link = if rng.chance(980) {
            rng.below(6) as u16
        } else {
            rng.next_u64() as u16
        };
        o.pkttype = PacketType(if rng.chance(900) {
            rng.below(5) as u8
        } else {
            rng.next_u64() as u8
        });
        o.cap_len = match rng.below(4) {
            0 => o.wire_len,
            1 => o.wire_len.min(128),
            2 => o.wire_len.wrapping_add(1),
            _ => wild(&mut rng) as u32,
        };
        if rng.chance(20) {
            o.summary.stop = stop(&mut rng);
        }
        out.push(o);
    }
    out
}

#[test]
fn random_observations_of_every_shape_round_trip() {
    for seed in 0..12 {
        let obs = random_observations(seed, 3000);
        // Small batches cross many boundaries; the flow table (256) overflows and evicts.
        assert_round_trip(&obs, 2048);
    }
}

#[test]
fn no_record_exceeds_the_record_bound() {
    let mut rng = Rng::new(99);
    let mut enc = Box::new(BatchEncoder::new("x", MAX_BATCH_BYTES));
    for seed in 0..4 {
        for o in random_observations(seed, 2000) {
            let before = enc.len();
            if enc.push(&o).is_err() {
                enc.finish();
                continue;
            }
            assert!(enc.len() - before <= MAX_RECORD_BYTES);
        }
    }
    // The worst case: a new flow, IPv6 everywhere, two tunnels, every field far from its prediction.
    let mut s = random_summary(&mut rng);
    let v6 = Addr::V6([0xff; 16]);
    s.vlan = Some(u16::MAX);
    s.ethertype = EtherType(u16::MAX);
    s.tunnels.clear();
    for _ in 0..2 {
        let _ = s.tunnels.push(Tunnel {
            kind: TunnelKind::Gre {
                key: Some(u32::MAX),
            },
            src: v6,
            dst: v6,
            outer_id: 0x7fff,
            src_port: u16::MAX,
            dst_port: u16::MAX,
        });
    }
    s.net = Net::Ip(Ip {
        src: v6,
        dst: v6,
        proto: IpProto(255),
        ttl: 1,
        id: 0x7fff_ffff,
        frag_offset: 0x1fff,
        more_fragments: true,
        payload_len: 0x7fff,
    });
    s.transport = Transport::Tcp {
        src_port: u16::MAX,
        dst_port: u16::MAX,
        seq: 0x7fff_ffff,
        ack: 0x7fff_ffff,
        flags: u16::MAX,
        window: 0x7fff,
        hdr_len: u8::MAX,
    };
    s.stop = Some(Stop {
        offset: u16::MAX,
        kind: LayerKind::Other,
        reason: StopReason::Truncated {
            needed: u16::MAX,
            had: u16::MAX,
        },
    });
    let worst = Observation {
        ts_ns: u64::MAX / 2,
        link: u16::MAX,
        order: u64::MAX / 2,
        pkttype: PacketType(255),
        wire_len: 0x7fff_ffff,
        cap_len: 0x8000_0000,
        fingerprint: u64::MAX,
        summary: s,
    };
    let mut enc = Box::new(BatchEncoder::new("x", MAX_BATCH_BYTES));
    enc.push(&worst).unwrap();
    assert!(enc.len() <= MAX_RECORD_BYTES, "{}", enc.len());
    let batch = enc.finish().to_vec();
    let mut got = StdVec::new();
    let mut dec = Box::new(BatchDecoder::new());
    dec.decode(&batch, |o| got.push(o)).unwrap();
    assert_eq!(got, [worst]);
}

#[test]
fn codec_state_stays_within_the_documented_size() {
    let (enc, dec) = (
        core::mem::size_of::<BatchEncoder>(),
        core::mem::size_of::<BatchDecoder>(),
    );
    std::println!("encoder {enc} bytes, decoder {dec} bytes");
    assert!(enc <= 250 * 1024, "{enc}");
    assert!(dec <= 140 * 1024, "{dec}");
}

//! Observations of every shape the record format allows, drawn at random: extreme values,
//! both address families, tunnels, stops. What round-trip and bound tests feed the codec.

use crate::Rng;
use hopcap_proto::layer::{Invalid, LayerKind, StopReason};
use hopcap_proto::record::Observation;
use hopcap_proto::summary::{Ip, Net, Stop, Summary, Transport, Tunnel, TunnelKind};
use hopcap_proto::types::{Addr, EtherType, IpProto, PacketType};

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

pub fn random_summary(rng: &mut Rng) -> Summary {
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
pub fn random_observations(seed: u64, n: usize) -> Vec<Observation> {
    let mut rng = Rng::new(seed);
    let mut out: Vec<Observation> = Vec::new();
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

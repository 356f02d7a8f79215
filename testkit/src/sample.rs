//! Deterministic, realistic observations for tests and the benchmark: a traffic mix of
//! TCP/UDP/ICMP over IPv4 and IPv6, ARP, VXLAN-encapsulated packets, truncated frames, each
//! packet seen on a few hops with the same fingerprint and rising timestamps.

use hopcap_proto::layer::{Invalid, LayerKind, StopReason};
use hopcap_proto::record::{LinkKey, Observation};
use hopcap_proto::summary::{Ip, Net, Stop, Summary, Transport, Tunnel, TunnelKind};
use hopcap_proto::types::{Addr, EtherType, IpProto, PacketType};

use crate::Rng;

/// Generates observations; the same seed gives the same sequence.
#[derive(Debug, Clone)]
pub struct SampleGen {
    rng: Rng,
    /// Next capture time (ns since epoch).
    pub ts_ns: u64,
    order: u64,
}

impl SampleGen {
    pub fn new(seed: u64, start_ns: u64) -> SampleGen {
        SampleGen {
            rng: Rng::new(seed),
            ts_ns: start_ns,
            order: 0,
        }
    }

    fn rand(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// One packet as seen on `hops` links (`links[i % links.len()]`), 1-20 µs apart.
    pub fn packet(&mut self, links: &[LinkKey], hops: usize) -> Vec<Observation> {
        let r = self.rand();
        let summary = self.summary(r);
        let fingerprint = self.rand();
        let wire_len = 60 + (r >> 40) as u32 % 1400;
        let mut out = Vec::with_capacity(hops);
        for h in 0..hops {
            self.ts_ns += 1_000 + self.rand() % 19_000;
            self.order += 1;
            let mut s = summary.clone();
            if let Net::Ip(ip) = &mut s.net {
                ip.ttl = ip.ttl.saturating_sub(h as u8);
            }
            out.push(Observation {
                ts_ns: self.ts_ns,
                link: links.get(h % links.len().max(1)).copied().unwrap_or(0),
                order: self.order,
                pkttype: if h % 2 == 0 {
                    PacketType::OUTGOING
                } else {
                    PacketType::HOST
                },
                wire_len,
                cap_len: wire_len.min(128),
                fingerprint,
                summary: s,
            });
        }
        out
    }

    fn summary(&mut self, r: u64) -> Summary {
        let mut s = Summary::empty();
        let kind = r % 100;
        let host = (self.rand() % 200) as u8 + 2;
        let v4 = |last: u8| Addr::V4([10, 0, (last % 4) + 1, last]);
        let mut ip = Ip {
            src: v4(host),
            dst: v4(host.wrapping_add(17)),
            proto: IpProto::TCP,
            ttl: 64,
            id: (self.rand() & 0xffff) as u32,
            frag_offset: 0,
            more_fragments: false,
            payload_len: 40 + (r >> 20) as u16 % 1400,
        };
        s.ethertype = EtherType::IPV4;
        let sport = 32768 + (self.rand() % 28000) as u16;
        let tcp = Transport::Tcp {
            src_port: sport,
            dst_port: [80, 443, 8080, 5432][(r >> 8) as usize % 4],
            seq: self.rand() as u32,
            ack: self.rand() as u32,
            flags: [0x10, 0x18, 0x02, 0x12, 0x11][(r >> 12) as usize % 5],
            window: 64240,
            hdr_len: 32,
        };
        match kind {
            0..=64 => s.transport = tcp,
            65..=74 => {
                ip.proto = IpProto::UDP;
                s.transport = Transport::Udp {
                    src_port: sport,
                    dst_port: 53,
                    length: 48,
                };
            }
            75..=79 => {
                ip.proto = IpProto::ICMP;
                let seq = (self.rand() & 0xff) as u16;
                s.transport = Transport::Icmp {
                    ty: 8,
                    code: 0,
                    id: 0x1234,
                    seq,
                };
            }
            80..=84 => {
                s.ethertype = EtherType::IPV6;
                let mut a = [0u8; 16];
                a[0] = 0xfd;
                a[15] = host;
                let mut b = a;
                b[15] = host.wrapping_add(1);
                (ip.src, ip.dst, ip.id) = (Addr::V6(a), Addr::V6(b), 0);
                s.transport = tcp;
            }
            85..=87 => {
                s.ethertype = EtherType::ARP;
                s.net = Net::Arp {
                    op: 1,
                    spa: [10, 0, 1, host],
                    tpa: [10, 0, 1, 1],
                };
                return s;
            }
            88..=95 => {
                s.transport = tcp;
                s.vlan = (kind == 95).then_some(100);
                let _ = s.tunnels.push(Tunnel {
                    kind: TunnelKind::Vxlan { vni: 42 },
                    src: Addr::V4([192, 168, 50, 1]),
                    dst: Addr::V4([192, 168, 50, 2]),
                    outer_id: (self.rand() & 0xffff) as u16,
                    src_port: 40000 + (self.rand() % 20000) as u16,
                    dst_port: 4789,
                });
                if kind == 95 {
                    let _ = s.tunnels.push(Tunnel {
                        kind: TunnelKind::Gre { key: Some(7) },
                        src: Addr::V4([172, 16, 0, 1]),
                        dst: Addr::V4([172, 16, 0, 2]),
                        outer_id: 1,
                        src_port: 0,
                        dst_port: 0,
                    });
                }
            }
            96..=97 => {
                s.stop = Some(Stop {
                    offset: 34,
                    kind: LayerKind::Tcp,
                    reason: StopReason::Truncated { needed: 20, had: 6 },
                });
            }
            _ => {
                ip.frag_offset = 185;
                ip.more_fragments = kind == 98;
                s.stop = Some(Stop {
                    offset: 14,
                    kind: LayerKind::Ipv4,
                    reason: StopReason::Invalid(Invalid::ArpLengths { hlen: 6, plen: 4 }),
                });
            }
        }
        s.net = Net::Ip(ip);
        s
    }
}

//! Synthetic traffic of one board, seen on every hop, for the batch codec's tests
//! (proto/tests/batch_sim.rs) and the wire benchmark (proto/benches/wire.rs). No real capture
//! is involved.
//!
//! The board: a container (its own namespace, capture socket 0) with `ceth0`, its host side
//! `veth0`, the bridge `br0`, and the uplink `eth0` (socket 1). Outbound traffic is
//! masqueraded on `eth0`; overlay traffic leaves through `vxlan0` and then `eth0`
//! encapsulated. Ingress hops on one host share a timestamp (like the kernel's); egress hops
//! follow a few µs apart. Records come out either sorted by time or as the agent would read
//! them: every 2 ms, all new frames of socket 0's ring, then socket 1's.

use crate::Rng;
use hopcap_proto::decode::{decode, DecodeOptions};
use hopcap_proto::fingerprint::fingerprint_frame;
use hopcap_proto::record::Observation;
use hopcap_proto::summary::{Ip, Net, Summary, Transport, Tunnel, TunnelKind};
use hopcap_proto::types::{Addr, EtherType, IpProto, LinkType, PacketType};
use std::vec::Vec as StdVec;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mix {
    Ping,
    TcpBulk,
    Dns,
    /// All of the above at once, plus overlay (VXLAN) TCP and the odd ARP.
    Mixed,
    /// TCP between containers of two boards over VXLAN (5 hops per packet).
    Overlay,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Emit {
    TimeOrder,
    RingBlocks,
}

const SNAPLEN: u32 = 128;
const CONTAINER: [u8; 4] = [172, 17, 0, 2];
const BOARD: [u8; 4] = [192, 168, 1, 10];
const PEER_BOARD: [u8; 4] = [192, 168, 1, 11];
const PEER_CONTAINER: [u8; 4] = [10, 244, 1, 5];
const OVERLAY_SELF: [u8; 4] = [10, 244, 0, 5];

/// One packet as sent by its source, before the hops.
#[derive(Clone, Debug)]
struct Packet {
    t: u64,
    outbound: bool,
    overlay: bool,
    net: Net,
    transport: Transport,
    ethertype: EtherType,
    payload: [u8; 16],
    ttl_in: u8,
    flow_hash: u16,
}

fn ip(src: [u8; 4], dst: [u8; 4], proto: IpProto, id: u32, payload_len: u16) -> Net {
    Net::Ip(Ip {
        src: Addr::V4(src),
        dst: Addr::V4(dst),
        proto,
        ttl: 64,
        id,
        frag_offset: 0,
        more_fragments: false,
        payload_len,
    })
}

fn tcp_flow(
    rng: &mut Rng,
    out: &mut StdVec<Packet>,
    start: u64,
    segments: u64,
    upload: bool,
    overlay: bool,
) {
    let (local, remote) = if overlay {
        (OVERLAY_SELF, PEER_CONTAINER)
    } else {
        (CONTAINER, [93, 184, 216, 34])
    };
    let (lport, rport) = (
        rng.range(32768, 60999) as u16,
        if overlay { 5201 } else { 443 },
    );
    let (mut seq, ack0) = (rng.next_u64() as u32, rng.next_u64() as u32);
    let (mut data_id, mut ack_id) = (
        rng.next_u64() as u32 & 0xffff,
        rng.next_u64() as u32 & 0xffff,
    );
    let mut t = start;
    let mut window = 501u16;
    for i in 0..segments {
        t += rng.range(90_000, 160_000);
        let mut payload = [0; 16];
        payload.iter_mut().for_each(|b| *b = rng.next_u64() as u8);
        let flags = if i % 8 == 7 { 0x18 } else { 0x10 };
        let (src, dst, sp, dp) = if upload {
            (local, remote, lport, rport)
        } else {
            (remote, local, rport, lport)
        };
        out.push(Packet {
            t,
            outbound: upload,
            overlay,
            net: ip(src, dst, IpProto::TCP, data_id & 0xffff, 1480),
            transport: Transport::Tcp {
                src_port: sp,
                dst_port: dp,
                seq,
                ack: ack0,
                flags,
                window: 502,
                // Timestamps option: 1480 - 32 = 1448 bytes of data.
                hdr_len: 32,
            },
            ethertype: EtherType::IPV4,
            payload,
            ttl_in: 52,
            flow_hash: lport ^ 0x5a5a,
        });
        data_id += 1;
        seq = seq.wrapping_add(1448);
        if i % 2 == 1 {
            // A pure ACK: all header. Now and then a SACK block rides along (12 bytes more).
            let ack_len: u8 = if i % 64 == 63 { 44 } else { 32 };
            window = (i64::from(window) + rng.range(0, 6) as i64 - 3).clamp(400, 600) as u16;
            out.push(Packet {
                t: t + rng.range(20_000, 80_000),
                outbound: !upload,
                overlay,
                net: ip(dst, src, IpProto::TCP, ack_id & 0xffff, u16::from(ack_len)),
                transport: Transport::Tcp {
                    src_port: dp,
                    dst_port: sp,
                    seq: ack0,
                    ack: seq,
                    flags: 0x10,
                    window,
                    hdr_len: ack_len,
                },
                ethertype: EtherType::IPV4,
                payload: [0; 16],
                ttl_in: 52,
                flow_hash: lport ^ 0x5a5a,
            });
            ack_id += 1;
        }
    }
}

fn pings(rng: &mut Rng, out: &mut StdVec<Packet>, start: u64, count: u64) {
    let targets = [[1, 1, 1, 1], [8, 8, 8, 8], [192, 168, 1, 1]];
    for (n, target) in targets.iter().enumerate() {
        let id = rng.next_u64() as u16;
        let mut ip_id = rng.next_u64() as u32 & 0xffff;
        let mut t = start + n as u64 * 300_000_000;
        for seq in 1..=count as u16 {
            t += 1_000_000_000 + rng.range(0, 200_000);
            let mut payload = [0; 16];
            payload[..8].copy_from_slice(&t.to_le_bytes());
            let req = Transport::Icmp {
                ty: 8,
                code: 0,
                id,
                seq,
            };
            let rep = Transport::Icmp {
                ty: 0,
                code: 0,
                id,
                seq,
            };
            let rtt = rng.range(300_000, 20_000_000);
            let base = |t, outbound, net, transport| Packet {
                t,
                outbound,
                overlay: false,
                net,
                transport,
                ethertype: EtherType::IPV4,
                payload,
                ttl_in: 57,
                flow_hash: 0,
            };
            out.push(base(
                t,
                true,
                ip(CONTAINER, *target, IpProto::ICMP, ip_id, 64),
                req,
            ));
            let reply_id = rng.next_u64() as u32 & 0xffff;
            out.push(base(
                t + rtt,
                false,
                ip(*target, CONTAINER, IpProto::ICMP, reply_id, 64),
                rep,
            ));
            ip_id = (ip_id + 1) & 0xffff;
        }
    }
}

fn dns(rng: &mut Rng, out: &mut StdVec<Packet>, start: u64, queries: u64) {
    let resolver = [192, 168, 1, 1];
    let mut t = start;
    let mut ip_id = rng.next_u64() as u32 & 0xffff;
    for _ in 0..queries {
        t += rng.range(1_000_000, 60_000_000);
        let sport = rng.range(32768, 60999) as u16;
        let mut q = [0; 16];
        q.iter_mut().for_each(|b| *b = rng.next_u64() as u8);
        let qlen = rng.range(28, 48) as u16;
        let rlen = qlen + rng.range(16, 140) as u16;
        let mk = |t, outbound, src, dst, id, len: u16, sp, dp| Packet {
            t,
            outbound,
            overlay: false,
            net: ip(src, dst, IpProto::UDP, id, len + 8),
            transport: Transport::Udp {
                src_port: sp,
                dst_port: dp,
                length: len + 8,
            },
            ethertype: EtherType::IPV4,
            payload: q,
            ttl_in: 64,
            flow_hash: 0,
        };
        out.push(mk(t, true, CONTAINER, resolver, ip_id, qlen, sport, 53));
        out.push(mk(
            t + rng.range(500_000, 30_000_000),
            false,
            resolver,
            CONTAINER,
            rng.next_u64() as u32 & 0xffff,
            rlen,
            53,
            sport,
        ));
        ip_id = (ip_id + 1) & 0xffff;
    }
}

fn arp(rng: &mut Rng, out: &mut StdVec<Packet>, start: u64, count: u64) {
    let mut t = start;
    for _ in 0..count {
        t += rng.range(100_000_000, 2_000_000_000);
        out.push(Packet {
            t,
            outbound: true,
            overlay: false,
            net: Net::Arp {
                op: 1,
                spa: CONTAINER,
                tpa: [172, 17, 0, 1],
            },
            transport: Transport::None,
            ethertype: EtherType::ARP,
            payload: [0; 16],
            ttl_in: 0,
            flow_hash: 0,
        });
    }
}

/// (link key, socket, packet type, latency after the previous hop) of each hop in path order.
fn path(p: &Packet) -> &'static [(u16, usize, u8, u64)] {
    const OUT: &[(u16, usize, u8, u64)] = &[
        (1, 0, 4, 0),
        (2, 1, 0, 3_000),
        (3, 1, 0, 0),
        (4, 1, 4, 6_000),
    ];
    const IN: &[(u16, usize, u8, u64)] = &[
        (4, 1, 0, 0),
        (3, 1, 4, 5_000),
        (2, 1, 4, 1_000),
        (1, 0, 0, 2_000),
    ];
    const OVL_OUT: &[(u16, usize, u8, u64)] = &[
        (1, 0, 4, 0),
        (2, 1, 0, 3_000),
        (3, 1, 0, 0),
        (5, 1, 4, 5_000),
        (4, 1, 4, 3_000),
    ];
    const OVL_IN: &[(u16, usize, u8, u64)] = &[
        (4, 1, 0, 0),
        (5, 1, 0, 0),
        (3, 1, 4, 5_000),
        (2, 1, 4, 1_000),
        (1, 0, 0, 2_000),
    ];
    const ARP: &[(u16, usize, u8, u64)] = &[(1, 0, 4, 0), (2, 1, 0, 3_000), (3, 1, 0, 0)];
    match (p.net, p.overlay, p.outbound) {
        (Net::Arp { .. }, _, _) => ARP,
        (_, true, true) => OVL_OUT,
        (_, true, false) => OVL_IN,
        (_, false, true) => OUT,
        (_, false, false) => IN,
    }
}

/// The packet's summary on `link`: NAT on the uplink, TTL after routing, VXLAN outside.
fn summary_on(p: &Packet, link: u16, outer_id: u16) -> (Summary, u32) {
    let mut s = Summary::empty();
    s.ethertype = p.ethertype;
    s.transport = p.transport;
    s.net = p.net;
    let mut wire = match p.net {
        Net::Ip(i) => 14 + 20 + u32::from(i.payload_len),
        _ => 42,
    };
    if let Net::Ip(ref mut i) = s.net {
        let routed = if p.outbound { link >= 4 } else { link <= 3 };
        i.ttl = if p.outbound { 64 } else { p.ttl_in } - u8::from(routed);
        if link == 4 && !p.overlay {
            if p.outbound {
                i.src = Addr::V4(BOARD);
            } else {
                i.dst = Addr::V4(BOARD);
            }
        }
        if link == 4 && p.overlay {
            let (src, dst) = if p.outbound {
                (BOARD, PEER_BOARD)
            } else {
                (PEER_BOARD, BOARD)
            };
            let t = Tunnel {
                kind: TunnelKind::Vxlan { vni: 42 },
                src: Addr::V4(src),
                dst: Addr::V4(dst),
                outer_id,
                src_port: 49152 + (p.flow_hash & 0x3fff),
                dst_port: 4789,
            };
            let _ = s.tunnels.push(t);
            wire += 50;
        }
    }
    (s, wire)
}

/// `packets` source packets of `mix` (each becomes 3-5 observations), emitted as `emit` says.
pub fn generate(mix: Mix, emit: Emit, packets: usize, seed: u64) -> StdVec<Observation> {
    let mut rng = Rng::new(seed);
    let mut src = StdVec::new();
    let n = packets as u64;
    match mix {
        Mix::Ping => pings(&mut rng, &mut src, 0, n / 6 + 1),
        Mix::TcpBulk => {
            tcp_flow(&mut rng, &mut src, 0, n / 3 + 1, false, false);
            tcp_flow(&mut rng, &mut src, 5_000_000, n / 3 + 1, true, false);
        }
        Mix::Dns => dns(&mut rng, &mut src, 0, n / 2 + 1),
        Mix::Overlay => {
            tcp_flow(&mut rng, &mut src, 0, n / 3 + 1, true, true);
            tcp_flow(&mut rng, &mut src, 1_000_000, n / 3 + 1, false, true);
        }
        Mix::Mixed => {
            tcp_flow(&mut rng, &mut src, 0, n / 4, false, false);
            tcp_flow(&mut rng, &mut src, 2_000_000, n / 8, true, true);
            pings(&mut rng, &mut src, 0, n / 60 + 1);
            dns(&mut rng, &mut src, 0, n / 10 + 1);
            arp(&mut rng, &mut src, 0, n / 200 + 1);
        }
    }
    src.sort_by_key(|p| p.t);
    src.truncate(packets);
    // Spread over the generated time span; keep the absolute times realistic (2026).
    const EPOCH: u64 = 1_780_000_000_000_000_000;
    let mut hops: StdVec<(u64, usize, usize, Observation)> = StdVec::new();
    let mut outer_id = rng.next_u64() as u16;
    for (n, p) in src.iter().enumerate() {
        let mut t = EPOCH + p.t;
        for (h, &(link, socket, pkttype, latency)) in path(p).iter().enumerate() {
            t += latency;
            let (summary, wire_len) = summary_on(p, link, outer_id);
            if !summary.tunnels.is_empty() {
                outer_id = outer_id.wrapping_add(1);
            }
            // Through a frame and the decoder, as the agent computes it.
            let frame = frame_of(&summary, &p.payload);
            let decoded = decode(LinkType::ETHERNET, &frame, &DecodeOptions::default());
            let (decoded_summary, fp) = fingerprint_frame(&decoded, &frame);
            assert_eq!(decoded_summary, summary, "the frame decodes to its summary");
            let obs = Observation {
                ts_ns: t,
                link,
                order: 0,
                pkttype: PacketType(pkttype),
                wire_len,
                cap_len: wire_len.min(SNAPLEN),
                fingerprint: fp,
                summary,
            };
            hops.push((t, socket, n * 8 + h, obs));
        }
    }
    // Capture order per socket follows time (then path order for equal stamps).
    hops.sort_by_key(|h| (h.0, h.2));
    let mut orders = [1000u64, 5000];
    for h in hops.iter_mut() {
        h.3.order = orders[h.1];
        orders[h.1] += 1;
    }
    match emit {
        Emit::TimeOrder => hops.into_iter().map(|h| h.3).collect(),
        Emit::RingBlocks => {
            let mut out = StdVec::with_capacity(hops.len());
            let mut queues = [StdVec::new(), StdVec::new()];
            for h in hops {
                queues[h.1].push(h);
            }
            let mut next = [0usize; 2];
            let mut poll = EPOCH;
            while next[0] < queues[0].len() || next[1] < queues[1].len() {
                poll += 2_000_000;
                for s in 0..2 {
                    while let Some(h) = queues[s].get(next[s]).filter(|h| h.0 < poll) {
                        out.push(h.3.clone());
                        next[s] += 1;
                    }
                }
            }
            out
        }
    }
}

/// A frame that decodes to `s` (IPv4 or ARP, VXLAN at most): Ethernet, the tunnel's outer
/// IPv4 + UDP + VXLAN + Ethernet, the packet's headers (TCP options as NOPs), and as much of
/// `payload` as its lengths hold. Only the headers are whole: the IP length says more.
/// MACs, TOS and checksums are zero (nothing reads them).
fn frame_of(s: &Summary, payload: &[u8; 16]) -> StdVec<u8> {
    let packet = match s.net {
        Net::Arp { op, spa, tpa } => {
            let mut arp = StdVec::from([0, 1, 8, 0, 6, 4]);
            arp.extend_from_slice(&op.to_be_bytes());
            for addr in [spa, tpa] {
                arp.extend_from_slice(&[0; 6]);
                arp.extend_from_slice(&addr);
            }
            arp
        }
        Net::Ip(ip) => {
            let l4 = match s.transport {
                Transport::Tcp {
                    src_port,
                    dst_port,
                    seq,
                    ack,
                    flags,
                    window,
                    hdr_len,
                } => {
                    let mut h = ports(src_port, dst_port);
                    h.extend_from_slice(&seq.to_be_bytes());
                    h.extend_from_slice(&ack.to_be_bytes());
                    let offset_flags = (u16::from(hdr_len / 4) << 12) | flags;
                    h.extend_from_slice(&offset_flags.to_be_bytes());
                    h.extend_from_slice(&window.to_be_bytes());
                    h.extend_from_slice(&[0; 4]); // checksum, urgent pointer
                    h.resize(usize::from(hdr_len), 1); // NOP options
                    h
                }
                Transport::Udp {
                    src_port,
                    dst_port,
                    length,
                } => udp(src_port, dst_port, length),
                Transport::Icmp { ty, code, id, seq } => {
                    let mut h = StdVec::from([ty, code, 0, 0]);
                    h.extend_from_slice(&id.to_be_bytes());
                    h.extend_from_slice(&seq.to_be_bytes());
                    h
                }
                Transport::None => StdVec::new(),
            };
            let data = usize::from(ip.payload_len).saturating_sub(l4.len());
            let (Addr::V4(src), Addr::V4(dst)) = (ip.src, ip.dst) else {
                unreachable!("the sim is IPv4 only")
            };
            let mut packet = ipv4(src, dst, ip.id as u16, ip.ttl, ip.proto, ip.payload_len);
            packet.extend_from_slice(&l4);
            packet.extend_from_slice(&payload[..data.min(payload.len())]);
            packet
        }
        Net::None => StdVec::new(),
    };
    let mut frame = ethernet(s.ethertype);
    if let Some(t) = s.tunnels.first() {
        let (Addr::V4(src), Addr::V4(dst)) = (t.src, t.dst) else {
            unreachable!("the sim is IPv4 only")
        };
        let TunnelKind::Vxlan { vni } = t.kind else {
            unreachable!("the sim tunnels over VXLAN only")
        };
        let packet_len = match s.net {
            Net::Ip(ip) => 20 + ip.payload_len,
            _ => packet.len() as u16,
        };
        // UDP 8 + VXLAN 8 + inner Ethernet 14 + the packet as sent.
        let udp_len = 30 + packet_len;
        frame.extend(ipv4(src, dst, t.outer_id, 64, IpProto::UDP, udp_len));
        frame.extend(udp(t.src_port, t.dst_port, udp_len));
        frame.extend_from_slice(&[0x08, 0, 0, 0]);
        frame.extend_from_slice(&(vni << 8).to_be_bytes());
        frame.extend(ethernet(s.ethertype));
    }
    frame.extend(packet);
    frame
}

fn ethernet(ethertype: EtherType) -> StdVec<u8> {
    let mut h = StdVec::from([0; 12]);
    h.extend_from_slice(&ethertype.0.to_be_bytes());
    h
}

fn ipv4(
    src: [u8; 4],
    dst: [u8; 4],
    id: u16,
    ttl: u8,
    proto: IpProto,
    payload_len: u16,
) -> StdVec<u8> {
    let mut h = StdVec::from([0x45, 0]);
    h.extend_from_slice(&(20 + payload_len).to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    h.extend_from_slice(&[0x40, 0, ttl, proto.0, 0, 0]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h
}

fn ports(src: u16, dst: u16) -> StdVec<u8> {
    let mut h = StdVec::from(src.to_be_bytes());
    h.extend_from_slice(&dst.to_be_bytes());
    h
}

fn udp(src: u16, dst: u16, length: u16) -> StdVec<u8> {
    let mut h = ports(src, dst);
    h.extend_from_slice(&length.to_be_bytes());
    h.extend_from_slice(&[0, 0]);
    h
}

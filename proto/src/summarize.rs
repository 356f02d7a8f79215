//! Condenses a decoded layer stack into a [`Summary`]: the innermost network header and
//! its transport, the tunnels around them (outermost first) and the outermost VLAN id.
//!
//! Layers after an ICMP/ICMPv6 error are the packet it quotes, not an inner packet: the
//! summary stops there and its transport is the ICMP message itself.

use crate::layer::{Decoded, Layer};
use crate::summary::{Ip, Net, Summary, Transport, Tunnel, TunnelKind};
use crate::types::{Addr, EtherType};
use crate::wire::{icmp, icmpv6};

impl Summary {
    pub fn from_decoded(d: &Decoded) -> Summary {
        let mut summary = Summary::empty();
        summary.set_from_decoded(d);
        summary
    }

    /// [`from_decoded`](Self::from_decoded) into `self`: the capture loop reuses one, so
    /// its ~190 bytes are not moved per packet.
    pub fn set_from_decoded(&mut self, d: &Decoded) {
        *self = Summary::empty();
        let mut acc = Accumulator {
            summary: self,
            encap: None,
            udp_ports: None,
        };
        for layer in &d.layers {
            if acc.add(layer) == Flow::QuoteFollows {
                break;
            }
        }
        self.stop = d.stop;
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    /// An ICMP error: what follows is the quoted packet.
    QuoteFollows,
}

/// The summary so far, plus what is needed to describe the next tunnel.
struct Accumulator<'a> {
    summary: &'a mut Summary,
    /// The tunnel header seen since the current network layer, if any.
    encap: Option<TunnelKind>,
    /// The UDP ports of the current network layer's datagram.
    udp_ports: Option<(u16, u16)>,
}

impl Accumulator<'_> {
    fn add(&mut self, layer: &Layer) -> Flow {
        let s = &mut *self.summary;
        match *layer {
            Layer::Ethernet { ethertype, .. } => s.ethertype = ethertype,
            Layer::Vlan { id, ethertype, .. } => {
                s.vlan.get_or_insert(id);
                s.ethertype = ethertype;
            }
            Layer::Sll { protocol, .. } | Layer::Sll2 { protocol, .. } => s.ethertype = protocol,
            Layer::Loopback { .. } | Layer::Mpls { .. } | Layer::Pppoe { .. } => {}
            Layer::Arp { op, spa, tpa, .. } => {
                if s.ethertype != EtherType::RARP {
                    s.ethertype = EtherType::ARP;
                }
                self.enter(Net::Arp { op, spa, tpa });
            }
            Layer::Ipv4 {
                src,
                dst,
                hdr_len,
                total_len,
                id,
                mf,
                frag_offset,
                ttl,
                proto,
                ..
            } => {
                s.ethertype = EtherType::IPV4;
                self.enter(Net::Ip(Ip {
                    src: Addr::V4(src),
                    dst: Addr::V4(dst),
                    proto,
                    ttl,
                    id: u32::from(id),
                    frag_offset,
                    more_fragments: mf,
                    payload_len: total_len.saturating_sub(u16::from(hdr_len)),
                }));
            }
            Layer::Ipv6 {
                src,
                dst,
                payload_len,
                next_header,
                hop_limit,
                ..
            } => {
                s.ethertype = EtherType::IPV6;
                self.enter(Net::Ip(Ip {
                    src: Addr::V6(src),
                    dst: Addr::V6(dst),
                    proto: next_header,
                    ttl: hop_limit,
                    id: 0,
                    frag_offset: 0,
                    more_fragments: false,
                    payload_len,
                }));
            }
            Layer::Ipv6Ext {
                next_header,
                len,
                frag,
                ..
            } => {
                if let Net::Ip(ip) = &mut s.net {
                    ip.proto = next_header;
                    ip.payload_len = ip.payload_len.saturating_sub(len);
                    if let Some(frag) = frag {
                        ip.id = frag.ident;
                        ip.frag_offset = frag.offset;
                        ip.more_fragments = frag.more;
                    }
                }
            }
            Layer::Tcp {
                src_port,
                dst_port,
                seq,
                ack,
                flags,
                window,
                hdr_len,
                ..
            } => {
                s.transport = Transport::Tcp {
                    src_port,
                    dst_port,
                    seq,
                    ack,
                    flags,
                    window,
                    hdr_len,
                };
            }
            Layer::Udp {
                src_port,
                dst_port,
                length,
                ..
            } => {
                s.transport = Transport::Udp {
                    src_port,
                    dst_port,
                    length,
                };
                self.udp_ports = Some((src_port, dst_port));
            }
            Layer::Icmp {
                ty, code, id, seq, ..
            } => {
                s.transport = Transport::Icmp { ty, code, id, seq };
                if icmp::is_error_type(ty) {
                    return Flow::QuoteFollows;
                }
            }
            Layer::Icmpv6 {
                ty, code, id, seq, ..
            } => {
                s.transport = Transport::Icmp { ty, code, id, seq };
                if icmpv6::is_error_type(ty) {
                    return Flow::QuoteFollows;
                }
            }
            Layer::Vxlan { vni, .. } => self.encap = Some(TunnelKind::Vxlan { vni }),
            Layer::Geneve { vni, protocol, .. } => {
                self.encap = Some(TunnelKind::Geneve { vni });
                s.ethertype = protocol;
            }
            Layer::Gre { key, protocol, .. } => {
                self.encap = Some(TunnelKind::Gre { key });
                s.ethertype = protocol;
            }
            Layer::Gtpu { teid, .. } => self.encap = Some(TunnelKind::Gtpu { teid }),
        }
        Flow::Continue
    }

    /// A network layer begins. If one was already there, it is the outer packet of a
    /// tunnel: record it (the tunnel header between them says which kind).
    fn enter(&mut self, net: Net) {
        let encap = self.encap.take();
        let ports = self.udp_ports.take();
        if let Net::Ip(outer) = self.summary.net {
            // IP directly in IP, or named by a tunnel header; another UDP payload
            // (MPLS-in-UDP) has no tunnel kind and is not recorded.
            let kind = match (encap, ports) {
                (Some(kind), _) => Some(kind),
                (None, None) => Some(TunnelKind::IpInIp),
                (None, Some(_)) => None,
            };
            if let Some(kind) = kind {
                let udp = matches!(
                    kind,
                    TunnelKind::Vxlan { .. } | TunnelKind::Geneve { .. } | TunnelKind::Gtpu { .. }
                );
                let (src_port, dst_port) = if udp { ports.unwrap_or((0, 0)) } else { (0, 0) };
                let outer_id = match outer.src {
                    Addr::V4(_) => outer.id as u16,
                    Addr::V6(_) => 0,
                };
                let tunnel = Tunnel {
                    kind,
                    src: outer.src,
                    dst: outer.dst,
                    outer_id,
                    src_port,
                    dst_port,
                };
                // A deeper nest keeps the outermost tunnels.
                let _ = self.summary.tunnels.push(tunnel);
            }
        }
        self.summary.net = net;
        self.summary.transport = Transport::None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::fixtures::*;
    use crate::decode::{decode, DecodeOptions};
    use crate::layer::{LayerKind, StopReason};
    use crate::summary::Stop;
    use crate::types::{IpProto, LinkType};

    const IPV4: u16 = 0x0800;
    const IPV6: u16 = 0x86dd;
    const UDP: u8 = 17;
    const TCP: u8 = 6;

    fn summarize(frame: &[u8]) -> Summary {
        Summary::from_decoded(&decode(
            LinkType::ETHERNET,
            frame,
            &DecodeOptions::default(),
        ))
    }

    fn ip_of(s: &Summary) -> Ip {
        match s.net {
            Net::Ip(ip) => ip,
            other => panic!("no IP: {other:?}"),
        }
    }

    #[test]
    fn plain_tcp() {
        let s = summarize(&eth(IPV4, &ipv4(TCP, &tcp(40000, 80, 0x012, b"abc"))));
        assert_eq!(
            (s.vlan, s.ethertype, s.tunnels.len(), s.stop),
            (None, EtherType::IPV4, 0, None)
        );
        assert_eq!(
            ip_of(&s),
            Ip {
                src: Addr::V4(V4_SRC),
                dst: Addr::V4(V4_DST),
                proto: IpProto::TCP,
                ttl: 64,
                id: u32::from(IPV4_ID),
                frag_offset: 0,
                more_fragments: false,
                payload_len: 23,
            }
        );
        assert_eq!(
            s.transport,
            Transport::Tcp {
                src_port: 40000,
                dst_port: 80,
                seq: 1000,
                ack: 2000,
                flags: 0x012,
                window: 512,
                hdr_len: 20,
            }
        );
    }

    #[test]
    fn vxlan_keeps_outer_endpoints_and_inner_packet() {
        let inner = eth(
            IPV4,
            &ipv4_frag(
                UDP,
                0,
                [192, 168, 0, 1],
                [192, 168, 0, 2],
                &udp(1000, 53, b"q"),
            ),
        );
        let frame = eth(
            0x8100,
            &tag(
                30,
                IPV4,
                &ipv4(UDP, &udp(51000, 4789, &vxlan(5001, &inner))),
            ),
        );
        let s = summarize(&frame);
        assert_eq!(s.vlan, Some(30));
        assert_eq!(
            s.tunnels[..],
            [Tunnel {
                kind: TunnelKind::Vxlan { vni: 5001 },
                src: Addr::V4(V4_SRC),
                dst: Addr::V4(V4_DST),
                outer_id: IPV4_ID,
                src_port: 51000,
                dst_port: 4789,
            }]
        );
        assert_eq!(ip_of(&s).src, Addr::V4([192, 168, 0, 1]));
        assert_eq!(
            s.transport,
            Transport::Udp {
                src_port: 1000,
                dst_port: 53,
                length: 9
            }
        );
    }

    #[test]
    fn icmp_error_is_the_transport_not_the_quote() {
        let quoted = ipv4_frag(UDP, 0, [8, 8, 8, 8], [1, 1, 1, 1], &udp(53, 59207, &[0; 8]));
        let s = summarize(&eth(IPV4, &ipv4(1, &icmp(3, 3, [0; 4], &quoted))));
        assert!(s.tunnels.is_empty());
        assert_eq!(
            (ip_of(&s).src, ip_of(&s).proto),
            (Addr::V4(V4_SRC), IpProto::ICMP)
        );
        assert_eq!(
            s.transport,
            Transport::Icmp {
                ty: 3,
                code: 3,
                id: 0,
                seq: 0
            }
        );
    }

    #[test]
    fn ipv6_fragment_header_gives_proto_id_and_offset() {
        let frame = eth(
            IPV6,
            &ipv6(
                0,
                &ext8(44, &frag6(UDP, 0, true, 0xdead_beef, &udp(1, 2, b"x"))),
            ),
        );
        let ip = ip_of(&summarize(&frame));
        assert_eq!(
            (ip.proto, ip.id, ip.frag_offset, ip.more_fragments),
            (IpProto::UDP, 0xdead_beef, 0, true)
        );
        assert_eq!(ip.payload_len, 9);
        let later = eth(IPV6, &ipv6(44, &frag6(TCP, 185, false, 7, &[0; 16])));
        let s = summarize(&later);
        let ip = ip_of(&s);
        assert_eq!(
            (ip.proto, ip.id, ip.frag_offset, ip.more_fragments),
            (IpProto::TCP, 7, 185, false)
        );
        assert_eq!(s.transport, Transport::None);
    }

    #[test]
    fn nested_tunnels_keep_the_outermost_two() {
        let innermost = ipv6(UDP, &udp(7, 8, b""));
        let geneve_pkt = ipv4(UDP, &udp(3, 6081, &geneve(IPV6, 9, &[], &innermost)));
        let gre_pkt = ipv4(47, &gre(IPV4, Some(77), &geneve_pkt));
        let frame = eth(IPV6, &ipv6(4, &gre_pkt));
        let s = summarize(&frame);
        let kinds: heapless::Vec<TunnelKind, 2> = s.tunnels.iter().map(|t| t.kind).collect();
        assert_eq!(
            kinds,
            [TunnelKind::IpInIp, TunnelKind::Gre { key: Some(77) }]
        );
        assert_eq!(
            (s.tunnels[0].src, s.tunnels[0].outer_id),
            (Addr::V6(V6_SRC), 0)
        );
        assert_eq!((s.tunnels[1].src_port, s.tunnels[1].outer_id), (0, IPV4_ID));
        assert_eq!(ip_of(&s).src, Addr::V6(V6_SRC));
        assert_eq!(s.ethertype, EtherType::IPV6);
    }

    #[test]
    fn arp_inside_vxlan() {
        let frame = eth(
            IPV4,
            &ipv4(UDP, &udp(1, 8472, &vxlan(1, &eth(0x0806, &arp_request())))),
        );
        let s = summarize(&frame);
        assert_eq!(
            s.net,
            Net::Arp {
                op: 1,
                spa: V4_SRC,
                tpa: V4_DST
            }
        );
        assert_eq!(
            (s.ethertype, s.tunnels.len(), s.transport),
            (EtherType::ARP, 1, Transport::None)
        );
    }

    #[test]
    fn mpls_in_udp_is_not_a_recorded_tunnel() {
        let frame = eth(
            IPV4,
            &ipv4(
                UDP,
                &udp(
                    1,
                    6635,
                    &mpls(21, true, &ipv4(1, &icmp(8, 0, [0, 1, 0, 2], b""))),
                ),
            ),
        );
        let s = summarize(&frame);
        assert!(s.tunnels.is_empty());
        assert_eq!(
            s.transport,
            Transport::Icmp {
                ty: 8,
                code: 0,
                id: 1,
                seq: 2
            }
        );
    }

    #[test]
    fn unknown_ethertype_and_stop_are_kept() {
        let s = summarize(&eth(0x9000, b"loopback test"));
        assert_eq!((s.ethertype, s.net), (EtherType(0x9000), Net::None));
        assert_eq!(
            s.stop,
            Some(Stop {
                offset: 14,
                kind: LayerKind::Other,
                reason: StopReason::Unsupported(0x9000)
            })
        );
    }
}

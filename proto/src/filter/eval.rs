//! Evaluating a filter on a decoded [`Summary`]: every tunnel's outer header and the
//! innermost network layer are *levels*, and a primitive holds when it holds at any level
//! (see the module docs of [`super`] for why).

use super::{AddrQual, Dir, Family, Filter, Node, PortQual, Primitive};
use crate::summary::{Net, Summary, Transport, TunnelKind, MAX_TUNNELS};
use crate::types::{Addr, EtherType, IpProto};
use heapless::Vec;

/// One IP (or ARP) header of a frame, as far as filters care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Level {
    /// The network layer's EtherType (kept even when the header itself was not decoded).
    pub ethertype: EtherType,
    pub net: LevelNet,
    /// TCP/UDP ports (src, dst) when a TCP or UDP header with ports was decoded.
    pub ports: Option<(u16, u16)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LevelNet {
    None,
    Ip {
        src: Addr,
        dst: Addr,
        proto: IpProto,
    },
    Arp {
        spa: [u8; 4],
        tpa: [u8; 4],
    },
}

/// Tunnels, the innermost IP header, and an undecoded EtherType after it.
pub(crate) type Levels = Vec<Level, { MAX_TUNNELS + 2 }>;

fn family_ethertype(a: &Addr) -> EtherType {
    match a {
        Addr::V4(_) => EtherType::IPV4,
        Addr::V6(_) => EtherType::IPV6,
    }
}

/// The summary's levels, outermost first.
pub(crate) fn levels(s: &Summary) -> Levels {
    let mut out = Levels::new();
    for (i, t) in s.tunnels.iter().enumerate() {
        let (proto, ports) = match t.kind {
            TunnelKind::Vxlan { .. } | TunnelKind::Geneve { .. } | TunnelKind::Gtpu { .. } => {
                (IpProto::UDP, Some((t.src_port, t.dst_port)))
            }
            TunnelKind::Gre { .. } => (IpProto::GRE, None),
            TunnelKind::IpInIp => {
                // The protocol number names the family of whatever the tunnel carries.
                let inner = match (s.tunnels.get(i + 1), &s.net) {
                    (Some(next), _) => family_ethertype(&next.src),
                    (None, Net::Ip(ip)) => family_ethertype(&ip.src),
                    (None, _) => s.ethertype,
                };
                (
                    if inner == EtherType::IPV6 {
                        IpProto::IPV6
                    } else {
                        IpProto::IPIP
                    },
                    None,
                )
            }
        };
        let net = LevelNet::Ip {
            src: t.src,
            dst: t.dst,
            proto,
        };
        // Capacity is MAX_TUNNELS + 2, so the tunnels always fit.
        let _ = out.push(Level {
            ethertype: family_ethertype(&t.src),
            net,
            ports,
        });
    }
    let net = match s.net {
        Net::None => LevelNet::None,
        Net::Arp { spa, tpa, .. } => LevelNet::Arp { spa, tpa },
        Net::Ip(ip) => LevelNet::Ip {
            src: ip.src,
            dst: ip.dst,
            proto: ip.proto,
        },
    };
    let ports = match s.transport {
        Transport::Tcp {
            src_port, dst_port, ..
        }
        | Transport::Udp {
            src_port, dst_port, ..
        } => Some((src_port, dst_port)),
        _ => None,
    };
    // The summary's EtherType is the innermost one announced. When that is not the
    // innermost IP header's own (a tunnel whose inner packet was not decoded: VXLAN to an
    // unknown EtherType, GRE to a cut-off header), the IP header and the announced
    // EtherType are two levels, as the BPF walk sees them.
    if let Net::Ip(ip) = s.net {
        let own = family_ethertype(&ip.src);
        if own != s.ethertype {
            let _ = out.push(Level {
                ethertype: own,
                net,
                ports,
            });
            let _ = out.push(Level {
                ethertype: s.ethertype,
                net: LevelNet::None,
                ports: None,
            });
            return out;
        }
    }
    let _ = out.push(Level {
        ethertype: s.ethertype,
        net,
        ports,
    });
    out
}

fn dir_matches(dir: Dir, src: bool, dst: bool) -> bool {
    match dir {
        Dir::Src => src,
        Dir::Dst => dst,
        Dir::SrcOrDst => src || dst,
        Dir::SrcAndDst => src && dst,
    }
}

/// Whether one primitive holds at one level (`vlan` is not per level).
pub(crate) fn prim_at_level(p: &Primitive, l: &Level) -> bool {
    match *p {
        Primitive::Addr { dir, qual, net } => match l.net {
            LevelNet::Ip { src, dst, .. } => {
                let family_ok = match qual {
                    AddrQual::Any => true,
                    AddrQual::Ip => l.ethertype == EtherType::IPV4,
                    AddrQual::Ip6 => l.ethertype == EtherType::IPV6,
                    AddrQual::Arp => false,
                };
                family_ok && dir_matches(dir, net.contains(&src), net.contains(&dst))
            }
            LevelNet::Arp { spa, tpa } => {
                matches!(qual, AddrQual::Any | AddrQual::Arp)
                    && dir_matches(
                        dir,
                        net.contains(&Addr::V4(spa)),
                        net.contains(&Addr::V4(tpa)),
                    )
            }
            LevelNet::None => false,
        },
        Primitive::Port { dir, qual, lo, hi } => {
            let (LevelNet::Ip { proto, .. }, Some((sp, dp))) = (l.net, l.ports) else {
                return false;
            };
            let proto_ok = match qual {
                PortQual::Any => true,
                PortQual::Tcp => proto == IpProto::TCP,
                PortQual::Udp => proto == IpProto::UDP,
            };
            let within = |p: u16| lo <= p && p <= hi;
            proto_ok && dir_matches(dir, within(sp), within(dp))
        }
        Primitive::Proto { family, proto } => {
            let LevelNet::Ip { proto: p, .. } = l.net else {
                return false;
            };
            let family_ok = match family {
                Family::Any => true,
                Family::V4 => l.ethertype == EtherType::IPV4,
                Family::V6 => l.ethertype == EtherType::IPV6,
            };
            family_ok && p == proto
        }
        Primitive::EtherType(e) => l.ethertype == e,
        Primitive::Vlan(_) => false,
    }
}

fn prim_matches(p: &Primitive, s: &Summary, levels: &Levels) -> bool {
    match *p {
        Primitive::Vlan(None) => s.vlan.is_some(),
        Primitive::Vlan(Some(id)) => s.vlan == Some(id),
        _ => levels.iter().any(|l| prim_at_level(p, l)),
    }
}

impl Filter {
    /// Whether the frame this summary describes passes the filter.
    pub fn matches(&self, summary: &Summary) -> bool {
        let levels = levels(summary);
        self.eval_node(self.root, summary, &levels)
    }

    fn eval_node(&self, i: u8, s: &Summary, levels: &Levels) -> bool {
        match self.node(i) {
            Some(Node::Prim(p)) => prim_matches(p, s, levels),
            // Children have smaller indices, so this recursion is at most MAX_NODES deep.
            Some(Node::Not(a)) => *a < i && !self.eval_node(*a, s, levels),
            Some(Node::And(a, b)) => {
                *a < i && *b < i && self.eval_node(*a, s, levels) && self.eval_node(*b, s, levels)
            }
            Some(Node::Or(a, b)) => {
                *a < i && *b < i && (self.eval_node(*a, s, levels) || self.eval_node(*b, s, levels))
            }
            None => false,
        }
    }
}

/// Whether a TCP/UDP endpoint (addr, port) is a source or destination at any level: the
/// model of the BPF exclude list.
pub(crate) fn endpoint_at_any_level(s: &Summary, addr: Addr, port: u16) -> bool {
    let host = super::NetAddr::host(addr);
    levels(s).iter().any(|l| match (l.net, l.ports) {
        (LevelNet::Ip { src, dst, proto }, Some((sp, dp)))
            if proto == IpProto::TCP || proto == IpProto::UDP =>
        {
            (host.contains(&src) && sp == port) || (host.contains(&dst) && dp == port)
        }
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::{Ip, Tunnel};

    fn v4(a: [u8; 4]) -> Addr {
        Addr::V4(a)
    }

    fn tcp_summary(src: [u8; 4], dst: [u8; 4], sp: u16, dp: u16) -> Summary {
        let mut s = Summary::empty();
        s.ethertype = EtherType::IPV4;
        s.net = Net::Ip(Ip {
            src: v4(src),
            dst: v4(dst),
            proto: IpProto::TCP,
            ttl: 64,
            id: 1,
            frag_offset: 0,
            more_fragments: false,
            payload_len: 20,
        });
        s.transport = Transport::Tcp {
            src_port: sp,
            dst_port: dp,
            seq: 0,
            ack: 0,
            flags: 0x10,
            window: 0,
            hdr_len: 20,
        };
        s
    }

    fn check(expr: &str, s: &Summary) -> bool {
        Filter::parse(expr).unwrap().matches(s)
    }

    #[test]
    fn plain_tcp_packet() {
        let s = tcp_summary([10, 0, 0, 1], [10, 0, 0, 2], 40000, 80);
        for (expr, want) in [
            ("host 10.0.0.1", true),
            ("src host 10.0.0.2", false),
            ("dst host 10.0.0.2", true),
            ("src and dst net 10.0.0.0/24", true),
            ("src and dst host 10.0.0.1", false),
            ("net 10.0.0.0 mask 255.255.255.0", true),
            ("ip6 host ::1", false),
            ("port 80", true),
            ("udp port 80", false),
            ("src port 80", false),
            ("portrange 79-81 and tcp", true),
            ("icmp or udp", false),
            ("ip and not ip6 and not arp", true),
            ("ip proto 6", true),
            ("ip6 proto 6", false),
            ("vlan", false),
            ("tcp or udp and icmp", false),
            ("tcp or (udp and icmp)", true),
        ] {
            assert_eq!(check(expr, &s), want, "{expr}");
        }
    }

    #[test]
    fn arp_addresses_match_host_but_not_ip_host() {
        let mut s = Summary::empty();
        s.ethertype = EtherType::ARP;
        s.net = Net::Arp {
            op: 1,
            spa: [192, 168, 1, 1],
            tpa: [192, 168, 1, 9],
        };
        assert!(check("host 192.168.1.9", &s));
        assert!(check("arp src host 192.168.1.1", &s));
        assert!(!check("ip host 192.168.1.1", &s));
        assert!(!check("dst host 192.168.1.1", &s));
        assert!(check("arp and not ip", &s));
    }

    #[test]
    fn tunnel_outer_level_counts() {
        let mut s = tcp_summary([172, 16, 0, 1], [172, 16, 0, 2], 1234, 22);
        let t = Tunnel {
            kind: TunnelKind::Vxlan { vni: 42 },
            src: v4([192, 0, 2, 1]),
            dst: v4([192, 0, 2, 2]),
            outer_id: 7,
            src_port: 51000,
            dst_port: 4789,
        };
        s.tunnels.push(t).unwrap();
        assert!(check("host 192.0.2.1", &s));
        assert!(check("host 172.16.0.2", &s));
        assert!(check("udp port 4789 and tcp port 22", &s));
        assert!(!check("tcp port 4789", &s));
        let mut ipip = s.clone();
        ipip.tunnels[0].kind = TunnelKind::IpInIp;
        assert!(check("ip proto 4", &ipip));
        assert!(!check("ip proto 41 or port 4789", &ipip));
    }

    #[test]
    fn vlan_and_non_first_fragment() {
        let mut s = tcp_summary([10, 0, 0, 1], [10, 0, 0, 2], 1, 2);
        s.vlan = Some(100);
        assert!(check("vlan 100 and vlan", &s));
        assert!(!check("vlan 101", &s));
        if let Net::Ip(ip) = &mut s.net {
            ip.frag_offset = 185;
        }
        s.transport = Transport::None;
        assert!(check("tcp and not port 1", &s));
    }
}

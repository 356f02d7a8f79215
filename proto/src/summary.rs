//! The condensed view of one decoded frame that an observation carries: the innermost
//! network and transport headers, the tunnels around them (outermost first), and where
//! decoding stopped. Enough to print a tcpdump-like line and to correlate hops; MAC
//! addresses are left out (they change on every hop and cost 12 bytes per record).

use crate::types::{Addr, EtherType, IpProto};
use heapless::Vec;
use serde::{Deserialize, Serialize};

/// Tunnels kept per summary; a deeper nest keeps the outermost ones.
pub const MAX_TUNNELS: usize = 2;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Outermost VLAN id, if the frame was tagged (including a NIC-stripped tag).
    pub vlan: Option<u16>,
    /// The EtherType of the innermost network layer (kept when that layer is unknown).
    pub ethertype: EtherType,
    /// Encapsulations around the inner packet, outermost first.
    pub tunnels: Vec<Tunnel, MAX_TUNNELS>,
    pub net: Net,
    pub transport: Transport,
    /// Set when decoding stopped early: which protocol, at which offset, why.
    pub stop: Option<Stop>,
}

/// Where and why decoding stopped: the decoder's own [`crate::layer::Stop`], carried as is.
pub use crate::layer::Stop;

/// One encapsulation: the outer IP endpoints and what the tunnel header said.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tunnel {
    pub kind: TunnelKind,
    pub src: Addr,
    pub dst: Addr,
    /// The outer IPv4 id (0 for IPv6): lets the underlay packet be fingerprinted on its own.
    pub outer_id: u16,
    /// UDP source/destination port for UDP tunnels, 0 otherwise.
    pub src_port: u16,
    pub dst_port: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TunnelKind {
    Vxlan {
        vni: u32,
    },
    Geneve {
        vni: u32,
    },
    Gre {
        key: Option<u32>,
    },
    Gtpu {
        teid: u32,
    },
    /// IPv4 or IPv6 carried directly in IP (IP-in-IP, 6in4, 4in6).
    IpInIp,
}

impl TunnelKind {
    /// `VXLAN`, `Geneve`, `GRE`, `GTP-U`, `IPIP`.
    pub fn name(self) -> &'static str {
        match self {
            TunnelKind::Vxlan { .. } => "VXLAN",
            TunnelKind::Geneve { .. } => "Geneve",
            TunnelKind::Gre { .. } => "GRE",
            TunnelKind::Gtpu { .. } => "GTP-U",
            TunnelKind::IpInIp => "IPIP",
        }
    }

    /// The name in JSON: `vxlan`, `geneve`, `gre`, `gtpu`, `ipip`.
    pub fn key(self) -> &'static str {
        match self {
            TunnelKind::Vxlan { .. } => "vxlan",
            TunnelKind::Geneve { .. } => "geneve",
            TunnelKind::Gre { .. } => "gre",
            TunnelKind::Gtpu { .. } => "gtpu",
            TunnelKind::IpInIp => "ipip",
        }
    }

    /// What the tunnel header calls its id (`vni`, `key`, `teid`); IP-in-IP has none.
    pub fn id_name(self) -> Option<&'static str> {
        match self {
            TunnelKind::Vxlan { .. } | TunnelKind::Geneve { .. } => Some("vni"),
            TunnelKind::Gre { .. } => Some("key"),
            TunnelKind::Gtpu { .. } => Some("teid"),
            TunnelKind::IpInIp => None,
        }
    }

    /// The VNI, GRE key (when the header has one) or TEID.
    pub fn id(self) -> Option<u32> {
        match self {
            TunnelKind::Vxlan { vni } | TunnelKind::Geneve { vni } => Some(vni),
            TunnelKind::Gre { key } => key,
            TunnelKind::Gtpu { teid } => Some(teid),
            TunnelKind::IpInIp => None,
        }
    }
}

/// `VXLAN vni 42`, `GRE key 7`, `GRE`, `GTP-U teid 9`, `IPIP` (ids in decimal).
impl core::fmt::Display for TunnelKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())?;
        match (self.id_name(), self.id()) {
            (Some(id_name), Some(id)) => write!(f, " {id_name} {id}"),
            _ => Ok(()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Net {
    /// No network layer decoded (unknown EtherType, or stopped before it).
    None,
    Arp {
        op: u16,
        spa: [u8; 4],
        tpa: [u8; 4],
    },
    Ip(Ip),
}

/// The innermost IP header's fields (IPv4 or IPv6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ip {
    pub src: Addr,
    pub dst: Addr,
    /// The transport protocol after any IPv6 extension headers.
    pub proto: IpProto,
    /// TTL or hop limit.
    pub ttl: u8,
    /// IPv4 id, or the IPv6 fragment header's identification (low 16 bits kept in `id`).
    pub id: u32,
    /// Raw fragment offset in 8-byte units (IPv4 or IPv6 fragment header), 0 if unfragmented.
    pub frag_offset: u16,
    pub more_fragments: bool,
    /// Bytes after the IP header(s), from the header's length field (not the capture).
    pub payload_len: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Transport {
    None,
    Tcp {
        src_port: u16,
        dst_port: u16,
        seq: u32,
        ack: u32,
        flags: u16,
        window: u16,
        /// TCP header length in bytes (options included); 0 when unknown. Not hop-invariant
        /// (a middlebox may rewrite options), so the fingerprint leaves it out.
        hdr_len: u8,
    },
    Udp {
        src_port: u16,
        dst_port: u16,
        length: u16,
    },
    /// ICMP or ICMPv6 (the `Ip::proto` says which). `id`/`seq` are 0 unless echo.
    Icmp {
        ty: u8,
        code: u8,
        id: u16,
        seq: u16,
    },
}

/// The innermost addresses, ports and ICMP echo id of a summary: what NAT rewrites and what
/// names a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Endpoints {
    pub proto: IpProto,
    pub src: Addr,
    pub dst: Addr,
    pub sport: Option<u16>,
    pub dport: Option<u16>,
    pub icmp_id: Option<u16>,
}

impl Endpoints {
    /// `None` without an IP layer.
    pub fn of(s: &Summary) -> Option<Endpoints> {
        let Net::Ip(ip) = s.net else { return None };
        let (sport, dport, icmp_id) = match s.transport {
            Transport::Tcp {
                src_port, dst_port, ..
            }
            | Transport::Udp {
                src_port, dst_port, ..
            } => (Some(src_port), Some(dst_port), None),
            // Echo request/reply (v4 8/0, v6 128/129) carry an id; errors do not.
            Transport::Icmp {
                ty: 0 | 8 | 128 | 129,
                id,
                ..
            } => (None, None, Some(id)),
            _ => (None, None, None),
        };
        Some(Endpoints {
            proto: ip.proto,
            src: ip.src,
            dst: ip.dst,
            sport,
            dport,
            icmp_id,
        })
    }
}

impl Summary {
    pub fn empty() -> Summary {
        Summary {
            vlan: None,
            ethertype: EtherType(0),
            tunnels: Vec::new(),
            net: Net::None,
            transport: Transport::None,
            stop: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::string::ToString;

    #[test]
    fn tunnel_kinds_name_themselves_and_their_ids() {
        let kinds = [
            (TunnelKind::Vxlan { vni: 42 }, "VXLAN vni 42", "vxlan"),
            (TunnelKind::Geneve { vni: 255 }, "Geneve vni 255", "geneve"),
            (TunnelKind::Gre { key: Some(7) }, "GRE key 7", "gre"),
            (TunnelKind::Gre { key: None }, "GRE", "gre"),
            (TunnelKind::Gtpu { teid: 9 }, "GTP-U teid 9", "gtpu"),
            (TunnelKind::IpInIp, "IPIP", "ipip"),
        ];
        for (kind, text, key) in kinds {
            assert_eq!((kind.to_string().as_str(), kind.key()), (text, key));
        }
    }
}

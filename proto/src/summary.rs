//! The condensed view of one decoded frame that an observation carries: the innermost
//! network and transport headers, the tunnels around them (outermost first), and where
//! decoding stopped. Enough to print a tcpdump-like line and to correlate hops; MAC
//! addresses are left out (they change on every hop and cost 12 bytes per record).

use crate::layer::{LayerKind, StopReason};
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
    pub stop: Option<StopInfo>,
}

/// A compact, serialisable copy of [`crate::layer::Stop`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopInfo {
    pub offset: u16,
    pub kind: LayerKind,
    pub reason: StopReason,
}

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

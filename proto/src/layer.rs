//! The decoder's output: a bounded stack of parsed layers, outermost first, and where and
//! why decoding stopped. Every layer holds copied-out scalar fields (a few bytes each), never
//! the frame itself, so a `Decoded` lives on the stack and the frame stays in the ring.

use crate::types::{EtherType, IpProto, Mac, PacketType};
use heapless::Vec;
use serde::{Deserialize, Serialize};

/// The most layers one frame can produce; deeper stacks stop with [`StopReason::TooDeep`].
pub const MAX_LAYERS: usize = 16;

/// One parsed header. Fields are the values on the wire (host byte order), not interpreted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Layer {
    Ethernet {
        src: Mac,
        dst: Mac,
        ethertype: EtherType,
    },
    /// An 802.1Q (tpid 0x8100) or 802.1ad (0x88a8) tag. `stripped` marks a tag the NIC removed,
    /// given to the decoder from the ring's tp_vlan_tci.
    Vlan {
        tpid: u16,
        pcp: u8,
        dei: bool,
        id: u16,
        ethertype: EtherType,
        stripped: bool,
    },
    /// Linux cooked capture v1 (LINKTYPE_LINUX_SLL).
    Sll {
        pkttype: PacketType,
        hatype: u16,
        addr: Mac,
        addr_len: u16,
        protocol: EtherType,
    },
    /// Linux cooked capture v2 (LINKTYPE_LINUX_SLL2).
    Sll2 {
        protocol: EtherType,
        ifindex: u32,
        hatype: u16,
        pkttype: PacketType,
        addr: Mac,
        addr_len: u8,
    },
    /// BSD loopback / LINKTYPE_NULL and LINKTYPE_LOOP: the address family word.
    Loopback {
        family: u32,
    },
    /// MPLS label stack entry.
    Mpls {
        label: u32,
        tc: u8,
        bottom: bool,
        ttl: u8,
    },
    /// PPPoE session header (+ the PPP protocol field).
    Pppoe {
        code: u8,
        session_id: u16,
        length: u16,
        ppp_proto: u16,
    },
    Arp {
        htype: u16,
        ptype: u16,
        op: u16,
        /// Sender/target addresses when the ARP is Ethernet/IPv4; zeros otherwise.
        sha: Mac,
        spa: [u8; 4],
        tha: Mac,
        tpa: [u8; 4],
    },
    Ipv4 {
        src: [u8; 4],
        dst: [u8; 4],
        /// Header length in bytes (20 = no options).
        hdr_len: u8,
        tos: u8,
        total_len: u16,
        id: u16,
        df: bool,
        mf: bool,
        /// The raw 13-bit fragment offset, in units of 8 bytes.
        frag_offset: u16,
        ttl: u8,
        proto: IpProto,
        checksum: u16,
    },
    Ipv6 {
        src: [u8; 16],
        dst: [u8; 16],
        traffic_class: u8,
        flow_label: u32,
        payload_len: u16,
        /// Next header of the fixed header only (the chain follows as `Ipv6Ext` layers).
        next_header: IpProto,
        hop_limit: u8,
    },
    /// One IPv6 extension header: hop-by-hop, routing, fragment, destination options, mobility, AH.
    Ipv6Ext {
        kind: IpProto,
        next_header: IpProto,
        /// Length of this extension header in bytes.
        len: u16,
        /// For a Fragment header: raw 13-bit offset (8-byte units), M flag, identification.
        frag: Option<Ipv6Frag>,
    },
    Icmp {
        ty: u8,
        code: u8,
        checksum: u16,
        /// Echo/timestamp identifier and sequence; 0 otherwise.
        id: u16,
        seq: u16,
    },
    Icmpv6 {
        ty: u8,
        code: u8,
        checksum: u16,
        /// Echo identifier and sequence; 0 otherwise.
        id: u16,
        seq: u16,
        /// Neighbor solicitation/advertisement target; `None` for other types.
        nd_target: Option<[u8; 16]>,
    },
    Tcp {
        src_port: u16,
        dst_port: u16,
        seq: u32,
        ack: u32,
        /// Header length in bytes.
        hdr_len: u8,
        /// The 12-bit flags field (NS..FIN), as tshark's tcp.flags.
        flags: u16,
        window: u16,
        checksum: u16,
    },
    Udp {
        src_port: u16,
        dst_port: u16,
        length: u16,
        checksum: u16,
    },
    Vxlan {
        flags: u8,
        vni: u32,
    },
    Geneve {
        version: u8,
        opt_len: u8,
        oam: bool,
        critical: bool,
        protocol: EtherType,
        vni: u32,
    },
    Gre {
        version: u8,
        protocol: EtherType,
        checksum_present: bool,
        key: Option<u32>,
        seq: Option<u32>,
    },
    /// GTP-U (UDP 2152): the tunnel endpoint id.
    Gtpu {
        msg_type: u8,
        teid: u32,
    },
}

/// A layer's protocol without its fields: names a [`Stop`] and a printed `[|proto]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LayerKind {
    Ethernet,
    Vlan,
    Sll,
    Sll2,
    Loopback,
    Mpls,
    Pppoe,
    Arp,
    Ipv4,
    Ipv6,
    Ipv6Ext,
    Icmp,
    Icmpv6,
    Tcp,
    Udp,
    Vxlan,
    Geneve,
    Gre,
    Gtpu,
    /// A payload type the decoder does not know (the stop names the number in `Unsupported`).
    Other,
}

impl LayerKind {
    /// tcpdump's lower-case protocol name.
    pub fn name(self) -> &'static str {
        match self {
            LayerKind::Ethernet => "ether",
            LayerKind::Vlan => "vlan",
            LayerKind::Sll => "sll",
            LayerKind::Sll2 => "sll2",
            LayerKind::Loopback => "null",
            LayerKind::Mpls => "mpls",
            LayerKind::Pppoe => "pppoe",
            LayerKind::Arp => "arp",
            LayerKind::Ipv4 => "ip",
            LayerKind::Ipv6 => "ip6",
            LayerKind::Ipv6Ext => "ip6ext",
            LayerKind::Icmp => "icmp",
            LayerKind::Icmpv6 => "icmp6",
            LayerKind::Tcp => "tcp",
            LayerKind::Udp => "udp",
            LayerKind::Vxlan => "vxlan",
            LayerKind::Geneve => "geneve",
            LayerKind::Gre => "gre",
            LayerKind::Gtpu => "gtp",
            LayerKind::Other => "data",
        }
    }
}

impl Layer {
    pub fn kind(&self) -> LayerKind {
        match self {
            Layer::Ethernet { .. } => LayerKind::Ethernet,
            Layer::Vlan { .. } => LayerKind::Vlan,
            Layer::Sll { .. } => LayerKind::Sll,
            Layer::Sll2 { .. } => LayerKind::Sll2,
            Layer::Loopback { .. } => LayerKind::Loopback,
            Layer::Mpls { .. } => LayerKind::Mpls,
            Layer::Pppoe { .. } => LayerKind::Pppoe,
            Layer::Arp { .. } => LayerKind::Arp,
            Layer::Ipv4 { .. } => LayerKind::Ipv4,
            Layer::Ipv6 { .. } => LayerKind::Ipv6,
            Layer::Ipv6Ext { .. } => LayerKind::Ipv6Ext,
            Layer::Icmp { .. } => LayerKind::Icmp,
            Layer::Icmpv6 { .. } => LayerKind::Icmpv6,
            Layer::Tcp { .. } => LayerKind::Tcp,
            Layer::Udp { .. } => LayerKind::Udp,
            Layer::Vxlan { .. } => LayerKind::Vxlan,
            Layer::Geneve { .. } => LayerKind::Geneve,
            Layer::Gre { .. } => LayerKind::Gre,
            Layer::Gtpu { .. } => LayerKind::Gtpu,
        }
    }
}

/// The fields of an IPv6 Fragment extension header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ipv6Frag {
    pub offset: u16,
    pub more: bool,
    pub ident: u32,
}

/// Why decoding stopped before the end of the frame's headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopReason {
    /// The capture ended inside a header (snap length or a short frame): normal in capture.
    /// `needed` bytes were required at `offset`, only `had` were there.
    Truncated { needed: u16, had: u16 },
    /// The bytes are there but wrong (`field` names which check failed, see [`Invalid`]).
    Invalid(Invalid),
    /// A protocol this decoder does not walk into (the payload is left as data); the number
    /// is the EtherType, IP protocol or port that named it.
    Unsupported(u16),
    /// [`MAX_LAYERS`] were reached.
    TooDeep,
}

/// Which consistency check failed. Numbers are the value found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Invalid {
    IpVersion(u8),
    Ipv4HeaderLen(u8),
    Ipv4TotalLen(u16),
    TcpHeaderLen(u8),
    UdpLength(u16),
    ExtHeaderLen(u16),
    GreVersion(u8),
    GeneveVersion(u8),
    ArpLengths { hlen: u8, plen: u8 },
    SllAddrLen(u16),
}

impl core::fmt::Display for Invalid {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Invalid::IpVersion(v) => write!(f, "IP version {v}"),
            Invalid::Ipv4HeaderLen(n) => write!(f, "IPv4 header length {n}"),
            Invalid::Ipv4TotalLen(n) => write!(f, "IPv4 total length {n}"),
            Invalid::TcpHeaderLen(n) => write!(f, "TCP header length {n}"),
            Invalid::UdpLength(n) => write!(f, "UDP length {n}"),
            Invalid::ExtHeaderLen(n) => write!(f, "extension header length {n}"),
            Invalid::GreVersion(v) => write!(f, "GRE version {v}"),
            Invalid::GeneveVersion(v) => write!(f, "Geneve version {v}"),
            Invalid::ArpLengths { hlen, plen } => {
                write!(
                    f,
                    "ARP address lengths {hlen} (hardware) and {plen} (protocol)"
                )
            }
            Invalid::SllAddrLen(n) => write!(f, "cooked-capture address length {n}"),
        }
    }
}

/// Where and why decoding stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stop {
    /// Byte offset in the frame at which the failing header starts.
    pub offset: u16,
    /// The protocol that could not be decoded (tcpdump's `[|proto]`).
    pub kind: LayerKind,
    pub reason: StopReason,
}

/// A decoded frame: the layer stack, outermost first, and where the innermost payload starts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    pub layers: Vec<Layer, MAX_LAYERS>,
    /// Offset and length (within the captured bytes) of the innermost payload that no layer
    /// claimed: the L4 payload for TCP/UDP/ICMP, or what follows an unsupported header.
    pub payload_offset: u16,
    pub payload_len: u16,
    /// Where the packet quoted by the first ICMP/ICMPv6 error starts (right after the error's
    /// 8-byte header); `None` when the frame carries no ICMP error. The layers after that
    /// error describe the quote, and [`crate::fingerprint::fingerprint_frame`] hashes it.
    pub quote_offset: Option<u16>,
    /// `None` when every header present was decoded.
    pub stop: Option<Stop>,
}

impl Decoded {
    /// Where the innermost TCP header starts in the frame, when TCP is the packet's
    /// transport (its last layer, not inside an ICMP error's quote). With the options cut
    /// short by the capture the walk stopped at that header, so the stop says where it is.
    pub fn tcp_offset(&self) -> Option<u16> {
        let Some(Layer::Tcp { hdr_len, .. }) = self.layers.last() else {
            return None;
        };
        if self.quote_offset.is_some() {
            return None;
        }
        match self.stop {
            None => self.payload_offset.checked_sub(u16::from(*hdr_len)),
            Some(Stop {
                kind: LayerKind::Tcp,
                offset,
                ..
            }) => Some(offset),
            Some(_) => None,
        }
    }
}

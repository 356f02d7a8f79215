//! The only `unsafe` code of the agent: packet sockets, the TPACKET_V3 ring, namespace entry
//! rtnetlink and capabilities. Everything outside this module is safe Rust.
//!
//! [`FrameRef`] is what both capture paths hand out: the ring ([`ring`], parsed by [`block`])
//! and the recv fallback ([`socket::PacketSocket::recv_frame`]).

pub mod block;
pub mod caps;
pub mod netlink;
pub mod netns;
pub mod ring;
pub mod socket;
pub mod stack;
pub mod time;

pub use hopcap_proto::types::PacketType;

/// One captured frame, borrowed in place (a ring block or the recv buffer), valid until the
/// next frame of the same socket is requested.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameRef<'a> {
    /// The captured bytes, starting at the link-layer header (`cap_len` of them).
    pub data: &'a [u8],
    /// Kernel timestamp, ns since the Unix epoch.
    pub ts_ns: u64,
    /// Length on the wire (before the filter's snaplen cut).
    pub wire_len: u32,
    /// Captured length: `data.len()`.
    pub cap_len: u32,
    /// Interface index within the socket's network namespace.
    pub ifindex: u32,
    /// Direction as sll_pkttype says.
    pub pkttype: PacketType,
    /// ARPHRD_* of the link (1 = Ethernet); tells how `data` starts.
    pub hatype: u16,
    /// sll_protocol in host order: the EtherType, also for links without a link header.
    pub protocol: u16,
    /// VLAN tag the NIC/driver took off the frame (TP_STATUS_VLAN_VALID), not in `data`.
    pub vlan_tci: Option<u16>,
    /// The kernel dropped frames on this socket before this one (TP_STATUS_LOSING).
    pub losing: bool,
}

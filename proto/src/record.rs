//! The observation record: one packet seen on one link at one moment, and the messages an
//! agent sends about its links. All sizes are bounded (heapless), so a record never allocates.

use crate::summary::Summary;
use crate::types::{Addr, Mac, PacketType};
use heapless::{String, Vec};
use serde::{Deserialize, Serialize};

/// A link as the agent numbers it for one connection: an index into the link table
/// it reported (see [`LinkInfo::key`]).
pub type LinkKey = u16;

/// One packet seen on one link at one moment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// Capture time in ns since the Unix epoch, on the agent's clock.
    pub ts_ns: u64,
    /// Which link (and so which namespace) it was seen on.
    pub link: LinkKey,
    /// Capture order within the socket that saw it (one socket per namespace). Ingress hops
    /// on one host share a kernel timestamp; this keeps their real order.
    pub order: u64,
    /// Direction, from sll_pkttype.
    pub pkttype: PacketType,
    /// Length on the wire, and how much of it was captured.
    pub wire_len: u32,
    pub cap_len: u32,
    /// Hop-invariant hash, see [`crate::fingerprint`].
    pub fingerprint: u64,
    pub summary: Summary,
}

impl Observation {
    /// All zero, with an empty summary: a slot to fill in place.
    pub fn empty() -> Observation {
        Observation {
            ts_ns: 0,
            link: 0,
            order: 0,
            pkttype: PacketType(0),
            wire_len: 0,
            cap_len: 0,
            fingerprint: 0,
            summary: Summary::empty(),
        }
    }
}

pub const MAX_NAME: usize = 32;
pub const MAX_ADDRS: usize = 8;

/// What kind of link: drives how the collector orders hops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LinkKind {
    Physical,
    Veth,
    Bridge,
    Vxlan,
    Geneve,
    Gre,
    IpIp,
    Wireguard,
    Tun,
    Vlan,
    Loopback,
    Other,
}

impl LinkKind {
    pub const ALL: [LinkKind; 12] = [
        LinkKind::Physical,
        LinkKind::Veth,
        LinkKind::Bridge,
        LinkKind::Vxlan,
        LinkKind::Geneve,
        LinkKind::Gre,
        LinkKind::IpIp,
        LinkKind::Wireguard,
        LinkKind::Tun,
        LinkKind::Vlan,
        LinkKind::Loopback,
        LinkKind::Other,
    ];

    /// The kind's name, as the collector stores and prints it; for the kinds the kernel
    /// names (rtnetlink's IFLA_INFO_KIND) it is the kernel's word.
    pub fn name(self) -> &'static str {
        match self {
            LinkKind::Physical => "physical",
            LinkKind::Veth => "veth",
            LinkKind::Bridge => "bridge",
            LinkKind::Vxlan => "vxlan",
            LinkKind::Geneve => "geneve",
            LinkKind::Gre => "gre",
            LinkKind::IpIp => "ipip",
            LinkKind::Wireguard => "wireguard",
            LinkKind::Tun => "tun",
            LinkKind::Vlan => "vlan",
            LinkKind::Loopback => "loopback",
            LinkKind::Other => "other",
        }
    }

    /// The kind [`name`](Self::name) names; any other word is `Other`.
    pub fn from_name(name: &str) -> LinkKind {
        LinkKind::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .unwrap_or(LinkKind::Other)
    }
}

impl core::fmt::Display for LinkKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// A veth's other end: its ifindex in its own namespace, and which namespace that is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    pub ifindex: u32,
    /// The namespace name as this agent names namespaces (see [`LinkInfo::netns`]), or empty
    /// when the peer's namespace is not one the agent captures.
    pub netns: String<MAX_NAME>,
}

/// An address assigned to a link, with its prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkAddr {
    pub addr: Addr,
    pub prefix: u8,
}

/// One captured link's topology, as reported to the collector.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkInfo {
    /// The key observations use for this link on this connection.
    pub key: LinkKey,
    /// Namespace: empty for the agent's own, else the /run/netns name, a container name,
    /// `pid:N` or `ino:N`.
    pub netns: String<MAX_NAME>,
    pub name: String<MAX_NAME>,
    pub ifindex: u32,
    pub kind: LinkKind,
    pub mac: Mac,
    pub mtu: u32,
    pub addrs: Vec<LinkAddr, MAX_ADDRS>,
    /// The bridge (or bond) this link is a port of, by ifindex in the same namespace.
    pub master: Option<u32>,
    pub peer: Option<Peer>,
    pub up: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_kind_names_round_trip() {
        // `Other` is the last variant: ALL holds every kind, in order.
        assert_eq!(LinkKind::Other as usize + 1, LinkKind::ALL.len());
        for (i, k) in LinkKind::ALL.into_iter().enumerate() {
            assert_eq!(k as usize, i);
            assert_eq!(LinkKind::from_name(k.name()), k, "{k}");
        }
        assert_eq!(LinkKind::from_name("macvlan"), LinkKind::Other);
    }
}

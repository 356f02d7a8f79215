//! The captured links of every board, indexed for the questions hop ordering and vanish
//! detection ask: which link is this, where is a veth's other end, which bridge is it a port
//! of, is an address local to a namespace, which boards own an address.
//!
//! Link keys are per agent connection ([`LinkKey`]): the caller hands in the table that goes
//! with the observations it passes.

use hopcap_proto::record::{LinkInfo, LinkKey, LinkKind};
use hopcap_proto::types::Addr;
use std::collections::HashMap;

/// Every board's links, built from the `LinkInfo` lists the agents reported.
#[derive(Clone, Debug, Default)]
pub struct Topology {
    boards: HashMap<String, BoardLinks>,
    /// Address → the (board, netns) pairs that have it on a link.
    owners: HashMap<Addr, Vec<(String, String)>>,
}

#[derive(Clone, Debug, Default)]
struct BoardLinks {
    by_key: HashMap<LinkKey, LinkInfo>,
    /// ifindex → keys (one per namespace using it): veth peers and bridge masters are
    /// named by ifindex.
    by_ifindex: HashMap<u32, Vec<LinkKey>>,
}

impl Topology {
    pub fn new() -> Topology {
        Topology::default()
    }

    /// Sets (or replaces) one board's link table.
    pub fn add_board(&mut self, board: &str, links: impl IntoIterator<Item = LinkInfo>) {
        let mut table = BoardLinks::default();
        for link in links {
            table
                .by_ifindex
                .entry(link.ifindex)
                .or_default()
                .push(link.key);
            table.by_key.insert(link.key, link);
        }
        self.boards.insert(board.into(), table);
        self.rebuild_owners();
    }

    fn rebuild_owners(&mut self) {
        self.owners.clear();
        for (board, table) in &self.boards {
            for link in table.by_key.values() {
                for a in &link.addrs {
                    let owner = (board.clone(), String::from(link.netns.as_str()));
                    let list = self.owners.entry(a.addr).or_default();
                    if !list.contains(&owner) {
                        list.push(owner);
                    }
                }
            }
        }
    }

    /// The boards, sorted by name.
    pub fn boards(&self) -> Vec<&str> {
        let mut b: Vec<&str> = self.boards.keys().map(String::as_str).collect();
        b.sort_unstable();
        b
    }

    pub fn link(&self, board: &str, key: LinkKey) -> Option<&LinkInfo> {
        self.boards.get(board)?.by_key.get(&key)
    }

    fn by_ifindex(&self, board: &str, netns: &str, ifindex: u32) -> Option<&LinkInfo> {
        let t = self.boards.get(board)?;
        let keys = t.by_ifindex.get(&ifindex)?;
        keys.iter()
            .filter_map(|k| t.by_key.get(k))
            .find(|l| l.netns.as_str() == netns)
    }

    /// A veth's other end on the same board, if the agent captures its namespace.
    ///
    /// `Peer::netns` is empty both for the agent's own namespace and for one it does not
    /// capture, so an empty name is only trusted when the candidate points back at `link`.
    pub fn veth_peer(&self, board: &str, link: &LinkInfo) -> Option<&LinkInfo> {
        let peer = link.peer.as_ref()?;
        let cand = self.by_ifindex(board, &peer.netns, peer.ifindex)?;
        let points_back = cand
            .peer
            .as_ref()
            .is_some_and(|p| p.ifindex == link.ifindex && p.netns.as_str() == link.netns.as_str());
        let explicit = !peer.netns.is_empty() && cand.peer.is_none();
        (points_back || explicit).then_some(cand)
    }

    /// Whether any captured link is a port of `bridge`.
    pub fn has_ports(&self, board: &str, bridge: &LinkInfo) -> bool {
        self.boards.get(board).is_some_and(|t| {
            t.by_key
                .values()
                .any(|l| l.netns == bridge.netns && l.master == Some(bridge.ifindex))
        })
    }

    /// Whether a packet to `dst` ends in (`board`, `netns`): an address of one of its links,
    /// a subnet broadcast of one, or any broadcast/multicast/loopback address.
    pub fn delivers_locally(&self, board: &str, netns: &str, dst: Addr) -> bool {
        if is_group_or_loopback(dst) {
            return true;
        }
        let Some(t) = self.boards.get(board) else {
            return false;
        };
        t.by_key
            .values()
            .filter(|l| l.netns.as_str() == netns)
            .any(|l| {
                l.addrs
                    .iter()
                    .any(|a| a.addr == dst || is_subnet_broadcast(a.addr, a.prefix, dst))
            })
    }

    /// Boards other than `board` that have `addr` on a link (a captured next board).
    pub fn other_owners(&self, board: &str, addr: Addr) -> Vec<&str> {
        let mut out: Vec<&str> = self
            .owners
            .get(&addr)
            .into_iter()
            .flatten()
            .filter(|(b, _)| b != board)
            .map(|(b, _)| b.as_str())
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// Links that carry packets off the board (or into it), as opposed to veths, bridges and
/// loopback, which stay inside it.
pub fn is_wire(kind: Option<LinkKind>) -> bool {
    !matches!(
        kind,
        Some(LinkKind::Veth | LinkKind::Bridge | LinkKind::Loopback)
    )
}

/// Encapsulating devices: what leaves them Out must reappear encapsulated on an underlay.
pub fn is_tunnel_device(kind: LinkKind) -> bool {
    matches!(
        kind,
        LinkKind::Vxlan | LinkKind::Geneve | LinkKind::Gre | LinkKind::IpIp
    )
}

pub(super) fn is_group_or_loopback(a: Addr) -> bool {
    match a {
        Addr::V4(b) => b[0] == 127 || b[0] >= 224 || b == [0, 0, 0, 0],
        Addr::V6(b) => b[0] == 0xff || b == std::net::Ipv6Addr::LOCALHOST.octets(),
    }
}

fn is_subnet_broadcast(own: Addr, prefix: u8, dst: Addr) -> bool {
    let (Addr::V4(o), Addr::V4(d)) = (own, dst) else {
        return false;
    };
    if prefix >= 31 {
        return false;
    }
    let host_mask = u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
    u32::from_be_bytes(o) | host_mask == u32::from_be_bytes(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::correlate::testbed::{link, Bed, BedExt};

    #[test]
    fn veth_peer_needs_a_back_pointer_when_the_name_is_empty() {
        let mut bed = Bed::new();
        let ctr = bed.add(link("pi1", "ctr", "eth0", 7, LinkKind::Veth).peer(8, ""));
        let host = bed.add(link("pi1", "", "veth1", 8, LinkKind::Veth).peer(7, "ctr"));
        // An unrelated root-namespace link whose ifindex collides with ctr's peer index.
        let other = bed.add(link("pi1", "ctr2", "eth0", 9, LinkKind::Veth).peer(8, ""));
        let topo = bed.topology();
        let l = |k| topo.link("pi1", k).unwrap();
        assert_eq!(topo.veth_peer("pi1", l(ctr)).map(|p| p.key), Some(host));
        assert_eq!(topo.veth_peer("pi1", l(host)).map(|p| p.key), Some(ctr));
        assert_eq!(topo.veth_peer("pi1", l(other)), None);
    }

    #[test]
    fn local_delivery_and_owners() {
        let mut bed = Bed::new();
        bed.add(link("pi1", "", "wlan0", 2, LinkKind::Physical).addr([192, 168, 43, 116], 24));
        bed.add(link("pi2", "", "wlan0", 2, LinkKind::Physical).addr([192, 168, 43, 117], 24));
        let topo = bed.topology();
        let v4 = |a: [u8; 4]| Addr::V4(a);
        assert!(topo.delivers_locally("pi1", "", v4([192, 168, 43, 116])));
        assert!(topo.delivers_locally("pi1", "", v4([192, 168, 43, 255])));
        assert!(topo.delivers_locally("pi1", "", v4([224, 0, 0, 251])));
        assert!(!topo.delivers_locally("pi1", "", v4([192, 168, 43, 117])));
        assert!(!topo.delivers_locally("pi1", "ctr", v4([192, 168, 43, 116])));
        assert_eq!(
            topo.other_owners("pi1", v4([192, 168, 43, 117])),
            vec!["pi2"]
        );
        assert!(topo.other_owners("pi2", v4([192, 168, 43, 117])).is_empty());
    }
}

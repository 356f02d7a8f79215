//! RTM_NEWLINK / RTM_DELLINK: what one link message says, and the RTM_GETLINK requests.
//! Safe, bounds-checked, never panics on any bytes.

use super::nlmsg::{self, ne_u16, ne_u32, Attrs, Error};
use super::rtnl::{shift, RTM_GETLINK};
use hopcap_proto::record::{LinkKind, MAX_NAME};
use hopcap_proto::types::Mac;

pub const IFF_UP: u32 = 0x1;
pub const IFF_LOOPBACK: u32 = 0x8;
pub const IFF_LOWER_UP: u32 = 0x1_0000;

const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_LINK: u16 = 5;
const IFLA_MASTER: u16 = 10;
const IFLA_OPERSTATE: u16 = 16;
const IFLA_LINKINFO: u16 = 18;
const IFLA_EXT_MASK: u16 = 29;
const IFLA_LINK_NETNSID: u16 = 37;
const IFLA_INFO_KIND: u16 = 1;
/// RTEXT_FILTER_SKIP_STATS: dumps without the per-link statistics (a third of each message).
const RTEXT_FILTER_SKIP_STATS: u32 = 1 << 3;

/// struct ifinfomsg: family, pad, type (ARPHRD_*), index, flags, change.
mod ifinfo {
    use core::ops::Range;
    pub const FAMILY: usize = 0;
    pub const TYPE: Range<usize> = 2..4;
    pub const INDEX: Range<usize> = 4..8;
    pub const FLAGS: Range<usize> = 8..12;
    pub const LEN: usize = 16;
}

/// A link as one RTM_NEWLINK / RTM_DELLINK message describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkMsg {
    pub ifindex: u32,
    /// IFF_* flags.
    pub flags: u32,
    /// ARPHRD_* hardware type.
    pub hw_type: u16,
    /// AF_UNSPEC (0) for the link itself; AF_BRIDGE (7) for a bridge port's news, which the
    /// bridge sends about its ports (no kind there, and a DELLINK when a port leaves).
    pub family: u8,
    pub name: heapless::String<MAX_NAME>,
    pub mtu: u32,
    /// IFLA_ADDRESS when it is 6 bytes long (tunnels have none or an IP there).
    pub mac: Option<Mac>,
    /// IFLA_INFO_KIND; absent for physical links and loopback.
    pub kind: Option<heapless::String<16>>,
    pub master: Option<u32>,
    /// IFLA_LINK: a veth's peer, a vlan's or macvlan's lower link (ifindex in that link's
    /// namespace: see `link_netnsid`).
    pub link: Option<u32>,
    /// The namespace of `link`, as an id that the namespace holding this link gives it.
    pub link_netnsid: Option<i32>,
    /// IF_OPER_* (6 = up).
    pub operstate: u8,
}

impl LinkMsg {
    pub fn up(&self) -> bool {
        self.flags & IFF_UP != 0
    }
    pub fn lower_up(&self) -> bool {
        self.flags & IFF_LOWER_UP != 0
    }
    pub fn loopback(&self) -> bool {
        self.flags & IFF_LOOPBACK != 0
    }
    /// What kind of link this is for the collector.
    pub fn link_kind(&self) -> LinkKind {
        if self.loopback() {
            return LinkKind::Loopback;
        }
        match self.kind.as_deref() {
            None => LinkKind::Physical,
            Some(kind) => kind_from_name(kind),
        }
    }
}

/// Maps an IFLA_INFO_KIND to a [`LinkKind`]: the kernel's words for the other GRE and IP-in-IP
/// flavours, else the kind's own name; a kind not known is `Other`.
pub fn kind_from_name(kind: &str) -> LinkKind {
    match kind {
        "gretap" | "ip6gre" | "ip6gretap" | "erspan" | "ip6erspan" => LinkKind::Gre,
        "sit" | "ip6tnl" => LinkKind::IpIp,
        // Not kernel kinds: a link without IFLA_INFO_KIND is physical, loopback is a flag.
        "physical" | "loopback" | "other" => LinkKind::Other,
        kind => LinkKind::from_name(kind),
    }
}

/// A link name as it may be printed and sent: bytes outside printable ASCII become `?`.
pub fn name_from(bytes: &[u8]) -> heapless::String<MAX_NAME> {
    let mut out = heapless::String::new();
    for &b in bytes {
        let c = if b.is_ascii_graphic() { b as char } else { '?' };
        if out.push(c).is_err() {
            break;
        }
    }
    out
}

/// Reads the body of an RTM_NEWLINK / RTM_DELLINK message.
pub fn parse_link(payload: &[u8]) -> Result<LinkMsg, Error> {
    let fixed = payload.get(..ifinfo::LEN).ok_or(Error::Truncated {
        offset: 0,
        needed: ifinfo::LEN,
        had: payload.len(),
    })?;
    let mut link = LinkMsg {
        ifindex: ne_u32(fixed, ifinfo::INDEX).unwrap_or(0),
        flags: ne_u32(fixed, ifinfo::FLAGS).unwrap_or(0),
        hw_type: ne_u16(fixed, ifinfo::TYPE).unwrap_or(0),
        family: fixed.get(ifinfo::FAMILY).copied().unwrap_or(0),
        ..LinkMsg::default()
    };
    for attr in Attrs::new(payload.get(ifinfo::LEN..).unwrap_or(&[])) {
        let attr = attr.map_err(|e| shift(e, ifinfo::LEN))?;
        match attr.ty {
            IFLA_IFNAME => link.name = name_from(attr.bytes_z()),
            IFLA_MTU => link.mtu = attr.u32().unwrap_or(0),
            IFLA_ADDRESS => link.mac = <[u8; 6]>::try_from(attr.payload).ok().map(Mac),
            IFLA_MASTER => link.master = attr.u32().filter(|&i| i != 0),
            IFLA_LINK => link.link = attr.u32().filter(|&i| i != 0),
            IFLA_LINK_NETNSID => link.link_netnsid = attr.i32().filter(|&id| id >= 0),
            IFLA_OPERSTATE => link.operstate = attr.u8().unwrap_or(0),
            IFLA_LINKINFO => {
                // A malformed nested block loses only the kind, not the link.
                let kind = attr.nested().flatten().find(|a| a.ty == IFLA_INFO_KIND);
                link.kind = kind.map(|k| {
                    let mut s = heapless::String::new();
                    for c in name_from(k.bytes_z()).chars() {
                        if s.push(c).is_err() {
                            break;
                        }
                    }
                    s
                });
            }
            _ => {}
        }
    }
    Ok(link)
}

/// RTM_GETLINK for every link (without statistics).
pub fn getlink_dump(seq: u32) -> Vec<u8> {
    let mask = RTEXT_FILTER_SKIP_STATS.to_ne_bytes();
    let attrs = [(IFLA_EXT_MASK, &mask[..])];
    nlmsg::request(
        RTM_GETLINK,
        nlmsg::NLM_F_DUMP,
        seq,
        &[0; ifinfo::LEN],
        &attrs,
    )
}

/// RTM_GETLINK for one ifindex.
pub fn getlink_one(seq: u32, ifindex: u32) -> Vec<u8> {
    let mut body = [0u8; ifinfo::LEN];
    body[ifinfo::INDEX].copy_from_slice(&ifindex.to_ne_bytes());
    let mask = RTEXT_FILTER_SKIP_STATS.to_ne_bytes();
    nlmsg::request(RTM_GETLINK, 0, seq, &body, &[(IFLA_EXT_MASK, &mask[..])])
}

#[cfg(test)]
pub(crate) mod tests {
    //! Fixture: a real link dump from the board bed of tests/links_live.rs (`write_fixtures`),
    //! x86_64 host byte order: br0 (bridge), vc0 (veth, master br0, MAC 02:00:00:00:0c:00, peer
    //! in ctr), up0 (veth, MTU 1400, peer in rtr), vx0 (vxlan), mv0 (macvlan on up0), lo.
    use super::*;
    use crate::links::kernel::read_events;
    use crate::links::rtnl::Event;

    const LINKS: &[u8] = include_bytes!("fixtures/board_links.bin");

    pub(crate) fn links() -> Vec<LinkMsg> {
        let events = read_events(LINKS).unwrap();
        events
            .into_iter()
            .map(|e| match e {
                Event::NewLink(l) => l,
                other => panic!("not a link: {other:?}"),
            })
            .collect()
    }

    pub(crate) fn by_name<'a>(links: &'a [LinkMsg], name: &str) -> &'a LinkMsg {
        links
            .iter()
            .find(|l| l.name == name)
            .unwrap_or_else(|| panic!("{name} in fixture"))
    }

    #[test]
    fn link_dump_gives_kinds_topology_and_addresses() {
        let links = links();
        assert_eq!(links.len(), 6);
        let (lo, br0, vc0) = (
            by_name(&links, "lo"),
            by_name(&links, "br0"),
            by_name(&links, "vc0"),
        );
        let (up0, vx0, mv0) = (
            by_name(&links, "up0"),
            by_name(&links, "vx0"),
            by_name(&links, "mv0"),
        );
        assert_eq!(lo.link_kind(), LinkKind::Loopback);
        assert_eq!(br0.link_kind(), LinkKind::Bridge);
        assert_eq!(vc0.link_kind(), LinkKind::Veth);
        assert_eq!(vx0.link_kind(), LinkKind::Vxlan);
        assert_eq!(mv0.link_kind(), LinkKind::Other);
        assert_eq!(mv0.kind.as_deref(), Some("macvlan"));
        assert!(br0.up() && vc0.up() && up0.up() && lo.up() && !vx0.up());
        assert_eq!(vc0.master, Some(br0.ifindex));
        assert_eq!(up0.master, None);
        assert_eq!(vc0.mac, Some(Mac([2, 0, 0, 0, 0x0c, 0])));
        assert_eq!(up0.mtu, 1400);
        assert_eq!(br0.mtu, 1500);
        // Both veth peers live in other namespaces; the macvlan's lower link is local.
        assert!(vc0.link.is_some() && vc0.link_netnsid.is_some());
        assert!(up0.link.is_some() && up0.link_netnsid.is_some());
        assert_ne!(vc0.link_netnsid, up0.link_netnsid);
        assert_eq!((mv0.link, mv0.link_netnsid), (Some(up0.ifindex), None));
        let mut ifindexes: Vec<_> = links.iter().map(|l| l.ifindex).collect();
        ifindexes.dedup();
        assert_eq!(ifindexes.len(), links.len());
    }

    #[test]
    fn kinds_map_to_link_kinds() {
        for (name, kind) in [
            ("veth", LinkKind::Veth),
            ("bridge", LinkKind::Bridge),
            ("vxlan", LinkKind::Vxlan),
            ("geneve", LinkKind::Geneve),
            ("gretap", LinkKind::Gre),
            ("ip6gre", LinkKind::Gre),
            ("ipip", LinkKind::IpIp),
            ("sit", LinkKind::IpIp),
            ("wireguard", LinkKind::Wireguard),
            ("tun", LinkKind::Tun),
            ("vlan", LinkKind::Vlan),
            ("macvlan", LinkKind::Other),
            ("", LinkKind::Other),
        ] {
            assert_eq!(kind_from_name(name), kind, "{name}");
        }
        let physical = LinkMsg {
            flags: IFF_UP,
            ..LinkMsg::default()
        };
        assert_eq!(physical.link_kind(), LinkKind::Physical);
    }

    #[test]
    fn names_stay_printable_and_bounded() {
        assert_eq!(name_from(b"eth0"), "eth0");
        assert_eq!(name_from(b"a b\xff"), "a?b?");
        assert_eq!(name_from(&[b'x'; 40]).len(), MAX_NAME);
    }
}

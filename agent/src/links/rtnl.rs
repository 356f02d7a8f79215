//! rtnetlink messages about addresses and namespace ids, and events of every kind: requests to
//! build, answers and events to read (link messages themselves: `link_msg`, re-exported here).
//! Safe, bounds-checked, never panics on any bytes.

use super::nlmsg::{self, ne_u32, Attrs, Error, Message};
use hopcap_proto::record::LinkAddr;
use hopcap_proto::types::Addr;

pub const RTM_NEWLINK: u16 = 16;
pub const RTM_DELLINK: u16 = 17;
pub const RTM_GETLINK: u16 = 18;
pub const RTM_NEWADDR: u16 = 20;
pub const RTM_DELADDR: u16 = 21;
pub const RTM_GETADDR: u16 = 22;
pub const RTM_NEWNSID: u16 = 88;
pub const RTM_GETNSID: u16 = 90;

pub use super::link_msg::{
    getlink_dump, getlink_one, kind_from_name, name_from, parse_link, LinkMsg, IFF_LOOPBACK,
    IFF_LOWER_UP, IFF_UP,
};

const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;

const NETNSA_NSID: u16 = 1;
const NETNSA_FD: u16 = 3;

const AF_UNSPEC: u8 = 0;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

/// struct ifaddrmsg: family, prefixlen, flags, scope, index.
mod ifaddr {
    use core::ops::Range;
    pub const FAMILY: usize = 0;
    pub const PREFIXLEN: usize = 1;
    pub const INDEX: Range<usize> = 4..8;
    pub const LEN: usize = 8;
}

/// struct rtgenmsg is one byte, padded to 4 before the attributes.
const RTGEN_LEN: usize = 4;

/// An address on a link, as one RTM_NEWADDR / RTM_DELADDR message gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddrMsg {
    pub ifindex: u32,
    pub addr: LinkAddr,
}

/// Reads the body of an RTM_NEWADDR / RTM_DELADDR message; `None` for a family other than
/// IPv4/IPv6 or a message without an address.
pub fn parse_addr(payload: &[u8]) -> Result<Option<AddrMsg>, Error> {
    let fixed = payload.get(..ifaddr::LEN).ok_or(Error::Truncated {
        offset: 0,
        needed: ifaddr::LEN,
        had: payload.len(),
    })?;
    let family = fixed.get(ifaddr::FAMILY).copied().unwrap_or(0);
    let prefix = fixed.get(ifaddr::PREFIXLEN).copied().unwrap_or(0);
    let ifindex = ne_u32(fixed, ifaddr::INDEX).unwrap_or(0);
    let (mut address, mut local) = (None, None);
    for attr in Attrs::new(payload.get(ifaddr::LEN..).unwrap_or(&[])) {
        let attr = attr.map_err(|e| shift(e, ifaddr::LEN))?;
        let addr = match family {
            AF_INET => <[u8; 4]>::try_from(attr.payload).ok().map(Addr::V4),
            AF_INET6 => <[u8; 16]>::try_from(attr.payload).ok().map(Addr::V6),
            _ => None,
        };
        match attr.ty {
            IFA_ADDRESS => address = addr,
            IFA_LOCAL => local = addr,
            _ => {}
        }
    }
    // On a point-to-point link IFA_ADDRESS is the far end; IFA_LOCAL is always ours.
    Ok(local.or(address).map(|addr| AddrMsg {
        ifindex,
        addr: LinkAddr { addr, prefix },
    }))
}

/// Reads the nsid of an RTM_NEWNSID answer; `None` when the kernel has not assigned one.
pub fn parse_nsid(payload: &[u8]) -> Result<Option<i32>, Error> {
    let mut nsid = None;
    for attr in Attrs::new(payload.get(RTGEN_LEN..).unwrap_or(&[])) {
        let attr = attr.map_err(|e| shift(e, RTGEN_LEN))?;
        if attr.ty == NETNSA_NSID {
            nsid = attr.i32().filter(|&id| id >= 0);
        }
    }
    Ok(nsid)
}

/// What a message on an event socket (or in a dump) says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    NewLink(LinkMsg),
    DelLink(LinkMsg),
    NewAddr(AddrMsg),
    DelAddr(AddrMsg),
}

/// Reads one message as an [`Event`]; `None` for message types that are not link or address
/// news (DONE, ERROR and anything else the caller handles itself).
pub fn parse_event(msg: &Message<'_>) -> Result<Option<Event>, Error> {
    Ok(match msg.ty {
        // Only AF_UNSPEC messages describe a link: a bridge's AF_BRIDGE ones describe a port.
        RTM_NEWLINK => Some(parse_link(msg.payload)?)
            .filter(|l| l.family == AF_UNSPEC)
            .map(Event::NewLink),
        RTM_DELLINK => Some(parse_link(msg.payload)?)
            .filter(|l| l.family == AF_UNSPEC)
            .map(Event::DelLink),
        RTM_NEWADDR => parse_addr(msg.payload)?.map(Event::NewAddr),
        RTM_DELADDR => parse_addr(msg.payload)?.map(Event::DelAddr),
        _ => None,
    })
}

/// RTM_GETADDR for every address of every family.
pub fn getaddr_dump(seq: u32) -> Vec<u8> {
    nlmsg::request(RTM_GETADDR, nlmsg::NLM_F_DUMP, seq, &[0; ifaddr::LEN], &[])
}

/// RTM_GETNSID: which id does the socket's namespace give the namespace open as `netns_fd`?
pub fn getnsid(seq: u32, netns_fd: u32) -> Vec<u8> {
    let fd = netns_fd.to_ne_bytes();
    nlmsg::request(
        RTM_GETNSID,
        0,
        seq,
        &[0; RTGEN_LEN],
        &[(NETNSA_FD, &fd[..])],
    )
}

/// Reports an attribute error at its offset in the whole payload.
pub(crate) fn shift(e: Error, by: usize) -> Error {
    match e {
        Error::Truncated {
            offset,
            needed,
            had,
        } => Error::Truncated {
            offset: offset.saturating_add(by),
            needed,
            had,
        },
        Error::BadLength { offset, len } => Error::BadLength {
            offset: offset.saturating_add(by),
            len,
        },
    }
}

#[cfg(test)]
mod tests {
    //! Fixtures: real kernel answers from the board bed of tests/links_live.rs (`write_fixtures`),
    //! x86_64 host byte order: br0 (bridge), vc0 (veth, master br0, MAC 02:00:00:00:0c:00, peer
    //! in ctr), up0 (veth, MTU 1400, peer in rtr), vx0 (vxlan), mv0 (macvlan on up0), lo.
    use super::*;
    use crate::links::kernel::read_events;
    use crate::links::nlmsg::Messages;
    use hopcap_proto::record::LinkKind;

    const LINKS: &[u8] = include_bytes!("fixtures/board_links.bin");
    const ADDRS: &[u8] = include_bytes!("fixtures/board_addrs.bin");
    const NSID: &[u8] = include_bytes!("fixtures/board_nsid_of_ctr.bin");
    const EVENTS: &[u8] = include_bytes!("fixtures/board_events.bin");
    /// bp0 (a veth) joining br0, then leaving it.
    const BRIDGE_PORT: &[u8] = include_bytes!("fixtures/bridge_port_events.bin");

    fn links() -> Vec<LinkMsg> {
        crate::links::link_msg::tests::links()
    }

    fn by_name<'a>(links: &'a [LinkMsg], name: &str) -> &'a LinkMsg {
        crate::links::link_msg::tests::by_name(links, name)
    }

    #[test]
    fn addr_dump_gives_local_addresses_with_prefixes() {
        let links = links();
        let addrs: Vec<AddrMsg> = read_events(ADDRS)
            .unwrap()
            .into_iter()
            .map(|e| match e {
                Event::NewAddr(a) => a,
                other => panic!("not an address: {other:?}"),
            })
            .collect();
        let on = |name: &str| -> Vec<LinkAddr> {
            let ifindex = by_name(&links, name).ifindex;
            addrs
                .iter()
                .filter(|a| a.ifindex == ifindex)
                .map(|a| a.addr)
                .collect()
        };
        let v4 = |a, b, c, d, prefix| LinkAddr {
            addr: Addr::V4([a, b, c, d]),
            prefix,
        };
        assert!(on("br0").contains(&v4(10, 77, 0, 1, 24)));
        let fd77_1 = Addr::V6([0xfd, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert!(on("br0").contains(&LinkAddr {
            addr: fd77_1,
            prefix: 64
        }));
        assert!(on("up0").contains(&v4(10, 78, 0, 2, 24)));
        assert!(on("lo").contains(&v4(127, 0, 0, 1, 8)));
        assert!(on("vc0").iter().all(|a| matches!(a.addr, Addr::V6(_))));
    }

    #[test]
    fn nsid_answer_matches_the_veth_peer_namespace() {
        let msg = Messages::new(NSID).next().unwrap().unwrap();
        assert_eq!(msg.ty, RTM_NEWNSID);
        let nsid = parse_nsid(msg.payload).unwrap();
        assert_eq!(nsid, by_name(&links(), "vc0").link_netnsid);
    }

    #[test]
    fn events_tell_a_veth_pair_coming_and_going() {
        let events = read_events(EVENTS).unwrap();
        let new_hp0 = events
            .iter()
            .position(|e| matches!(e, Event::NewLink(l) if l.name == "hp0"));
        let hp0 = match &events[new_hp0.unwrap()] {
            Event::NewLink(l) => l.clone(),
            _ => unreachable!(),
        };
        assert_eq!(hp0.link_kind(), LinkKind::Veth);
        let addr = LinkAddr {
            addr: Addr::V4([10, 79, 0, 1]),
            prefix: 24,
        };
        let new_addr = events.iter().position(|e| {
            *e == Event::NewAddr(AddrMsg {
                ifindex: hp0.ifindex,
                addr,
            })
        });
        let del_hp0 = events
            .iter()
            .position(|e| matches!(e, Event::DelLink(l) if l.ifindex == hp0.ifindex));
        assert!(new_hp0 < new_addr && new_addr < del_hp0, "{events:#?}");
        // hp1 is announced first, before hp0 exists, so without a peer: the table must fill
        // a veth's peer from the other end's announcement.
        let hp1 = events.iter().find_map(|e| match e {
            Event::NewLink(l) if l.name == "hp1" => Some(l),
            _ => None,
        });
        let hp1 = hp1.unwrap();
        assert_eq!((hp0.link, hp1.link), (Some(hp1.ifindex), None));
        assert!(events
            .iter()
            .any(|e| matches!(e, Event::DelLink(l) if l.ifindex == hp1.ifindex)));
    }

    #[test]
    fn bridge_port_news_are_not_link_news() {
        // The raw stream holds AF_BRIDGE (7) messages without a kind, a DELLINK among them.
        let raw: Vec<Message> = Messages::new(BRIDGE_PORT).map(Result::unwrap).collect();
        let bridge_family = |m: &&Message| m.payload.first() == Some(&7);
        assert!(raw
            .iter()
            .filter(bridge_family)
            .any(|m| m.ty == RTM_DELLINK));
        let events = read_events(BRIDGE_PORT).unwrap();
        let masters: Vec<Option<u32>> = events
            .iter()
            .map(|e| match e {
                Event::NewLink(l) if l.name == "bp0" && l.link_kind() == LinkKind::Veth => l.master,
                other => panic!("not bp0's own news: {other:?}"),
            })
            .collect();
        assert!(masters.len() < raw.len());
        assert!(masters.first().unwrap().is_some() && masters.last().unwrap().is_none());
    }

    #[test]
    fn any_cut_or_corruption_of_real_messages_is_safe() {
        for fixture in [LINKS, ADDRS, NSID, EVENTS, BRIDGE_PORT] {
            for cut in 0..fixture.len() {
                let _ = read_events(&fixture[..cut]);
            }
            // Deterministic byte flips, a few thousand per fixture.
            let mut rng = hopcap_testkit::Rng::new(0x9e37_79b9_7f4a_7c15);
            for _ in 0..3000 {
                let state = rng.next_u64();
                let mut bytes = fixture.to_vec();
                let at = (state as usize) % bytes.len();
                bytes[at] = (state >> 32) as u8;
                if let Ok(events) = read_events(&bytes) {
                    for e in events {
                        if let Event::NewLink(l) = e {
                            let _ = l.link_kind();
                        }
                    }
                }
                for msg in Messages::new(&bytes).flatten() {
                    let _ = parse_nsid(msg.payload);
                }
            }
        }
    }
}

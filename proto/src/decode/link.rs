//! Steps below IP: link headers, VLAN tags, Cisco shims, MPLS, PPPoE, PPP, ARP.

use super::{halt, Halt, Next, Step, Walk};
use crate::layer::LayerKind;
use crate::types::{EtherType, LinkType};
use crate::wire::cisco::ShimKind;
use crate::wire::loopback::Family;
use crate::wire::{arp, check_len, cisco, ethernet, loopback, mpls, ppp, pppoe, sll, sll2, vlan};

/// PPP protocol numbers this decoder walks into.
const PPP_MPLS: u16 = 0x0281;

impl Walk<'_, '_, '_> {
    pub(super) fn link(&mut self, link: LinkType) -> Step {
        match link {
            LinkType::ETHERNET => Ok(Next::Ethernet),
            LinkType::LINUX_SLL => self.sll(),
            LinkType::LINUX_SLL2 => self.sll2(),
            LinkType::NULL | LinkType::LOOP => self.loopback(),
            LinkType::RAW | LinkType::IPV4 => Ok(Next::Ip { v6: false }),
            LinkType::IPV6 => Ok(Next::Ip { v6: true }),
            other => Err(Halt::unsupported(other.0)),
        }
    }

    pub(super) fn ethernet(&mut self) -> Step {
        let eth = ethernet::Frame::new_checked(self.bytes()).map_err(halt(LayerKind::Ethernet))?;
        self.push(eth.layer())?;
        self.advance(eth.header_len());
        let ethertype = eth.ethertype();
        self.place_stripped_tag(ethertype)?;
        if ethertype.0 < ethernet::MIN_ETHERTYPE {
            // An IEEE 802.3 length: LLC (STP, CDP...) follows, not walked.
            return Err(Halt::unsupported(ethertype.0));
        }
        self.by_ethertype(ethertype)
    }

    /// The NIC-stripped tag goes right after the first link header, carrying the link
    /// header's EtherType (the one the tag stood in front of).
    fn place_stripped_tag(&mut self, ethertype: EtherType) -> Result<(), Halt> {
        match self.stripped_tci.take() {
            Some(tci) => self.push(vlan::tci_layer(EtherType::VLAN.0, tci, ethertype, true)),
            None => Ok(()),
        }
    }

    fn sll(&mut self) -> Step {
        let sll = sll::Header::new_checked(self.bytes()).map_err(halt(LayerKind::Sll))?;
        self.push(sll.layer())?;
        self.advance(sll.header_len());
        self.place_stripped_tag(sll.protocol())?;
        self.by_ethertype(sll.protocol())
    }

    fn sll2(&mut self) -> Step {
        let sll2 = sll2::Header::new_checked(self.bytes()).map_err(halt(LayerKind::Sll2))?;
        self.push(sll2.layer())?;
        self.advance(sll2.header_len());
        self.place_stripped_tag(sll2.protocol())?;
        self.by_ethertype(sll2.protocol())
    }

    fn loopback(&mut self) -> Step {
        let lo = loopback::Header::new_checked(self.bytes()).map_err(halt(LayerKind::Loopback))?;
        self.push(lo.layer())?;
        self.advance(lo.header_len());
        match lo.kind() {
            Family::Ipv4 => Ok(Next::Ip { v6: false }),
            Family::Ipv6 => Ok(Next::Ip { v6: true }),
            Family::Other(family) => Err(Halt::unsupported(family as u16)),
        }
    }

    pub(super) fn vlan(&mut self, tpid: u16) -> Step {
        let tag = vlan::Tag::new_checked(self.bytes()).map_err(halt(LayerKind::Vlan))?;
        self.push(tag.layer(tpid))?;
        self.advance(tag.header_len());
        self.by_ethertype(tag.ethertype())
    }

    pub(super) fn shim(&mut self, kind: ShimKind) -> Step {
        let shim = cisco::Shim::new_checked(self.bytes(), kind).map_err(halt(LayerKind::Other))?;
        self.advance(shim.header_len());
        self.by_ethertype(shim.ethertype())
    }

    /// One label stack entry; after the bottom one, the payload is guessed from its first
    /// nibble as every MPLS decoder must: 4 IPv4, 6 IPv6, 0 an Ethernet pseudowire control
    /// word then Ethernet.
    pub(super) fn mpls(&mut self) -> Step {
        let entry = mpls::Entry::new_checked(self.bytes()).map_err(halt(LayerKind::Mpls))?;
        self.push(entry.layer())?;
        self.advance(entry.header_len());
        if !entry.bottom() {
            return Ok(Next::Mpls);
        }
        match self.bytes().first().map(|b| b >> 4) {
            None => Ok(Next::Done),
            Some(4) => Ok(Next::Ip { v6: false }),
            Some(6) => Ok(Next::Ip { v6: true }),
            Some(0) => {
                check_len(self.bytes(), 4).map_err(halt(LayerKind::Other))?;
                self.advance(4);
                Ok(Next::Ethernet)
            }
            Some(nibble) => Err(Halt::unsupported(u16::from(nibble))),
        }
    }

    pub(super) fn pppoe(&mut self, session: bool) -> Step {
        let start = self.off;
        let pppoe =
            pppoe::Header::new_checked(self.bytes(), session).map_err(halt(LayerKind::Pppoe))?;
        self.push(pppoe.layer())?;
        let header_len = pppoe.header_len();
        self.limit(
            start,
            pppoe::HEADER_LEN + usize::from(pppoe.payload_len()),
            start + header_len,
        );
        self.advance(header_len);
        if session {
            by_ppp_protocol(pppoe.ppp_proto())
        } else {
            // Discovery: tags follow, kept as payload.
            Ok(Next::Done)
        }
    }

    pub(super) fn ppp(&mut self) -> Step {
        let ppp = ppp::Header::new_checked(self.bytes()).map_err(halt(LayerKind::Other))?;
        self.advance(ppp.header_len());
        by_ppp_protocol(ppp.protocol())
    }

    pub(super) fn arp(&mut self) -> Step {
        let bytes = self.bytes();
        let arp = arp::Packet::new_checked(bytes).map_err(halt(LayerKind::Arp))?;
        self.push(arp.layer())?;
        check_len(bytes, arp.header_len()).map_err(halt(LayerKind::Arp))?;
        self.advance(arp.header_len());
        Ok(Next::Done)
    }
}

fn by_ppp_protocol(proto: u16) -> Step {
    match proto {
        pppoe::PPP_IPV4 => Ok(Next::Ip { v6: false }),
        pppoe::PPP_IPV6 => Ok(Next::Ip { v6: true }),
        PPP_MPLS => Ok(Next::Mpls),
        other => Err(Halt::unsupported(other)),
    }
}

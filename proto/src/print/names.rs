//! tcpdump's words for protocol numbers (print-icmp.c, print-icmp6.c, print-arp.c, ethertype.h).

use crate::types::EtherType;

/// ICMP type (and code, for the types whose code changes the words).
pub(crate) fn icmp(ty: u8, code: u8) -> Option<&'static str> {
    Some(match (ty, code) {
        (0, _) => "echo reply",
        (3, 0) => "net unreachable",
        (3, 1) => "host unreachable",
        (3, 2) => "protocol unreachable",
        (3, 3) => "port unreachable",
        (3, 4) => "need to frag",
        (3, 5) => "source route failed",
        (3, 13) => "administratively prohibited filter",
        (3, _) => "unreachable",
        (4, _) => "source quench",
        (5, _) => "redirect",
        (8, _) => "echo request",
        (9, _) => "router advertisement",
        (10, _) => "router solicitation",
        (11, 1) => "ip reassembly time exceeded",
        (11, _) => "time exceeded in-transit",
        (12, _) => "parameter problem",
        (13, _) => "time stamp request",
        (14, _) => "time stamp reply",
        (15, _) => "information request",
        (16, _) => "information reply",
        (17, _) => "address mask request",
        (18, _) => "address mask reply",
        _ => return None,
    })
}

pub(crate) fn icmpv6(ty: u8) -> Option<&'static str> {
    Some(match ty {
        1 => "destination unreachable",
        2 => "packet too big",
        3 => "time exceeded in-transit",
        4 => "parameter problem",
        128 => "echo request",
        129 => "echo reply",
        130 => "multicast listener query",
        131 => "multicast listener report",
        132 => "multicast listener done",
        133 => "router solicitation",
        134 => "router advertisement",
        135 => "neighbor solicitation",
        136 => "neighbor advertisement",
        137 => "redirect",
        138 => "router renumbering",
        139 => "node information query",
        140 => "node information reply",
        141 => "inverse neighbor solicitation",
        142 => "inverse neighbor advertisement",
        143 => "multicast listener report v2",
        144 => "ha discovery request",
        145 => "ha discovery reply",
        146 => "mobile router solicitation",
        147 => "mobile router advertisement",
        _ => return None,
    })
}

/// Whether an ICMP / ICMPv6 type carries an echo identifier and sequence number.
pub(crate) fn is_echo(v6: bool, ty: u8) -> bool {
    if v6 {
        ty == 128 || ty == 129
    } else {
        matches!(ty, 0 | 8 | 13 | 14 | 15 | 16 | 17 | 18)
    }
}

pub(crate) fn ethertype(t: EtherType) -> &'static str {
    match t {
        EtherType::IPV4 => "IPv4",
        EtherType::ARP => "ARP",
        EtherType::RARP => "Reverse ARP",
        EtherType::IPV6 => "IPv6",
        EtherType::VLAN => "802.1Q",
        EtherType::QINQ => "802.1Q-QinQ",
        EtherType::VLAN_9100 => "802.1Q-9100",
        EtherType::MPLS => "MPLS unicast",
        EtherType::MPLS_MC => "MPLS multicast",
        EtherType::PPPOE_DISC => "PPPoE D",
        EtherType::PPPOE_SESS => "PPPoE S",
        EtherType::TEB => "Transparent Ethernet bridging",
        EtherType::ERSPAN2 => "ERSPAN II",
        EtherType::ERSPAN3 => "ERSPAN III",
        _ => "Unknown",
    }
}

pub(crate) fn arp_op(op: u16) -> Option<&'static str> {
    Some(match op {
        1 => "Request",
        2 => "Reply",
        3 => "Reverse Request",
        4 => "Reverse Reply",
        8 => "InARP request",
        9 => "InARP reply",
        _ => return None,
    })
}

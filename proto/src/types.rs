//! Protocol numbers that survive as data: an unknown value is kept, never an error.

use serde::{Deserialize, Serialize};

macro_rules! number_type {
    ($(#[$m:meta])* $name:ident($inner:ty) { $($(#[$cm:meta])* $c:ident = $v:expr),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub struct $name(pub $inner);
        impl $name {
            $($(#[$cm])* pub const $c: $name = $name($v);)*
            /// The constant's name, if this value has one.
            pub fn name(self) -> Option<&'static str> {
                match self { $($name::$c => Some(stringify!($c)),)* _ => None }
            }
        }
        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                match self.name() {
                    Some(n) => write!(f, "{}::{}", stringify!($name), n),
                    None => write!(f, "{}({:#x})", stringify!($name), self.0),
                }
            }
        }
    };
}

number_type!(
    /// A pcap LINKTYPE_* value: how a captured frame starts.
    LinkType(u16) {
        NULL = 0,
        ETHERNET = 1,
        RAW = 101,
        LOOP = 108,
        LINUX_SLL = 113,
        IPV4 = 228,
        IPV6 = 229,
        LINUX_SLL2 = 276,
    }
);

number_type!(
    /// An Ethernet type / SLL protocol field.
    EtherType(u16) {
        IPV4 = 0x0800,
        ARP = 0x0806,
        TEB = 0x6558,
        RARP = 0x8035,
        VLAN = 0x8100,
        IPV6 = 0x86dd,
        QINQ = 0x88a8,
        MPLS = 0x8847,
        MPLS_MC = 0x8848,
        PPPOE_DISC = 0x8863,
        PPPOE_SESS = 0x8864,
        ERSPAN2 = 0x88be,
        ERSPAN3 = 0x22eb,
        VLAN_9100 = 0x9100,
    }
);

number_type!(
    /// An IPv4 protocol / IPv6 next-header value.
    IpProto(u8) {
        HOPOPT = 0,
        ICMP = 1,
        IGMP = 2,
        IPIP = 4,
        TCP = 6,
        UDP = 17,
        IPV6 = 41,
        ROUTING = 43,
        FRAGMENT = 44,
        GRE = 47,
        ESP = 50,
        AH = 51,
        ICMPV6 = 58,
        NO_NEXT = 59,
        DSTOPTS = 60,
        MOBILITY = 135,
        SCTP = 132,
    }
);

number_type!(
    /// Which way a frame went, as AF_PACKET's sll_pkttype (and SLL/SLL2) say.
    PacketType(u8) {
        HOST = 0,
        BROADCAST = 1,
        MULTICAST = 2,
        OTHERHOST = 3,
        OUTGOING = 4,
    }
);

impl PacketType {
    /// tcpdump's word for it (print-sll.c): "In" to this host, "B" broadcast, "M"
    /// multicast, "P" to another host (promiscuous), "Out" sent by this host.
    pub fn direction(self) -> &'static str {
        match self {
            PacketType::OUTGOING => "Out",
            PacketType::BROADCAST => "B",
            PacketType::MULTICAST => "M",
            PacketType::OTHERHOST => "P",
            _ => "In",
        }
    }
}

/// An IP address as bytes (no_std, serde-friendly, `Copy`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Addr {
    V4([u8; 4]),
    V6([u8; 16]),
}

impl core::fmt::Debug for Addr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Display::fmt(self, f)
    }
}

impl core::fmt::Display for Addr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Addr::V4(a) => core::fmt::Display::fmt(&core::net::Ipv4Addr::from(a), f),
            Addr::V6(a) => core::fmt::Display::fmt(&core::net::Ipv6Addr::from(a), f),
        }
    }
}

/// A MAC address, printed as tshark does (`00:16:3e:08:71:cf`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Mac(pub [u8; 6]);

impl core::fmt::Display for Mac {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl core::fmt::Debug for Mac {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Display::fmt(self, f)
    }
}

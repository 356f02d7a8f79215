//! Capture filters: a subset of tcpdump's filter language (pcap-filter(7)), parsed into a
//! small bounded AST, evaluated on a [`Summary`](crate::summary::Summary) (the collector's
//! `--filter`) or compiled to classic BPF for an AF_PACKET socket (the agent).
//!
//! # Syntax
//! `host A`, `net N/len`, `net N mask M`, `port P`, `portrange A-B`, each optionally preceded
//! by a direction (`src`, `dst`, `src or dst`, `src and dst`) and a protocol (`ip`, `ip6`,
//! `arp` for host/net; `tcp`, `udp` for port/portrange); `[ip|ip6] proto N` (N a number,
//! or `\tcp`-style names); `ip`, `ip6`, `arp`, `tcp`, `udp`, `icmp`, `icmp6`;
//! `vlan [ID]`; `not`/`!`, `and`/`&&`, `or`/`||`, parentheses. A bare address or number
//! repeats the last qualifiers (`port 80 or 443`, `host 10.0.0.1 or 10.0.0.2`).
//! As in tcpdump, `not` binds tightest and `and`/`or` have EQUAL precedence and associate
//! left to right: `a or b and c` is `(a or b) and c`.
//! Partial IPv4 networks follow tcpdump: `net 10` is 10.0.0.0/8, `net 192.168` a /16, and a
//! network with bits set outside its mask is an error.
//!
//! # Semantics: every IP level counts
//! hopcap follows packets through tunnels, so a filter must keep the underlay copies of the
//! packets it selects. A frame has one or more *levels*: the outer IP header of each tunnel
//! (VXLAN, Geneve, GTP-U, GRE, IP-in-IP; outermost first) and the innermost network layer,
//! as crate::decode and `Summary::from_decoded` see them. `host`, `net`, `port`,
//! `portrange`, `proto`, `tcp`/`udp`/`icmp`/`icmp6` and `ip`/`ip6`/`arp` are true when they
//! hold at ANY level; so `host 10.1.0.5` selects both 10.1.0.5's own packets and the VXLAN
//! frames carrying them, and `udp port 4789` still selects VXLAN frames (the outer UDP
//! ports are a level's ports too). Each primitive is judged on its own, so
//! `src host A and dst host B` may be satisfied by two different levels.
//! The same holds in the compiled BPF program: its prologue (walk) decodes the same levels
//! and follows the decoder's rules, and the tests check that the program and
//! [`Filter::matches`] agree on hand-made frames and on every frame of the shared corpus.
//! Differences from tcpdump, all consequences of that rule or of the decoder's view:
//! - VLAN tags (in-frame or stripped by the NIC), MPLS, PPPoE and Cisco shims are always
//!   looked through; `vlan` does not shift the offsets of later primitives. `vlan` and
//!   `vlan N` test the first tag met (a NIC-stripped one first), as `Summary::vlan`.
//! - The transport protocol of IPv6 is the one after the extension-header chain (hop-by-hop,
//!   routing, fragment, destination options, mobility, AH; AH after IPv4 too), not the
//!   fixed header's next header; ports are found after the chain.
//! - A header counts only if the decoder accepts it: an IPv4 header with IHL < 5 or a total
//!   length below it has no protocol and no addresses (tcpdump still reads them).
//! - `host`/`net` with no protocol also match ARP and RARP sender/target addresses (as
//!   tcpdump does); an ARP without 6-byte/4-byte addresses counts as 0.0.0.0 to 0.0.0.0.
//! - Ports exist only on TCP and UDP headers of unfragmented packets or first fragments
//!   (tcpdump's rule); non-first fragments match `tcp`/`udp` but never a port.
//! - No host or service names, no `ether`, `less`/`greater`, `gateway`, `protochain`,
//!   arithmetic or byte tests.
//!
//! # The socket program ([`compile`])
//! ifindex allow-list (SKF_AD_IFINDEX) → header walk → exclude list (the agent's own TCP/UDP
//! endpoints, both directions, at any level) → user filter → `ret snaplen` or `ret 0`.
//! Frames of ARPHRD_ETHER and ARPHRD_LOOPBACK devices are taken as Ethernet, every other
//! device type as raw IP (tun, WireGuard, ipip, sit, PPP) — decode those with
//! `LinkType::RAW` to agree. A NIC-stripped VLAN tag is read with SKF_AD_VLAN_TAG(_PRESENT).
//! The walk is about 1550 instructions of the kernel's 4096; a filter too long for the rest
//! is an error (`CompileError::TooLong`), never a truncated program. What the walk does not
//! follow is listed in `walk`'s module docs.
//!
//! Such a program needs more socket option memory than small kernels allow
//! (net.core.optmem_max: 10240 bytes on Debian's 6.1 armmp kernel). [`Depth::Outer`]
//! builds a lean program of about 300 instructions that walks the outer level only, in its
//! common framings: exact on every other frame, it accepts every frame that carries a
//! tunnel (or MPLS, PPPoE, more than 2 VLAN tags or 1 IPv6 extension header) unless the
//! exclude list drops it at the outer level. User space then keeps exactly the frames
//! [`CompileOptions::accepts`] says, on the decoded summary.

mod asm;
pub mod bpf;
pub mod bpf_vm;
mod error;
mod eval;
mod lex;
pub mod op;
mod parse;
mod walk;

#[cfg(test)]
mod tests;

pub use bpf::{
    compile, BpfInsn, CompileError, CompileOptions, Depth, Endpoint, Program, BPF_MAXINSNS,
};
pub use error::{Expected, ParseError, ParseErrorKind};
pub use parse::MAX_DEPTH;

use crate::types::{Addr, EtherType, IpProto};
use heapless::Vec;

/// The most AST nodes one filter can have (each primitive, `not`, `and`, `or` is one node).
pub const MAX_NODES: usize = 64;

/// Which address or port of a header a primitive looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dir {
    Src,
    Dst,
    /// Either one (the default).
    SrcOrDst,
    /// Both at once.
    SrcAndDst,
}

/// Which network headers `host`/`net` look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddrQual {
    /// IPv4, IPv6 and (for IPv4 addresses) ARP.
    Any,
    Ip,
    Ip6,
    Arp,
}

/// Which transport headers `port`/`portrange` look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PortQual {
    /// TCP or UDP.
    Any,
    Tcp,
    Udp,
}

/// Which IP version a `proto` test applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    Any,
    V4,
    V6,
}

/// An address with a mask: a host is a network with every bit significant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NetAddr {
    /// IPv4 allows any mask (`net A mask M`), as tcpdump does.
    V4 {
        addr: [u8; 4],
        mask: [u8; 4],
    },
    V6 {
        addr: [u8; 16],
        prefix: u8,
    },
}

impl NetAddr {
    pub fn host(addr: Addr) -> NetAddr {
        match addr {
            Addr::V4(addr) => NetAddr::V4 {
                addr,
                mask: [0xff; 4],
            },
            Addr::V6(addr) => NetAddr::V6 { addr, prefix: 128 },
        }
    }

    /// True when `a` is inside this network (an address of the other family never is).
    pub fn contains(&self, a: &Addr) -> bool {
        match (self, a) {
            (NetAddr::V4 { addr, mask }, Addr::V4(b)) => {
                (0..4).all(|i| b[i] & mask[i] == addr[i] & mask[i])
            }
            (NetAddr::V6 { addr, prefix }, Addr::V6(b)) => {
                let m = v6_mask(*prefix);
                (0..16).all(|i| b[i] & m[i] == addr[i] & m[i])
            }
            _ => false,
        }
    }

    pub fn is_v4(&self) -> bool {
        matches!(self, NetAddr::V4 { .. })
    }
}

/// The 16-byte mask of an IPv6 prefix length (lengths above 128 count as 128).
pub fn v6_mask(prefix: u8) -> [u8; 16] {
    let mut m = [0u8; 16];
    let mut bits = usize::from(prefix.min(128));
    for byte in m.iter_mut() {
        let take = bits.min(8);
        // `take` is 0..=8; shifting a u16 keeps 8 in range.
        *byte = (0xff00u16 >> take) as u8;
        bits -= take;
    }
    m
}

/// One test on a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Primitive {
    /// `host A` / `net N`: an address of an IPv4/IPv6/ARP header lies in `net`.
    Addr {
        dir: Dir,
        qual: AddrQual,
        net: NetAddr,
    },
    /// `port P` / `portrange A-B` (lo <= hi): a TCP/UDP port lies in `lo..=hi`.
    Port {
        dir: Dir,
        qual: PortQual,
        lo: u16,
        hi: u16,
    },
    /// `tcp`, `udp`, `icmp`, `icmp6`, `[ip|ip6] proto N`.
    Proto { family: Family, proto: IpProto },
    /// `ip`, `ip6`, `arp`: the network layer's EtherType.
    EtherType(EtherType),
    /// `vlan` (any tag) or `vlan N` (the outermost tag's id).
    Vlan(Option<u16>),
}

/// A node of the AST; children are indices into [`Filter::nodes`], always smaller than the
/// node's own index (children are built first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Node {
    Prim(Primitive),
    Not(u8),
    And(u8, u8),
    Or(u8, u8),
}

/// A parsed filter expression. Build it with [`Filter::parse`] (or `str::parse`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    nodes: Vec<Node, MAX_NODES>,
    root: u8,
}

impl Filter {
    /// Parses a tcpdump-style expression (see the module docs for the subset).
    pub fn parse(expr: &str) -> Result<Filter, ParseError> {
        parse::parse(expr)
    }

    /// Every node; children come before parents.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Index of the top node.
    pub fn root(&self) -> u8 {
        self.root
    }

    /// The node at `i` (None only for an index not from this filter).
    pub fn node(&self, i: u8) -> Option<&Node> {
        self.nodes.get(usize::from(i))
    }

    /// True when any primitive is `vlan`.
    pub fn uses_vlan(&self) -> bool {
        self.nodes
            .iter()
            .any(|n| matches!(n, Node::Prim(Primitive::Vlan(_))))
    }
}

impl core::str::FromStr for Filter {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Filter, ParseError> {
        Filter::parse(s)
    }
}

/// Prints the filter back in fully parenthesised tcpdump syntax (it parses to the same AST).
impl core::fmt::Display for Filter {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        display_node(self, self.root, f)
    }
}

fn display_node(filter: &Filter, i: u8, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
    match filter.node(i) {
        None => Ok(()),
        Some(Node::Prim(p)) => display_prim(p, f),
        Some(Node::Not(a)) => {
            f.write_str("not ")?;
            display_node(filter, *a, f)
        }
        Some(Node::And(a, b)) | Some(Node::Or(a, b)) => {
            let op = if matches!(filter.node(i), Some(Node::And(..))) {
                "and"
            } else {
                "or"
            };
            f.write_str("(")?;
            display_node(filter, *a, f)?;
            write!(f, " {op} ")?;
            display_node(filter, *b, f)?;
            f.write_str(")")
        }
    }
}

fn display_prim(p: &Primitive, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
    let dir = |d: Dir| match d {
        Dir::Src => "src ",
        Dir::Dst => "dst ",
        Dir::SrcOrDst => "",
        Dir::SrcAndDst => "src and dst ",
    };
    match *p {
        Primitive::Addr { dir: d, qual, net } => {
            let q = match qual {
                AddrQual::Any => "",
                AddrQual::Ip => "ip ",
                AddrQual::Ip6 => "ip6 ",
                AddrQual::Arp => "arp ",
            };
            f.write_str(q)?;
            f.write_str(dir(d))?;
            match net {
                NetAddr::V4 { addr, mask } if mask == [0xff; 4] => {
                    write!(f, "host {}", Addr::V4(addr))
                }
                NetAddr::V4 { addr, mask } => {
                    write!(f, "net {} mask {}", Addr::V4(addr), Addr::V4(mask))
                }
                NetAddr::V6 { addr, prefix: 128 } => write!(f, "host {}", Addr::V6(addr)),
                NetAddr::V6 { addr, prefix } => write!(f, "net {}/{}", Addr::V6(addr), prefix),
            }
        }
        Primitive::Port {
            dir: d,
            qual,
            lo,
            hi,
        } => {
            let q = match qual {
                PortQual::Any => "",
                PortQual::Tcp => "tcp ",
                PortQual::Udp => "udp ",
            };
            f.write_str(q)?;
            f.write_str(dir(d))?;
            if lo == hi {
                write!(f, "port {lo}")
            } else {
                write!(f, "portrange {lo}-{hi}")
            }
        }
        Primitive::Proto { family, proto } => match (family, proto) {
            (Family::V4, IpProto::ICMP) => f.write_str("icmp"),
            (Family::V6, IpProto::ICMPV6) => f.write_str("icmp6"),
            (Family::Any, IpProto::TCP) => f.write_str("tcp"),
            (Family::Any, IpProto::UDP) => f.write_str("udp"),
            (Family::Any, p) => write!(f, "proto {}", p.0),
            (Family::V4, p) => write!(f, "ip proto {}", p.0),
            (Family::V6, p) => write!(f, "ip6 proto {}", p.0),
        },
        Primitive::EtherType(EtherType::IPV4) => f.write_str("ip"),
        Primitive::EtherType(EtherType::IPV6) => f.write_str("ip6"),
        Primitive::EtherType(EtherType::ARP) => f.write_str("arp"),
        // Not producible by the parser; printed as a comment-like marker.
        Primitive::EtherType(e) => write!(f, "ether proto {}", e.0),
        Primitive::Vlan(None) => f.write_str("vlan"),
        Primitive::Vlan(Some(id)) => write!(f, "vlan {id}"),
    }
}

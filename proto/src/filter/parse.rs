//! Recursive-descent parser for the filter subset, into the bounded node list of [`Filter`].

use super::error::{Expected, ParseError, ParseErrorKind};
use super::lex::{Lexer, Tok, Token};
use super::{AddrQual, Dir, Family, Filter, NetAddr, Node, PortQual, Primitive, MAX_NODES};
use crate::types::{EtherType, IpProto};
use core::net::{Ipv4Addr, Ipv6Addr};
use heapless::Vec;
use value::{looks_like_id, parse_addr, parse_number, parse_partial_v4, prefix_mask_v4};

mod value;

/// Parentheses and `not`s nest at most this deep (bounds the parser's recursion).
pub const MAX_DEPTH: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ProtoKw {
    None,
    Ip,
    Ip6,
    Arp,
    Tcp,
    Udp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Host,
    Net,
    Port,
    PortRange,
}

/// The qualifiers a bare id repeats (`port 80 or 443`).
#[derive(Clone, Copy, Debug)]
struct Quals {
    proto: ProtoKw,
    dir: Dir,
    kind: Kind,
}

const DEFAULT_QUALS: Quals = Quals {
    proto: ProtoKw::None,
    dir: Dir::SrcOrDst,
    kind: Kind::Host,
};

struct Parser<'a> {
    lex: Lexer<'a>,
    nodes: Vec<Node, MAX_NODES>,
    /// None after a standalone protocol or `vlan`, as in tcpdump.
    last: Option<Quals>,
}

/// tcpdump primitives this language does not have, so that using one says so (rather than
/// "expected a primitive").
const UNSUPPORTED: &[&str] = &[
    "ether",
    "less",
    "greater",
    "len",
    "protochain",
    "gateway",
    "broadcast",
    "multicast",
    "inbound",
    "outbound",
    "ifname",
    "on",
    "mpls",
    "pppoed",
    "pppoes",
    "geneve",
    "vxlan",
    "igmp",
    "sctp",
    "rarp",
    "ah",
    "esp",
    "llc",
    "wlan",
    "type",
    "subtype",
    "dir",
];

fn unsupported(word: &str) -> Option<&'static str> {
    UNSUPPORTED.iter().copied().find(|u| *u == word)
}

pub(crate) fn parse(expr: &str) -> Result<Filter, ParseError> {
    if let Some(offset) = expr.find('[') {
        // tcpdump's byte tests: tcp[13] & 2 != 0, ip[0] & 0xf != 5.
        return Err(err(
            offset,
            ParseErrorKind::Unsupported("a byte test (proto[offset])"),
        ));
    }
    let mut p = Parser {
        lex: Lexer::new(expr),
        nodes: Vec::new(),
        last: Some(DEFAULT_QUALS),
    };
    let root = p.expr(0)?;
    match p.lex.peek() {
        Token { tok: Tok::End, .. } => {}
        Token {
            tok: Tok::Bad,
            offset,
        } => return Err(err(offset, ParseErrorKind::UnexpectedByte)),
        Token { offset, .. } => return Err(expected(offset, Expected::OperatorOrEnd)),
    }
    Ok(Filter {
        nodes: p.nodes,
        root,
    })
}

fn err(offset: usize, kind: ParseErrorKind) -> ParseError {
    ParseError { offset, kind }
}

fn expected(offset: usize, e: Expected) -> ParseError {
    err(offset, ParseErrorKind::Expected(e))
}

impl<'a> Parser<'a> {
    fn push(&mut self, offset: usize, node: Node) -> Result<u8, ParseError> {
        let index = self.nodes.len();
        self.nodes
            .push(node)
            .map_err(|_| err(offset, ParseErrorKind::TooManyNodes))?;
        // MAX_NODES <= 256, so the index fits.
        u8::try_from(index).map_err(|_| err(offset, ParseErrorKind::TooManyNodes))
    }

    /// `term (('and'|'or') term)*`, left-associative with equal precedence.
    fn expr(&mut self, depth: usize) -> Result<u8, ParseError> {
        let mut left = self.term(depth)?;
        loop {
            let t = self.lex.peek();
            let is_and = match t.tok {
                Tok::And => true,
                Tok::Or => false,
                _ => return Ok(left),
            };
            self.lex.next_token();
            let right = self.term(depth)?;
            let node = if is_and {
                Node::And(left, right)
            } else {
                Node::Or(left, right)
            };
            left = self.push(t.offset, node)?;
        }
    }

    fn term(&mut self, depth: usize) -> Result<u8, ParseError> {
        let t = self.lex.peek();
        if depth >= MAX_DEPTH {
            return Err(err(t.offset, ParseErrorKind::TooDeep));
        }
        match t.tok {
            Tok::Not => {
                self.lex.next_token();
                let a = self.term(depth + 1)?;
                self.push(t.offset, Node::Not(a))
            }
            Tok::LParen => {
                self.lex.next_token();
                let e = self.expr(depth + 1)?;
                match self.lex.next_token() {
                    Token {
                        tok: Tok::RParen, ..
                    } => {}
                    Token {
                        tok: Tok::Bad,
                        offset,
                    } => return Err(err(offset, ParseErrorKind::UnexpectedByte)),
                    Token { offset, .. } => return Err(expected(offset, Expected::CloseParen)),
                }
                Ok(e)
            }
            Tok::Word(w) => self.primitive(w, t.offset),
            Tok::Bad => Err(err(t.offset, ParseErrorKind::UnexpectedByte)),
            _ => Err(expected(t.offset, Expected::Primitive)),
        }
    }

    fn peek_word(&self) -> Option<&'a str> {
        match self.lex.peek().tok {
            Tok::Word(w) => Some(w),
            _ => None,
        }
    }

    fn primitive(&mut self, word: &'a str, offset: usize) -> Result<u8, ParseError> {
        let proto = match word {
            "ip" => ProtoKw::Ip,
            "ip6" => ProtoKw::Ip6,
            "arp" => ProtoKw::Arp,
            "tcp" => ProtoKw::Tcp,
            "udp" => ProtoKw::Udp,
            "src" | "dst" | "host" | "net" | "port" | "portrange" => {
                return self.qualified(ProtoKw::None)
            }
            "icmp" | "icmp6" | "proto" | "vlan" => {
                self.lex.next_token();
                self.last = None;
                return match word {
                    "icmp" => self.push_prim(
                        offset,
                        Primitive::Proto {
                            family: Family::V4,
                            proto: IpProto::ICMP,
                        },
                    ),
                    "icmp6" => self.push_prim(
                        offset,
                        Primitive::Proto {
                            family: Family::V6,
                            proto: IpProto::ICMPV6,
                        },
                    ),
                    "proto" => self.proto_id(Family::Any, offset),
                    _ => self.vlan(offset),
                };
            }
            w if looks_like_id(w) => {
                let quals = self
                    .last
                    .ok_or(err(offset, ParseErrorKind::NothingToRepeat))?;
                return self.id(quals);
            }
            w => {
                let kind = match unsupported(w) {
                    Some(known) => ParseErrorKind::Unsupported(known),
                    None => ParseErrorKind::Expected(Expected::Primitive),
                };
                return Err(err(offset, kind));
            }
        };
        self.lex.next_token();
        match self.peek_word() {
            Some("proto") if matches!(proto, ProtoKw::Ip | ProtoKw::Ip6) => {
                let t = self.lex.next_token();
                self.last = None;
                let family = if proto == ProtoKw::Ip {
                    Family::V4
                } else {
                    Family::V6
                };
                self.proto_id(family, t.offset)
            }
            Some("src" | "dst" | "host" | "net" | "port" | "portrange") => self.qualified(proto),
            _ => {
                self.last = None;
                let prim = match proto {
                    ProtoKw::Ip => Primitive::EtherType(EtherType::IPV4),
                    ProtoKw::Ip6 => Primitive::EtherType(EtherType::IPV6),
                    ProtoKw::Arp => Primitive::EtherType(EtherType::ARP),
                    ProtoKw::Tcp => Primitive::Proto {
                        family: Family::Any,
                        proto: IpProto::TCP,
                    },
                    _ => Primitive::Proto {
                        family: Family::Any,
                        proto: IpProto::UDP,
                    },
                };
                self.push_prim(offset, prim)
            }
        }
    }

    fn push_prim(&mut self, offset: usize, p: Primitive) -> Result<u8, ParseError> {
        self.push(offset, Node::Prim(p))
    }

    /// `[src|dst|src or dst|src and dst] [host|net|port|portrange] id`.
    fn qualified(&mut self, proto: ProtoKw) -> Result<u8, ParseError> {
        let mut dir = Dir::SrcOrDst;
        if let Some(first @ ("src" | "dst")) = self.peek_word() {
            self.lex.next_token();
            dir = if first == "src" { Dir::Src } else { Dir::Dst };
            let other = if first == "src" { "dst" } else { "src" };
            let op = self.lex.peek().tok;
            if matches!(op, Tok::And | Tok::Or) && self.lex.peek2().tok == Tok::Word(other) {
                self.lex.next_token();
                self.lex.next_token();
                dir = if op == Tok::And {
                    Dir::SrcAndDst
                } else {
                    Dir::SrcOrDst
                };
            }
        }
        let kind_at = self.lex.peek().offset;
        let kind = match self.peek_word() {
            Some("host") => Kind::Host,
            Some("net") => Kind::Net,
            Some("port") => Kind::Port,
            Some("portrange") => Kind::PortRange,
            _ => {
                let quals = Quals {
                    proto,
                    dir,
                    kind: Kind::Host,
                };
                return self.checked_id(quals, kind_at);
            }
        };
        self.lex.next_token();
        self.checked_id(Quals { proto, dir, kind }, kind_at)
    }

    fn checked_id(&mut self, quals: Quals, kind_at: usize) -> Result<u8, ParseError> {
        let port_kind = matches!(quals.kind, Kind::Port | Kind::PortRange);
        let port_proto = matches!(quals.proto, ProtoKw::Tcp | ProtoKw::Udp);
        if quals.proto != ProtoKw::None && port_kind != port_proto {
            return Err(err(kind_at, ParseErrorKind::IllegalQualifier));
        }
        self.last = Some(quals);
        self.id(quals)
    }

    fn id(&mut self, q: Quals) -> Result<u8, ParseError> {
        let t = self.lex.next_token();
        let want = match q.kind {
            Kind::Host => Expected::Address,
            Kind::Net => Expected::Network,
            Kind::Port => Expected::Port,
            Kind::PortRange => Expected::PortRange,
        };
        let Tok::Word(w) = t.tok else {
            return Err(expected(t.offset, want));
        };
        let prim = match q.kind {
            Kind::Host => {
                let addr = parse_addr(w).ok_or(expected(t.offset, want))?;
                let net = NetAddr::host(addr);
                Primitive::Addr {
                    dir: q.dir,
                    qual: addr_qual(q.proto, &net, t.offset)?,
                    net,
                }
            }
            Kind::Net => {
                let net = self.net(w, t.offset)?;
                Primitive::Addr {
                    dir: q.dir,
                    qual: addr_qual(q.proto, &net, t.offset)?,
                    net,
                }
            }
            Kind::Port | Kind::PortRange => {
                let (lo, hi) = if q.kind == Kind::Port {
                    let p = parse_u16(w, t.offset, want)?;
                    (p, p)
                } else {
                    let (a, b) = w.split_once('-').ok_or(expected(t.offset, want))?;
                    let (a, b) = (parse_u16(a, t.offset, want)?, parse_u16(b, t.offset, want)?);
                    (a.min(b), a.max(b))
                };
                let qual = match q.proto {
                    ProtoKw::Tcp => PortQual::Tcp,
                    ProtoKw::Udp => PortQual::Udp,
                    _ => PortQual::Any,
                };
                Primitive::Port {
                    dir: q.dir,
                    qual,
                    lo,
                    hi,
                }
            }
        };
        self.push_prim(t.offset, prim)
    }

    /// A network id: `10`, `10.1/16`, `10.0.0.0 mask 255.0.0.0`, `fd00::/8`, `::1`.
    fn net(&mut self, w: &str, at: usize) -> Result<NetAddr, ParseError> {
        let net = if w.contains(':') {
            let addr = w
                .parse::<Ipv6Addr>()
                .map_err(|_| expected(at, Expected::Network))?
                .octets();
            let prefix = self.prefix_len(128)?.unwrap_or(128);
            NetAddr::V6 { addr, prefix }
        } else {
            let (addr, bits) = parse_partial_v4(w).ok_or(expected(at, Expected::Network))?;
            let mask = if let Some(len) = self.prefix_len(32)? {
                prefix_mask_v4(len)
            } else if self.peek_word() == Some("mask") {
                self.lex.next_token();
                let t = self.lex.next_token();
                match t.tok {
                    Tok::Word(m) => m
                        .parse::<Ipv4Addr>()
                        .map_err(|_| expected(t.offset, Expected::Mask))?
                        .octets(),
                    _ => return Err(expected(t.offset, Expected::Mask)),
                }
            } else {
                prefix_mask_v4(bits)
            };
            NetAddr::V4 { addr, mask }
        };
        let host_bits_clear = match net {
            NetAddr::V4 { addr, mask } => (0..4).all(|i| addr[i] & !mask[i] == 0),
            NetAddr::V6 { addr, prefix } => {
                let m = super::v6_mask(prefix);
                (0..16).all(|i| addr[i] & !m[i] == 0)
            }
        };
        if !host_bits_clear {
            return Err(err(at, ParseErrorKind::HostBitsSet));
        }
        Ok(net)
    }

    /// `/len` if present, with len <= max.
    fn prefix_len(&mut self, max: u8) -> Result<Option<u8>, ParseError> {
        if self.lex.peek().tok != Tok::Slash {
            return Ok(None);
        }
        self.lex.next_token();
        let t = self.lex.next_token();
        let Tok::Word(w) = t.tok else {
            return Err(expected(t.offset, Expected::PrefixLen));
        };
        let n = parse_number(w).ok_or(expected(t.offset, Expected::PrefixLen))?;
        match u8::try_from(n) {
            Ok(len) if len <= max => Ok(Some(len)),
            _ => Err(err(t.offset, ParseErrorKind::OutOfRange)),
        }
    }

    fn proto_id(&mut self, family: Family, offset: usize) -> Result<u8, ParseError> {
        let t = self.lex.next_token();
        let Tok::Word(w) = t.tok else {
            return Err(expected(t.offset, Expected::Protocol));
        };
        let name = w.strip_prefix('\\').unwrap_or(w);
        let proto = match (name, parse_number(name)) {
            (_, Some(n)) => {
                u8::try_from(n).map_err(|_| err(t.offset, ParseErrorKind::OutOfRange))?
            }
            ("icmp", _) => 1,
            ("igmp", _) => 2,
            ("ipip", _) => 4,
            ("tcp", _) => 6,
            ("udp", _) => 17,
            ("ipv6", _) => 41,
            ("gre", _) => 47,
            ("esp", _) => 50,
            ("ah", _) => 51,
            ("icmp6", _) => 58,
            ("sctp", _) => 132,
            _ => return Err(expected(t.offset, Expected::Protocol)),
        };
        self.push_prim(
            offset,
            Primitive::Proto {
                family,
                proto: IpProto(proto),
            },
        )
    }

    fn vlan(&mut self, offset: usize) -> Result<u8, ParseError> {
        let id = match self.lex.peek().tok {
            Tok::Word(w) if w.starts_with(|c: char| c.is_ascii_digit()) => {
                let t = self.lex.next_token();
                let n = parse_number(w).ok_or(expected(t.offset, Expected::Primitive))?;
                match u16::try_from(n) {
                    Ok(id) if id < 4096 => Some(id),
                    _ => return Err(err(t.offset, ParseErrorKind::OutOfRange)),
                }
            }
            _ => None,
        };
        self.push_prim(offset, Primitive::Vlan(id))
    }
}

/// The AddrQual for a host/net, checking the address family against the protocol keyword.
fn addr_qual(proto: ProtoKw, net: &NetAddr, at: usize) -> Result<AddrQual, ParseError> {
    let (qual, v4_only, v6_only) = match proto {
        ProtoKw::Ip => (AddrQual::Ip, true, false),
        ProtoKw::Arp => (AddrQual::Arp, true, false),
        ProtoKw::Ip6 => (AddrQual::Ip6, false, true),
        _ => (AddrQual::Any, false, false),
    };
    if (v4_only && !net.is_v4()) || (v6_only && net.is_v4()) {
        return Err(err(at, ParseErrorKind::FamilyMismatch));
    }
    Ok(qual)
}

fn parse_u16(w: &str, at: usize, want: Expected) -> Result<u16, ParseError> {
    let n = parse_number(w).ok_or(expected(at, want))?;
    u16::try_from(n).map_err(|_| err(at, ParseErrorKind::OutOfRange))
}

#[cfg(test)]
mod tests;

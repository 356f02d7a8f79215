//! What a rejected filter expression reports: the byte offset and what was wrong there.

use super::parse::MAX_DEPTH;
use super::MAX_NODES;

/// Why an expression was rejected, and the byte offset in it where that was noticed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub offset: usize,
    pub kind: ParseErrorKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// Something else was found (or the expression ended) where this was needed.
    Expected(Expected),
    /// A byte that starts no token (`&`, `=`, non-ASCII, ...).
    UnexpectedByte,
    /// A number too large for its place (port, VLAN id, protocol, prefix length).
    OutOfRange,
    /// A network address with bits set outside its mask (`net 10.0.0.1/8`).
    HostBitsSet,
    /// A protocol that does not go with the primitive (`tcp host`, `arp port`).
    IllegalQualifier,
    /// An address of the wrong IP version for its qualifier (`ip6 host 10.0.0.1`).
    FamilyMismatch,
    /// A bare address or number with no earlier qualifiers to repeat (`tcp or 80`).
    NothingToRepeat,
    /// More than [`MAX_NODES`] primitives and operators.
    TooManyNodes,
    /// Parentheses or `not` nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// A tcpdump primitive this language does not have (`ether`, `less`, `tcp[13]`...).
    Unsupported(&'static str),
}

/// What the parser was looking for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expected {
    /// A primitive, `not` or `(`.
    Primitive,
    /// `and`, `or`, `)` or the end.
    OperatorOrEnd,
    CloseParen,
    /// An IPv4 or IPv6 address.
    Address,
    /// A network: partial IPv4 (`10`, `10.1`), address with `/len` or `mask`, IPv6 prefix.
    Network,
    /// A dotted IPv4 mask after `mask`.
    Mask,
    PrefixLen,
    Port,
    /// `low-high`.
    PortRange,
    /// A protocol number or name (`6`, `\tcp`).
    Protocol,
}

impl core::fmt::Display for Expected {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Expected::Primitive => "a primitive, 'not' or '('",
            Expected::OperatorOrEnd => "'and', 'or', ')' or the end",
            Expected::CloseParen => "')'",
            Expected::Address => "an IPv4 or IPv6 address",
            Expected::Network => "a network (10.0.0.0/8, 10.1, fd00::/8)",
            Expected::Mask => "a dotted IPv4 mask",
            Expected::PrefixLen => "a prefix length",
            Expected::Port => "a port number",
            Expected::PortRange => "a port range (low-high)",
            Expected::Protocol => "a protocol number or name",
        })
    }
}

impl core::fmt::Display for ParseError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "filter error at byte {}: ", self.offset)?;
        match self.kind {
            ParseErrorKind::Expected(e) => write!(f, "expected {e}"),
            ParseErrorKind::UnexpectedByte => f.write_str("unexpected character"),
            ParseErrorKind::OutOfRange => f.write_str("number out of range"),
            ParseErrorKind::HostBitsSet => f.write_str("network has bits set outside its mask"),
            ParseErrorKind::IllegalQualifier => {
                f.write_str("qualifier does not apply to this primitive")
            }
            ParseErrorKind::FamilyMismatch => {
                f.write_str("address family does not match its qualifier")
            }
            ParseErrorKind::NothingToRepeat => {
                f.write_str("bare value with no qualifiers to repeat")
            }
            ParseErrorKind::TooManyNodes => write!(f, "more than {MAX_NODES} terms"),
            ParseErrorKind::TooDeep => write!(f, "nested deeper than {MAX_DEPTH}"),
            ParseErrorKind::Unsupported(what) => write!(
                f,
                "{what} is tcpdump syntax that hopcap's filter does not support \
                 (it has host, net, port, portrange, proto, ip, ip6, arp, tcp, udp, \
                 icmp, icmp6, vlan, src/dst, and, or, not)"
            ),
        }
    }
}

impl core::error::Error for ParseError {}

//! The in-place decoder: walks a captured frame from its link header inward, one header
//! view at a time, and records each header as a [`Layer`] (outermost first). Tunnels
//! (VXLAN, Geneve, GTP-U, MPLS-in-UDP, GRE, IP-in-IP) are walked into, so outer and inner
//! layers both appear; so are the packets quoted by ICMP errors.
//!
//! Nothing is allocated and nothing panics: the walk stops at the first header that is cut
//! short, inconsistent, unknown or one too many, and says so in [`Decoded::stop`].

mod link;
mod net;
mod tunnel;

#[cfg(test)]
pub(crate) mod fixtures;

use crate::layer::{Decoded, Layer, LayerKind, Stop, StopReason};
use crate::types::{EtherType, IpProto, LinkType};
use crate::wire;
use crate::wire::cisco::ShimKind;

/// The UDP ports that name a tunnel (0 = unused), by destination port first, then source
/// port. The decoder and the BPF filter walk (`filter::CompileOptions`) both take them, so
/// the kernel filter and the summaries see the same tunnels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TunnelPorts {
    /// VXLAN: IANA 4789, and 8472 (Linux/flannel).
    pub vxlan: [u16; 2],
    pub geneve: u16,
    pub gtpu: u16,
    /// MPLS-in-UDP (RFC 7510); the BPF walk does not follow it.
    pub mpls_udp: u16,
}

impl TunnelPorts {
    /// The registered ports (and flannel's VXLAN port).
    pub const STANDARD: TunnelPorts = TunnelPorts {
        vxlan: [4789, 8472],
        geneve: 6081,
        gtpu: 2152,
        mpls_udp: 6635,
    };
}

impl Default for TunnelPorts {
    fn default() -> TunnelPorts {
        TunnelPorts::STANDARD
    }
}

/// Where the tunnels live and what the NIC told us; `Copy`, so every ring keeps its own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeOptions {
    /// A VLAN tag the NIC removed (the ring's tp_vlan_tci): decoded as a `Vlan` layer with
    /// `stripped = true` right after the link header.
    pub stripped_vlan_tci: Option<u16>,
    pub tunnel_ports: TunnelPorts,
}

/// Only the first this-many bytes of a frame are decoded: offsets in [`Decoded`] are u16.
/// Headers never reach that far; a longer frame (BIG TCP, GSO) just has a shorter payload.
pub const MAX_DECODED_LEN: usize = u16::MAX as usize;

/// Decodes `frame`, which starts with a `link` header.
pub fn decode(link: LinkType, frame: &[u8], opts: &DecodeOptions) -> Decoded {
    let mut out = Decoded::default();
    decode_into(link, frame, opts, &mut out);
    out
}

/// [`decode`] into a caller's `Decoded` (cleared first): the capture loop reuses one, so
/// nothing of its ~700 bytes is moved per packet.
pub fn decode_into(link: LinkType, frame: &[u8], opts: &DecodeOptions, out: &mut Decoded) {
    let frame = frame.get(..MAX_DECODED_LEN).unwrap_or(frame);
    out.layers.clear();
    out.stop = None;
    out.quote_offset = None;
    let mut walk = Walk {
        frame,
        opts,
        out,
        off: 0,
        end: frame.len(),
        stripped_tci: opts.stripped_vlan_tci,
    };
    let mut next = Next::Link(link);
    loop {
        match walk.step(next) {
            Ok(Next::Done) => break,
            Ok(following) => next = following,
            Err(Halt { kind, reason }) => {
                walk.out.stop = Some(Stop {
                    offset: walk.off as u16,
                    kind,
                    reason,
                });
                break;
            }
        }
    }
    walk.out.payload_offset = walk.off as u16;
    walk.out.payload_len = walk.end.saturating_sub(walk.off) as u16;
}

/// The header expected at the current offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Next {
    Link(LinkType),
    Ethernet,
    Vlan {
        tpid: u16,
    },
    /// A Cisco MetaData or VN-Tag shim.
    Shim(ShimKind),
    Mpls,
    Pppoe {
        session: bool,
    },
    Arp,
    /// IPv4 or IPv6 by the version nibble; `v6` says which the enclosing header announced.
    Ip {
        v6: bool,
    },
    /// The payload of an IP header (or an extension header), by protocol number.
    IpPayload {
        proto: IpProto,
        v6: bool,
    },
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
    Vxlan,
    Geneve,
    Gtpu,
    Gre,
    Erspan {
        type3: bool,
    },
    /// A bare PPP header (PPTP's enhanced GRE).
    Ppp,
    /// Nothing more to decode: what is left is payload.
    Done,
}

/// Why a step could not go on: which protocol, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Halt {
    kind: LayerKind,
    reason: StopReason,
}

type Step = Result<Next, Halt>;

impl Halt {
    fn unsupported(number: u16) -> Halt {
        Halt {
            kind: LayerKind::Other,
            reason: StopReason::Unsupported(number),
        }
    }
}

/// Turns a view's error into a halt for protocol `kind`.
fn halt(kind: LayerKind) -> impl Fn(wire::Error) -> Halt {
    move |err| {
        let reason = match err {
            wire::Error::Truncated { needed, had } => StopReason::Truncated {
                needed: u16::try_from(needed).unwrap_or(u16::MAX),
                had: u16::try_from(had).unwrap_or(u16::MAX),
            },
            wire::Error::Invalid(invalid) => StopReason::Invalid(invalid),
        };
        Halt { kind, reason }
    }
}

/// The walk's state. Invariant: `off <= end <= frame.len()`.
struct Walk<'f, 'o, 'd> {
    frame: &'f [u8],
    opts: &'o DecodeOptions,
    out: &'d mut Decoded,
    /// Where the next header starts.
    off: usize,
    /// End of the innermost packet: the capture, shortened by every length field passed.
    end: usize,
    /// The NIC-stripped tag, until it has been placed after the first link header.
    stripped_tci: Option<u16>,
}

impl<'f> Walk<'f, '_, '_> {
    fn step(&mut self, next: Next) -> Step {
        match next {
            Next::Link(link) => self.link(link),
            Next::Ethernet => self.ethernet(),
            Next::Vlan { tpid } => self.vlan(tpid),
            Next::Shim(kind) => self.shim(kind),
            Next::Mpls => self.mpls(),
            Next::Pppoe { session } => self.pppoe(session),
            Next::Arp => self.arp(),
            Next::Ip { v6 } => self.ip(v6),
            Next::IpPayload { proto, v6 } => self.ip_payload(proto, v6),
            Next::Tcp => self.tcp(),
            Next::Udp => self.udp(),
            Next::Icmp => self.icmp(),
            Next::Icmpv6 => self.icmpv6(),
            Next::Vxlan => self.vxlan(),
            Next::Geneve => self.geneve(),
            Next::Gtpu => self.gtpu(),
            Next::Gre => self.gre(),
            Next::Erspan { type3 } => self.erspan(type3),
            Next::Ppp => self.ppp(),
            Next::Done => Ok(Next::Done),
        }
    }

    /// The bytes of the current packet from the current offset.
    fn bytes(&self) -> &'f [u8] {
        self.frame.get(self.off..self.end).unwrap_or(&[])
    }

    fn push(&mut self, layer: Layer) -> Result<(), Halt> {
        self.out.layers.push(layer).map_err(|layer| Halt {
            kind: layer.kind(),
            reason: StopReason::TooDeep,
        })
    }

    /// Moves past a header of `len` bytes (never past the packet's end).
    fn advance(&mut self, len: usize) {
        self.off = self.off.saturating_add(len).min(self.end);
    }

    /// Shortens the packet to `declared` bytes from `start`, as a length field says, but
    /// never to less than `header_end` (the header that carried the field is there).
    fn limit(&mut self, start: usize, declared: usize, header_end: usize) {
        let declared_end = start.saturating_add(declared).max(header_end);
        self.end = self.end.min(declared_end);
    }

    /// What follows an EtherType (Ethernet, VLAN, SLL, GRE, Geneve...).
    fn by_ethertype(&self, ethertype: EtherType) -> Step {
        match ethertype {
            EtherType::VLAN | EtherType::QINQ | EtherType::VLAN_9100 => {
                Ok(Next::Vlan { tpid: ethertype.0 })
            }
            EtherType::IPV4 => Ok(Next::Ip { v6: false }),
            EtherType::IPV6 => Ok(Next::Ip { v6: true }),
            EtherType::ARP | EtherType::RARP => Ok(Next::Arp),
            EtherType::MPLS | EtherType::MPLS_MC => Ok(Next::Mpls),
            EtherType::PPPOE_SESS => Ok(Next::Pppoe { session: true }),
            EtherType::PPPOE_DISC => Ok(Next::Pppoe { session: false }),
            EtherType::TEB => Ok(Next::Ethernet),
            wire::cisco::METADATA => Ok(Next::Shim(ShimKind::MetaData)),
            wire::cisco::VNTAG => Ok(Next::Shim(ShimKind::VnTag)),
            other => Err(Halt::unsupported(other.0)),
        }
    }
}

#[cfg(test)]
mod tests;

//! Short words for a packet and for a flow, as the collector's `paths` and `flows` print
//! them: `ICMP echo request 172.17.0.2 > 198.51.100.101 id 16384 seq 0`,
//! `TCP 10.0.0.1:40000 > 10.0.0.2:80 [S] seq 7 len 0`, and for a flow
//! `ICMP 172.17.0.2 > 198.51.100.101 id 16384`. Unlike the tcpdump line ([`super::line`]),
//! endpoints read `addr:port` (`[v6]:port`), and only the innermost packet is described; the
//! TCP flag letters and most ICMP words are the line's own.

use super::{line, names};
use crate::summary::{Endpoints, Net, Summary, Transport};
use crate::types::{Addr, IpProto};
use core::fmt::{self, Display, Write};

/// `10.0.0.1`, `10.0.0.1:80` or `[fd00::1]:80`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub addr: Addr,
    pub port: Option<u16>,
}

impl Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.addr, self.port) {
            (Addr::V6(_), Some(p)) => write!(f, "[{}]:{p}", self.addr),
            (addr, Some(p)) => write!(f, "{addr}:{p}"),
            (addr, None) => write!(f, "{addr}"),
        }
    }
}

/// `src > dst`, with the ports when `show_port`.
fn write_ends<W: Write + ?Sized>(w: &mut W, e: &Endpoints, show_port: bool) -> fmt::Result {
    let port = |p: Option<u16>| p.filter(|_| show_port);
    let src = Endpoint {
        addr: e.src,
        port: port(e.sport),
    };
    let dst = Endpoint {
        addr: e.dst,
        port: port(e.dport),
    };
    write!(w, "{src} > {dst}")
}

/// A packet in a few words (the innermost one; tunnels are left out).
pub fn write_description<W: Write + ?Sized>(w: &mut W, s: &Summary) -> fmt::Result {
    let ip = match s.net {
        Net::Ip(ip) => ip,
        Net::Arp { op: 1, spa, tpa } => {
            return write!(w, "ARP who-has {} tell {}", Addr::V4(tpa), Addr::V4(spa))
        }
        Net::Arp { op, spa, tpa } => {
            return write!(w, "ARP op {op} {} > {}", Addr::V4(spa), Addr::V4(tpa))
        }
        Net::None => return write!(w, "ethertype {:#06x}", s.ethertype.0),
    };
    let ep = Endpoints::of(s);
    let ends = |w: &mut W, show_port: bool| match &ep {
        Some(e) => write_ends(w, e, show_port),
        None => Ok(()),
    };
    match s.transport {
        Transport::Tcp {
            seq,
            ack,
            flags,
            hdr_len,
            ..
        } => {
            w.write_str("TCP ")?;
            ends(w, true)?;
            w.write_str(" [")?;
            line::write_tcp_flags(w, flags)?;
            write!(w, "] seq {seq}")?;
            if flags & line::TCP_ACK != 0 {
                write!(w, " ack {ack}")?;
            }
            // Unknown header length (rows stored before it was kept): no data length.
            if hdr_len != 0 {
                write!(w, " len {}", ip.payload_len.saturating_sub(hdr_len.into()))?;
            }
        }
        Transport::Udp { length, .. } => {
            w.write_str("UDP ")?;
            ends(w, true)?;
            write!(w, " len {}", length.saturating_sub(8))?;
        }
        Transport::Icmp { ty, code, id, seq } => {
            write_icmp_name(w, ip.proto == IpProto::ICMPV6, ty, code)?;
            w.write_char(' ')?;
            ends(w, false)?;
            if ep.is_some_and(|e| e.icmp_id.is_some()) {
                write!(w, " id {id} seq {seq}")?;
            }
        }
        Transport::None => {
            write!(w, "IP proto {} ", ip.proto.0)?;
            ends(w, false)?;
        }
    }
    if ip.frag_offset != 0 || ip.more_fragments {
        write!(w, " frag off {}", u32::from(ip.frag_offset) * 8)?;
        if ip.more_fragments {
            w.write_char('+')?;
        }
    }
    Ok(())
}

/// `ICMP echo request`, `ICMP6 time exceeded code 0`, `ICMP type 42 code 1`: the common
/// types only, errors by their kind with the code after it.
fn write_icmp_name<W: Write + ?Sized>(w: &mut W, v6: bool, ty: u8, code: u8) -> fmt::Result {
    let known = match (v6, ty) {
        // tcpdump's words for these depend on the code, which follows here.
        (false, 3) | (true, 1) => Some("unreachable"),
        (false, 11) | (true, 3) => Some("time exceeded"),
        (false, 0 | 8) => names::icmp(ty, code),
        (true, 2 | 128 | 129 | 133..=136) => names::icmpv6(ty),
        _ => None,
    };
    w.write_str(if v6 { "ICMP6" } else { "ICMP" })?;
    match known {
        None => write!(w, " type {ty} code {code}"),
        Some(name) if names::is_echo(v6, ty) => write!(w, " {name}"),
        Some(name) => write!(w, " {name} code {code}"),
    }
}

/// A flow: `ICMP 172.17.0.2 > 198.51.100.101 id 16384`, `TCP 10.0.0.1:40000 > 10.0.0.2:80`;
/// without an IP layer, the packet's description.
pub fn write_flow_label<W: Write + ?Sized>(w: &mut W, s: &Summary) -> fmt::Result {
    let Some(e) = Endpoints::of(s) else {
        return write_description(w, s);
    };
    let proto = match e.proto {
        IpProto::ICMPV6 => "ICMP6",
        other => other.name().unwrap_or("IP"),
    };
    write!(w, "{proto} ")?;
    write_ends(w, &e, true)?;
    match e.icmp_id {
        Some(id) => write!(w, " id {id}"),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;

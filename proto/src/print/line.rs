//! The tcpdump-like line: `HH:MM:SS.ffffff [link] [In|Out] what`, where `what` follows
//! tcpdump's wording. Tunnels print outer then inner on the same line, as tcpdump does:
//! `IP 10.0.0.1.45149 > 10.0.0.2.8472: VXLAN vni 1: IP 10.244.0.2 > 10.244.1.3: ICMP ...`.
//!
//! It is built from a [`Summary`] alone (what an observation record carries), so it prints
//! less than tcpdump: no MAC addresses, no TCP options or urgent pointer. TCP sequence
//! numbers are raw, as with `tcpdump -S`.

use super::names;
use crate::layer::StopReason;
use crate::summary::{Ip, Net, Stop, Summary, Transport, Tunnel, TunnelKind};
use crate::types::{Addr, IpProto, PacketType};
use core::fmt::{self, Write};

const NS_PER_SEC: u64 = 1_000_000_000;
/// Type/length values up to this are 802.3 lengths, not EtherTypes.
const MAX_8023_LENGTH: u16 = 1500;

/// Writes one line (without the newline). An empty `link_label` or a `None` pkttype is left out.
pub fn write_line<W: Write + ?Sized>(
    w: &mut W,
    ts_ns: u64,
    link_label: &str,
    pkttype: Option<PacketType>,
    summary: &Summary,
    wire_len: u32,
) -> fmt::Result {
    write_time(w, ts_ns)?;
    if !link_label.is_empty() {
        write!(w, " {link_label}")?;
    }
    if let Some(p) = pkttype {
        write!(w, " {}", p.direction())?;
    }
    w.write_char(' ')?;
    write_summary(w, summary, wire_len)
}

/// The time of day as `HH:MM:SS.ffffff`, in UTC: proto has no clock and no timezone data, and
/// lines from boards in different zones must read alike. (`TZ=UTC tcpdump` prints the same.)
pub fn write_time<W: Write + ?Sized>(w: &mut W, ts_ns: u64) -> fmt::Result {
    let secs = ts_ns / NS_PER_SEC;
    let micros = ts_ns % NS_PER_SEC / 1000;
    let day = secs % 86_400;
    write!(
        w,
        "{:02}:{:02}:{:02}.{micros:06}",
        day / 3600,
        day % 3600 / 60,
        day % 60
    )
}

/// Everything after the time and direction: tunnels, network, transport, where decoding stopped.
pub fn write_summary<W: Write + ?Sized>(w: &mut W, s: &Summary, wire_len: u32) -> fmt::Result {
    if let Some(vlan) = s.vlan {
        write!(w, "vlan {vlan}: ")?;
    }
    for tunnel in &s.tunnels {
        write_tunnel(w, tunnel)?;
    }
    match s.net {
        Net::None => {
            let decoded_up_to_unknown = matches!(
                s.stop,
                None | Some(Stop {
                    reason: StopReason::Unsupported(_),
                    ..
                })
            );
            let t = s.ethertype;
            if decoded_up_to_unknown && t.0 <= MAX_8023_LENGTH {
                // Not a type but an IEEE 802.3 length: an LLC frame (STP, CDP, ...).
                write!(w, "802.3, length {wire_len}")?;
            } else if decoded_up_to_unknown {
                write!(
                    w,
                    "ethertype {} (0x{:04x}), length {wire_len}",
                    names::ethertype(t),
                    t.0
                )?;
            }
        }
        Net::Arp { op, spa, tpa } => {
            w.write_str("ARP, ")?;
            let (spa, tpa) = (Addr::V4(spa), Addr::V4(tpa));
            match (op, names::arp_op(op)) {
                (1, _) => write!(w, "Request who-has {tpa} tell {spa}")?,
                (2, _) => write!(w, "Reply {spa}")?,
                (_, Some(name)) => w.write_str(name)?,
                (_, None) => write!(w, "op {op}")?,
            }
            // Net::Arp is only made for Ethernet/IPv4 ARP, whose message is 28 bytes.
            w.write_str(", length 28")?;
        }
        Net::Ip(ip) => {
            let stopped =
                matches!(s.stop, Some(stop) if !matches!(stop.reason, StopReason::Unsupported(_)));
            write_ip(w, &ip, &s.transport, stopped)?
        }
    }
    if let Some(stop) = s.stop {
        write_stop(w, &stop)?;
    }
    Ok(())
}

fn ip_label(a: Addr) -> &'static str {
    match a {
        Addr::V4(_) => "IP",
        Addr::V6(_) => "IP6",
    }
}

/// `IP src[.port] > dst[.port]: ` (a port of 0 means "no port").
fn write_endpoints<W: Write + ?Sized>(
    w: &mut W,
    src: Addr,
    src_port: u16,
    dst: Addr,
    dst_port: u16,
) -> fmt::Result {
    write!(w, "{} {src}", ip_label(src))?;
    if src_port != 0 || dst_port != 0 {
        write!(w, ".{src_port} > {dst}.{dst_port}: ")
    } else {
        write!(w, " > {dst}: ")
    }
}

fn write_tunnel<W: Write + ?Sized>(w: &mut W, t: &Tunnel) -> fmt::Result {
    write_endpoints(w, t.src, t.src_port, t.dst, t.dst_port)?;
    match t.kind {
        // tcpdump's own words where they differ from the tunnel's name: the Geneve VNI in
        // hex (the VXLAN one in decimal), and GTP-U's version.
        TunnelKind::Geneve { vni } => write!(w, "Geneve vni 0x{vni:x}: "),
        TunnelKind::Gtpu { teid } => write!(w, "GTPv1-U teid {teid}: "),
        // tcpdump prints IP-in-IP as the two headers one after the other.
        TunnelKind::IpInIp => Ok(()),
        kind => write!(w, "{kind}: "),
    }
}

fn write_ip<W: Write + ?Sized>(
    w: &mut W,
    ip: &Ip,
    transport: &Transport,
    stopped: bool,
) -> fmt::Result {
    let (src_port, dst_port) = match *transport {
        Transport::Tcp {
            src_port, dst_port, ..
        }
        | Transport::Udp {
            src_port, dst_port, ..
        } => (src_port, dst_port),
        _ => (0, 0),
    };
    write_endpoints(w, ip.src, src_port, ip.dst, dst_port)?;
    let fragment = ip.frag_offset != 0 || ip.more_fragments;
    if fragment {
        // tcpdump's IPv6 form (offset in bytes | bytes in this fragment), used for both.
        write!(
            w,
            "frag ({}|{})",
            u32::from(ip.frag_offset) * 8,
            ip.payload_len
        )?;
        if ip.frag_offset != 0 {
            return write!(w, " ip-proto-{}", ip.proto.0);
        }
        if *transport != Transport::None {
            w.write_char(' ')?;
        }
    }
    match *transport {
        Transport::Tcp {
            seq,
            ack,
            flags,
            window,
            hdr_len,
            ..
        } => write_tcp(w, ip.payload_len, seq, ack, flags, window, hdr_len),
        Transport::Udp { length, .. } => write!(w, "UDP, length {}", length.saturating_sub(8)),
        Transport::Icmp { ty, code, id, seq } => {
            let v6 = ip.proto == IpProto::ICMPV6;
            let name = if v6 {
                names::icmpv6(ty)
            } else {
                names::icmp(ty, code)
            };
            w.write_str(if v6 { "ICMP6, " } else { "ICMP " })?;
            match name {
                Some(name) => w.write_str(name)?,
                None => write!(w, "type-#{ty}")?,
            }
            if names::is_echo(v6, ty) {
                write!(w, ", id {id}, seq {seq}")?;
            }
            write!(w, ", length {}", ip.payload_len)
        }
        // Stopped before the transport header: the stop says why.
        Transport::None if stopped || fragment => Ok(()),
        Transport::None => match ip.proto.name() {
            Some(name) => write!(w, "{name}, length {}", ip.payload_len),
            None => write!(w, "ip-proto-{}, length {}", ip.proto.0, ip.payload_len),
        },
    }
}

const TCP_FIN: u16 = 0x001;
const TCP_SYN: u16 = 0x002;
const TCP_RST: u16 = 0x004;
pub(super) const TCP_ACK: u16 = 0x010;

/// tcpdump's TCP part: `seq` only for data or SYN/FIN/RST (with `:end` for data), then
/// `length` = data bytes. A header length of 0 (unknown) leaves the data length unknown:
/// `seq` is always printed and `length` left out.
fn write_tcp<W: Write + ?Sized>(
    w: &mut W,
    ip_payload_len: u16,
    seq: u32,
    ack: u32,
    flags: u16,
    window: u16,
    hdr_len: u8,
) -> fmt::Result {
    w.write_str("Flags [")?;
    write_tcp_flags(w, flags)?;
    w.write_char(']')?;
    let data_len = (hdr_len != 0).then(|| ip_payload_len.saturating_sub(hdr_len.into()));
    match data_len {
        None => write!(w, ", seq {seq}")?,
        Some(0) if flags & (TCP_SYN | TCP_FIN | TCP_RST) == 0 => {}
        Some(0) => write!(w, ", seq {seq}")?,
        Some(n) => write!(w, ", seq {seq}:{}", seq.wrapping_add(n.into()))?,
    }
    if flags & TCP_ACK != 0 {
        write!(w, ", ack {ack}")?;
    }
    write!(w, ", win {window}")?;
    match data_len {
        Some(n) => write!(w, ", length {n}"),
        None => Ok(()),
    }
}

/// tcpdump's flag letters, in its order; `none` when no flag is set.
pub(super) fn write_tcp_flags<W: Write + ?Sized>(w: &mut W, flags: u16) -> fmt::Result {
    const LETTERS: [(u16, char); 9] = [
        (TCP_FIN, 'F'),
        (TCP_SYN, 'S'),
        (TCP_RST, 'R'),
        (0x008, 'P'),
        (TCP_ACK, '.'),
        (0x020, 'U'),
        (0x040, 'E'),
        (0x080, 'W'),
        (0x100, 'e'),
    ];
    if flags & 0x1ff == 0 {
        return w.write_str("none");
    }
    for (bit, letter) in LETTERS {
        if flags & bit != 0 {
            w.write_char(letter)?;
        }
    }
    Ok(())
}

/// ` [|tcp]` for a header cut short, ` tcp (invalid)` for a wrong one; a protocol the decoder
/// does not walk into is not a stop worth printing.
fn write_stop<W: Write + ?Sized>(w: &mut W, stop: &Stop) -> fmt::Result {
    let name = stop.kind.name();
    match stop.reason {
        StopReason::Truncated { .. } => write!(w, " [|{name}]"),
        StopReason::Invalid(_) => write!(w, " {name} (invalid)"),
        StopReason::TooDeep => write!(w, " [|{name}: too deep]"),
        StopReason::Unsupported(_) => Ok(()),
    }
}

#[cfg(test)]
pub(super) mod tests;

//! Words for a packet: `ICMP echo request 172.17.0.2 > 198.51.100.101 id 16384 seq 0`, and
//! for a flow: `ICMP 172.17.0.2 > 198.51.100.101 id 16384`.

use super::nat::{endpoint, Endpoints};
use hopcap_proto::summary::{Net, Summary, Transport};
use hopcap_proto::types::IpProto;
use std::fmt::Write;

/// A short description of a packet: `ICMP echo request 172.17.0.2 > 198.51.100.101 id 16384 seq 0`.
pub fn describe(s: &Summary) -> String {
    let mut out = String::new();
    let ip = match s.net {
        Net::Ip(ip) => ip,
        Net::Arp { op: 1, spa, tpa } => return format!("ARP who-has {} tell {}", v4(tpa), v4(spa)),
        Net::Arp { op, spa, tpa } => return format!("ARP op {op} {} > {}", v4(spa), v4(tpa)),
        Net::None => return format!("ethertype {:#06x}", s.ethertype.0),
    };
    let ep = Endpoints::of(s);
    let ends = |show_port: bool| match ep {
        Some(e) => format!(
            "{} > {}",
            endpoint((e.src, e.sport), show_port),
            endpoint((e.dst, e.dport), show_port)
        ),
        None => String::new(),
    };
    let _ = match s.transport {
        Transport::Tcp {
            seq,
            ack,
            flags,
            hdr_len,
            ..
        } => write!(out, "TCP {} [{}] seq {seq}", ends(true), tcp_flags(flags))
            .and_then(|_| match flags & 0x10 {
                0 => Ok(()),
                _ => write!(out, " ack {ack}"),
            })
            .and_then(|_| match hdr_len {
                // Unknown header length (rows stored before it was kept): no data length.
                0 => Ok(()),
                _ => write!(
                    out,
                    " len {}",
                    ip.payload_len.saturating_sub(hdr_len.into())
                ),
            }),
        Transport::Udp { length, .. } => {
            write!(out, "UDP {} len {}", ends(true), length.saturating_sub(8))
        }
        Transport::Icmp { ty, code, id, seq } => {
            let v6 = ip.proto == IpProto::ICMPV6;
            let name = icmp_name(v6, ty, code);
            write!(out, "{name} {}", ends(false)).and_then(|_| {
                if ep.is_some_and(|e| e.icmp_id.is_some()) {
                    write!(out, " id {id} seq {seq}")
                } else {
                    Ok(())
                }
            })
        }
        Transport::None => write!(out, "IP proto {} {}", ip.proto.0, ends(false)),
    };
    if ip.frag_offset != 0 || ip.more_fragments {
        let _ = write!(
            out,
            " frag off {}{}",
            u32::from(ip.frag_offset) * 8,
            if ip.more_fragments { "+" } else { "" }
        );
    }
    out
}

fn v4(a: [u8; 4]) -> std::net::Ipv4Addr {
    a.into()
}

fn icmp_name(v6: bool, ty: u8, code: u8) -> String {
    let known = match (v6, ty) {
        (false, 8) | (true, 128) => "echo request",
        (false, 0) | (true, 129) => "echo reply",
        (false, 3) | (true, 1) => "unreachable",
        (false, 11) | (true, 3) => "time exceeded",
        (true, 2) => "packet too big",
        (true, 133) => "router solicitation",
        (true, 134) => "router advertisement",
        (true, 135) => "neighbor solicitation",
        (true, 136) => "neighbor advertisement",
        _ => "",
    };
    let p = if v6 { "ICMP6" } else { "ICMP" };
    match (known, ty, code) {
        ("", _, _) => format!("{p} type {ty} code {code}"),
        (k, 0 | 8 | 128 | 129, _) => format!("{p} {k}"),
        (k, _, c) => format!("{p} {k} code {c}"),
    }
}

/// tcpdump's letters: S F P R U E W, `.` for ACK.
fn tcp_flags(flags: u16) -> String {
    let letters = [
        (0x002, 'S'),
        (0x001, 'F'),
        (0x008, 'P'),
        (0x004, 'R'),
        (0x020, 'U'),
        (0x040, 'E'),
        (0x080, 'W'),
        (0x010, '.'),
    ];
    let s: String = letters
        .iter()
        .filter(|(b, _)| flags & b != 0)
        .map(|&(_, c)| c)
        .collect();
    if s.is_empty() {
        "none".into()
    } else {
        s
    }
}

/// `ICMP 172.17.0.2 > 198.51.100.101 id 16384`, `TCP 10.0.0.1:40000 > 10.0.0.2:80`.
pub fn flow_label(s: &Summary) -> String {
    let Some(e) = Endpoints::of(s) else {
        return describe(s);
    };
    let proto = e.proto.name().unwrap_or("IP").replace("ICMPV6", "ICMP6");
    let id = e.icmp_id.map(|i| format!(" id {i}")).unwrap_or_default();
    format!(
        "{proto} {} > {}{id}",
        endpoint((e.src, e.sport), true),
        endpoint((e.dst, e.dport), true)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::correlate::synth::tcp4;

    #[test]
    fn descriptions() {
        let syn = tcp4(([10, 0, 0, 1], 40000), ([10, 0, 0, 2], 80), 7, 0x002, 1, 0);
        assert_eq!(
            describe(&syn),
            "TCP 10.0.0.1:40000 > 10.0.0.2:80 [S] seq 7 len 0"
        );
        let mut psh = tcp4(([10, 0, 0, 1], 40000), ([10, 0, 0, 2], 80), 7, 0x018, 1, 10);
        assert_eq!(
            describe(&psh),
            "TCP 10.0.0.1:40000 > 10.0.0.2:80 [P.] seq 7 ack 1 len 10"
        );
        if let Transport::Tcp { hdr_len, .. } = &mut psh.transport {
            *hdr_len = 0;
        }
        assert_eq!(
            describe(&psh),
            "TCP 10.0.0.1:40000 > 10.0.0.2:80 [P.] seq 7 ack 1"
        );
    }
}

//! Rebuilding an observation from a row.

use super::super::codes::{stop_reason, LAYER_KINDS};
use super::BadRow;
use hopcap_proto::record::Observation;
use hopcap_proto::summary::{Ip, Net, Stop, Summary, Transport, Tunnel, TunnelKind};
use hopcap_proto::types::{Addr, EtherType, IpProto, PacketType};
use rusqlite::types::ValueRef;
use rusqlite::Row;

/// Reads columns [`OBS_COLUMNS`](super::OBS_COLUMNS) starting at index `first` of `row`. The
/// returned observation's `link` is 0: a link key only means something on its agent's
/// connection; the stored link is the row's `link` column.
pub fn row_to_observation(row: &Row<'_>, first: usize) -> Result<Observation, BadRow> {
    let mut col = first;
    let mut next = || {
        col += 1;
        col - 1
    };
    macro_rules! get {
        ($name:literal, $t:ty) => {
            row.get::<_, $t>(next())
                .map_err(|_| BadRow { column: $name })?
        };
    }
    macro_rules! num {
        ($name:literal, $t:ty) => {{
            let v: Option<i64> = get!($name, Option<i64>);
            match v {
                None => None,
                Some(v) => Some(<$t>::try_from(v).map_err(|_| BadRow { column: $name })?),
            }
        }};
    }
    let ts_ns = get!("ts_ns", i64) as u64;
    let order = get!("agent_order", i64) as u64;
    let pkttype = PacketType(num!("pkttype", u8).unwrap_or(0));
    let wire_len = num!("wire_len", u32).unwrap_or(0);
    let cap_len = num!("cap_len", u32).unwrap_or(0);
    let fingerprint = get!("fingerprint", i64) as u64;
    let mut summary = Summary::empty();
    summary.ethertype = EtherType(num!("ethertype", u16).unwrap_or(0));
    summary.vlan = num!("vlan", u16);
    let ip_version = num!("ip_version", u8);
    let src = blob(row, next(), "src")?;
    let dst = blob(row, next(), "dst")?;
    let proto = num!("proto", u8);
    let ttl = num!("ttl", u8);
    let ip_id = num!("ip_id", u32);
    let frag_offset = num!("frag_offset", u16);
    let more_frags = num!("more_frags", u8);
    let payload_len = num!("ip_payload_len", u16);
    let sport = num!("src_port", u16);
    let dport = num!("dst_port", u16);
    let tcp_seq = num!("tcp_seq", u32);
    let tcp_ack = num!("tcp_ack", u32);
    let tcp_flags = num!("tcp_flags", u16);
    let tcp_window = num!("tcp_window", u16);
    let tcp_hdr_len = num!("tcp_hdr_len", u8);
    let udp_len = num!("udp_len", u16);
    let icmp_type = num!("icmp_type", u8);
    let icmp_code = num!("icmp_code", u8);
    let icmp_id = num!("icmp_id", u16);
    let icmp_seq = num!("icmp_seq", u16);
    let arp_op = num!("arp_op", u16);
    let tun_kind = num!("tun_kind", u8);
    let tun_id = num!("tun_id", u32);
    let tun_src = blob(row, next(), "tun_src")?;
    let tun_dst = blob(row, next(), "tun_dst")?;
    let tun_outer_id = num!("tun_outer_id", u16);
    let tun_sport = num!("tun_src_port", u16);
    let tun_dport = num!("tun_dst_port", u16);
    let tun_more = blob(row, next(), "tun_more")?;
    let stop_kind = num!("stop_kind", usize);
    let stop_offset = num!("stop_offset", u16);
    let stop_reason_code = get!("stop_reason", Option<i64>);
    let stop_detail = get!("stop_detail", Option<i64>);

    summary.net = match (ip_version, arp_op) {
        (Some(_), _) => Net::Ip(Ip {
            src: to_addr(src, "src")?,
            dst: to_addr(dst, "dst")?,
            proto: IpProto(proto.unwrap_or(0)),
            ttl: ttl.unwrap_or(0),
            id: ip_id.unwrap_or(0),
            frag_offset: frag_offset.unwrap_or(0),
            more_fragments: more_frags.unwrap_or(0) != 0,
            payload_len: payload_len.unwrap_or(0),
        }),
        (None, Some(op)) => Net::Arp {
            op,
            spa: to_v4(src, "src")?,
            tpa: to_v4(dst, "dst")?,
        },
        (None, None) => Net::None,
    };
    summary.transport = if let Some(flags) = tcp_flags {
        Transport::Tcp {
            src_port: sport.unwrap_or(0),
            dst_port: dport.unwrap_or(0),
            seq: tcp_seq.unwrap_or(0),
            ack: tcp_ack.unwrap_or(0),
            flags,
            window: tcp_window.unwrap_or(0),
            // NULL in rows stored before schema version 2: unknown.
            hdr_len: tcp_hdr_len.unwrap_or(0),
        }
    } else if let Some(length) = udp_len {
        Transport::Udp {
            src_port: sport.unwrap_or(0),
            dst_port: dport.unwrap_or(0),
            length,
        }
    } else if let Some(ty) = icmp_type {
        Transport::Icmp {
            ty,
            code: icmp_code.unwrap_or(0),
            id: icmp_id.unwrap_or(0),
            seq: icmp_seq.unwrap_or(0),
        }
    } else {
        Transport::None
    };
    if let Some(code) = tun_kind {
        let kind = match (code, tun_id) {
            (1, Some(vni)) => TunnelKind::Vxlan { vni },
            (2, Some(vni)) => TunnelKind::Geneve { vni },
            (3, key) => TunnelKind::Gre { key },
            (4, Some(teid)) => TunnelKind::Gtpu { teid },
            (5, _) => TunnelKind::IpInIp,
            _ => return Err(BadRow { column: "tun_kind" }),
        };
        let first = Tunnel {
            kind,
            src: to_addr(tun_src, "tun_src")?,
            dst: to_addr(tun_dst, "tun_dst")?,
            outer_id: tun_outer_id.unwrap_or(0),
            src_port: tun_sport.unwrap_or(0),
            dst_port: tun_dport.unwrap_or(0),
        };
        summary
            .tunnels
            .push(first)
            .map_err(|_| BadRow { column: "tun_kind" })?;
        if let Some(bytes) = tun_more {
            let rest: Vec<Tunnel> =
                postcard::from_bytes(bytes).map_err(|_| BadRow { column: "tun_more" })?;
            for t in rest {
                // A deeper nest than this build keeps: keep the outermost, as the agent does.
                let _ = summary.tunnels.push(t);
            }
        }
    }
    if let (Some(k), Some(offset), Some(code)) = (stop_kind, stop_offset, stop_reason_code) {
        let kind = *LAYER_KINDS.get(k).ok_or(BadRow {
            column: "stop_kind",
        })?;
        let reason = stop_reason(code, stop_detail.unwrap_or(0)).ok_or(BadRow {
            column: "stop_reason",
        })?;
        summary.stop = Some(Stop {
            offset,
            kind,
            reason,
        });
    }
    Ok(Observation {
        ts_ns,
        link: 0,
        order,
        pkttype,
        wire_len,
        cap_len,
        fingerprint,
        summary,
    })
}

fn blob<'r>(
    row: &'r Row<'_>,
    idx: usize,
    column: &'static str,
) -> Result<Option<&'r [u8]>, BadRow> {
    match row.get_ref(idx).map_err(|_| BadRow { column })? {
        ValueRef::Null => Ok(None),
        ValueRef::Blob(b) => Ok(Some(b)),
        _ => Err(BadRow { column }),
    }
}

fn to_addr(b: Option<&[u8]>, column: &'static str) -> Result<Addr, BadRow> {
    let b = b.ok_or(BadRow { column })?;
    if let Ok(a) = <[u8; 4]>::try_from(b) {
        Ok(Addr::V4(a))
    } else if let Ok(a) = <[u8; 16]>::try_from(b) {
        Ok(Addr::V6(a))
    } else {
        Err(BadRow { column })
    }
}

fn to_v4(b: Option<&[u8]>, column: &'static str) -> Result<[u8; 4], BadRow> {
    b.and_then(|b| <[u8; 4]>::try_from(b).ok())
        .ok_or(BadRow { column })
}

//! One observation <-> one `observations` row. Writing binds every column of a prepared
//! statement (no per-row allocation except for nested tunnels); reading rebuilds the exact
//! [`Observation`], so rendering and filtering work on proto types.

use hopcap_proto::layer::{Invalid, LayerKind, StopReason};
use hopcap_proto::record::Observation;
use hopcap_proto::summary::{Ip, Net, StopInfo, Summary, Transport, Tunnel, TunnelKind};
use hopcap_proto::types::{Addr, EtherType, IpProto, PacketType};
use rusqlite::types::ValueRef;
use rusqlite::{Row, Statement};

/// The stored code of each layer kind is its index here (table `layer_kinds`). Append only.
pub const LAYER_KINDS: [LayerKind; 20] = [
    LayerKind::Ethernet,
    LayerKind::Vlan,
    LayerKind::Sll,
    LayerKind::Sll2,
    LayerKind::Loopback,
    LayerKind::Mpls,
    LayerKind::Pppoe,
    LayerKind::Arp,
    LayerKind::Ipv4,
    LayerKind::Ipv6,
    LayerKind::Ipv6Ext,
    LayerKind::Icmp,
    LayerKind::Icmpv6,
    LayerKind::Tcp,
    LayerKind::Udp,
    LayerKind::Vxlan,
    LayerKind::Geneve,
    LayerKind::Gre,
    LayerKind::Gtpu,
    LayerKind::Other,
];

/// The columns after `board, link`, in bind and read order.
pub const OBS_COLUMNS: &str = "ts_ns, agent_order, pkttype, wire_len, cap_len, fingerprint, \
    ethertype, vlan, ip_version, src, dst, proto, ttl, ip_id, frag_offset, more_frags, \
    ip_payload_len, src_port, dst_port, tcp_seq, tcp_ack, tcp_flags, tcp_window, udp_len, \
    icmp_type, icmp_code, icmp_id, icmp_seq, arp_op, tun_kind, tun_id, tun_src, tun_dst, \
    tun_outer_id, tun_src_port, tun_dst_port, tun_more, stop_kind, stop_offset, stop_reason, \
    stop_detail";

/// How many columns [`OBS_COLUMNS`] names.
pub const OBS_COLUMN_COUNT: usize = 41;

/// `INSERT INTO observations (board, link, ...) VALUES (?1, ..., ?43)`.
pub fn insert_sql() -> String {
    let params: Vec<String> = (1..=OBS_COLUMN_COUNT + 2)
        .map(|i| format!("?{i}"))
        .collect();
    format!(
        "INSERT INTO observations (board, link, {OBS_COLUMNS}) VALUES ({})",
        params.join(",")
    )
}

/// A row that does not rebuild an observation (written by something else, or damaged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    pub column: &'static str,
}

impl std::fmt::Display for BadRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "observation row has an invalid `{}` value", self.column)
    }
}

fn addr_bytes(a: &Addr) -> &[u8] {
    match a {
        Addr::V4(b) => b,
        Addr::V6(b) => b,
    }
}

fn tunnel_code(kind: &TunnelKind) -> (i64, Option<i64>) {
    match *kind {
        TunnelKind::Vxlan { vni } => (1, Some(vni.into())),
        TunnelKind::Geneve { vni } => (2, Some(vni.into())),
        TunnelKind::Gre { key } => (3, key.map(i64::from)),
        TunnelKind::Gtpu { teid } => (4, Some(teid.into())),
        TunnelKind::IpInIp => (5, None),
    }
}

fn stop_code(reason: StopReason) -> (i64, i64) {
    match reason {
        StopReason::Truncated { needed, had } => (1, (i64::from(needed) << 16) | i64::from(had)),
        StopReason::Unsupported(n) => (2, n.into()),
        StopReason::TooDeep => (3, 0),
        StopReason::Invalid(inv) => {
            let (n, v): (i64, i64) = match inv {
                Invalid::IpVersion(v) => (0, v.into()),
                Invalid::Ipv4HeaderLen(v) => (1, v.into()),
                Invalid::Ipv4TotalLen(v) => (2, v.into()),
                Invalid::TcpHeaderLen(v) => (3, v.into()),
                Invalid::UdpLength(v) => (4, v.into()),
                Invalid::ExtHeaderLen(v) => (5, v.into()),
                Invalid::GreVersion(v) => (6, v.into()),
                Invalid::GeneveVersion(v) => (7, v.into()),
                Invalid::ArpLengths { hlen, plen } => (8, (i64::from(hlen) << 8) | i64::from(plen)),
                Invalid::SllAddrLen(v) => (9, v.into()),
            };
            (100 + n, v)
        }
    }
}

fn stop_reason(code: i64, detail: i64) -> Option<StopReason> {
    let d16 = |v: i64| u16::try_from(v).ok();
    let d8 = |v: i64| u8::try_from(v).ok();
    Some(match code {
        1 => StopReason::Truncated {
            needed: d16(detail >> 16)?,
            had: d16(detail & 0xffff)?,
        },
        2 => StopReason::Unsupported(d16(detail)?),
        3 => StopReason::TooDeep,
        100 => StopReason::Invalid(Invalid::IpVersion(d8(detail)?)),
        101 => StopReason::Invalid(Invalid::Ipv4HeaderLen(d8(detail)?)),
        102 => StopReason::Invalid(Invalid::Ipv4TotalLen(d16(detail)?)),
        103 => StopReason::Invalid(Invalid::TcpHeaderLen(d8(detail)?)),
        104 => StopReason::Invalid(Invalid::UdpLength(d16(detail)?)),
        105 => StopReason::Invalid(Invalid::ExtHeaderLen(d16(detail)?)),
        106 => StopReason::Invalid(Invalid::GreVersion(d8(detail)?)),
        107 => StopReason::Invalid(Invalid::GeneveVersion(d8(detail)?)),
        108 => StopReason::Invalid(Invalid::ArpLengths {
            hlen: d8((detail >> 8) & 0xff)?,
            plen: d8(detail & 0xff)?,
        }),
        109 => StopReason::Invalid(Invalid::SllAddrLen(d16(detail)?)),
        _ => return None,
    })
}

/// Binds one observation to a statement from [`insert_sql`]; execute it afterwards.
pub fn bind_observation(
    stmt: &mut Statement<'_>,
    board: i64,
    link: i64,
    obs: &Observation,
) -> rusqlite::Result<()> {
    let s = &obs.summary;
    let mut i = 0usize;
    let mut put = |v: &dyn rusqlite::ToSql| -> rusqlite::Result<()> {
        i += 1;
        stmt.raw_bind_parameter(i, v)
    };
    put(&board)?;
    put(&link)?;
    put(&(obs.ts_ns as i64))?;
    put(&(obs.order as i64))?;
    put(&obs.pkttype.0)?;
    put(&obs.wire_len)?;
    put(&obs.cap_len)?;
    // Bit-cast: SQLite integers are signed 64-bit.
    put(&(obs.fingerprint as i64))?;
    put(&s.ethertype.0)?;
    put(&s.vlan)?;
    let (ip, arp) = match &s.net {
        Net::Ip(ip) => (Some(ip), None),
        Net::Arp { op, spa, tpa } => (None, Some((*op, spa, tpa))),
        Net::None => (None, None),
    };
    put(&ip.map(|ip| if matches!(ip.src, Addr::V4(_)) { 4 } else { 6 }))?;
    let (src, dst): (Option<&[u8]>, Option<&[u8]>) = match (ip, arp) {
        (Some(ip), _) => (Some(addr_bytes(&ip.src)), Some(addr_bytes(&ip.dst))),
        (None, Some((_, spa, tpa))) => (Some(spa.as_slice()), Some(tpa.as_slice())),
        (None, None) => (None, None),
    };
    put(&src)?;
    put(&dst)?;
    put(&ip.map(|ip| ip.proto.0))?;
    put(&ip.map(|ip| ip.ttl))?;
    put(&ip.map(|ip| ip.id))?;
    put(&ip.map(|ip| ip.frag_offset))?;
    put(&ip.map(|ip| ip.more_fragments))?;
    put(&ip.map(|ip| ip.payload_len))?;
    let (mut sport, mut dport, mut tcp, mut udp_len, mut icmp) = (None, None, None, None, None);
    match s.transport {
        Transport::Tcp {
            src_port,
            dst_port,
            seq,
            ack,
            flags,
            window,
        } => {
            (sport, dport, tcp) = (
                Some(src_port),
                Some(dst_port),
                Some((seq, ack, flags, window)),
            );
        }
        Transport::Udp {
            src_port,
            dst_port,
            length,
        } => {
            (sport, dport, udp_len) = (Some(src_port), Some(dst_port), Some(length));
        }
        Transport::Icmp { ty, code, id, seq } => icmp = Some((ty, code, id, seq)),
        Transport::None => {}
    }
    put(&sport)?;
    put(&dport)?;
    put(&tcp.map(|t| t.0))?;
    put(&tcp.map(|t| t.1))?;
    put(&tcp.map(|t| t.2))?;
    put(&tcp.map(|t| t.3))?;
    put(&udp_len)?;
    put(&icmp.map(|t| t.0))?;
    put(&icmp.map(|t| t.1))?;
    put(&icmp.map(|t| t.2))?;
    put(&icmp.map(|t| t.3))?;
    put(&arp.map(|a| a.0))?;
    let tun = s.tunnels.first();
    let tun_code = tun.map(|t| tunnel_code(&t.kind));
    put(&tun_code.map(|c| c.0))?;
    put(&tun_code.and_then(|c| c.1))?;
    put(&tun.map(|t| addr_bytes(&t.src)))?;
    put(&tun.map(|t| addr_bytes(&t.dst)))?;
    put(&tun.map(|t| t.outer_id))?;
    put(&tun.map(|t| t.src_port))?;
    put(&tun.map(|t| t.dst_port))?;
    let more = match s.tunnels.get(1..) {
        Some(rest) if !rest.is_empty() => postcard::to_allocvec(rest).ok(),
        _ => None,
    };
    put(&more)?;
    let stop = s.stop.map(|st| {
        let code = LAYER_KINDS
            .iter()
            .position(|k| *k == st.kind)
            .unwrap_or(LAYER_KINDS.len() - 1);
        let (reason, detail) = stop_code(st.reason);
        (code as i64, st.offset, reason, detail)
    });
    put(&stop.map(|s| s.0))?;
    put(&stop.map(|s| s.1))?;
    put(&stop.map(|s| s.2))?;
    put(&stop.map(|s| s.3))?;
    Ok(())
}

/// Reads columns [`OBS_COLUMNS`] starting at index `first` of `row`. The returned
/// observation's `link` is 0: a link key only means something on its agent's connection;
/// the stored link is the row's `link` column.
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
        summary.stop = Some(StopInfo {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{sample::SampleGen, schema};
    use rusqlite::Connection;

    fn round_trip(obs: &[Observation]) -> Vec<Observation> {
        let conn = Connection::open_in_memory().unwrap();
        schema::create(&conn, true).unwrap();
        let mut stmt = conn.prepare(&insert_sql()).unwrap();
        for o in obs {
            bind_observation(&mut stmt, 1, 2, o).unwrap();
            stmt.raw_execute().unwrap();
        }
        let mut read = conn
            .prepare(&format!(
                "SELECT {OBS_COLUMNS} FROM observations ORDER BY id"
            ))
            .unwrap();
        let rows = read
            .query_map([], |r| Ok(row_to_observation(r, 0)))
            .unwrap();
        rows.map(|r| r.unwrap().unwrap()).collect()
    }

    #[test]
    fn sample_mix_round_trips() {
        let mut g = SampleGen::new(7, 1_795_000_000_000_000_000);
        let mut obs = Vec::new();
        for _ in 0..500 {
            obs.extend(g.packet(&[0], 2));
        }
        // Every branch of the mix is present, so every column path is exercised.
        assert!(obs.iter().any(|o| o.summary.tunnels.len() == 2));
        assert!(obs.iter().any(|o| matches!(o.summary.net, Net::Arp { .. })));
        assert!(obs
            .iter()
            .any(|o| matches!(o.summary.transport, Transport::Icmp { .. })));
        assert!(obs.iter().any(|o| o.summary.stop.is_some()));
        let back = round_trip(&obs);
        let expect: Vec<Observation> = obs
            .into_iter()
            .map(|o| Observation { link: 0, ..o })
            .collect();
        assert_eq!(back, expect);
    }

    #[test]
    fn extremes_and_every_stop_reason_round_trip() {
        let reasons = [
            StopReason::Truncated {
                needed: u16::MAX,
                had: 0,
            },
            StopReason::Unsupported(0x88cc),
            StopReason::TooDeep,
            StopReason::Invalid(Invalid::IpVersion(7)),
            StopReason::Invalid(Invalid::Ipv4HeaderLen(3)),
            StopReason::Invalid(Invalid::Ipv4TotalLen(9)),
            StopReason::Invalid(Invalid::TcpHeaderLen(4)),
            StopReason::Invalid(Invalid::UdpLength(2)),
            StopReason::Invalid(Invalid::ExtHeaderLen(1000)),
            StopReason::Invalid(Invalid::GreVersion(2)),
            StopReason::Invalid(Invalid::GeneveVersion(1)),
            StopReason::Invalid(Invalid::ArpLengths { hlen: 255, plen: 0 }),
            StopReason::Invalid(Invalid::SllAddrLen(9)),
        ];
        let obs: Vec<Observation> = reasons
            .iter()
            .zip(LAYER_KINDS.iter().cycle())
            .map(|(reason, kind)| {
                let mut summary = Summary::empty();
                summary.stop = Some(StopInfo {
                    offset: u16::MAX,
                    kind: *kind,
                    reason: *reason,
                });
                Observation {
                    ts_ns: u64::MAX >> 1,
                    link: 0,
                    order: u64::MAX,
                    pkttype: PacketType(255),
                    wire_len: u32::MAX,
                    cap_len: 0,
                    fingerprint: u64::MAX,
                    summary,
                }
            })
            .collect();
        assert_eq!(round_trip(&obs), obs);
    }

    #[test]
    fn damaged_address_is_reported_by_column() {
        let conn = Connection::open_in_memory().unwrap();
        schema::create(&conn, false).unwrap();
        conn.execute(
            "INSERT INTO observations (board, link, ts_ns, agent_order, pkttype, wire_len, cap_len,
             fingerprint, ethertype, ip_version, src, dst) VALUES (1,1,1,1,0,60,60,0,2048,4,x'0a00',x'0a000001')",
            [],
        )
        .unwrap();
        let err = conn
            .query_row(
                &format!("SELECT {OBS_COLUMNS} FROM observations"),
                [],
                |r| Ok(row_to_observation(r, 0)),
            )
            .unwrap()
            .unwrap_err();
        assert_eq!(err, BadRow { column: "src" });
    }
}

//! Binding one observation to the insert statement.

use super::super::codes::{stop_code, tunnel_code, LAYER_KINDS};
use hopcap_proto::record::Observation;
use hopcap_proto::summary::{Net, Transport};
use hopcap_proto::types::Addr;
use rusqlite::Statement;

fn addr_bytes(a: &Addr) -> &[u8] {
    match a {
        Addr::V4(b) => b,
        Addr::V6(b) => b,
    }
}

struct Binder<'a, 'b> {
    stmt: &'a mut Statement<'b>,
    i: usize,
}

/// A column value as bound: integers as i64, addresses and nested tunnels as blobs, `None`
/// as nothing (the cleared binding is NULL).
trait Bind {
    fn bind(&self, stmt: &mut Statement<'_>, i: usize) -> rusqlite::Result<()>;
}

macro_rules! bind_int {
    ($($t:ty),*) => {$(
        impl Bind for $t {
            #[inline]
            fn bind(&self, stmt: &mut Statement<'_>, i: usize) -> rusqlite::Result<()> {
                stmt.raw_bind_parameter(i, i64::from(*self))
            }
        }
    )*};
}
bind_int!(i64, u8, u16, u32, bool);

impl Bind for &[u8] {
    #[inline]
    fn bind(&self, stmt: &mut Statement<'_>, i: usize) -> rusqlite::Result<()> {
        stmt.raw_bind_parameter(i, *self)
    }
}

impl Bind for Vec<u8> {
    fn bind(&self, stmt: &mut Statement<'_>, i: usize) -> rusqlite::Result<()> {
        stmt.raw_bind_parameter(i, self.as_slice())
    }
}

impl<T: Bind> Bind for Option<T> {
    #[inline]
    fn bind(&self, stmt: &mut Statement<'_>, i: usize) -> rusqlite::Result<()> {
        match self {
            Some(v) => v.bind(stmt, i),
            None => Ok(()),
        }
    }
}

/// Binds one observation to a statement from [`insert_sql`] (or to row `offset /
/// ROW_PARAMS` of [`insert_many_sql`]) whose bindings were cleared; execute it afterwards.
pub fn bind_observation(
    stmt: &mut Statement<'_>,
    offset: usize,
    board: i64,
    link: i64,
    obs: &Observation,
) -> rusqlite::Result<()> {
    let s = &obs.summary;
    // NULLs are not bound: the caller clears the statement's bindings first, and a typical
    // row has a third of its columns NULL. Values bind through concrete types (no dyn ToSql):
    // this is the collector's hottest loop.
    let mut b = Binder { stmt, i: offset };
    let mut put = |v: &dyn Bind| -> rusqlite::Result<()> {
        b.i += 1;
        v.bind(b.stmt, b.i)
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
    put(&ip.map(|ip| {
        if matches!(ip.src, Addr::V4(_)) {
            4u8
        } else {
            6
        }
    }))?;
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
            hdr_len,
        } => {
            (sport, dport, tcp) = (
                Some(src_port),
                Some(dst_port),
                Some((seq, ack, flags, window, hdr_len)),
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
    put(&tcp.map(|t| t.4))?;
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

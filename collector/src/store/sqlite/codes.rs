//! Integer codes of enum values stored in `observations` (documented in [`super::schema`]).
//! Append only: a stored code never changes meaning.

use hopcap_proto::layer::{Invalid, LayerKind, StopReason};
use hopcap_proto::summary::TunnelKind;

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

/// (tun_kind, tun_id) of a tunnel.
pub fn tunnel_code(kind: &TunnelKind) -> (i64, Option<i64>) {
    match *kind {
        TunnelKind::Vxlan { vni } => (1, Some(vni.into())),
        TunnelKind::Geneve { vni } => (2, Some(vni.into())),
        TunnelKind::Gre { key } => (3, key.map(i64::from)),
        TunnelKind::Gtpu { teid } => (4, Some(teid.into())),
        TunnelKind::IpInIp => (5, None),
    }
}

/// (stop_reason, stop_detail) of a stop reason.
pub fn stop_code(reason: StopReason) -> (i64, i64) {
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

/// The stop reason a (stop_reason, stop_detail) pair codes, if valid.
pub fn stop_reason(code: i64, detail: i64) -> Option<StopReason> {
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

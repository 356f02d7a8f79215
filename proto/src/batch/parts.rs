//! An observation taken apart into what the codec keeps separately, and put back together.

use super::state::{FlowKey, Hop, Inv, NET_ARP, NET_IP, TR_ICMP, TR_TCP, TR_UDP};
use crate::record::Observation;
use crate::summary::{Ip, Net, Summary, Transport, Tunnel};
use crate::types::{EtherType, IpProto, PacketType};
use heapless::Vec;

/// Splits an observation into its flow key, invariant and per-hop parts.
pub fn split(obs: &Observation) -> (FlowKey, Inv, Hop) {
    let s = &obs.summary;
    let mut key = FlowKey {
        link: obs.link,
        vlan: s.vlan,
        ethertype: s.ethertype.0,
        ..FlowKey::DEFAULT
    };
    let mut inv = Inv::default();
    let mut hop = Hop {
        wire_len: obs.wire_len,
        cap_len: obs.cap_len,
        pkttype: obs.pkttype.0,
        stop: s.stop,
        ..Hop::default()
    };
    for (i, t) in s.tunnels.iter().enumerate() {
        hop.outer_ids[i] = t.outer_id;
        // Cannot fail: both vectors hold MAX_TUNNELS.
        let _ = key.tunnels.push(Tunnel { outer_id: 0, ..*t });
    }
    match s.net {
        Net::None => {}
        Net::Arp { op, spa, tpa } => {
            key.net_kind = NET_ARP;
            inv.arp_op = op;
            inv.arp_spa = spa;
            inv.arp_tpa = tpa;
        }
        Net::Ip(ip) => {
            key.net_kind = NET_IP;
            key.src = ip.src;
            key.dst = ip.dst;
            key.proto = ip.proto.0;
            hop.ttl = ip.ttl;
            inv.ip_id = ip.id;
            inv.frag_offset = ip.frag_offset;
            inv.more_fragments = ip.more_fragments;
            inv.payload_len = ip.payload_len;
        }
    }
    match s.transport {
        Transport::None => {}
        Transport::Tcp {
            src_port,
            dst_port,
            seq,
            ack,
            flags,
            window,
            hdr_len,
        } => {
            key.transport_kind = TR_TCP;
            hop.tcp_hdr_len = hdr_len;
            key.src_port = src_port;
            key.dst_port = dst_port;
            inv.seq = seq;
            inv.ack = ack;
            inv.flags = flags;
            inv.window = window;
        }
        Transport::Udp {
            src_port,
            dst_port,
            length,
        } => {
            key.transport_kind = TR_UDP;
            key.src_port = src_port;
            key.dst_port = dst_port;
            inv.udp_len = length;
        }
        Transport::Icmp { ty, code, id, seq } => {
            key.transport_kind = TR_ICMP;
            key.src_port = id;
            inv.icmp_type = ty;
            inv.icmp_code = code;
            inv.icmp_seq = seq;
        }
    }
    (key, inv, hop)
}

/// The inverse of [`split`].
pub fn join(
    key: &FlowKey,
    inv: &Inv,
    hop: &Hop,
    ts_ns: u64,
    order: u64,
    fingerprint: u64,
) -> Observation {
    let mut tunnels = Vec::new();
    for (i, t) in key.tunnels.iter().enumerate() {
        let _ = tunnels.push(Tunnel {
            outer_id: hop.outer_ids[i],
            ..*t
        });
    }
    let net = match key.net_kind {
        NET_ARP => Net::Arp {
            op: inv.arp_op,
            spa: inv.arp_spa,
            tpa: inv.arp_tpa,
        },
        NET_IP => Net::Ip(Ip {
            src: key.src,
            dst: key.dst,
            proto: IpProto(key.proto),
            ttl: hop.ttl,
            id: inv.ip_id,
            frag_offset: inv.frag_offset,
            more_fragments: inv.more_fragments,
            payload_len: inv.payload_len,
        }),
        _ => Net::None,
    };
    let (sp, dp) = (key.src_port, key.dst_port);
    let transport = match key.transport_kind {
        TR_TCP => Transport::Tcp {
            src_port: sp,
            dst_port: dp,
            seq: inv.seq,
            ack: inv.ack,
            flags: inv.flags,
            window: inv.window,
            hdr_len: hop.tcp_hdr_len,
        },
        TR_UDP => Transport::Udp {
            src_port: sp,
            dst_port: dp,
            length: inv.udp_len,
        },
        TR_ICMP => Transport::Icmp {
            ty: inv.icmp_type,
            code: inv.icmp_code,
            id: sp,
            seq: inv.icmp_seq,
        },
        _ => Transport::None,
    };
    Observation {
        ts_ns,
        link: key.link,
        order,
        pkttype: PacketType(hop.pkttype),
        wire_len: hop.wire_len,
        cap_len: hop.cap_len,
        fingerprint,
        summary: Summary {
            vlan: key.vlan,
            ethertype: EtherType(key.ethertype),
            tunnels,
            net,
            transport,
            stop: hop.stop,
        },
    }
}

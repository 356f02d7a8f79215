//! Renders the decoder's layers as tshark's `-T fields` columns: one value per layer that
//! has the field, outermost first, joined with ',' (tshark's `-E occurrence=a
//! -E aggregator=,`), in tshark's number formats.

use hopcap_agent::offline::PacketRecord;
use hopcap_proto::layer::{Decoded, Layer};
use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The tshark columns compared, by header name.
pub const COMPARED: &[&str] = &[
    "frame.len",
    "frame.cap_len",
    "eth.src",
    "eth.dst",
    "eth.type",
    "vlan.id",
    "ieee8021ad.id",
    "sll.pkttype",
    "sll.etype",
    "sll.ifindex",
    "ip.src",
    "ip.dst",
    "ip.id",
    "ip.proto",
    "ip.ttl",
    "ip.frag_offset",
    "ip.hdr_len",
    "ip.len",
    "ip.flags.mf",
    "ipv6.src",
    "ipv6.dst",
    "ipv6.nxt",
    "ipv6.plen",
    "ipv6.hlim",
    "ipv6.fraghdr.offset",
    "ipv6.fraghdr.more",
    "ipv6.fraghdr.ident",
    "tcp.srcport",
    "tcp.dstport",
    "tcp.seq_raw",
    "tcp.ack_raw",
    "tcp.flags",
    "tcp.hdr_len",
    "udp.srcport",
    "udp.dstport",
    "udp.length",
    "icmp.type",
    "icmp.code",
    "icmp.ident",
    "icmp.seq",
    "icmpv6.type",
    "icmpv6.code",
    "vxlan.vni",
    "geneve.vni",
    "geneve.proto_type",
    "gre.proto",
    "arp.opcode",
    "mpls.label",
    "gtp.teid",
    "pppoe.session_id",
];

/// ICMP types whose rest-of-header is an identifier and a sequence number (echo,
/// timestamp, information, address mask): the only ones tshark prints them for.
fn icmp_has_ident(ty: u8) -> bool {
    matches!(ty, 0 | 8 | 13..=18)
}

/// One layer's value for `column`, if the layer has that field.
fn value(column: &str, layer: &Layer) -> Option<String> {
    let v = match (column, layer) {
        ("eth.src", Layer::Ethernet { src, .. }) => src.to_string(),
        ("eth.dst", Layer::Ethernet { dst, .. }) => dst.to_string(),
        // An 802.3 length field is not an EtherType: tshark shows an LLC header instead.
        ("eth.type", Layer::Ethernet { ethertype, .. }) if ethertype.0 >= 0x0600 => {
            format!("0x{:04x}", ethertype.0)
        }
        ("vlan.id", Layer::Vlan { tpid, id, .. }) if *tpid != 0x88a8 => id.to_string(),
        (
            "ieee8021ad.id",
            Layer::Vlan {
                tpid: 0x88a8, id, ..
            },
        ) => id.to_string(),
        ("sll.pkttype", Layer::Sll { pkttype, .. } | Layer::Sll2 { pkttype, .. }) => {
            pkttype.0.to_string()
        }
        ("sll.etype", Layer::Sll { protocol, .. } | Layer::Sll2 { protocol, .. }) => {
            format!("0x{:04x}", protocol.0)
        }
        ("sll.ifindex", Layer::Sll2 { ifindex, .. }) => ifindex.to_string(),
        ("ip.src", Layer::Ipv4 { src, .. }) => Ipv4Addr::from(*src).to_string(),
        ("ip.dst", Layer::Ipv4 { dst, .. }) => Ipv4Addr::from(*dst).to_string(),
        ("ip.id", Layer::Ipv4 { id, .. }) => format!("0x{id:04x}"),
        ("ip.proto", Layer::Ipv4 { proto, .. }) => proto.0.to_string(),
        ("ip.ttl", Layer::Ipv4 { ttl, .. }) => ttl.to_string(),
        ("ip.frag_offset", Layer::Ipv4 { frag_offset, .. }) => frag_offset.to_string(),
        ("ip.hdr_len", Layer::Ipv4 { hdr_len, .. }) => hdr_len.to_string(),
        ("ip.len", Layer::Ipv4 { total_len, .. }) => total_len.to_string(),
        ("ip.flags.mf", Layer::Ipv4 { mf, .. }) => u8::from(*mf).to_string(),
        ("ipv6.src", Layer::Ipv6 { src, .. }) => Ipv6Addr::from(*src).to_string(),
        ("ipv6.dst", Layer::Ipv6 { dst, .. }) => Ipv6Addr::from(*dst).to_string(),
        ("ipv6.nxt", Layer::Ipv6 { next_header, .. }) => next_header.0.to_string(),
        ("ipv6.plen", Layer::Ipv6 { payload_len, .. }) => payload_len.to_string(),
        ("ipv6.hlim", Layer::Ipv6 { hop_limit, .. }) => hop_limit.to_string(),
        ("ipv6.fraghdr.offset", Layer::Ipv6Ext { frag: Some(f), .. }) => f.offset.to_string(),
        ("ipv6.fraghdr.more", Layer::Ipv6Ext { frag: Some(f), .. }) => u8::from(f.more).to_string(),
        ("ipv6.fraghdr.ident", Layer::Ipv6Ext { frag: Some(f), .. }) => {
            format!("0x{:08x}", f.ident)
        }
        ("tcp.srcport", Layer::Tcp { src_port, .. }) => src_port.to_string(),
        ("tcp.dstport", Layer::Tcp { dst_port, .. }) => dst_port.to_string(),
        ("tcp.seq_raw", Layer::Tcp { seq, .. }) => seq.to_string(),
        ("tcp.ack_raw", Layer::Tcp { ack, .. }) => ack.to_string(),
        ("tcp.flags", Layer::Tcp { flags, .. }) => format!("0x{flags:04x}"),
        ("tcp.hdr_len", Layer::Tcp { hdr_len, .. }) => hdr_len.to_string(),
        ("udp.srcport", Layer::Udp { src_port, .. }) => src_port.to_string(),
        ("udp.dstport", Layer::Udp { dst_port, .. }) => dst_port.to_string(),
        ("udp.length", Layer::Udp { length, .. }) => length.to_string(),
        ("icmp.type", Layer::Icmp { ty, .. }) => ty.to_string(),
        ("icmp.code", Layer::Icmp { code, .. }) => code.to_string(),
        ("icmp.ident", Layer::Icmp { ty, id, .. }) if icmp_has_ident(*ty) => id.to_string(),
        ("icmp.seq", Layer::Icmp { ty, seq, .. }) if icmp_has_ident(*ty) => seq.to_string(),
        ("icmpv6.type", Layer::Icmpv6 { ty, .. }) => ty.to_string(),
        ("icmpv6.code", Layer::Icmpv6 { code, .. }) => code.to_string(),
        ("vxlan.vni", Layer::Vxlan { vni, .. }) => vni.to_string(),
        ("geneve.vni", Layer::Geneve { vni, .. }) => format!("0x{vni:06x}"),
        ("geneve.proto_type", Layer::Geneve { protocol, .. }) => format!("0x{:04x}", protocol.0),
        ("gre.proto", Layer::Gre { protocol, .. }) => format!("0x{:04x}", protocol.0),
        ("arp.opcode", Layer::Arp { op, .. }) => op.to_string(),
        ("mpls.label", Layer::Mpls { label, .. }) => label.to_string(),
        ("gtp.teid", Layer::Gtpu { teid, .. }) => format!("0x{teid:08x}"),
        ("pppoe.session_id", Layer::Pppoe { session_id, .. }) => format!("0x{session_id:04x}"),
        _ => return None,
    };
    Some(v)
}

/// The column as tshark would print it for this record and its decode.
pub fn render(column: &str, record: &PacketRecord, decoded: &Decoded) -> String {
    match column {
        "frame.len" => return record.wire_len.to_string(),
        "frame.cap_len" => return record.data.len().to_string(),
        _ => {}
    }
    let mut out = String::new();
    for v in decoded
        .layers
        .iter()
        .filter_map(|layer| value(column, layer))
    {
        if !out.is_empty() {
            out.push(',');
        }
        let _ = write!(out, "{v}");
    }
    out
}

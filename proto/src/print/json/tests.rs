//! Tests of the JSON printers with hand-built values.
use super::*;
use crate::layer::{Invalid, Layer, LayerKind};
use crate::summary::{Ip, Tunnel, TunnelKind};
use crate::types::{EtherType, IpProto, Mac, PacketType};
use heapless::String;
use serde_json::Value;
extern crate std;

fn parse(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

fn ipv4(src: [u8; 4], dst: [u8; 4], proto: IpProto) -> Layer {
    Layer::Ipv4 {
        src,
        dst,
        hdr_len: 20,
        tos: 0,
        total_len: 84,
        id: 0x1234,
        df: true,
        mf: false,
        frag_offset: 0,
        ttl: 64,
        proto,
        checksum: 0xbeef,
    }
}

fn vxlan_ping() -> Decoded {
    let mut d = Decoded::default();
    let eth = |ethertype| Layer::Ethernet {
        src: Mac([2, 0, 0, 0, 0, 1]),
        dst: Mac([2, 0, 0, 0, 0, 2]),
        ethertype,
    };
    let layers = [
        eth(EtherType::IPV4),
        ipv4([10, 0, 0, 1], [10, 0, 0, 2], IpProto::UDP),
        Layer::Udp {
            src_port: 45149,
            dst_port: 8472,
            length: 114,
            checksum: 0,
        },
        Layer::Vxlan { flags: 8, vni: 1 },
        eth(EtherType::IPV4),
        ipv4([10, 244, 0, 2], [10, 244, 1, 3], IpProto::ICMP),
        Layer::Icmp {
            ty: 8,
            code: 0,
            checksum: 1,
            id: 1,
            seq: 1,
        },
    ];
    for l in layers {
        d.layers.push(l).unwrap();
    }
    d.payload_offset = 92;
    d.payload_len = 56;
    d
}

#[test]
fn decoded_layers_outer_to_inner() {
    let mut out: String<2048> = String::new();
    write_json_decoded(
        &mut out,
        1_700_000_000_000_000_007,
        148,
        148,
        2,
        LinkType::ETHERNET,
        &vxlan_ping(),
    )
    .unwrap();
    let v = parse(&out);
    assert_eq!(v["ts"], "1700000000.000000007");
    assert_eq!(v["wire_len"], 148);
    assert_eq!(v["interface_id"], 2);
    assert_eq!(v["link_type"], 1);
    let layers = v["layers"].as_array().unwrap();
    let protos: std::vec::Vec<&str> = layers
        .iter()
        .map(|l| l["proto"].as_str().unwrap())
        .collect();
    assert_eq!(
        protos,
        ["ether", "ip", "udp", "vxlan", "ether", "ip", "icmp"]
    );
    assert_eq!(layers[0]["src"], "02:00:00:00:00:01");
    assert_eq!(layers[1]["src"], "10.0.0.1");
    assert_eq!(layers[1]["df"], true);
    assert_eq!(layers[1]["protocol"], 17);
    assert_eq!(layers[3]["vni"], 1);
    assert_eq!(layers[5]["dst"], "10.244.1.3");
    assert_eq!(layers[6]["type"], 8);
    assert_eq!(v["stop"], Value::Null);
}

#[test]
fn decoded_stops() {
    let mut d = vxlan_ping();
    d.layers.truncate(2);
    d.stop = Some(Stop {
        offset: 34,
        kind: LayerKind::Udp,
        reason: StopReason::Truncated { needed: 8, had: 3 },
    });
    let mut out: String<1024> = String::new();
    write_json_decoded(&mut out, 0, 200, 37, 0, LinkType::ETHERNET, &d).unwrap();
    let v = parse(&out);
    assert_eq!(v["stop"]["proto"], "udp");
    assert_eq!(v["stop"]["reason"], "truncated");
    assert_eq!(
        (
            v["stop"]["offset"].as_u64(),
            v["stop"]["needed"].as_u64(),
            v["stop"]["had"].as_u64()
        ),
        (Some(34), Some(8), Some(3))
    );
    d.stop = Some(Stop {
        offset: 14,
        kind: LayerKind::Ipv4,
        reason: StopReason::Invalid(Invalid::Ipv4HeaderLen(16)),
    });
    out.clear();
    write_json_decoded(&mut out, 0, 200, 37, 0, LinkType::ETHERNET, &d).unwrap();
    let v = parse(&out);
    assert_eq!(v["stop"]["reason"], "invalid");
    assert_eq!(v["stop"]["check"], "Ipv4HeaderLen(16)");
}

#[test]
fn every_layer_kind_is_valid_json() {
    let mut d = Decoded::default();
    let layers = [
        Layer::Vlan {
            tpid: 0x8100,
            pcp: 1,
            dei: false,
            id: 100,
            ethertype: EtherType::IPV6,
            stripped: true,
        },
        Layer::Sll {
            pkttype: PacketType::OUTGOING,
            hatype: 1,
            addr: Mac([1; 6]),
            addr_len: 6,
            protocol: EtherType::ARP,
        },
        Layer::Sll2 {
            protocol: EtherType::IPV4,
            ifindex: 3,
            hatype: 1,
            pkttype: PacketType::HOST,
            addr: Mac([2; 6]),
            addr_len: 6,
        },
        Layer::Loopback { family: 2 },
        Layer::Mpls {
            label: 21,
            tc: 0,
            bottom: true,
            ttl: 63,
        },
        Layer::Pppoe {
            code: 0,
            session_id: 1,
            length: 2,
            ppp_proto: 0x21,
        },
        Layer::Arp {
            htype: 1,
            ptype: 0x800,
            op: 1,
            sha: Mac([3; 6]),
            spa: [10, 0, 0, 1],
            tha: Mac([0; 6]),
            tpa: [10, 0, 0, 2],
        },
        Layer::Ipv6 {
            src: [0; 16],
            dst: [0xff; 16],
            traffic_class: 0,
            flow_label: 5,
            payload_len: 8,
            next_header: IpProto::FRAGMENT,
            hop_limit: 1,
        },
        Layer::Ipv6Ext {
            kind: IpProto::FRAGMENT,
            next_header: IpProto::UDP,
            len: 8,
            frag: Some(crate::layer::Ipv6Frag {
                offset: 1,
                more: true,
                ident: 9,
            }),
        },
        Layer::Icmpv6 {
            ty: 135,
            code: 0,
            checksum: 0,
            id: 0,
            seq: 0,
            nd_target: Some([0xfe; 16]),
        },
        Layer::Tcp {
            src_port: 1,
            dst_port: 2,
            seq: 3,
            ack: 4,
            hdr_len: 20,
            flags: 0x12,
            window: 5,
            checksum: 6,
        },
        Layer::Geneve {
            version: 0,
            opt_len: 2,
            oam: false,
            critical: true,
            protocol: EtherType::TEB,
            vni: 11,
        },
        Layer::Gre {
            version: 0,
            protocol: EtherType::IPV4,
            checksum_present: false,
            key: Some(7),
            seq: None,
        },
        Layer::Gtpu {
            msg_type: 255,
            teid: 0xdead,
        },
    ];
    for l in layers {
        d.layers.push(l).unwrap();
    }
    let mut out: String<4096> = String::new();
    write_json_decoded(&mut out, 0, 1, 1, 0, LinkType::RAW, &d).unwrap();
    let v = parse(&out);
    assert_eq!(v["layers"].as_array().unwrap().len(), 14);
    assert_eq!(v["layers"][6]["tpa"], "10.0.0.2");
    assert_eq!(
        v["layers"][7]["dst"],
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
    );
    assert_eq!(v["layers"][8]["frag"]["ident"], 9);
    assert_eq!(v["layers"][12]["key"], 7);
    assert_eq!(v["layers"][12]["seq"], Value::Null);
}

#[test]
fn strings_are_escaped() {
    let obs = Observation {
        ts_ns: 5,
        link: 0,
        order: 1,
        pkttype: PacketType::HOST,
        wire_len: 60,
        cap_len: 60,
        fingerprint: u64::MAX,
        summary: Summary::empty(),
    };
    let board = "pi \"one\"\\\n\t\u{1}é";
    let mut out: String<1024> = String::new();
    write_json_observation(&mut out, board, "", "eth0", &obs).unwrap();
    let v = parse(&out);
    assert_eq!(v["board"], board);
    assert_eq!(v["fingerprint"], "ffffffffffffffff");
    assert_eq!(v["summary"]["net"], Value::Null);
}

#[test]
fn observation_with_tunnel_net_transport() {
    let mut summary = Summary::empty();
    summary.vlan = Some(7);
    summary.ethertype = EtherType::IPV4;
    let tunnel = Tunnel {
        kind: TunnelKind::Gre { key: None },
        src: Addr::V4([1, 1, 1, 1]),
        dst: Addr::V4([2, 2, 2, 2]),
        outer_id: 3,
        src_port: 0,
        dst_port: 0,
    };
    summary.tunnels.push(tunnel).unwrap();
    summary.net = Net::Ip(Ip {
        src: Addr::V4([10, 0, 0, 1]),
        dst: Addr::V4([10, 0, 0, 2]),
        proto: IpProto::TCP,
        ttl: 63,
        id: 9,
        frag_offset: 0,
        more_fragments: false,
        payload_len: 20,
    });
    summary.transport = Transport::Tcp {
        src_port: 1234,
        dst_port: 80,
        seq: 1,
        ack: 0,
        flags: 2,
        window: 100,
        hdr_len: 20,
    };
    let obs = Observation {
        ts_ns: 1_500_000_000,
        link: 4,
        order: 10,
        pkttype: PacketType::OUTGOING,
        wire_len: 78,
        cap_len: 64,
        fingerprint: 0xabc,
        summary,
    };
    let mut out: String<1024> = String::new();
    write_json_observation(&mut out, "pi1", "ns1", "veth0", &obs).unwrap();
    let v = parse(&out);
    assert_eq!(v["ts"], "1.500000000");
    assert_eq!(v["dir"], "Out");
    assert_eq!(v["netns"], "ns1");
    assert_eq!(v["summary"]["vlan"], 7);
    assert_eq!(v["summary"]["tunnels"][0]["kind"], "gre");
    assert_eq!(v["summary"]["tunnels"][0]["key"], Value::Null);
    assert_eq!(v["summary"]["net"]["kind"], "ipv4");
    assert_eq!(v["summary"]["transport"]["dst_port"], 80);
    assert_eq!(v["summary"]["transport"]["hdr_len"], 20);
    assert_eq!(v["summary"]["stop"], Value::Null);
}

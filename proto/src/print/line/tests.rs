//! Tests of the tcpdump-like line with hand-built values.
use super::*;
use crate::layer::{Invalid, LayerKind};
use crate::types::EtherType;
use heapless::String;

const TS: u64 = 1_340_954_905_298_858_123; // 2012-06-29 07:28:25.298858123 UTC

fn line(pkttype: Option<PacketType>, link: &str, s: &Summary, wire_len: u32) -> String<256> {
    let mut out = String::new();
    write_line(&mut out, TS, link, pkttype, s, wire_len).unwrap();
    out
}

/// An IPv4 header's fields, TTL 64, id 1, unfragmented (also for the short descriptions).
pub(in crate::print) fn ip4(src: [u8; 4], dst: [u8; 4], proto: IpProto, payload_len: u16) -> Ip {
    Ip {
        src: Addr::V4(src),
        dst: Addr::V4(dst),
        proto,
        ttl: 64,
        id: 1,
        frag_offset: 0,
        more_fragments: false,
        payload_len,
    }
}

pub(in crate::print) fn summary(net: Net, transport: Transport) -> Summary {
    Summary {
        ethertype: EtherType::IPV4,
        net,
        transport,
        ..Summary::empty()
    }
}

fn echo(ty: u8, id: u16, seq: u16) -> Transport {
    Transport::Icmp {
        ty,
        code: 0,
        id,
        seq,
    }
}

#[test]
fn icmp_echo_with_link_and_direction() {
    let s = summary(
        Net::Ip(ip4(
            [192, 168, 43, 116],
            [198, 51, 100, 101],
            IpProto::ICMP,
            64,
        )),
        echo(8, 16384, 0),
    );
    assert_eq!(
        line(Some(PacketType::OUTGOING), "wlan0", &s, 98),
        "07:28:25.298858 wlan0 Out IP 192.168.43.116 > 198.51.100.101: ICMP echo request, id 16384, seq 0, length 64"
    );
    assert_eq!(
        line(None, "", &s, 98),
        "07:28:25.298858 IP 192.168.43.116 > 198.51.100.101: ICMP echo request, id 16384, seq 0, length 64"
    );
    assert_eq!(
        line(Some(PacketType::HOST), "", &s, 98),
        "07:28:25.298858 In IP 192.168.43.116 > 198.51.100.101: ICMP echo request, id 16384, seq 0, length 64"
    );
}

#[test]
fn time_of_day_is_utc_and_truncated_to_microseconds() {
    let mut out: String<32> = String::new();
    write_time(&mut out, 86_399_999_999_999).unwrap();
    assert_eq!(out, "23:59:59.999999");
    out.clear();
    write_time(&mut out, 1 << 32).unwrap();
    assert_eq!(out, "00:00:04.294967");
}

#[test]
fn icmp_errors_and_unknown_types() {
    let unreach = Transport::Icmp {
        ty: 3,
        code: 3,
        id: 0,
        seq: 0,
    };
    let s = summary(
        Net::Ip(ip4([10, 0, 0, 1], [10, 0, 0, 2], IpProto::ICMP, 36)),
        unreach,
    );
    assert!(line(None, "", &s, 70).ends_with("10.0.0.2: ICMP port unreachable, length 36"));
    let odd = Transport::Icmp {
        ty: 99,
        code: 0,
        id: 0,
        seq: 0,
    };
    let s = summary(
        Net::Ip(ip4([10, 0, 0, 1], [10, 0, 0, 2], IpProto::ICMP, 8)),
        odd,
    );
    assert!(line(None, "", &s, 42).ends_with(": ICMP type-#99, length 8"));
}

#[test]
fn icmpv6_echo_and_neighbor_discovery() {
    let mut ip = ip4([0; 4], [0; 4], IpProto::ICMPV6, 64);
    ip.src = Addr::V6([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    ip.dst = Addr::V6([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    let mut s = summary(Net::Ip(ip), echo(129, 11, 243));
    s.ethertype = EtherType::IPV6;
    assert!(line(None, "", &s, 118)
        .ends_with(" IP6 fd00::1 > fd00::2: ICMP6, echo reply, id 11, seq 243, length 64"));
    s.transport = Transport::Icmp {
        ty: 135,
        code: 0,
        id: 0,
        seq: 0,
    };
    assert!(line(None, "", &s, 118).ends_with(": ICMP6, neighbor solicitation, length 64"));
}

fn tcp(flags: u16, ack: u32, hdr_len: u8) -> Transport {
    Transport::Tcp {
        src_port: 46656,
        dst_port: 80,
        seq: 797190859,
        ack,
        flags,
        window: 27200,
        hdr_len,
    }
}

fn tcp_ip(payload_len: u16) -> Net {
    Net::Ip(ip4(
        [131, 155, 215, 69],
        [137, 116, 81, 94],
        IpProto::TCP,
        payload_len,
    ))
}

#[test]
fn tcp_flags_seq_ack_win_length() {
    // SYN with 20 bytes of options: no data, but SYN shows its seq.
    let s = summary(tcp_ip(40), tcp(0x002, 0, 40));
    assert!(line(None, "", &s, 74).ends_with(
        " IP 131.155.215.69.46656 > 137.116.81.94.80: Flags [S], seq 797190859, win 27200, length 0"
    ));
    let s = summary(tcp_ip(40), tcp(0x012, 5, 40));
    assert!(
        line(None, "", &s, 74).ends_with(": Flags [S.], seq 797190859, ack 5, win 27200, length 0")
    );
    let s = summary(tcp_ip(40), tcp(0x0ff, 5, 40));
    assert!(line(None, "", &s, 74).contains("Flags [FSRP.UEW], seq 797190859, ack 5,"));
    // No flags, no data: tcpdump prints no seq.
    let s = summary(tcp_ip(20), tcp(0, 5, 20));
    assert!(line(None, "", &s, 54).ends_with("Flags [none], win 27200, length 0"));
}

#[test]
fn tcp_data_prints_seq_range_and_length() {
    // 24 bytes of data after a 32-byte header (timestamps).
    let s = summary(tcp_ip(56), tcp(0x018, 7, 32));
    assert!(line(None, "", &s, 90)
        .ends_with(": Flags [P.], seq 797190859:797190883, ack 7, win 27200, length 24"));
    // A pure ACK: no seq.
    let s = summary(tcp_ip(32), tcp(0x010, 7, 32));
    assert!(line(None, "", &s, 66).ends_with(": Flags [.], ack 7, win 27200, length 0"));
    // FIN and RST without data still show seq.
    let s = summary(tcp_ip(20), tcp(0x011, 7, 20));
    assert!(
        line(None, "", &s, 54).ends_with(": Flags [F.], seq 797190859, ack 7, win 27200, length 0")
    );
    let s = summary(tcp_ip(20), tcp(0x004, 0, 20));
    assert!(line(None, "", &s, 54).ends_with(": Flags [R], seq 797190859, win 27200, length 0"));
    // The range wraps like the sequence space.
    let mut t = tcp(0x018, 7, 20);
    if let Transport::Tcp { ref mut seq, .. } = t {
        *seq = u32::MAX - 1;
    }
    let s = summary(tcp_ip(30), t);
    assert!(line(None, "", &s, 64).contains(", seq 4294967294:8, ack 7,"));
}

#[test]
fn tcp_header_length_unknown_or_too_long() {
    // Unknown (0): seq always, no length.
    let s = summary(tcp_ip(56), tcp(0x010, 7, 0));
    assert!(line(None, "", &s, 90).ends_with(": Flags [.], seq 797190859, ack 7, win 27200"));
    // A header longer than the IP payload says: no data.
    let s = summary(tcp_ip(20), tcp(0x010, 7, 40));
    assert!(line(None, "", &s, 54).ends_with(": Flags [.], ack 7, win 27200, length 0"));
}

#[test]
fn udp_length_excludes_its_header() {
    let udp = Transport::Udp {
        src_port: 30000,
        dst_port: 13000,
        length: 12,
    };
    let s = summary(
        Net::Ip(ip4([1, 2, 3, 4], [5, 6, 7, 8], IpProto::UDP, 12)),
        udp,
    );
    assert!(line(None, "", &s, 60).ends_with(" IP 1.2.3.4.30000 > 5.6.7.8.13000: UDP, length 4"));
}

#[test]
fn arp_request_and_reply() {
    let mut s = summary(
        Net::Arp {
            op: 1,
            spa: [10, 0, 0, 1],
            tpa: [10, 0, 0, 2],
        },
        Transport::None,
    );
    s.ethertype = EtherType::ARP;
    assert!(
        line(None, "", &s, 60).ends_with(" ARP, Request who-has 10.0.0.2 tell 10.0.0.1, length 28")
    );
    s.net = Net::Arp {
        op: 2,
        spa: [10, 0, 0, 2],
        tpa: [10, 0, 0, 1],
    };
    assert!(line(None, "", &s, 60).ends_with(" ARP, Reply 10.0.0.2, length 28"));
    s.net = Net::Arp {
        op: 3,
        spa: [0; 4],
        tpa: [0; 4],
    };
    assert!(line(None, "", &s, 60).ends_with(" ARP, Reverse Request, length 28"));
}

#[test]
fn vxlan_tunnel_prints_outer_then_inner() {
    let mut s = summary(
        Net::Ip(ip4([10, 244, 0, 2], [10, 244, 1, 3], IpProto::ICMP, 64)),
        echo(8, 1, 1),
    );
    let outer = Tunnel {
        kind: TunnelKind::Vxlan { vni: 1 },
        src: Addr::V4([10, 0, 0, 1]),
        dst: Addr::V4([10, 0, 0, 2]),
        outer_id: 7,
        src_port: 45149,
        dst_port: 8472,
    };
    s.tunnels.push(outer).unwrap();
    assert_eq!(
        line(None, "", &s, 148),
        "07:28:25.298858 IP 10.0.0.1.45149 > 10.0.0.2.8472: VXLAN vni 1: IP 10.244.0.2 > 10.244.1.3: ICMP echo request, id 1, seq 1, length 64"
    );
}

#[test]
fn gre_and_ip_in_ip_tunnels() {
    let udp = Transport::Udp {
        src_port: 30000,
        dst_port: 13000,
        length: 12,
    };
    let mut inner = ip4([0; 4], [0; 4], IpProto::UDP, 12);
    inner.src = Addr::V6([0xde, 0xad, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xbe, 0xef]);
    inner.dst = Addr::V6([0xca, 0xfe, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xba, 0xbe]);
    let mut s = summary(Net::Ip(inner), udp);
    let tunnel = |kind| Tunnel {
        kind,
        src: Addr::V4([1, 2, 3, 4]),
        dst: Addr::V4([5, 6, 7, 8]),
        outer_id: 0,
        src_port: 0,
        dst_port: 0,
    };
    s.tunnels.push(tunnel(TunnelKind::IpInIp)).unwrap();
    assert!(line(None, "", &s, 80).ends_with(
        " IP 1.2.3.4 > 5.6.7.8: IP6 dead::beef.30000 > cafe::babe.13000: UDP, length 4"
    ));
    s.tunnels[0] = tunnel(TunnelKind::Gre { key: Some(42) });
    assert!(line(None, "", &s, 80)
        .contains(" IP 1.2.3.4 > 5.6.7.8: GRE key 42: IP6 dead::beef.30000 > "));
}

#[test]
fn fragments() {
    let mut ip = ip4([164, 1, 123, 163], [164, 1, 123, 61], IpProto::UDP, 1480);
    ip.more_fragments = true;
    let udp = Transport::Udp {
        src_port: 123,
        dst_port: 137,
        length: 2008,
    };
    let s = summary(Net::Ip(ip), udp);
    assert!(line(None, "", &s, 1514)
        .ends_with(" IP 164.1.123.163.123 > 164.1.123.61.137: frag (0|1480) UDP, length 2000"));
    ip.frag_offset = 185;
    ip.more_fragments = false;
    ip.payload_len = 528;
    let s = summary(Net::Ip(ip), Transport::None);
    assert!(line(None, "", &s, 562)
        .ends_with(" IP 164.1.123.163 > 164.1.123.61: frag (1480|528) ip-proto-17"));
}

#[test]
fn stops_truncated_invalid_unsupported() {
    let ip = Net::Ip(ip4([48, 48, 48, 48], [48, 48, 48, 49], IpProto::TCP, 20));
    let mut s = summary(ip, Transport::None);
    s.stop = Some(Stop {
        offset: 34,
        kind: LayerKind::Tcp,
        reason: StopReason::Truncated { needed: 20, had: 6 },
    });
    assert!(line(None, "", &s, 262144).ends_with(" IP 48.48.48.48 > 48.48.48.49:  [|tcp]"));
    s.stop = Some(Stop {
        offset: 34,
        kind: LayerKind::Tcp,
        reason: StopReason::Invalid(Invalid::TcpHeaderLen(4)),
    });
    assert!(line(None, "", &s, 60).ends_with(" IP 48.48.48.48 > 48.48.48.49:  tcp (invalid)"));
    let mut s = Summary::empty();
    s.stop = Some(Stop {
        offset: 0,
        kind: LayerKind::Ethernet,
        reason: StopReason::Truncated { needed: 14, had: 1 },
    });
    assert_eq!(line(None, "", &s, 60), "07:28:25.298858  [|ether]");
    let mut s = Summary::empty();
    s.ethertype = EtherType(0x8926);
    s.stop = Some(Stop {
        offset: 12,
        kind: LayerKind::Other,
        reason: StopReason::Unsupported(0x8926),
    });
    assert_eq!(
        line(None, "", &s, 128),
        "07:28:25.298858 ethertype Unknown (0x8926), length 128"
    );
    s.ethertype = EtherType(0x0026);
    assert_eq!(line(None, "", &s, 60), "07:28:25.298858 802.3, length 60");
    let ip = ip4([10, 0, 0, 1], [224, 0, 0, 1], IpProto::IGMP, 8);
    s = summary(Net::Ip(ip), Transport::None);
    s.stop = Some(Stop {
        offset: 34,
        kind: LayerKind::Other,
        reason: StopReason::Unsupported(2),
    });
    assert!(line(None, "", &s, 60).ends_with(" IP 10.0.0.1 > 224.0.0.1: IGMP, length 8"));
}

#[test]
fn vlan_prefix_and_ipv6_tunnel_endpoints() {
    let udp = Transport::Udp {
        src_port: 5,
        dst_port: 6,
        length: 8,
    };
    let mut s = summary(
        Net::Ip(ip4([10, 0, 0, 1], [10, 0, 0, 2], IpProto::UDP, 8)),
        udp,
    );
    s.vlan = Some(100);
    let mut v6 = [0u8; 16];
    v6[15] = 1;
    let outer = Tunnel {
        kind: TunnelKind::Geneve { vni: 11 },
        src: Addr::V6(v6),
        dst: Addr::V6(v6),
        outer_id: 0,
        src_port: 1,
        dst_port: 6081,
    };
    s.tunnels.push(outer).unwrap();
    assert!(line(None, "", &s, 60).ends_with(
        " vlan 100: IP6 ::1.1 > ::1.6081: Geneve vni 0xb: IP 10.0.0.1.5 > 10.0.0.2.6: UDP, length 0"
    ));
}

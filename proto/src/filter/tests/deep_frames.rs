//! Hand-built frames with deeper or rarer structure: extension chains, AH, nested tunnels,
//! GTP-U extensions, ERSPAN, PPTP, MPLS pseudowires, Cisco shims.

extern crate std;
use std::vec::Vec;

use super::frames::*;
use crate::summary::{Net, Summary, TunnelKind};
use crate::types::{Addr, EtherType, IpProto};

pub fn all() -> Vec<Frame> {
    let d = V4Opts::default();
    let (a, b) = (Addr::V4(V4_A), Addr::V4(V4_B));
    let (o1, o2) = ([192, 0, 2, 1], [192, 0, 2, 2]);
    let (ov1, ov2) = (Addr::V4(o1), Addr::V4(o2));
    let mut out = Vec::new();

    // GTP-U with sequence number and one PDU-session extension, carrying IPv6/UDP.
    let (u1, u2) = (v6("2001:db8:5::1"), v6("2001:db8:5::2"));
    let inner = ipv6(u1, u2, 17, &udp(3000, 53, b"q"));
    let ext = [0x01, 0x00, 0x09, 0x00];
    let len = (4 + ext.len() + inner.len()) as u16;
    let gtp = cat(&[
        &[0x34, 0xff],
        &len.to_be_bytes(),
        &9u32.to_be_bytes(),
        &[0, 7, 0, 0x85],
        &ext,
        &inner,
    ]);
    let mut s = sum_ip(Addr::V6(u1), Addr::V6(u2), IpProto::UDP, t_udp(3000, 53));
    s.tunnels
        .push(tunnel(TunnelKind::Gtpu { teid: 9 }, ov1, ov2, (2152, 2152)))
        .unwrap();
    out.push(frame(
        "gtp-u extension ip6 udp",
        eth(0x800, &ipv4(o1, o2, 17, &udp(2152, 2152, &gtp), d)),
        s,
    ));

    // ERSPAN type II (GRE with a sequence number), mirroring an Ethernet/IPv4/TCP frame.
    let mirrored = eth(0x800, &ipv4(V4_A, V4_B, 6, &tcp(5000, 443), d));
    let gre = cat(&[
        &[0x10, 0x00, 0x88, 0xbe],
        &1u32.to_be_bytes(),
        &[0x10, 0x64, 0, 1, 0, 0, 0, 0],
        &mirrored,
    ]);
    let mut s = sum_ip(a, b, IpProto::TCP, t_tcp(5000, 443));
    s.tunnels
        .push(tunnel(TunnelKind::Gre { key: None }, ov1, ov2, (0, 0)))
        .unwrap();
    out.push(frame(
        "erspan2 ip4 tcp",
        eth(0x800, &ipv4(o1, o2, 47, &gre, d)),
        s,
    ));

    // MPLS pseudowire: label, control word, Ethernet.
    let pw = cat(&[
        &[0, 0x02, 0x01, 64],
        &[0; 4],
        &eth(0x800, &ipv4(V4_B, V4_A, 17, &udp(1234, 4321, b""), d)),
    ]);
    out.push(frame(
        "mpls pseudowire ip4 udp",
        eth(0x8847, &pw),
        sum_ip(b, a, IpProto::UDP, t_udp(1234, 4321)),
    ));

    // IPv6: hop-by-hop, destination options, routing (24 bytes), first fragment, TCP.
    let (g1, g2) = (v6("2001:db8::1"), v6("2001:db8::9"));
    let routing = cat(&[&[44, 2, 0, 0, 0, 0, 0, 0], &[0; 16]]);
    let chain = ext8(
        60,
        &ext8(43, &cat(&[&routing, &frag6(6, 0, true, &tcp(8080, 9090))])),
    );
    out.push(frame(
        "ip6 four extensions tcp",
        eth(0x86dd, &ipv6(g1, g2, 0, &chain)),
        sum_ip(Addr::V6(g1), Addr::V6(g2), IpProto::TCP, t_tcp(8080, 9090)),
    ));

    // IPv4 with AH (24 bytes), then TCP.
    let ah = cat(&[
        &[6, 4, 0, 0],
        &0x100u32.to_be_bytes(),
        &1u32.to_be_bytes(),
        &[0; 12],
        &tcp(22, 2222),
    ]);
    out.push(frame(
        "ip4 ah tcp",
        eth(0x800, &ipv4(V4_A, V4_B, 51, &ah, d)),
        sum_ip(a, b, IpProto::TCP, t_tcp(22, 2222)),
    ));

    // VXLAN carrying a VLAN-tagged ARP: the summary's VLAN is that inner tag.
    let (spa, tpa) = ([172, 20, 0, 1], [172, 20, 0, 2]);
    let arp_frame = eth_tagged(&[(0x8100, 30)], 0x806, &arp(2, spa, tpa));
    let vx = cat(&[&[0x08, 0, 0, 0, 0, 0, 7, 0], &arp_frame]);
    let mut s = Summary::empty();
    s.vlan = Some(30);
    s.ethertype = EtherType::ARP;
    s.net = Net::Arp { op: 2, spa, tpa };
    s.tunnels
        .push(tunnel(
            TunnelKind::Vxlan { vni: 7 },
            ov1,
            ov2,
            (40000, 4789),
        ))
        .unwrap();
    out.push(frame(
        "vxlan vlan arp",
        eth(0x800, &ipv4(o1, o2, 17, &udp(40000, 4789, &vx), d)),
        s,
    ));

    // Two tunnels: GRE carrying IPv4/UDP/VXLAN carrying Ethernet/IPv4/TCP.
    let (m1, m2) = ([10, 200, 0, 1], [10, 200, 0, 2]);
    let innermost = eth(
        0x800,
        &ipv4([172, 31, 0, 1], [172, 31, 0, 2], 6, &tcp(6000, 7000), d),
    );
    let vx = cat(&[&[0x08, 0, 0, 0, 0, 0, 8, 0], &innermost]);
    let middle = ipv4(m1, m2, 17, &udp(8472, 50000, &vx), d);
    let gre = cat(&[&[0, 0, 0x08, 0], &middle]);
    let mut s = sum_ip(
        Addr::V4([172, 31, 0, 1]),
        Addr::V4([172, 31, 0, 2]),
        IpProto::TCP,
        t_tcp(6000, 7000),
    );
    s.tunnels
        .push(tunnel(TunnelKind::Gre { key: None }, ov1, ov2, (0, 0)))
        .unwrap();
    s.tunnels
        .push(tunnel(
            TunnelKind::Vxlan { vni: 8 },
            Addr::V4(m1),
            Addr::V4(m2),
            (8472, 50000),
        ))
        .unwrap();
    out.push(frame(
        "gre vxlan(src 8472) ip4 tcp",
        eth(0x800, &ipv4(o1, o2, 47, &gre, d)),
        s,
    ));

    // PPTP: enhanced GRE (version 1, key, sequence, ack), PPP, IPv4/UDP.
    let ip = ipv4(V4_A, V4_B, 17, &udp(137, 137, b""), d);
    let ppp = cat(&[&[0xff, 0x03, 0x00, 0x21], &ip]);
    let gre = cat(&[
        &[0x30, 0x81, 0x88, 0x0b],
        &(ppp.len() as u16).to_be_bytes(),
        &[0, 5],
        &[0, 0, 0, 1],
        &[0, 0, 0, 0],
        &ppp,
    ]);
    let mut s = sum_ip(a, b, IpProto::UDP, t_udp(137, 137));
    s.tunnels
        .push(tunnel(TunnelKind::Gre { key: Some(0) }, ov1, ov2, (0, 0)))
        .unwrap();
    out.push(frame(
        "pptp ppp ip4 udp",
        eth(0x800, &ipv4(o1, o2, 47, &gre, d)),
        s,
    ));

    // VN-Tag, then an 802.1Q tag, then IPv4/TCP.
    let body = cat(&[
        &[0x80, 0x01, 0x00, 0x02],
        &0x8100u16.to_be_bytes(),
        &[0, 5],
        &0x0800u16.to_be_bytes(),
    ]);
    let mut f = eth(0x8926, &body);
    f.extend_from_slice(&ipv4(V4_B, V4_A, 6, &tcp(443, 5000), d));
    let mut s = sum_ip(b, a, IpProto::TCP, t_tcp(443, 5000));
    s.vlan = Some(5);
    out.push(frame("vntag vlan ip4 tcp", f, s));
    out
}

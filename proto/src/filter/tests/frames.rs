//! Hand-built frames, each with the Summary a decoder gives for it.

extern crate std;
use std::vec::Vec;

use crate::filter::bpf_vm::Ancillary;
use crate::summary::{Ip, Net, Summary, Transport, Tunnel, TunnelKind};
use crate::types::{Addr, EtherType, IpProto};

pub struct Frame {
    pub name: &'static str,
    pub bytes: Vec<u8>,
    pub anc: Ancillary,
    pub summary: Summary,
}

pub(super) const V4_A: [u8; 4] = [10, 0, 0, 1];
pub(super) const V4_B: [u8; 4] = [10, 0, 0, 2];

pub fn v6(s: &str) -> [u8; 16] {
    s.parse::<core::net::Ipv6Addr>().unwrap().octets()
}

pub(super) fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

pub fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let macs = [0x02, 0, 0, 0, 0, 0xbb, 0x02, 0, 0, 0, 0, 0xaa];
    cat(&[&macs, &ethertype.to_be_bytes(), payload])
}

/// Ethernet with in-frame tags (tpid, tci), outermost first.
pub(super) fn eth_tagged(tags: &[(u16, u16)], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = eth(0, &[]);
    out.truncate(12);
    for &(tpid, tci) in tags {
        out.extend_from_slice(&tpid.to_be_bytes());
        out.extend_from_slice(&tci.to_be_bytes());
    }
    out.extend_from_slice(&ethertype.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

#[derive(Clone, Copy, Default)]
pub struct V4Opts {
    pub options: usize,
    pub frag_offset: u16,
    pub more_fragments: bool,
    pub ihl_override: Option<u8>,
}

pub fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, payload: &[u8], o: V4Opts) -> Vec<u8> {
    let hl = 20 + o.options;
    let total = (hl + payload.len()) as u16;
    let ihl = o.ihl_override.unwrap_or((hl / 4) as u8);
    let flags = (u16::from(o.more_fragments) << 13) | o.frag_offset;
    let mut h = Vec::new();
    h.push(0x40 | ihl);
    h.push(0);
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&0x1234u16.to_be_bytes());
    h.extend_from_slice(&flags.to_be_bytes());
    h.extend_from_slice(&[64, proto, 0, 0]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    // Options: NOPs ending with End of Option List.
    h.extend(core::iter::repeat_n(1u8, o.options));
    if let Some(last) = h.last_mut().filter(|_| o.options > 0) {
        *last = 0;
    }
    h.extend_from_slice(payload);
    h
}

pub fn ipv6(src: [u8; 16], dst: [u8; 16], nh: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = std::vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    h.extend_from_slice(&[nh, 64]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h.extend_from_slice(payload);
    h
}

/// A hop-by-hop or destination-options header of 8 bytes (PadN).
pub(super) fn ext8(nh: u8, inner: &[u8]) -> Vec<u8> {
    cat(&[&[nh, 0, 1, 4, 0, 0, 0, 0], inner])
}

pub(super) fn frag6(nh: u8, offset: u16, more: bool, inner: &[u8]) -> Vec<u8> {
    let field = (offset << 3) | u16::from(more);
    cat(&[
        &[nh, 0],
        &field.to_be_bytes(),
        &0xabcd_0001u32.to_be_bytes(),
        inner,
    ])
}

pub fn tcp(sp: u16, dp: u16) -> Vec<u8> {
    let mut t = cat(&[
        &sp.to_be_bytes(),
        &dp.to_be_bytes(),
        &1000u32.to_be_bytes(),
        &0u32.to_be_bytes(),
    ]);
    t.extend_from_slice(&[0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
    t
}

pub fn udp(sp: u16, dp: u16, payload: &[u8]) -> Vec<u8> {
    let len = (8 + payload.len()) as u16;
    cat(&[
        &sp.to_be_bytes(),
        &dp.to_be_bytes(),
        &len.to_be_bytes(),
        &[0, 0],
        payload,
    ])
}

pub(super) fn icmp(ty: u8, code: u8) -> Vec<u8> {
    std::vec![ty, code, 0, 0, 0, 7, 0, 1]
}

pub(super) fn arp(op: u16, spa: [u8; 4], tpa: [u8; 4]) -> Vec<u8> {
    let mac = [0x02, 0, 0, 0, 0, 0xaa];
    cat(&[
        &[0, 1, 8, 0, 6, 4],
        &op.to_be_bytes(),
        &mac,
        &spa,
        &[0; 6],
        &tpa,
    ])
}

pub(super) fn sum_ip(src: Addr, dst: Addr, proto: IpProto, transport: Transport) -> Summary {
    let mut s = Summary::empty();
    s.ethertype = if matches!(src, Addr::V4(_)) {
        EtherType::IPV4
    } else {
        EtherType::IPV6
    };
    s.net = Net::Ip(Ip {
        src,
        dst,
        proto,
        ttl: 64,
        id: 0,
        frag_offset: 0,
        more_fragments: false,
        payload_len: 0,
    });
    s.transport = transport;
    s
}

pub(super) fn t_tcp(sp: u16, dp: u16) -> Transport {
    Transport::Tcp {
        src_port: sp,
        dst_port: dp,
        seq: 1000,
        ack: 0,
        flags: 2,
        window: 0xffff,
        hdr_len: 20,
    }
}

pub(super) fn t_udp(sp: u16, dp: u16) -> Transport {
    Transport::Udp {
        src_port: sp,
        dst_port: dp,
        length: 8,
    }
}

pub(super) fn t_icmp(ty: u8) -> Transport {
    Transport::Icmp {
        ty,
        code: 0,
        id: 0,
        seq: 0,
    }
}

pub(super) fn tunnel(kind: TunnelKind, src: Addr, dst: Addr, ports: (u16, u16)) -> Tunnel {
    Tunnel {
        kind,
        src,
        dst,
        outer_id: 0,
        src_port: ports.0,
        dst_port: ports.1,
    }
}

pub(super) fn frame(name: &'static str, bytes: Vec<u8>, summary: Summary) -> Frame {
    Frame {
        name,
        bytes,
        anc: Ancillary::ethernet(2),
        summary,
    }
}

pub fn all() -> Vec<Frame> {
    let (a, b) = (Addr::V4(V4_A), Addr::V4(V4_B));
    let d = V4Opts::default();
    let mut out = Vec::new();

    out.push(frame(
        "ip4 tcp",
        eth(0x800, &ipv4(V4_A, V4_B, 6, &tcp(40000, 80), d)),
        sum_ip(a, b, IpProto::TCP, t_tcp(40000, 80)),
    ));

    let (mdns_src, mdns_dst) = ([192, 168, 1, 5], [224, 0, 0, 251]);
    let with_opts = V4Opts { options: 8, ..d };
    out.push(frame(
        "ip4 options udp",
        eth(
            0x800,
            &ipv4(mdns_src, mdns_dst, 17, &udp(5353, 5353, b"q"), with_opts),
        ),
        sum_ip(
            Addr::V4(mdns_src),
            Addr::V4(mdns_dst),
            IpProto::UDP,
            t_udp(5353, 5353),
        ),
    ));

    out.push(frame(
        "ip4 icmp",
        eth(0x800, &ipv4(V4_B, V4_A, 1, &icmp(8, 0), d)),
        sum_ip(b, a, IpProto::ICMP, t_icmp(8)),
    ));

    let far = [10, 9, 9, 9];
    let first = V4Opts {
        more_fragments: true,
        ..d
    };
    let mut s = sum_ip(a, Addr::V4(far), IpProto::UDP, t_udp(53, 1234));
    if let Net::Ip(ip) = &mut s.net {
        ip.more_fragments = true;
    }
    out.push(frame(
        "ip4 first fragment",
        eth(0x800, &ipv4(V4_A, far, 17, &udp(53, 1234, &[0; 16]), first)),
        s,
    ));

    let later = V4Opts {
        frag_offset: 185,
        ..d
    };
    let mut s = sum_ip(a, Addr::V4(far), IpProto::UDP, Transport::None);
    if let Net::Ip(ip) = &mut s.net {
        ip.frag_offset = 185;
    }
    // Payload bytes that would read as ports 80 -> 80 if taken for a UDP header.
    out.push(frame(
        "ip4 later fragment",
        eth(
            0x800,
            &ipv4(V4_A, far, 17, &[0, 80, 0, 80, 0, 8, 0, 0], later),
        ),
        s,
    ));

    let (g1, g2, g3) = (v6("2001:db8::1"), v6("2001:db8::2"), v6("2001:db8::3"));
    out.push(frame(
        "ip6 tcp",
        eth(0x86dd, &ipv6(g1, g2, 6, &tcp(443, 50000))),
        sum_ip(Addr::V6(g1), Addr::V6(g2), IpProto::TCP, t_tcp(443, 50000)),
    ));

    let (ll, mc) = (v6("fe80::1"), v6("ff02::1:2"));
    out.push(frame(
        "ip6 hop-by-hop udp",
        eth(0x86dd, &ipv6(ll, mc, 0, &ext8(17, &udp(546, 547, b"x")))),
        sum_ip(Addr::V6(ll), Addr::V6(mc), IpProto::UDP, t_udp(546, 547)),
    ));

    out.push(frame(
        "ip6 first fragment udp",
        eth(
            0x86dd,
            &ipv6(g1, g3, 44, &frag6(17, 0, true, &udp(5000, 53, &[0; 8]))),
        ),
        sum_ip(Addr::V6(g1), Addr::V6(g3), IpProto::UDP, t_udp(5000, 53)),
    ));

    out.push(frame(
        "ip6 later fragment",
        eth(
            0x86dd,
            &ipv6(
                g1,
                g3,
                44,
                &frag6(17, 100, false, &[0, 53, 0, 53, 0, 8, 0, 0]),
            ),
        ),
        sum_ip(Addr::V6(g1), Addr::V6(g3), IpProto::UDP, Transport::None),
    ));

    let (ll2, sn) = (v6("fe80::2"), v6("ff02::1:ff00:1"));
    out.push(frame(
        "ip6 dstopts icmp6",
        eth(0x86dd, &ipv6(ll2, sn, 60, &ext8(58, &icmp(135, 0)))),
        sum_ip(Addr::V6(ll2), Addr::V6(sn), IpProto::ICMPV6, t_icmp(135)),
    ));

    let (spa, tpa) = ([192, 168, 1, 1], [192, 168, 1, 9]);
    let mut s = Summary::empty();
    s.ethertype = EtherType::ARP;
    s.net = Net::Arp { op: 1, spa, tpa };
    out.push(frame("arp", eth(0x806, &arp(1, spa, tpa)), s));

    let (h1, h2) = ([10, 1, 1, 1], [10, 1, 1, 2]);
    let mut s = sum_ip(Addr::V4(h1), Addr::V4(h2), IpProto::TCP, t_tcp(22, 5555));
    s.vlan = Some(100);
    out.push(frame(
        "vlan 100 ip4 tcp",
        eth_tagged(
            &[(0x8100, 0x2064)],
            0x800,
            &ipv4(h1, h2, 6, &tcp(22, 5555), d),
        ),
        s,
    ));

    let mut s = sum_ip(a, b, IpProto::UDP, t_udp(5000, 53));
    s.vlan = Some(200);
    let mut f = frame(
        "stripped vlan 200",
        eth(0x800, &ipv4(V4_A, V4_B, 17, &udp(5000, 53, b"dns"), d)),
        s,
    );
    f.anc.vlan_tci = Some(0x20c8);
    out.push(f);

    let mut s = sum_ip(Addr::V6(g1), Addr::V6(g2), IpProto::UDP, t_udp(1, 2));
    s.vlan = Some(10);
    out.push(frame(
        "qinq ip6 udp",
        eth_tagged(
            &[(0x88a8, 10), (0x8100, 20)],
            0x86dd,
            &ipv6(g1, g2, 17, &udp(1, 2, b"")),
        ),
        s,
    ));

    out.extend(tunnels());
    out.extend(odd_frames());
    out.extend(super::deep_frames::all());
    out
}

fn tunnels() -> Vec<Frame> {
    let d = V4Opts::default();
    let mut out = Vec::new();
    let (o1, o2) = ([192, 0, 2, 1], [192, 0, 2, 2]);
    let (i1, i2) = ([172, 16, 0, 1], [172, 16, 0, 2]);
    let inner = eth(0x800, &ipv4(i1, i2, 6, &tcp(1234, 22), d));
    let vx = cat(&[&[0x08, 0, 0, 0, 0, 0, 42, 0], &inner]);
    let mut s = sum_ip(Addr::V4(i1), Addr::V4(i2), IpProto::TCP, t_tcp(1234, 22));
    let vk = TunnelKind::Vxlan { vni: 42 };
    s.tunnels
        .push(tunnel(vk, Addr::V4(o1), Addr::V4(o2), (51000, 4789)))
        .unwrap();
    out.push(frame(
        "vxlan ip4 tcp",
        eth(0x800, &ipv4(o1, o2, 17, &udp(51000, 4789, &vx), d)),
        s,
    ));

    let (r1, r2, n1, n2) = (
        [198, 51, 100, 1],
        [198, 51, 100, 2],
        [10, 8, 0, 1],
        [10, 8, 0, 2],
    );
    let gre = cat(&[
        &[0x20, 0, 0x08, 0],
        &5u32.to_be_bytes(),
        &ipv4(n1, n2, 1, &icmp(0, 0), d),
    ]);
    let mut s = sum_ip(Addr::V4(n1), Addr::V4(n2), IpProto::ICMP, t_icmp(0));
    let gk = TunnelKind::Gre { key: Some(5) };
    s.tunnels
        .push(tunnel(gk, Addr::V4(r1), Addr::V4(r2), (0, 0)))
        .unwrap();
    out.push(frame(
        "gre key ip4 icmp",
        eth(0x800, &ipv4(r1, r2, 47, &gre, d)),
        s,
    ));

    let (g1, g2) = (v6("2001:db8::a"), v6("2001:db8::b"));
    let inner = ipv4(V4_A, V4_B, 17, &udp(1000, 2000, b""), d);
    let mut s = sum_ip(
        Addr::V4(V4_A),
        Addr::V4(V4_B),
        IpProto::UDP,
        t_udp(1000, 2000),
    );
    s.tunnels
        .push(tunnel(
            TunnelKind::IpInIp,
            Addr::V6(g1),
            Addr::V6(g2),
            (0, 0),
        ))
        .unwrap();
    out.push(frame("4in6 udp", eth(0x86dd, &ipv6(g1, g2, 4, &inner)), s));

    let (q1, q2) = ([203, 0, 113, 1], [203, 0, 113, 2]);
    let inner = ipv4(V4_B, [8, 8, 8, 8], 17, &udp(3333, 53, b""), d);
    let geneve = cat(&[&[0x01, 0, 0x08, 0x00, 0, 0, 9, 0], &[0; 4], &inner]);
    let mut s = sum_ip(
        Addr::V4(V4_B),
        Addr::V4([8, 8, 8, 8]),
        IpProto::UDP,
        t_udp(3333, 53),
    );
    let gk = TunnelKind::Geneve { vni: 9 };
    s.tunnels
        .push(tunnel(gk, Addr::V4(q1), Addr::V4(q2), (40000, 6081)))
        .unwrap();
    out.push(frame(
        "geneve option ip4 udp",
        eth(0x800, &ipv4(q1, q2, 17, &udp(40000, 6081, &geneve), d)),
        s,
    ));

    let inner = ipv4([10, 45, 0, 1], [10, 45, 0, 2], 6, &tcp(80, 40001), d);
    let gtp = cat(&[
        &[0x32, 0xff],
        &((inner.len() + 4) as u16).to_be_bytes(),
        &7u32.to_be_bytes(),
        &[0, 1, 0, 0],
        &inner,
    ]);
    let mut s = sum_ip(
        Addr::V4([10, 45, 0, 1]),
        Addr::V4([10, 45, 0, 2]),
        IpProto::TCP,
        t_tcp(80, 40001),
    );
    let tk = TunnelKind::Gtpu { teid: 7 };
    s.tunnels
        .push(tunnel(tk, Addr::V4(q1), Addr::V4(q2), (2152, 2152)))
        .unwrap();
    out.push(frame(
        "gtp-u seq ip4 tcp",
        eth(0x800, &ipv4(q1, q2, 17, &udp(2152, 2152, &gtp), d)),
        s,
    ));
    out
}

fn odd_frames() -> Vec<Frame> {
    let d = V4Opts::default();
    let (a, b) = (Addr::V4(V4_A), Addr::V4(V4_B));
    let mut out = Vec::new();

    let (w1, w2) = ([10, 7, 0, 1], [10, 7, 0, 2]);
    let mut f = frame(
        "raw ip link udp",
        ipv4(w1, w2, 17, &udp(51820, 51820, b"wg"), d),
        sum_ip(
            Addr::V4(w1),
            Addr::V4(w2),
            IpProto::UDP,
            t_udp(51820, 51820),
        ),
    );
    f.anc.hatype = 0xfffe;
    out.push(f);

    let mut bytes = eth(0x800, &ipv4(V4_A, V4_B, 6, &tcp(40000, 80), d));
    bytes.truncate(14 + 20 + 10);
    out.push(frame(
        "ip4 tcp truncated",
        bytes,
        sum_ip(a, b, IpProto::TCP, Transport::None),
    ));

    let mut s = Summary::empty();
    s.ethertype = EtherType(0x88cc);
    out.push(frame("lldp", eth(0x88cc, &[2, 7, 4, 0, 0, 0, 0, 0, 1]), s));

    let bad = V4Opts {
        ihl_override: Some(4),
        ..d
    };
    let mut s = Summary::empty();
    s.ethertype = EtherType::IPV4;
    out.push(frame(
        "ip4 ihl 4",
        eth(0x800, &ipv4(V4_A, V4_B, 6, &tcp(1, 2), bad)),
        s,
    ));

    let mpls = cat(&[
        &[0, 0x01, 0x01, 64],
        &ipv4(V4_B, V4_A, 6, &tcp(179, 40000), d),
    ]);
    out.push(frame(
        "mpls ip4 tcp",
        eth(0x8847, &mpls),
        sum_ip(b, a, IpProto::TCP, t_tcp(179, 40000)),
    ));

    let ip = ipv4(V4_A, V4_B, 17, &udp(68, 67, b""), d);
    let pppoe = cat(&[
        &[0x11, 0, 0, 1],
        &((ip.len() + 2) as u16).to_be_bytes(),
        &[0, 0x21],
        &ip,
    ]);
    out.push(frame(
        "pppoe ip4 udp",
        eth(0x8864, &pppoe),
        sum_ip(a, b, IpProto::UDP, t_udp(68, 67)),
    ));

    let (c1, c2) = ([10, 0, 0, 5], [10, 0, 0, 9]);
    out.push(frame(
        "collector link",
        eth(0x800, &ipv4(c1, c2, 6, &tcp(43210, 7077), d)),
        sum_ip(Addr::V4(c1), Addr::V4(c2), IpProto::TCP, t_tcp(43210, 7077)),
    ));
    out
}

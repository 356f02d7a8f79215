extern crate std;
use super::*;
use crate::print::line::tests::{ip4, summary};
use crate::summary::Ip;
use crate::types::EtherType;
use std::string::String;

fn ip(src: Addr, dst: Addr, proto: IpProto, payload_len: u16) -> Net {
    Net::Ip(Ip {
        src,
        dst,
        ..ip4([0; 4], [0; 4], proto, payload_len)
    })
}

fn described(s: &Summary) -> (String, String) {
    let (mut d, mut f) = (String::new(), String::new());
    write_description(&mut d, s).unwrap();
    write_flow_label(&mut f, s).unwrap();
    (d, f)
}

const A: Addr = Addr::V4([172, 17, 0, 2]);
const B: Addr = Addr::V4([198, 51, 100, 101]);

fn icmp(proto: IpProto, ty: u8, code: u8) -> Summary {
    let t = Transport::Icmp {
        ty,
        code,
        id: 16384,
        seq: 3,
    };
    summary(ip(A, B, proto, 64), t)
}

#[test]
fn icmp_words() {
    let cases = [
        (
            IpProto::ICMP,
            8,
            0,
            "ICMP echo request 172.17.0.2 > 198.51.100.101 id 16384 seq 3",
        ),
        (
            IpProto::ICMP,
            0,
            0,
            "ICMP echo reply 172.17.0.2 > 198.51.100.101 id 16384 seq 3",
        ),
        (
            IpProto::ICMP,
            3,
            3,
            "ICMP unreachable code 3 172.17.0.2 > 198.51.100.101",
        ),
        (
            IpProto::ICMP,
            11,
            0,
            "ICMP time exceeded code 0 172.17.0.2 > 198.51.100.101",
        ),
        (
            IpProto::ICMP,
            5,
            1,
            "ICMP type 5 code 1 172.17.0.2 > 198.51.100.101",
        ),
        (
            IpProto::ICMPV6,
            128,
            0,
            "ICMP6 echo request 172.17.0.2 > 198.51.100.101 id 16384 seq 3",
        ),
        (
            IpProto::ICMPV6,
            2,
            0,
            "ICMP6 packet too big code 0 172.17.0.2 > 198.51.100.101",
        ),
        (
            IpProto::ICMPV6,
            135,
            0,
            "ICMP6 neighbor solicitation code 0 172.17.0.2 > 198.51.100.101",
        ),
        (
            IpProto::ICMPV6,
            1,
            4,
            "ICMP6 unreachable code 4 172.17.0.2 > 198.51.100.101",
        ),
    ];
    for (proto, ty, code, want) in cases {
        assert_eq!(described(&icmp(proto, ty, code)).0, want);
    }
    assert_eq!(
        described(&icmp(IpProto::ICMP, 8, 0)).1,
        "ICMP 172.17.0.2 > 198.51.100.101 id 16384"
    );
    assert_eq!(
        described(&icmp(IpProto::ICMPV6, 1, 4)).1,
        "ICMP6 172.17.0.2 > 198.51.100.101"
    );
}

#[test]
fn ports_addresses_and_fragments() {
    let v6 = |b| Addr::V6([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, b]);
    let udp = Transport::Udp {
        src_port: 5353,
        dst_port: 53,
        length: 40,
    };
    let mut s = summary(ip(v6(1), v6(2), IpProto::UDP, 40), udp);
    assert_eq!(
        described(&s),
        (
            "UDP [fd00::1]:5353 > [fd00::2]:53 len 32".into(),
            "UDP [fd00::1]:5353 > [fd00::2]:53".into()
        )
    );
    if let Net::Ip(ip) = &mut s.net {
        ip.more_fragments = true;
    }
    assert!(described(&s).0.ends_with(" len 32 frag off 0+"));
    let gre = summary(ip(A, B, IpProto(47), 20), Transport::None);
    assert_eq!(described(&gre).0, "IP proto 47 172.17.0.2 > 198.51.100.101");
    assert_eq!(described(&gre).1, "GRE 172.17.0.2 > 198.51.100.101");
}

#[test]
fn tcp_flags_are_the_tcpdump_lines_letters() {
    let tcp = |flags| Transport::Tcp {
        src_port: 40000,
        dst_port: 80,
        seq: 7,
        ack: 1,
        flags,
        window: 502,
        hdr_len: 20,
    };
    let s = summary(ip(A, B, IpProto::TCP, 30), tcp(0x019));
    assert_eq!(
        described(&s).0,
        "TCP 172.17.0.2:40000 > 198.51.100.101:80 [FP.] seq 7 ack 1 len 10"
    );
    let s = summary(ip(A, B, IpProto::TCP, 20), tcp(0));
    assert_eq!(
        described(&s).0,
        "TCP 172.17.0.2:40000 > 198.51.100.101:80 [none] seq 7 len 0"
    );
}

#[test]
fn without_ip() {
    let who_has = Summary {
        net: Net::Arp {
            op: 1,
            spa: [10, 0, 0, 1],
            tpa: [10, 0, 0, 2],
        },
        ethertype: EtherType::ARP,
        ..Summary::empty()
    };
    assert_eq!(
        described(&who_has),
        (
            "ARP who-has 10.0.0.2 tell 10.0.0.1".into(),
            "ARP who-has 10.0.0.2 tell 10.0.0.1".into()
        )
    );
    let other = Summary {
        ethertype: EtherType(0x88cc),
        ..Summary::empty()
    };
    assert_eq!(described(&other).0, "ethertype 0x88cc");
}

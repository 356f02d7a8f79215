//! Whole-walk tests: built frames in, layer stacks and stops out.

use super::fixtures::*;
use super::*;
use crate::layer::{Invalid, Ipv6Frag, LayerKind as K, MAX_LAYERS};
use crate::types::Mac;

const IPV4: u16 = 0x0800;
const IPV6: u16 = 0x86dd;
const UDP: u8 = 17;
const TCP: u8 = 6;

fn run(link: LinkType, frame: &[u8]) -> Decoded {
    decode(link, frame, &DecodeOptions::default())
}

fn eth_run(frame: &[u8]) -> Decoded {
    run(LinkType::ETHERNET, frame)
}

fn kinds(d: &Decoded) -> heapless::Vec<LayerKind, MAX_LAYERS> {
    d.layers.iter().map(Layer::kind).collect()
}

fn stop(offset: u16, kind: LayerKind, reason: StopReason) -> Option<Stop> {
    Some(Stop {
        offset,
        kind,
        reason,
    })
}

#[test]
fn ethernet_ipv4_tcp() {
    let frame = eth(IPV4, &ipv4(TCP, &tcp(40000, 80, 0x018, b"GET /")));
    let d = eth_run(&frame);
    assert_eq!(kinds(&d), [K::Ethernet, K::Ipv4, K::Tcp]);
    assert_eq!(
        d.layers[0],
        Layer::Ethernet {
            src: Mac(MAC_SRC),
            dst: Mac(MAC_DST),
            ethertype: EtherType::IPV4
        }
    );
    match d.layers[2] {
        Layer::Tcp {
            src_port,
            dst_port,
            seq,
            ack,
            flags,
            hdr_len,
            ..
        } => {
            assert_eq!(
                (src_port, dst_port, seq, ack, flags, hdr_len),
                (40000, 80, 1000, 2000, 0x018, 20)
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!((d.payload_offset, d.payload_len, d.stop), (54, 5, None));
}

#[test]
fn ethernet_padding_is_not_payload() {
    let mut frame = eth(IPV4, &ipv4(UDP, &udp(5000, 53, b"q")));
    frame.resize(60, 0).unwrap();
    let d = eth_run(&frame);
    assert_eq!((d.payload_offset, d.payload_len, d.stop), (42, 1, None));
}

#[test]
fn stripped_tag_follows_the_link_header() {
    let frame = eth(IPV4, &ipv4(UDP, &udp(1, 2, b"")));
    let opts = DecodeOptions {
        stripped_vlan_tci: Some(0x2064),
        ..DecodeOptions::default()
    };
    let d = decode(LinkType::ETHERNET, &frame, &opts);
    assert_eq!(kinds(&d), [K::Ethernet, K::Vlan, K::Ipv4, K::Udp]);
    assert_eq!(
        d.layers[1],
        Layer::Vlan {
            tpid: 0x8100,
            pcp: 1,
            dei: false,
            id: 100,
            ethertype: EtherType::IPV4,
            stripped: true
        }
    );
}

#[test]
fn qinq_then_arp() {
    let frame = eth(
        0x88a8,
        &tag(200, 0x8100, &tag(2001, 0x0806, &arp_request())),
    );
    let d = eth_run(&frame);
    assert_eq!(kinds(&d), [K::Ethernet, K::Vlan, K::Vlan, K::Arp]);
    assert!(matches!(
        d.layers[1],
        Layer::Vlan {
            tpid: 0x88a8,
            id: 200,
            ..
        }
    ));
    assert!(matches!(
        d.layers[2],
        Layer::Vlan {
            tpid: 0x8100,
            id: 2001,
            ..
        }
    ));
    assert!(matches!(
        d.layers[3],
        Layer::Arp {
            op: 1,
            spa: V4_SRC,
            tpa: V4_DST,
            ..
        }
    ));
    assert_eq!(d.stop, None);
}

#[test]
fn vxlan_on_both_default_ports_and_a_configured_one() {
    let inner = eth(IPV4, &ipv4(1, &icmp(8, 0, [0, 7, 0, 1], b"ping")));
    for port in [4789, 8472] {
        let frame = eth(IPV4, &ipv4(UDP, &udp(51000, port, &vxlan(42, &inner))));
        let d = eth_run(&frame);
        assert_eq!(
            kinds(&d),
            [
                K::Ethernet,
                K::Ipv4,
                K::Udp,
                K::Vxlan,
                K::Ethernet,
                K::Ipv4,
                K::Icmp
            ]
        );
        assert_eq!(
            d.layers[3],
            Layer::Vxlan {
                flags: 0x08,
                vni: 42
            }
        );
        assert_eq!(
            d.layers[6],
            Layer::Icmp {
                ty: 8,
                code: 0,
                checksum: 0,
                id: 7,
                seq: 1
            }
        );
        assert_eq!(d.payload_len, 4);
    }
    let frame = eth(IPV4, &ipv4(UDP, &udp(51000, 9999, &vxlan(42, &inner))));
    assert_eq!(kinds(&eth_run(&frame)), [K::Ethernet, K::Ipv4, K::Udp]);
    let opts = DecodeOptions {
        tunnel_ports: TunnelPorts {
            vxlan: [9999, 0],
            ..TunnelPorts::default()
        },
        ..DecodeOptions::default()
    };
    assert_eq!(decode(LinkType::ETHERNET, &frame, &opts).layers.len(), 7);
}

#[test]
fn geneve_with_options_carrying_bare_ipv6() {
    let inner = ipv6(UDP, &udp(40000, 40001, b"data"));
    let frame = eth(
        IPV4,
        &ipv4(
            UDP,
            &udp(
                12345,
                6081,
                &geneve(IPV6, 0x123456, &[1, 2, 3, 4, 5, 6, 7, 8], &inner),
            ),
        ),
    );
    let d = eth_run(&frame);
    assert_eq!(
        kinds(&d),
        [K::Ethernet, K::Ipv4, K::Udp, K::Geneve, K::Ipv6, K::Udp]
    );
    assert!(matches!(
        d.layers[3],
        Layer::Geneve {
            opt_len: 2,
            vni: 0x123456,
            ..
        }
    ));
    assert_eq!(d.payload_len, 4);
}

#[test]
fn gre_with_key_to_ipv4_and_teb_to_ethernet() {
    let inner = ipv4(UDP, &udp(1, 53, b""));
    let d = eth_run(&eth(IPV4, &ipv4(47, &gre(IPV4, Some(7), &inner))));
    assert_eq!(kinds(&d), [K::Ethernet, K::Ipv4, K::Gre, K::Ipv4, K::Udp]);
    assert!(matches!(
        d.layers[2],
        Layer::Gre {
            key: Some(7),
            version: 0,
            ..
        }
    ));
    let d = eth_run(&eth(
        IPV4,
        &ipv4(47, &gre(0x6558, None, &eth(IPV4, &inner))),
    ));
    assert_eq!(
        kinds(&d),
        [K::Ethernet, K::Ipv4, K::Gre, K::Ethernet, K::Ipv4, K::Udp]
    );
}

#[test]
fn erspan_type3_and_pptp_ppp() {
    let mut erspan3 = [0u8; 12];
    erspan3[0] = 0x20;
    let inner = eth(IPV4, &ipv4(1, &icmp(8, 0, [0; 4], b"")));
    let d = eth_run(&eth(
        IPV4,
        &ipv4(47, &gre(0x22eb, None, &cat(&[&erspan3, &inner]))),
    ));
    assert_eq!(
        kinds(&d),
        [K::Ethernet, K::Ipv4, K::Gre, K::Ethernet, K::Ipv4, K::Icmp]
    );
    // Enhanced GRE: K + S, version 1, PPP; then PPP address/control and protocol IPv4.
    let pptp = cat(&[
        &[
            0x30, 0x01, 0x88, 0x0b, 0, 24, 0, 1, 0, 0, 0, 9, 0xff, 0x03, 0x00, 0x21,
        ],
        &ipv4(UDP, &udp(1, 2, b"")),
    ]);
    let d = eth_run(&eth(IPV4, &ipv4(47, &pptp)));
    assert_eq!(kinds(&d), [K::Ethernet, K::Ipv4, K::Gre, K::Ipv4, K::Udp]);
    assert!(matches!(
        d.layers[2],
        Layer::Gre {
            version: 1,
            key: Some(0x0018_0001),
            seq: Some(9),
            ..
        }
    ));
}

#[test]
fn ip_in_ip_both_ways() {
    let d = eth_run(&eth(IPV4, &ipv4(41, &ipv6(UDP, &udp(1, 2, b"")))));
    assert_eq!(kinds(&d), [K::Ethernet, K::Ipv4, K::Ipv6, K::Udp]);
    let d = eth_run(&eth(IPV6, &ipv6(4, &ipv4(TCP, &tcp(1, 2, 0x002, b"")))));
    assert_eq!(kinds(&d), [K::Ethernet, K::Ipv6, K::Ipv4, K::Tcp]);
}

#[test]
fn icmp_error_quotes_ip_and_udp() {
    let quoted = ipv4_frag(UDP, 0, V4_DST, V4_SRC, &udp(53, 59207, &[0; 8]));
    let frame = eth(IPV4, &ipv4(1, &icmp(3, 3, [0; 4], &quoted)));
    let d = eth_run(&frame);
    assert_eq!(kinds(&d), [K::Ethernet, K::Ipv4, K::Icmp, K::Ipv4, K::Udp]);
    assert!(matches!(
        d.layers[4],
        Layer::Udp {
            src_port: 53,
            dst_port: 59207,
            ..
        }
    ));
    assert_eq!(d.stop, None);
}

#[test]
fn icmp_error_quote_cut_short_stops_in_the_quote() {
    // The quoted datagram claims 200 bytes; only its IP header and 4 bytes are quoted.
    let mut quoted = ipv4_frag(UDP, 0, V4_DST, V4_SRC, &[0; 180]);
    quoted.truncate(24);
    let d = eth_run(&eth(IPV4, &ipv4(1, &icmp(11, 0, [0; 4], &quoted))));
    assert_eq!(kinds(&d), [K::Ethernet, K::Ipv4, K::Icmp, K::Ipv4]);
    assert_eq!(
        d.stop,
        stop(62, K::Udp, StopReason::Truncated { needed: 8, had: 4 })
    );
}

#[test]
fn icmpv6_error_quotes_a_fragment() {
    let quoted = ipv6(44, &frag6(UDP, 0, true, 0xd6b1, &udp(1, 2, b"")));
    let d = eth_run(&eth(IPV6, &ipv6(58, &icmp(4, 3, [0; 4], &quoted))));
    assert_eq!(
        kinds(&d),
        [K::Ethernet, K::Ipv6, K::Icmpv6, K::Ipv6, K::Ipv6Ext, K::Udp]
    );
    assert!(matches!(
        d.layers[4],
        Layer::Ipv6Ext {
            kind: IpProto::FRAGMENT,
            frag: Some(Ipv6Frag {
                offset: 0,
                more: true,
                ident: 0xd6b1
            }),
            ..
        }
    ));
}

#[test]
fn neighbor_solicitation_target() {
    let mut ns = icmp(135, 0, [0; 4], &V6_DST);
    ns.extend_from_slice(&[1, 1, 2, 0, 0, 0, 0, 1]).unwrap(); // source link-layer option
    let d = eth_run(&eth(IPV6, &ipv6(58, &ns)));
    assert!(matches!(
        d.layers[2],
        Layer::Icmpv6 {
            ty: 135,
            nd_target: Some(V6_DST),
            ..
        }
    ));
    assert_eq!((d.payload_len, d.stop), (8, None));
}

#[test]
fn later_ipv4_fragment_has_no_transport() {
    let frame = eth(IPV4, &ipv4_frag(UDP, 0x00b9, V4_SRC, V4_DST, &[0xaa; 44]));
    let d = eth_run(&frame);
    assert_eq!(kinds(&d), [K::Ethernet, K::Ipv4]);
    assert_eq!((d.payload_offset, d.payload_len, d.stop), (34, 44, None));
}

#[test]
fn ipv6_extension_chain_and_later_fragment() {
    let chain = ext8(
        43,
        &ext8(44, &frag6(60, 0, true, 5, &ext8(UDP, &udp(1, 2, b"x")))),
    );
    let d = eth_run(&eth(IPV6, &ipv6(0, &chain)));
    assert_eq!(
        kinds(&d),
        [
            K::Ethernet,
            K::Ipv6,
            K::Ipv6Ext,
            K::Ipv6Ext,
            K::Ipv6Ext,
            K::Ipv6Ext,
            K::Udp
        ]
    );
    let later = frag6(UDP, 100, false, 5, &[0xbb; 16]);
    let d = eth_run(&eth(IPV6, &ipv6(44, &later)));
    assert_eq!(kinds(&d), [K::Ethernet, K::Ipv6, K::Ipv6Ext]);
    assert_eq!((d.payload_len, d.stop), (16, None));
}

#[test]
fn ipv6_zero_payload_length_is_jumbo_only_before_hop_by_hop() {
    let mut frame = eth(IPV6, &ipv6(0, &ext8(TCP, &tcp(1, 2, 0x010, b"big"))));
    frame[18..20].copy_from_slice(&[0, 0]);
    assert_eq!(
        kinds(&eth_run(&frame)),
        [K::Ethernet, K::Ipv6, K::Ipv6Ext, K::Tcp]
    );
    let mut frame = eth(IPV6, &ipv6(44, &frag6(UDP, 0, true, 1, &udp(1, 2, b""))));
    frame[18..20].copy_from_slice(&[0, 0]);
    let d = eth_run(&frame);
    assert_eq!(
        d.stop,
        stop(54, K::Ipv6Ext, StopReason::Truncated { needed: 8, had: 0 })
    );
}

#[test]
fn truncated_invalid_and_unsupported_stops() {
    let frame = eth(IPV4, &ipv4(TCP, &tcp(1, 2, 0x002, b"")));
    let d = eth_run(&frame[..44]);
    assert_eq!(kinds(&d), [K::Ethernet, K::Ipv4]);
    assert_eq!(
        d.stop,
        stop(
            34,
            K::Tcp,
            StopReason::Truncated {
                needed: 20,
                had: 10
            }
        )
    );
    assert_eq!((d.payload_offset, d.payload_len), (34, 10));

    let mut bad = frame.clone();
    bad[14] = 0x44;
    assert_eq!(
        eth_run(&bad).stop,
        stop(14, K::Ipv4, StopReason::Invalid(Invalid::Ipv4HeaderLen(16)))
    );

    let d = eth_run(&eth(0x9000, b"loop"));
    assert_eq!(
        (kinds(&d).len(), d.stop),
        (1, stop(14, K::Other, StopReason::Unsupported(0x9000)))
    );
    let d = eth_run(&eth(IPV4, &ipv4(132, b"sctp")));
    assert_eq!(d.stop, stop(34, K::Other, StopReason::Unsupported(132)));
    assert_eq!(
        run(LinkType(9999), b"x").stop,
        stop(0, K::Other, StopReason::Unsupported(9999))
    );
}

#[test]
fn too_many_tags_is_too_deep() {
    let mut inner = ipv4(UDP, &udp(1, 2, b""));
    for _ in 0..MAX_LAYERS {
        inner = tag(1, 0x8100, &inner);
    }
    let d = eth_run(&eth(0x8100, &inner));
    assert_eq!(d.layers.len(), MAX_LAYERS);
    let offset = (14 + 4 * (MAX_LAYERS - 1)) as u16;
    assert_eq!(d.stop, stop(offset, K::Vlan, StopReason::TooDeep));
}

#[test]
fn mpls_stacks_in_ethernet_and_udp() {
    let inner = ipv4(1, &icmp(0, 0, [0; 4], b""));
    let d = eth_run(&eth(0x8847, &mpls(254, false, &mpls(99, true, &inner))));
    assert_eq!(kinds(&d), [K::Ethernet, K::Mpls, K::Mpls, K::Ipv4, K::Icmp]);
    assert!(matches!(
        d.layers[2],
        Layer::Mpls {
            label: 99,
            bottom: true,
            ..
        }
    ));
    let d = eth_run(&eth(
        IPV4,
        &ipv4(UDP, &udp(58699, 6635, &mpls(21, true, &inner))),
    ));
    assert_eq!(
        kinds(&d),
        [K::Ethernet, K::Ipv4, K::Udp, K::Mpls, K::Ipv4, K::Icmp]
    );
}

#[test]
fn pppoe_session_and_discovery() {
    let d = eth_run(&eth(
        0x8864,
        &pppoe_session(0x1234, 0x0021, &ipv4(UDP, &udp(1, 2, b""))),
    ));
    assert_eq!(kinds(&d), [K::Ethernet, K::Pppoe, K::Ipv4, K::Udp]);
    let d = eth_run(&eth(0x8864, &pppoe_session(0x1234, 0xc021, b"lcp")));
    assert_eq!(d.stop, stop(22, K::Other, StopReason::Unsupported(0xc021)));
    let d = eth_run(&eth(0x8863, &[0x11, 0x09, 0, 0, 0, 4, 1, 1, 0, 0]));
    assert_eq!(kinds(&d), [K::Ethernet, K::Pppoe]);
    assert_eq!((d.payload_len, d.stop), (4, None));
}

#[test]
fn gtpu_gpdu_carries_ip() {
    let inner = ipv4(UDP, &udp(1, 2, b"user"));
    let d = eth_run(&eth(
        IPV4,
        &ipv4(UDP, &udp(2152, 2152, &gtpu(0x100657, &inner))),
    ));
    assert_eq!(
        kinds(&d),
        [K::Ethernet, K::Ipv4, K::Udp, K::Gtpu, K::Ipv4, K::Udp]
    );
    assert_eq!(
        d.layers[3],
        Layer::Gtpu {
            msg_type: 0xff,
            teid: 0x100657
        }
    );
    // Not GTPv1 on the GTP port (RTP inside the tunnel): payload, not a second tunnel.
    let rtp = ipv4(UDP, &udp(2152, 2152, &[0x80, 0xe1, 0x42, 0x63, 0, 0, 0, 0]));
    let d = eth_run(&eth(
        IPV4,
        &ipv4(UDP, &udp(2152, 2152, &gtpu(0x3318, &rtp))),
    ));
    assert_eq!(
        kinds(&d),
        [K::Ethernet, K::Ipv4, K::Udp, K::Gtpu, K::Ipv4, K::Udp]
    );
    assert_eq!((d.payload_len, d.stop), (8, None));
}

#[test]
fn cooked_loopback_and_raw_links() {
    let ip = ipv4(UDP, &udp(1, 2, b""));
    let sll = cat(&[&[0, 4, 0, 1, 0, 6], &MAC_SRC, &[0, 0, 8, 0], &ip]);
    assert_eq!(
        kinds(&run(LinkType::LINUX_SLL, &sll)),
        [K::Sll, K::Ipv4, K::Udp]
    );
    let sll2 = cat(&[
        &[8, 0, 0, 0, 0, 0, 0, 3, 0, 1, 4, 6],
        &MAC_SRC,
        &[0, 0],
        &ip,
    ]);
    let d = run(LinkType::LINUX_SLL2, &sll2);
    assert!(matches!(
        d.layers[0],
        Layer::Sll2 {
            ifindex: 3,
            pkttype: crate::types::PacketType::OUTGOING,
            ..
        }
    ));
    assert_eq!(kinds(&d), [K::Sll2, K::Ipv4, K::Udp]);
    for family in [[2, 0, 0, 0], [0, 0, 0, 2]] {
        assert_eq!(
            kinds(&run(LinkType::NULL, &cat(&[&family, &ip]))),
            [K::Loopback, K::Ipv4, K::Udp]
        );
    }
    assert_eq!(kinds(&run(LinkType::RAW, &ip)), [K::Ipv4, K::Udp]);
    // LINKTYPE_IPV4 that carries IPv6: the version nibble wins.
    let v6 = ipv6(UDP, &udp(1, 2, b""));
    assert_eq!(kinds(&run(LinkType::IPV4, &v6)), [K::Ipv6, K::Udp]);
}

#[test]
fn cisco_shims_are_walked_through() {
    let ip = ipv4(UDP, &udp(1, 2, b""));
    let cmd = cat(&[&[1, 1, 0, 1, 0, 2, 8, 0], &ip]);
    assert_eq!(
        kinds(&eth_run(&eth(0x8909, &cmd))),
        [K::Ethernet, K::Ipv4, K::Udp]
    );
    let cmd_in_gre = cat(&[&[8, 0, 1, 1, 0, 1, 0, 0], &ip]);
    let d = eth_run(&eth(IPV4, &ipv4(47, &gre(0x8909, Some(40), &cmd_in_gre))));
    assert_eq!(kinds(&d), [K::Ethernet, K::Ipv4, K::Gre, K::Ipv4, K::Udp]);
    let vntag = cat(&[&[0x80, 1, 0, 2, 0x81, 0], &tag(11, IPV4, &ip)]);
    assert_eq!(
        kinds(&eth_run(&eth(0x8926, &vntag))),
        [K::Ethernet, K::Vlan, K::Ipv4, K::Udp]
    );
}

#[test]
fn every_prefix_decodes_without_panic_and_stops_cleanly() {
    let inner = eth(
        IPV6,
        &ipv6(
            0,
            &ext8(44, &frag6(TCP, 0, false, 1, &tcp(1, 2, 0x18, b""))),
        ),
    );
    let frame = eth(
        0x8100,
        &tag(5, IPV4, &ipv4(UDP, &udp(1, 4789, &vxlan(1, &inner)))),
    );
    let full = eth_run(&frame);
    assert_eq!(full.stop, None);
    for len in 0..frame.len() {
        let d = eth_run(&frame[..len]);
        assert!(
            matches!(
                d.stop,
                Some(Stop {
                    reason: StopReason::Truncated { .. },
                    ..
                })
            ),
            "len {len}: {d:?}"
        );
        assert!(usize::from(d.payload_offset) + usize::from(d.payload_len) <= len);
        assert!(d.layers.len() <= full.layers.len());
    }
}

#[test]
fn frames_longer_than_u16_are_bounded() {
    let mut frame = heapless::Vec::<u8, 70000>::new();
    frame
        .extend_from_slice(&eth(IPV4, &ipv4(TCP, &tcp(1, 2, 0x10, b""))))
        .unwrap();
    frame[16..18].copy_from_slice(&[0, 0]); // total length 0, as GSO leaves it
    frame.resize(70000, 0).unwrap();
    let d = eth_run(&frame);
    assert_eq!(kinds(&d), [K::Ethernet, K::Ipv4, K::Tcp]);
    assert_eq!((d.payload_offset, d.payload_len), (54, u16::MAX - 54));
}

#[test]
fn decode_into_a_reused_decoded_matches_decode() {
    let vxlan_frame = eth(
        IPV4,
        &ipv4(UDP, &udp(1, 4789, &vxlan(3, &eth(0x0806, &arp_request())))),
    );
    let cut = eth(IPV4, &ipv4(TCP, &tcp(1, 2, 0x002, b"")));
    let mut reused = Decoded::default();
    for frame in [&vxlan_frame[..], &cut[..40], &vxlan_frame[..], &[][..]] {
        decode_into(
            LinkType::ETHERNET,
            frame,
            &DecodeOptions::default(),
            &mut reused,
        );
        assert_eq!(reused, eth_run(frame));
    }
}

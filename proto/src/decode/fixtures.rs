//! Frame builders for tests: each wraps a payload in one header, with length fields
//! computed from the payload, so a test reads as the stack it builds, innermost last:
//! `eth(IPV4, &ipv4(UDP, &udp(1, 2, b"x")))`.

pub type Buf = heapless::Vec<u8, 4096>;

pub const MAC_SRC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
pub const MAC_DST: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
pub const V4_SRC: [u8; 4] = [10, 0, 0, 1];
pub const V4_DST: [u8; 4] = [10, 0, 0, 2];
pub const V6_SRC: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
pub const V6_DST: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
pub const IPV4_ID: u16 = 0x1234;

pub fn cat(parts: &[&[u8]]) -> Buf {
    let mut out = Buf::new();
    for part in parts {
        out.extend_from_slice(part).expect("fixture too large");
    }
    out
}

fn be16(v: usize) -> [u8; 2] {
    u16::try_from(v).expect("length fits u16").to_be_bytes()
}

pub fn eth(ethertype: u16, payload: &[u8]) -> Buf {
    cat(&[&MAC_DST, &MAC_SRC, &ethertype.to_be_bytes(), payload])
}

/// A VLAN tag's 4 bytes (TCI, inner EtherType) + payload; the TPID is the outer EtherType.
pub fn tag(tci: u16, ethertype: u16, payload: &[u8]) -> Buf {
    cat(&[&tci.to_be_bytes(), &ethertype.to_be_bytes(), payload])
}

/// IPv4 with id [`IPV4_ID`], TTL 64, `flags_frag` = the flags/fragment-offset word.
pub fn ipv4_frag(proto: u8, flags_frag: u16, src: [u8; 4], dst: [u8; 4], payload: &[u8]) -> Buf {
    let mut h = [0u8; 20];
    h[0] = 0x45;
    h[2..4].copy_from_slice(&be16(20 + payload.len()));
    h[4..6].copy_from_slice(&IPV4_ID.to_be_bytes());
    h[6..8].copy_from_slice(&flags_frag.to_be_bytes());
    h[8] = 64;
    h[9] = proto;
    h[12..16].copy_from_slice(&src);
    h[16..20].copy_from_slice(&dst);
    cat(&[&h, payload])
}

pub fn ipv4(proto: u8, payload: &[u8]) -> Buf {
    ipv4_frag(proto, 0x4000, V4_SRC, V4_DST, payload)
}

pub fn ipv6_from(next: u8, src: [u8; 16], dst: [u8; 16], payload: &[u8]) -> Buf {
    let mut h = [0u8; 40];
    h[0] = 0x60;
    h[4..6].copy_from_slice(&be16(payload.len()));
    h[6] = next;
    h[7] = 64;
    h[8..24].copy_from_slice(&src);
    h[24..40].copy_from_slice(&dst);
    cat(&[&h, payload])
}

pub fn ipv6(next: u8, payload: &[u8]) -> Buf {
    ipv6_from(next, V6_SRC, V6_DST, payload)
}

/// An 8-byte IPv6 options header (hop-by-hop, destination options, routing) with PadN.
pub fn ext8(next: u8, payload: &[u8]) -> Buf {
    cat(&[&[next, 0, 1, 4, 0, 0, 0, 0], payload])
}

pub fn frag6(next: u8, offset: u16, more: bool, ident: u32, payload: &[u8]) -> Buf {
    let off_m = (offset << 3) | u16::from(more);
    cat(&[
        &[next, 0],
        &off_m.to_be_bytes(),
        &ident.to_be_bytes(),
        payload,
    ])
}

pub fn udp(src: u16, dst: u16, payload: &[u8]) -> Buf {
    cat(&[
        &src.to_be_bytes(),
        &dst.to_be_bytes(),
        &be16(8 + payload.len()),
        &[0, 0],
        payload,
    ])
}

/// TCP with a 20-byte header, seq 1000, ack 2000, window 512.
pub fn tcp(src: u16, dst: u16, flags: u16, payload: &[u8]) -> Buf {
    let flags_word = (5u16 << 12) | flags;
    cat(&[
        &src.to_be_bytes(),
        &dst.to_be_bytes(),
        &1000u32.to_be_bytes(),
        &2000u32.to_be_bytes(),
        &flags_word.to_be_bytes(),
        &512u16.to_be_bytes(),
        &[0, 0, 0, 0],
        payload,
    ])
}

/// ICMP or ICMPv6: type, code, zero checksum, the 4-byte rest of header, payload.
pub fn icmp(ty: u8, code: u8, rest: [u8; 4], payload: &[u8]) -> Buf {
    cat(&[&[ty, code, 0, 0], &rest, payload])
}

pub fn vxlan(vni: u32, payload: &[u8]) -> Buf {
    let v = vni.to_be_bytes();
    cat(&[&[0x08, 0, 0, 0, v[1], v[2], v[3], 0], payload])
}

/// Geneve with `options` (a multiple of 4 bytes).
pub fn geneve(protocol: u16, vni: u32, options: &[u8], payload: &[u8]) -> Buf {
    let v = vni.to_be_bytes();
    let opt_words = u8::try_from(options.len() / 4).expect("few options");
    cat(&[
        &[opt_words, 0],
        &protocol.to_be_bytes(),
        &[v[1], v[2], v[3], 0],
        options,
        payload,
    ])
}

/// GRE version 0 with an optional key.
pub fn gre(protocol: u16, key: Option<u32>, payload: &[u8]) -> Buf {
    match key {
        Some(k) => cat(&[
            &[0x20, 0],
            &protocol.to_be_bytes(),
            &k.to_be_bytes(),
            payload,
        ]),
        None => cat(&[&[0, 0], &protocol.to_be_bytes(), payload]),
    }
}

pub fn mpls(label: u32, bottom: bool, payload: &[u8]) -> Buf {
    let word = (label << 12) | (u32::from(bottom) << 8) | 64;
    cat(&[&word.to_be_bytes(), payload])
}

/// A GTP-U G-PDU without optional fields.
pub fn gtpu(teid: u32, payload: &[u8]) -> Buf {
    cat(&[
        &[0x30, 0xff],
        &be16(payload.len()),
        &teid.to_be_bytes(),
        payload,
    ])
}

pub fn pppoe_session(session: u16, ppp_proto: u16, payload: &[u8]) -> Buf {
    cat(&[
        &[0x11, 0],
        &session.to_be_bytes(),
        &be16(2 + payload.len()),
        &ppp_proto.to_be_bytes(),
        payload,
    ])
}

/// An Ethernet/IPv4/ARP request from 10.0.0.1 for 10.0.0.2.
pub fn arp_request() -> Buf {
    cat(&[
        &[0, 1, 8, 0, 6, 4, 0, 1],
        &MAC_SRC,
        &V4_SRC,
        &[0; 6],
        &V4_DST,
    ])
}

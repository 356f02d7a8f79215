//! Synthetic frames as a board's links carry them: Ethernet + IPv4/IPv6 + ICMP/TCP/UDP, and
//! a flannel VXLAN (UDP 8472) copy of a pod's TCP segment. Checksums are left zero: nothing
//! on the capture path checks them. Shared by tests/no_alloc.rs and benches/pipeline.rs.

#![allow(dead_code)]

pub const ETH_IPV4: u16 = 0x0800;
pub const ETH_IPV6: u16 = 0x86dd;

pub fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0x42, 0xac, 0x11, 0, 2, 0x02, 0x42, 0xac, 0x11, 0, 1];
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

pub fn ipv4(proto: u8, src: [u8; 4], dst: [u8; 4], id: u16, payload: &[u8]) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&[0x40, 0, 64, proto, 0, 0]);
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(payload);
    p
}

pub fn ipv6(next: u8, src: [u8; 16], dst: [u8; 16], payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    p.extend_from_slice(&[next, 64]);
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(payload);
    p
}

pub fn tcp(sport: u16, dport: u16, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&ack.to_be_bytes());
    t.extend_from_slice(&[0x50, flags, 0xfa, 0xf0, 0, 0, 0, 0]);
    t.extend_from_slice(payload);
    t
}

pub fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

/// ICMP (v4 type 8 / v6 type 128) echo request.
pub fn echo(ty: u8, id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut e = vec![ty, 0, 0, 0];
    e.extend_from_slice(&id.to_be_bytes());
    e.extend_from_slice(&seq.to_be_bytes());
    e.extend_from_slice(payload);
    e
}

pub fn vxlan(vni: u32, inner: &[u8]) -> Vec<u8> {
    let mut v = vec![0x08, 0, 0, 0];
    v.extend_from_slice(&(vni << 8).to_be_bytes());
    v.extend_from_slice(inner);
    v
}

fn v6(last: u8) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[..4].copy_from_slice(&[0xfd, 0x00, 0x00, 0x17]);
    a[15] = last;
    a
}

/// A mix of `n` frames: ICMP echo, TCP, UDP, VXLAN-in-UDP and IPv6 (TCP, UDP, ICMPv6),
/// each with its own counters, so every fingerprint differs.
pub fn mix(n: usize) -> Vec<Vec<u8>> {
    let (ctr, far, wlan) = ([172, 17, 0, 2], [198, 51, 100, 101], [192, 168, 43, 116]);
    let body: Vec<u8> = (0..64u8).collect();
    (0..n)
        .map(|i| {
            let k = i as u32;
            let id = i as u16;
            let data = &body[..16 + i % 48];
            match i % 7 {
                0 => eth(ETH_IPV4, &ipv4(1, ctr, far, id, &echo(8, 0x4000, id, data))),
                1 => eth(
                    ETH_IPV4,
                    &ipv4(6, ctr, far, id, &tcp(40000, 80, k * 1460, 7, 0x18, data)),
                ),
                2 => eth(
                    ETH_IPV4,
                    &ipv4(6, far, wlan, id, &tcp(80, 40000, 9, k * 1460, 0x10, &[])),
                ),
                3 => eth(ETH_IPV4, &ipv4(17, wlan, far, id, &udp(53000, 53, data))),
                4 => {
                    let inner = eth(
                        ETH_IPV4,
                        &ipv4(
                            6,
                            [10, 244, 0, 2],
                            [10, 244, 1, 2],
                            id,
                            &tcp(5000, 6443, k, 1, 0x18, data),
                        ),
                    );
                    let outer = udp(50000 + (i % 1000) as u16, 8472, &vxlan(1, &inner));
                    eth(
                        ETH_IPV4,
                        &ipv4(17, [192, 168, 50, 11], [192, 168, 50, 12], id, &outer),
                    )
                }
                5 => eth(
                    ETH_IPV6,
                    &ipv6(6, v6(2), v6(1), &tcp(41000, 443, k, 3, 0x18, data)),
                ),
                _ => {
                    if i % 2 == 0 {
                        eth(ETH_IPV6, &ipv6(17, v6(2), v6(1), &udp(5353, 5353, data)))
                    } else {
                        eth(ETH_IPV6, &ipv6(58, v6(2), v6(1), &echo(128, 1, id, data)))
                    }
                }
            }
        })
        .collect()
}

//! Field codings shared by the record encoder and decoder: how a value is predicted from
//! the flow's last packet, and the few ways it can differ from that prediction.

use super::state::{FlowKey, Hop, Inv, Strides, TR_TCP};
use super::varint::{unzigzag16, unzigzag32, zigzag16, zigzag32, Reader, Writer};
use super::{Field, RecordError};

/// Record head bits.
pub const H_BACKREF: u8 = 1 << 0;
pub const H_NEW_FLOW: u8 = 1 << 1;
pub const H_HOP: u8 = 1 << 2;
pub const H_MASKS: u8 = 1 << 3;
/// The capture-order nibble (bits 4-7): below this, `order = predicted + nibble`.
pub const ORDER_INLINE: u8 = 15;

/// Flow definition (key mask) bits.
pub const K_LINK: u8 = 1 << 0;
pub const K_VLAN: u8 = 1 << 1;
pub const K_TUNNELS: u8 = 1 << 2;
pub const K_SRC: u8 = 1 << 3;
pub const K_DST: u8 = 1 << 4;
pub const K_PORTS: u8 = 1 << 5;
pub const K_SWAP: u8 = 1 << 6;
pub const K_SHAPE: u8 = 1 << 7;

/// Second invariant mask byte (the first holds four 2-bit modes: ip id, seq, ack, length).
pub const I_FLAGS: u8 = 1 << 0;
pub const I_WINDOW: u8 = 1 << 1;
pub const I_UDP_LEN: u8 = 1 << 2;
pub const I_ICMP_TYPE: u8 = 1 << 3;
pub const I_ICMP_SEQ_SHIFT: u8 = 4;
pub const I_FRAG: u8 = 1 << 6;
pub const I_ARP: u8 = 1 << 7;

/// Hop mask bits; bit 7 must be zero.
pub const P_TTL: u8 = 1 << 0;
pub const P_OUTER_IDS: u8 = 1 << 1;
pub const P_WIRE_LEN: u8 = 1 << 2;
pub const P_CAP_LEN: u8 = 1 << 3;
pub const P_PKTTYPE: u8 = 1 << 4;
pub const P_STOP: u8 = 1 << 5;
/// The TCP header length (TCP flows only).
pub const P_TCP_HDR: u8 = 1 << 6;
pub const P_UNUSED: u8 = 0b1000_0000;

/// Modes of a strided counter: 0 same as last, 1 last + stride, 2 last + delta,
/// 3 last + stride + delta (delta a zigzag varint).
pub fn mode32(v: u32, last: u32, stride: u32) -> (u8, u64) {
    let after_stride = last.wrapping_add(stride);
    if v == last {
        return (0, 0);
    }
    if v == after_stride {
        return (1, 0);
    }
    let d = zigzag32(v.wrapping_sub(last) as i32);
    let ds = zigzag32(v.wrapping_sub(after_stride) as i32);
    if d <= ds {
        (2, u64::from(d))
    } else {
        (3, u64::from(ds))
    }
}

pub fn put_mode(w: &mut Writer<'_>, mode: u8, delta: u64) {
    if mode >= 2 {
        w.varint(delta);
    }
}

pub fn read_mode32(
    r: &mut Reader<'_>,
    mode: u8,
    last: u32,
    stride: u32,
    field: Field,
) -> Result<u32, RecordError> {
    Ok(match mode & 3 {
        0 => last,
        1 => last.wrapping_add(stride),
        2 => last.wrapping_add(unzigzag32(r.varint_u32(field)?) as u32),
        _ => last
            .wrapping_add(stride)
            .wrapping_add(unzigzag32(r.varint_u32(field)?) as u32),
    })
}

pub fn mode16(v: u16, last: u16, stride: u16) -> (u8, u64) {
    let after_stride = last.wrapping_add(stride);
    if v == last {
        return (0, 0);
    }
    if v == after_stride {
        return (1, 0);
    }
    let d = zigzag16(v.wrapping_sub(last) as i16);
    let ds = zigzag16(v.wrapping_sub(after_stride) as i16);
    if d <= ds {
        (2, u64::from(d))
    } else {
        (3, u64::from(ds))
    }
}

pub fn read_mode16(
    r: &mut Reader<'_>,
    mode: u8,
    last: u16,
    stride: u16,
    field: Field,
) -> Result<u16, RecordError> {
    Ok(match mode & 3 {
        0 => last,
        1 => last.wrapping_add(stride),
        2 => last.wrapping_add(unzigzag16(r.varint_u16(field)?) as u16),
        _ => last
            .wrapping_add(stride)
            .wrapping_add(unzigzag16(r.varint_u16(field)?) as u16),
    })
}

/// The UDP length predicted from the last packet: it moves with the IP payload length.
pub fn predict_udp_len(last: &Inv, payload_len: u16) -> u16 {
    last.udp_len
        .wrapping_add(payload_len.wrapping_sub(last.payload_len))
}

/// The hop fields predicted for a packet of `payload_len` from the flow's last packet; the
/// TCP header length is predicted apart ([`predict_tcp_hdr_len`]).
pub fn predict_hop(
    last_inv: &Inv,
    last: &Hop,
    strides: &Strides,
    payload_len: u16,
    tunnels: usize,
    tcp_hdr_len: u8,
) -> Hop {
    let grow = payload_len.wrapping_sub(last_inv.payload_len) as i16 as i32 as u32;
    let wire_len = last.wire_len.wrapping_add(grow);
    let cap_len = predict_cap(last, wire_len);
    let mut outer_ids = [0; 2];
    for (i, id) in outer_ids.iter_mut().enumerate().take(tunnels) {
        *id = last.outer_ids[i].wrapping_add(strides.outer_ids[i]);
    }
    Hop {
        ttl: last.ttl,
        outer_ids,
        wire_len,
        cap_len,
        pkttype: last.pkttype,
        stop: last.stop,
        tcp_hdr_len,
    }
}

/// The TCP header length predicted for a packet of a flow whose key says `transport_kind`:
/// that of the same packet on the previous hop for a back-reference (`backref`), else the
/// flow's last. Always 0 (so never written) for flows that are not TCP, whatever a base
/// of another shape left in `last`.
pub fn predict_tcp_hdr_len(transport_kind: u8, last: &Hop, backref: Option<u8>) -> u8 {
    if transport_kind == TR_TCP {
        backref.unwrap_or(last.tcp_hdr_len)
    } else {
        0
    }
}

/// The captured length predicted for a packet of `wire_len`: all of it if the last packet
/// was captured whole, else as much as the last one (the snaplen).
pub fn predict_cap(last: &Hop, wire_len: u32) -> u32 {
    if last.cap_len >= last.wire_len {
        wire_len
    } else {
        wire_len.min(last.cap_len)
    }
}

/// Which parts of a flow definition takes to say `key` starting from `base` (optionally swapped).
pub fn key_mask(base: &FlowKey, key: &FlowKey) -> u8 {
    let mut m = 0;
    if base.link != key.link {
        m |= K_LINK;
    }
    if base.vlan != key.vlan {
        m |= K_VLAN;
    }
    if base.tunnels != key.tunnels {
        m |= K_TUNNELS;
    }
    if base.src != key.src {
        m |= K_SRC;
    }
    if base.dst != key.dst {
        m |= K_DST;
    }
    if (base.src_port, base.dst_port) != (key.src_port, key.dst_port) {
        m |= K_PORTS;
    }
    if (
        base.ethertype,
        base.net_kind,
        base.proto,
        base.transport_kind,
    ) != (key.ethertype, key.net_kind, key.proto, key.transport_kind)
    {
        m |= K_SHAPE;
    }
    m
}

/// A rough cost in bytes of a key mask, to choose among bases.
pub fn key_cost(mask: u8, key: &FlowKey) -> usize {
    let addr = |a: &crate::types::Addr| match a {
        crate::types::Addr::V4(_) => 5,
        crate::types::Addr::V6(_) => 17,
    };
    let mut c = 2;
    if mask & K_LINK != 0 {
        c += 2;
    }
    if mask & K_VLAN != 0 {
        c += 2;
    }
    if mask & K_TUNNELS != 0 {
        c += 1 + key.tunnels.len() * 24;
    }
    if mask & K_SRC != 0 {
        c += addr(&key.src);
    }
    if mask & K_DST != 0 {
        c += addr(&key.dst);
    }
    if mask & K_PORTS != 0 {
        c += 5;
    }
    if mask & K_SHAPE != 0 {
        c += 5;
    }
    c
}

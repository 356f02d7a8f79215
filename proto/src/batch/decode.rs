//! The record decoder: reads what [`super::encode`] wrote and moves the shared state in
//! step. Every index and count read from the bytes is checked before use.

use super::fields::*;
use super::parts::join;
use super::state::{Flow, FlowKey, Hop, Inv, SharedState, NET_IP, TR_ICMP, TR_TCP};
use super::varint::{unzigzag16, unzigzag32, unzigzag64, Reader};
use super::{Field, RecordError};
use crate::record::Observation;
use crate::summary::{Stop, Tunnel, MAX_TUNNELS};
use crate::types::Addr;
use heapless::Vec;

/// Decodes one record at `r`, advancing the state; `prev_ts` is the previous record's time.
pub fn decode_record(
    state: &mut SharedState,
    prev_ts: &mut u64,
    r: &mut Reader<'_>,
) -> Result<Observation, RecordError> {
    let head = r.u8()?;
    let slot = if head & H_NEW_FLOW != 0 {
        read_flow(state, r)?
    } else {
        let slot = usize::from(r.u8()?);
        if state.flows.get(slot).is_none() {
            return Err(RecordError::BadFlow { index: slot as u64 });
        }
        slot
    };
    let ring_pos_inv: Option<(Inv, u8)>;
    let fp;
    if head & H_BACKREF != 0 {
        let distance = r.varint()?;
        let available = state.ring.pos.min(super::state::RING as u64);
        let (f, inv, tcp_hdr_len) = state.ring.back(distance).ok_or(RecordError::BadBackref {
            distance,
            available,
        })?;
        fp = f;
        ring_pos_inv = Some((*inv, tcp_hdr_len));
    } else {
        fp = u64::from_le_bytes(r.array::<8>()?);
        ring_pos_inv = None;
    }
    let ts = prev_ts.wrapping_add(unzigzag64(r.varint()?) as u64);
    *prev_ts = ts;

    let flow = state
        .flows
        .touch(slot)
        .ok_or(RecordError::BadFlow { index: slot as u64 })?;
    let link = flow.key.link;
    let predicted = state.orders.predict(link);
    let nibble = head >> 4;
    let order = if nibble < ORDER_INLINE {
        predicted.wrapping_add(u64::from(nibble))
    } else {
        predicted.wrapping_add(unzigzag64(r.varint()?) as u64)
    };
    let inv = match ring_pos_inv {
        Some((inv, _)) => inv,
        None => read_inv(flow, head & H_MASKS != 0, r)?,
    };
    let tunnels = flow.key.tunnels.len();
    let kind = flow.key.transport_kind;
    let tcp_hdr_len = predict_tcp_hdr_len(kind, &flow.hop, ring_pos_inv.map(|(_, h)| h));
    let hop = if head & H_HOP != 0 {
        read_hop(flow, &inv, tunnels, tcp_hdr_len, r)?
    } else {
        flow.predict_hop(inv.payload_len, tunnels, tcp_hdr_len)
    };
    flow.update(&inv, &hop);
    let obs = join(&flow.key, &inv, &hop, ts, order, fp);
    state.orders.set(link, order);
    state.ring.push(fp, &inv, hop.tcp_hdr_len);
    Ok(obs)
}

/// Reads a flow definition, inserts the flow and returns its slot.
fn read_flow(state: &mut SharedState, r: &mut Reader<'_>) -> Result<usize, RecordError> {
    let base = r.varint()?;
    let mut flow = match base {
        0 => Flow::new(FlowKey::DEFAULT),
        b => {
            let slot = usize::try_from(b - 1).unwrap_or(usize::MAX);
            state
                .flows
                .get(slot)
                .ok_or(RecordError::BadFlow { index: b - 1 })?
                .clone()
        }
    };
    let mask = r.u8()?;
    let key = &mut flow.key;
    if mask & K_SWAP != 0 {
        *key = key.swapped();
    }
    if mask & K_LINK != 0 {
        key.link = r.varint_u16(Field::Link)?;
    }
    if mask & K_VLAN != 0 {
        let v = r.varint()?;
        key.vlan = match v {
            0 => None,
            v => Some(u16::try_from(v - 1).map_err(|_| RecordError::BadValue {
                field: Field::Vlan,
                value: v,
            })?),
        };
    }
    if mask & K_TUNNELS != 0 {
        key.tunnels = r.postcard::<Vec<Tunnel, MAX_TUNNELS>>()?;
        for t in key.tunnels.iter_mut() {
            t.outer_id = 0;
        }
    }
    if mask & K_SRC != 0 {
        key.src = r.postcard::<Addr>()?;
    }
    if mask & K_DST != 0 {
        key.dst = r.postcard::<Addr>()?;
    }
    if mask & K_PORTS != 0 {
        key.src_port = r.varint_u16(Field::Port)?;
        key.dst_port = r.varint_u16(Field::Port)?;
    }
    if mask & K_SHAPE != 0 {
        key.ethertype = r.varint_u16(Field::EtherType)?;
        key.net_kind = r.u8()?;
        key.proto = r.u8()?;
        key.transport_kind = r.u8()?;
        if key.net_kind > NET_IP {
            return Err(RecordError::BadValue {
                field: Field::NetKind,
                value: key.net_kind.into(),
            });
        }
        if key.transport_kind > TR_ICMP {
            return Err(RecordError::BadValue {
                field: Field::TransportKind,
                value: key.transport_kind.into(),
            });
        }
    }
    let (slot, _) = state.flows.insert(flow);
    Ok(slot)
}

fn read_inv(flow: &mut Flow, masks_present: bool, r: &mut Reader<'_>) -> Result<Inv, RecordError> {
    if masks_present {
        flow.masks = [r.u8()?, r.u8()?];
    }
    let [m1, m2] = flow.masks;
    let (last, s) = (&flow.inv, &flow.strides);
    let mut inv = *last;
    inv.ip_id = read_mode32(r, m1, last.ip_id, s.ip_id, Field::IpId)?;
    inv.seq = read_mode32(r, m1 >> 2, last.seq, s.seq, Field::Seq)?;
    inv.ack = read_mode32(r, m1 >> 4, last.ack, s.ack, Field::Ack)?;
    inv.payload_len = read_mode16(
        r,
        m1 >> 6,
        last.payload_len,
        s.payload_len,
        Field::PayloadLen,
    )?;
    if m2 & I_FLAGS != 0 {
        inv.flags = r.varint_u16(Field::Flags)?;
    }
    if m2 & I_WINDOW != 0 {
        inv.window = last
            .window
            .wrapping_add(unzigzag16(r.varint_u16(Field::Window)?) as u16);
    }
    inv.udp_len = predict_udp_len(last, inv.payload_len);
    if m2 & I_UDP_LEN != 0 {
        inv.udp_len = inv
            .udp_len
            .wrapping_add(unzigzag16(r.varint_u16(Field::UdpLen)?) as u16);
    }
    if m2 & I_ICMP_TYPE != 0 {
        inv.icmp_type = r.u8()?;
        inv.icmp_code = r.u8()?;
    }
    inv.icmp_seq = read_mode16(
        r,
        m2 >> I_ICMP_SEQ_SHIFT,
        last.icmp_seq,
        s.icmp_seq,
        Field::IcmpSeq,
    )?;
    if m2 & I_FRAG != 0 {
        let v = r.varint()?;
        inv.frag_offset = u16::try_from(v >> 1).map_err(|_| RecordError::BadValue {
            field: Field::Frag,
            value: v,
        })?;
        inv.more_fragments = v & 1 != 0;
    }
    if m2 & I_ARP != 0 {
        inv.arp_op = r.varint_u16(Field::ArpOp)?;
        inv.arp_spa = r.array::<4>()?;
        inv.arp_tpa = r.array::<4>()?;
    }
    Ok(inv)
}

fn read_hop(
    flow: &Flow,
    inv: &Inv,
    tunnels: usize,
    tcp_hdr_len: u8,
    r: &mut Reader<'_>,
) -> Result<Hop, RecordError> {
    let mut hop = flow.predict_hop(inv.payload_len, tunnels, tcp_hdr_len);
    let mask = r.u8()?;
    let tcp = flow.key.transport_kind == TR_TCP;
    if mask & P_UNUSED != 0 || (mask & P_TCP_HDR != 0 && !tcp) {
        return Err(RecordError::BadValue {
            field: Field::HopMask,
            value: mask.into(),
        });
    }
    if mask & P_TTL != 0 {
        hop.ttl = r.u8()?;
    }
    if mask & P_OUTER_IDS != 0 {
        for id in hop.outer_ids.iter_mut().take(tunnels) {
            *id = id.wrapping_add(unzigzag16(r.varint_u16(Field::OuterId)?) as u16);
        }
    }
    if mask & P_WIRE_LEN != 0 {
        hop.wire_len = hop
            .wire_len
            .wrapping_add(unzigzag32(r.varint_u32(Field::WireLen)?) as u32);
    }
    if mask & P_CAP_LEN != 0 {
        hop.cap_len = hop
            .wire_len
            .wrapping_sub(unzigzag32(r.varint_u32(Field::CapLen)?) as u32);
    } else {
        // Predicted from the wire length just read.
        hop.cap_len = predict_cap(&flow.hop, hop.wire_len);
    }
    if mask & P_PKTTYPE != 0 {
        hop.pkttype = r.u8()?;
    }
    if mask & P_STOP != 0 {
        hop.stop = r.postcard::<Option<Stop>>()?;
    }
    if mask & P_TCP_HDR != 0 {
        hop.tcp_hdr_len = r.u8()?;
    }
    Ok(hop)
}

//! The record encoder: the shared state plus the indexes only the encoder needs to find
//! things (a flow by key, a recent record by fingerprint, a good base for a new flow).

use super::fields::*;
use super::index::{hash_key, FlowIndex};
use super::parts::split;
use super::state::{Flow, FlowKey, Hop, Inv, SharedState, RING};
use super::varint::{zigzag16, zigzag32, zigzag64, Writer};
use crate::record::Observation;

/// Slots of the fingerprint → ring position cache (direct-mapped).
const FP_SLOTS: usize = 4096;
/// Slots of the "same hosts, other ports" cache used to pick a base for a new flow.
const HOST_SLOTS: usize = 256;

#[derive(Clone, Debug)]
pub struct EncoderState {
    pub shared: SharedState,
    index: FlowIndex,
    /// Ring position + 1 of the latest record per fingerprint slot.
    fp_pos: [u64; FP_SLOTS],
    /// Which flow (slot, generation) each ring record belonged to.
    ring_flow: [(u16, u32); RING],
    hosts: [(u16, u32, bool); HOST_SLOTS],
    last_flow: Option<(u16, u32)>,
}

impl EncoderState {
    pub fn new() -> EncoderState {
        EncoderState {
            shared: SharedState::new(),
            index: FlowIndex::new(),
            fp_pos: [0; FP_SLOTS],
            ring_flow: [(0, 0); RING],
            hosts: [(0, 0, false); HOST_SLOTS],
            last_flow: None,
        }
    }

    /// Back to [`new`](Self::new)'s state, in place.
    pub fn reset(&mut self) {
        self.shared.reset();
        self.index.reset();
        self.fp_pos.fill(0);
        self.ring_flow.fill((0, 0));
        self.hosts.fill((0, 0, false));
        self.last_flow = None;
    }

    fn live(&self, (slot, gen): (u16, u32)) -> Option<usize> {
        let s = usize::from(slot);
        (self.shared.flows.generation[s] == gen && self.shared.flows.get(s).is_some()).then_some(s)
    }

    /// Encodes one record into `w` and advances the state (if `w` overflowed, the state is
    /// ahead of what was written: the caller must close the batch).
    pub fn encode(&mut self, obs: &Observation, prev_ts: &mut u64, w: &mut Writer<'_>) {
        let (key, inv, hop) = split(obs);
        let head_at = w.pos;
        w.u8(0);
        let mut head = 0u8;

        // The same packet seen a moment ago on another hop?
        let fp = obs.fingerprint;
        let ring_pos = self.shared.ring.pos;
        // (distance back, ring position) of the latest record with this fingerprint, if the
        // ring still holds it and its invariant fields are really the same.
        let seen = self.fp_pos[(fp % FP_SLOTS as u64) as usize];
        let backref = seen.checked_sub(1).and_then(|p| {
            let distance = ring_pos.checked_sub(p + 1)?;
            let (f, i, tcp_hdr_len) = self.shared.ring.back(distance)?;
            (f == fp && *i == inv).then_some((distance, p, tcp_hdr_len))
        });

        let hash = hash_key(&key, true);
        let slot = match self.index.find(&self.shared.flows, &key, hash) {
            Some(slot) => {
                w.u8(slot as u8);
                slot
            }
            None => {
                head |= H_NEW_FLOW;
                self.define_flow(&key, hash, backref.map(|(_, p, _)| p), w)
            }
        };
        let flows = &mut self.shared.flows;
        let gen = flows.generation[slot];
        let Some(flow) = flows.touch(slot) else {
            return;
        };

        match backref {
            Some((distance, _, _)) => {
                head |= H_BACKREF;
                w.varint(distance);
            }
            None => w.bytes(&fp.to_le_bytes()),
        }
        w.varint(zigzag64(obs.ts_ns.wrapping_sub(*prev_ts) as i64));
        *prev_ts = obs.ts_ns;
        let predicted = self.shared.orders.predict(key.link);
        let d = obs.order.wrapping_sub(predicted);
        if d < u64::from(ORDER_INLINE) {
            head |= (d as u8) << 4;
        } else {
            head |= ORDER_INLINE << 4;
            w.varint(zigzag64(d as i64));
        }
        if backref.is_none() && put_inv(flow, &inv, w) {
            head |= H_MASKS;
        }
        let tcp_hdr_len =
            predict_tcp_hdr_len(key.transport_kind, &flow.hop, backref.map(|(_, _, h)| h));
        if put_hop(flow, &inv, &hop, key.tunnels.len(), tcp_hdr_len, w) {
            head |= H_HOP;
        }
        w.patch(head_at, head);

        flow.update(&inv, &hop);
        self.shared.orders.set(key.link, obs.order);
        self.ring_flow[(ring_pos % RING as u64) as usize] = (slot as u16, gen);
        self.shared.ring.push(fp, &inv, hop.tcp_hdr_len);
        self.fp_pos[(fp % FP_SLOTS as u64) as usize] = ring_pos + 1;
        self.last_flow = Some((slot as u16, gen));
    }

    /// Writes a flow definition from the cheapest base and inserts the flow; returns its slot.
    fn define_flow(
        &mut self,
        key: &FlowKey,
        hash: u64,
        backref_pos: Option<u64>,
        w: &mut Writer<'_>,
    ) -> usize {
        let host_hash = hash_key(key, false);
        let host_slot = (host_hash % HOST_SLOTS as u64) as usize;
        let mut candidates: [Option<usize>; 4] = [None; 4];
        if let Some(p) = backref_pos {
            candidates[0] = self.live(self.ring_flow[(p % RING as u64) as usize]);
        }
        let swapped = key.swapped();
        candidates[1] = self
            .index
            .find(&self.shared.flows, &swapped, hash_key(&swapped, true));
        if let (s, g, true) = self.hosts[host_slot] {
            candidates[2] = self.live((s, g));
        }
        candidates[3] = self.last_flow.and_then(|f| self.live(f));

        let mut best: (usize, Option<usize>, u8) =
            (key_cost(key_mask(&FlowKey::DEFAULT, key), key), None, 0);
        for slot in candidates.into_iter().flatten() {
            let Some(base) = self.shared.flows.get(slot) else {
                continue;
            };
            for (swap, b) in [(0, base.key.clone()), (K_SWAP, base.key.swapped())] {
                let mask = key_mask(&b, key);
                let cost = key_cost(mask, key);
                if cost < best.0 {
                    best = (cost, Some(slot), mask | swap);
                }
            }
        }
        let (_, base_slot, mask) = best;
        let mask = match base_slot {
            Some(_) => mask,
            None => key_mask(&FlowKey::DEFAULT, key),
        };
        w.varint(base_slot.map_or(0, |s| s as u64 + 1));
        w.u8(mask);
        put_key(mask, key, w);

        let mut flow = match base_slot.and_then(|s| self.shared.flows.get(s)) {
            Some(base) => base.clone(),
            None => Flow::new(FlowKey::DEFAULT),
        };
        flow.key = key.clone();
        let (slot, evicted) = self.shared.flows.insert(flow);
        if evicted.is_some() {
            self.index.remove(slot);
        }
        self.index.insert(slot, hash);
        self.hosts[host_slot] = (slot as u16, self.shared.flows.generation[slot], true);
        slot
    }
}

fn put_key(mask: u8, key: &FlowKey, w: &mut Writer<'_>) {
    if mask & K_LINK != 0 {
        w.varint(u64::from(key.link));
    }
    if mask & K_VLAN != 0 {
        w.varint(key.vlan.map_or(0, |v| u64::from(v) + 1));
    }
    if mask & K_TUNNELS != 0 {
        w.postcard(&key.tunnels);
    }
    if mask & K_SRC != 0 {
        w.postcard(&key.src);
    }
    if mask & K_DST != 0 {
        w.postcard(&key.dst);
    }
    if mask & K_PORTS != 0 {
        w.varint(u64::from(key.src_port));
        w.varint(u64::from(key.dst_port));
    }
    if mask & K_SHAPE != 0 {
        w.varint(u64::from(key.ethertype));
        w.u8(key.net_kind);
        w.u8(key.proto);
        w.u8(key.transport_kind);
    }
}

/// Writes the invariant fields of a fresh record against the flow's last packet. Returns
/// whether the masks were written (they differ from the flow's last masks).
fn put_inv(flow: &mut Flow, inv: &Inv, w: &mut Writer<'_>) -> bool {
    let (last, s) = (&flow.inv, &flow.strides);
    let id = mode32(inv.ip_id, last.ip_id, s.ip_id);
    let seq = mode32(inv.seq, last.seq, s.seq);
    let ack = mode32(inv.ack, last.ack, s.ack);
    let len = mode16(inv.payload_len, last.payload_len, s.payload_len);
    let icmp_seq = mode16(inv.icmp_seq, last.icmp_seq, s.icmp_seq);
    let m1 = id.0 | seq.0 << 2 | ack.0 << 4 | len.0 << 6;
    let mut m2 = icmp_seq.0 << I_ICMP_SEQ_SHIFT;
    let flags = inv.flags != last.flags;
    let window = inv.window != last.window;
    let udp_pred = predict_udp_len(last, inv.payload_len);
    let udp = inv.udp_len != udp_pred;
    let icmp_type = (inv.icmp_type, inv.icmp_code) != (last.icmp_type, last.icmp_code);
    let frag = (inv.frag_offset, inv.more_fragments) != (last.frag_offset, last.more_fragments);
    let arp = (inv.arp_op, inv.arp_spa, inv.arp_tpa) != (last.arp_op, last.arp_spa, last.arp_tpa);
    for (on, bit) in [
        (flags, I_FLAGS),
        (window, I_WINDOW),
        (udp, I_UDP_LEN),
        (icmp_type, I_ICMP_TYPE),
        (frag, I_FRAG),
        (arp, I_ARP),
    ] {
        if on {
            m2 |= bit;
        }
    }
    let masks_new = [m1, m2] != flow.masks;
    if masks_new {
        w.u8(m1);
        w.u8(m2);
        flow.masks = [m1, m2];
    }
    for (mode, delta) in [id, seq, ack, len] {
        put_mode(w, mode, delta);
    }
    if flags {
        w.varint(u64::from(inv.flags));
    }
    if window {
        w.varint(u64::from(zigzag16(
            inv.window.wrapping_sub(last.window) as i16
        )));
    }
    if udp {
        w.varint(u64::from(zigzag16(
            inv.udp_len.wrapping_sub(udp_pred) as i16
        )));
    }
    if icmp_type {
        w.u8(inv.icmp_type);
        w.u8(inv.icmp_code);
    }
    put_mode(w, icmp_seq.0, icmp_seq.1);
    if frag {
        w.varint(u64::from(inv.frag_offset) << 1 | u64::from(inv.more_fragments));
    }
    if arp {
        w.varint(u64::from(inv.arp_op));
        w.bytes(&inv.arp_spa);
        w.bytes(&inv.arp_tpa);
    }
    masks_new
}

/// Writes the hop mask and fields that differ from the prediction (`tcp_hdr_len` the
/// predicted TCP header length); false if none do.
fn put_hop(
    flow: &Flow,
    inv: &Inv,
    hop: &Hop,
    tunnels: usize,
    tcp_hdr_len: u8,
    w: &mut Writer<'_>,
) -> bool {
    let mut p = flow.predict_hop(inv.payload_len, tunnels, tcp_hdr_len);
    p.cap_len = predict_cap(&flow.hop, hop.wire_len);
    let mut mask = 0;
    for (on, bit) in [
        (hop.ttl != p.ttl, P_TTL),
        (hop.outer_ids != p.outer_ids, P_OUTER_IDS),
        (hop.wire_len != p.wire_len, P_WIRE_LEN),
        (hop.cap_len != p.cap_len, P_CAP_LEN),
        (hop.pkttype != p.pkttype, P_PKTTYPE),
        (hop.stop != p.stop, P_STOP),
        (hop.tcp_hdr_len != p.tcp_hdr_len, P_TCP_HDR),
    ] {
        if on {
            mask |= bit;
        }
    }
    if mask == 0 {
        return false;
    }
    w.u8(mask);
    if mask & P_TTL != 0 {
        w.u8(hop.ttl);
    }
    if mask & P_OUTER_IDS != 0 {
        for i in 0..tunnels {
            w.varint(u64::from(zigzag16(
                hop.outer_ids[i].wrapping_sub(p.outer_ids[i]) as i16,
            )));
        }
    }
    if mask & P_WIRE_LEN != 0 {
        w.varint(u64::from(zigzag32(
            hop.wire_len.wrapping_sub(p.wire_len) as i32
        )));
    }
    if mask & P_CAP_LEN != 0 {
        w.varint(u64::from(zigzag32(
            hop.wire_len.wrapping_sub(hop.cap_len) as i32
        )));
    }
    if mask & P_PKTTYPE != 0 {
        w.u8(hop.pkttype);
    }
    if mask & P_STOP != 0 {
        w.postcard(&hop.stop);
    }
    if mask & P_TCP_HDR != 0 {
        w.u8(hop.tcp_hdr_len);
    }
    true
}

//! The state encoder and decoder keep in step: the flow table, the recent-record ring and
//! the per-link capture order. An observation splits into a [`FlowKey`] (what stays the same
//! for a flow on one link), [`Inv`] (per-packet fields that stay the same from hop to hop:
//! exactly what the fingerprint covers) and [`Hop`] (per-packet fields that change per hop).

use crate::record::LinkKey;
use crate::summary::{Stop, Tunnel, MAX_TUNNELS};
use crate::types::Addr;
use heapless::Vec;

/// Flows (per link) the table holds; an index fits one byte.
pub const FLOWS: usize = 256;
/// Recent records a back-reference can reach.
pub const RING: usize = 1024;
/// Links whose last capture order is kept (direct-mapped by key).
pub const LINK_SLOTS: usize = 256;

pub const NET_NONE: u8 = 0;
pub const NET_ARP: u8 = 1;
pub const NET_IP: u8 = 2;
pub const TR_NONE: u8 = 0;
pub const TR_TCP: u8 = 1;
pub const TR_UDP: u8 = 2;
pub const TR_ICMP: u8 = 3;

/// What is constant for a flow on one link. Fields a shape does not use are zero.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowKey {
    pub link: LinkKey,
    pub vlan: Option<u16>,
    pub ethertype: u16,
    /// With `outer_id` zeroed (it changes per packet: see [`Hop::outer_ids`]).
    pub tunnels: Vec<Tunnel, MAX_TUNNELS>,
    pub net_kind: u8,
    pub src: Addr,
    pub dst: Addr,
    pub proto: u8,
    pub transport_kind: u8,
    /// Ports; for ICMP the echo id in `src_port`.
    pub src_port: u16,
    pub dst_port: u16,
}

impl FlowKey {
    pub const DEFAULT: FlowKey = FlowKey {
        link: 0,
        vlan: None,
        ethertype: 0,
        tunnels: Vec::new(),
        net_kind: NET_NONE,
        src: Addr::V4([0; 4]),
        dst: Addr::V4([0; 4]),
        proto: 0,
        transport_kind: TR_NONE,
        src_port: 0,
        dst_port: 0,
    };

    /// The reverse direction of the same flow.
    pub fn swapped(&self) -> FlowKey {
        let mut k = self.clone();
        core::mem::swap(&mut k.src, &mut k.dst);
        core::mem::swap(&mut k.src_port, &mut k.dst_port);
        k
    }
}

/// The hop-invariant per-packet fields (those the fingerprint covers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Inv {
    pub ip_id: u32,
    pub frag_offset: u16,
    pub more_fragments: bool,
    pub payload_len: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u16,
    pub window: u16,
    pub udp_len: u16,
    pub icmp_type: u8,
    pub icmp_code: u8,
    pub icmp_seq: u16,
    pub arp_op: u16,
    pub arp_spa: [u8; 4],
    pub arp_tpa: [u8; 4],
}

/// The per-packet fields that change from hop to hop.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hop {
    pub ttl: u8,
    pub outer_ids: [u16; MAX_TUNNELS],
    pub wire_len: u32,
    pub cap_len: u32,
    pub pkttype: u8,
    pub stop: Option<Stop>,
    /// TCP header length (0 for other transports). Kept per hop, not in [`Inv`]: the
    /// fingerprint leaves it out, and a middlebox may rewrite TCP options.
    pub tcp_hdr_len: u8,
}

/// Last differences seen per flow, to predict the next packet (`+1` ids, `+MSS` seqs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Strides {
    pub ip_id: u32,
    pub seq: u32,
    pub ack: u32,
    pub payload_len: u16,
    pub icmp_seq: u16,
    pub outer_ids: [u16; MAX_TUNNELS],
}

impl Strides {
    pub fn between(old: &Inv, old_hop: &Hop, new: &Inv, new_hop: &Hop) -> Strides {
        Strides {
            ip_id: new.ip_id.wrapping_sub(old.ip_id),
            seq: new.seq.wrapping_sub(old.seq),
            ack: new.ack.wrapping_sub(old.ack),
            payload_len: new.payload_len.wrapping_sub(old.payload_len),
            icmp_seq: new.icmp_seq.wrapping_sub(old.icmp_seq),
            outer_ids: [
                new_hop.outer_ids[0].wrapping_sub(old_hop.outer_ids[0]),
                new_hop.outer_ids[1].wrapping_sub(old_hop.outer_ids[1]),
            ],
        }
    }
}

/// One flow on one link and what its last packet looked like.
#[derive(Clone, Debug)]
pub struct Flow {
    pub key: FlowKey,
    pub inv: Inv,
    pub hop: Hop,
    pub strides: Strides,
    /// The inventory masks of the last fresh record (reused when unchanged).
    pub masks: [u8; 2],
}

impl Flow {
    pub fn new(key: FlowKey) -> Flow {
        Flow {
            key,
            inv: Inv::default(),
            hop: Hop::default(),
            strides: Strides::default(),
            masks: [0; 2],
        }
    }

    /// The hop fields this flow's next packet is predicted to have (see
    /// [`fields::predict_hop`](super::fields::predict_hop)).
    pub fn predict_hop(&self, payload_len: u16, tunnels: usize, tcp_hdr_len: u8) -> Hop {
        super::fields::predict_hop(
            &self.inv,
            &self.hop,
            &self.strides,
            payload_len,
            tunnels,
            tcp_hdr_len,
        )
    }

    /// Records a packet of this flow: the next prediction starts from it.
    pub fn update(&mut self, inv: &Inv, hop: &Hop) {
        self.strides = Strides::between(&self.inv, &self.hop, inv, hop);
        self.inv = *inv;
        self.hop = *hop;
    }
}

/// The flow table: [`FLOWS`] slots, CLOCK replacement (a used bit per slot, a hand).
#[derive(Clone, Debug)]
pub struct FlowTable {
    pub flows: [Option<Flow>; FLOWS],
    used: [bool; FLOWS],
    /// Bumped when a slot gets a new flow (the encoder's ring remembers which flow it saw).
    pub generation: [u32; FLOWS],
    hand: usize,
}

impl FlowTable {
    pub fn new() -> FlowTable {
        FlowTable {
            flows: [const { None }; FLOWS],
            used: [false; FLOWS],
            generation: [0; FLOWS],
            hand: 0,
        }
    }

    /// Back to [`new`](Self::new)'s state, in place: a batch's state is ~170 KB, and
    /// building a fresh one per batch moved it through the stack (a third of the encoder's
    /// time under load, measured with callgrind).
    pub fn reset(&mut self) {
        self.flows.iter_mut().for_each(|f| *f = None);
        self.used.fill(false);
        self.generation.fill(0);
        self.hand = 0;
    }

    pub fn get(&self, index: usize) -> Option<&Flow> {
        self.flows.get(index)?.as_ref()
    }

    pub fn touch(&mut self, index: usize) -> Option<&mut Flow> {
        *self.used.get_mut(index)? = true;
        self.flows.get_mut(index)?.as_mut()
    }

    /// Picks the slot for a new flow (CLOCK) and puts `flow` there. Returns the slot and the
    /// flow it evicted, if any.
    pub fn insert(&mut self, flow: Flow) -> (usize, Option<Flow>) {
        // Two sweeps at most: the first clears every used bit it passes.
        let mut slot = self.hand;
        for _ in 0..2 * FLOWS {
            slot = self.hand;
            self.hand = (self.hand + 1) % FLOWS;
            if self.flows[slot].is_none() || !self.used[slot] {
                break;
            }
            self.used[slot] = false;
        }
        self.used[slot] = true;
        self.generation[slot] = self.generation[slot].wrapping_add(1);
        let old = self.flows[slot].replace(flow);
        (slot, old)
    }
}

/// The last [`RING`] records' fingerprints and invariant fields, for back-references, and
/// their TCP header lengths (the prediction for a back-reference: the same packet).
#[derive(Clone, Debug)]
pub struct Ring {
    pub fps: [u64; RING],
    pub invs: [Inv; RING],
    pub tcp_hdr_lens: [u8; RING],
    /// Records pushed since the batch began.
    pub pos: u64,
}

impl Ring {
    pub fn new() -> Ring {
        Ring {
            fps: [0; RING],
            invs: [Inv::default(); RING],
            tcp_hdr_lens: [0; RING],
            pos: 0,
        }
    }
    /// Empty again. The entries stay as they were: [`back`](Self::back) never reads past
    /// `pos`, so they cannot be seen before being written again.
    pub fn reset(&mut self) {
        self.pos = 0;
    }
    pub fn push(&mut self, fp: u64, inv: &Inv, tcp_hdr_len: u8) {
        let i = (self.pos % RING as u64) as usize;
        self.fps[i] = fp;
        self.invs[i] = *inv;
        self.tcp_hdr_lens[i] = tcp_hdr_len;
        self.pos += 1;
    }
    /// The record `distance + 1` records back, if the ring still holds it: its fingerprint,
    /// invariant fields and TCP header length.
    pub fn back(&self, distance: u64) -> Option<(u64, &Inv, u8)> {
        if distance >= self.pos.min(RING as u64) {
            return None;
        }
        let i = ((self.pos - 1 - distance) % RING as u64) as usize;
        Some((self.fps[i], &self.invs[i], self.tcp_hdr_lens[i]))
    }
}

/// The last capture order seen per link (direct-mapped by key, a miss predicts 0).
#[derive(Clone, Debug)]
pub struct LinkOrders {
    slots: [(LinkKey, u64, bool); LINK_SLOTS],
}

impl LinkOrders {
    pub fn new() -> LinkOrders {
        LinkOrders {
            slots: [(0, 0, false); LINK_SLOTS],
        }
    }
    pub fn reset(&mut self) {
        self.slots.fill((0, 0, false));
    }
    /// The order the next record on `link` is predicted to have.
    pub fn predict(&self, link: LinkKey) -> u64 {
        match self.slots[usize::from(link) % LINK_SLOTS] {
            (k, order, true) if k == link => order.wrapping_add(1),
            _ => 0,
        }
    }
    pub fn set(&mut self, link: LinkKey, order: u64) {
        self.slots[usize::from(link) % LINK_SLOTS] = (link, order, true);
    }
}

/// Everything both sides keep while coding one batch.
#[derive(Clone, Debug)]
pub struct SharedState {
    pub flows: FlowTable,
    pub ring: Ring,
    pub orders: LinkOrders,
}

impl SharedState {
    pub fn new() -> SharedState {
        SharedState {
            flows: FlowTable::new(),
            ring: Ring::new(),
            orders: LinkOrders::new(),
        }
    }

    /// Back to [`new`](Self::new)'s state, in place (every batch starts from it).
    pub fn reset(&mut self) {
        self.flows.reset();
        self.ring.reset();
        self.orders.reset();
    }
}

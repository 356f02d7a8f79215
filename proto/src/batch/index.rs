//! The encoder's lookup of a flow slot by key: open addressing with linear probing and
//! backward-shift deletion (no tombstones, so probe chains stay short under churn).

use super::state::{FlowKey, FlowTable, FLOWS};
use crate::fingerprint::fmix64;
use crate::types::Addr;

/// Index slots: four per flow keeps probe chains short.
const INDEX_SLOTS: usize = 4 * FLOWS;

/// A hash of a flow key, optionally leaving the ports out (to find "same hosts" flows).
///
/// Only this encoder's index sees it (nothing on the wire), so it is free to change: one
/// multiply-rotate step per word, as FxHash does, and `fmix64` once at the end so the low
/// bits that pick a slot depend on every word. An `fmix64` per word cost 5x more (callgrind).
pub fn hash_key(key: &FlowKey, ports: bool) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = u64::from(key.link) << 16 | u64::from(key.ethertype);
    let mut mix = |v: u64| h = (h.rotate_left(23) ^ v).wrapping_mul(K);
    mix(u64::from(key.vlan.unwrap_or(0xffff)) << 32
        | u64::from(key.net_kind) << 24
        | u64::from(key.proto) << 8);
    for a in [key.src, key.dst] {
        match a {
            Addr::V4(b) => mix(u64::from(u32::from_be_bytes(b))),
            Addr::V6(b) => {
                let v = u128::from_be_bytes(b);
                mix((v >> 64) as u64 | 1 << 63);
                mix(v as u64);
            }
        }
    }
    if ports {
        mix(u64::from(key.src_port) << 32
            | u64::from(key.dst_port) << 8
            | u64::from(key.transport_kind));
    }
    for t in &key.tunnels {
        mix(u64::from(t.src_port) << 16 | u64::from(t.dst_port));
    }
    fmix64(h)
}

#[derive(Clone, Debug)]
pub struct FlowIndex {
    /// Flow slot + 1 (0 = empty).
    slots: [u16; INDEX_SLOTS],
    /// The key hash of each flow slot, to find its home without the key.
    hashes: [u64; FLOWS],
}

impl FlowIndex {
    pub fn new() -> FlowIndex {
        FlowIndex {
            slots: [0; INDEX_SLOTS],
            hashes: [0; FLOWS],
        }
    }

    pub fn reset(&mut self) {
        self.slots.fill(0);
        self.hashes.fill(0);
    }

    fn home(hash: u64) -> usize {
        (hash as usize) % INDEX_SLOTS
    }

    pub fn find(&self, flows: &FlowTable, key: &FlowKey, hash: u64) -> Option<usize> {
        let mut i = Self::home(hash);
        loop {
            let slot = usize::from(self.slots[i]).checked_sub(1)?;
            if self.hashes[slot] == hash && flows.get(slot).is_some_and(|f| f.key == *key) {
                return Some(slot);
            }
            i = (i + 1) % INDEX_SLOTS;
        }
    }

    pub fn insert(&mut self, slot: usize, hash: u64) {
        self.hashes[slot] = hash;
        let mut i = Self::home(hash);
        while self.slots[i] != 0 {
            i = (i + 1) % INDEX_SLOTS;
        }
        self.slots[i] = slot as u16 + 1;
    }

    pub fn remove(&mut self, slot: usize) {
        let mut i = Self::home(self.hashes[slot]);
        while self.slots[i] != slot as u16 + 1 {
            if self.slots[i] == 0 {
                return;
            }
            i = (i + 1) % INDEX_SLOTS;
        }
        // Pull later entries of the chain back over the hole unless their home lies
        // (cyclically) after the hole.
        let mut j = i;
        loop {
            j = (j + 1) % INDEX_SLOTS;
            let Some(moved) = usize::from(self.slots[j]).checked_sub(1) else {
                break;
            };
            let k = Self::home(self.hashes[moved]);
            let stays = if i <= j {
                i < k && k <= j
            } else {
                i < k || k <= j
            };
            if !stays {
                self.slots[i] = self.slots[j];
                i = j;
            }
        }
        self.slots[i] = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::state::Flow;

    #[test]
    fn finds_every_live_flow_through_heavy_churn() {
        let mut flows = FlowTable::new();
        let mut index = FlowIndex::new();
        for n in 0..5000u16 {
            let key = FlowKey {
                src_port: n,
                link: n % 7,
                ..FlowKey::DEFAULT
            };
            let hash = hash_key(&key, true);
            assert_eq!(index.find(&flows, &key, hash), None);
            let (slot, evicted) = flows.insert(Flow::new(key.clone()));
            if evicted.is_some() {
                index.remove(slot);
            }
            index.insert(slot, hash);
            assert_eq!(index.find(&flows, &key, hash), Some(slot));
        }
        for slot in 0..FLOWS {
            let key = flows.get(slot).unwrap().key.clone();
            assert_eq!(index.find(&flows, &key, hash_key(&key, true)), Some(slot));
        }
        assert_eq!(index.slots.iter().filter(|&&s| s != 0).count(), FLOWS);
    }
}

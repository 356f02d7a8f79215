//! Packets kept per link: counted for every frame, so the map hashes its `u16` key with one
//! multiply instead of SipHash (which was ~3% of the agent's CPU under a flood).

use hopcap_proto::record::LinkKey;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

pub type LinkCounts = HashMap<LinkKey, u64, BuildHasherDefault<LinkKeyHasher>>;

/// Fibonacci hashing of the link key. Keys come from the agent's own link table, not from
/// the network, so there is no one to choose colliding keys.
#[derive(Clone, Copy, Debug, Default)]
pub struct LinkKeyHasher(u64);

impl Hasher for LinkKeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u16(&mut self, key: u16) {
        self.0 = (self.0 ^ u64::from(key)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_key_and_spreads_the_keys() {
        let mut counts = LinkCounts::default();
        for key in 0..1000u16 {
            *counts.entry(key % 10).or_default() += 1;
        }
        assert_eq!(counts.len(), 10);
        assert!(counts.values().all(|&n| n == 100));
        // Nearby keys land far apart in the top bits hashbrown uses for its control bytes.
        let top = |k: u16| {
            let mut h = LinkKeyHasher::default();
            h.write_u16(k);
            h.finish() >> 57
        };
        let distinct: std::collections::BTreeSet<u64> = (0..16).map(top).collect();
        assert!(distinct.len() >= 8, "{distinct:?}");
    }
}

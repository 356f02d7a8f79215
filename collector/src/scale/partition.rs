//! Which partition an observation goes to. The token is what the servers' subject mapping
//! hashes (`obs.<token>` → `part.<fnv1a32(token) % N>.<token>`); ingest groups a batch's
//! rows by the same function so that one message holds one partition's rows.
//!
//! The token is the packet's fingerprint, except for packets that may be split on the way:
//! there it is the family its pieces share ([`crate::correlate::piece_family_key`]: TCP
//! data by ack, window and flags; big or fragmented datagrams by IP id), so a whole and its
//! segments, merged packets or fragments meet in one correlator.

use crate::correlate::piece_family_key;
use hopcap_proto::record::Observation;

const FNV32_OFFSET: u32 = 0x811c_9dc5;
const FNV32_PRIME: u32 = 0x0100_0193;

/// The NATS server's `partition()` hash: FNV-1a, 32 bits, over the token's text.
pub fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(FNV32_OFFSET, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(FNV32_PRIME)
    })
}

/// A subject token: 16 lowercase hex digits, on the stack (ingest makes one per row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token([u8; 16]);

impl Token {
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever written into it.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

/// The subject token of an observation.
pub fn token(obs: &Observation) -> Token {
    let key = token_key(obs);
    let mut hex = [0u8; 16];
    for (i, d) in hex.iter_mut().enumerate() {
        *d = b"0123456789abcdef"[((key >> (60 - 4 * i)) & 0xf) as usize];
    }
    Token(hex)
}

/// The number a token spells: the packet's piece family, else its fingerprint.
pub fn token_key(obs: &Observation) -> u64 {
    piece_family_key(&obs.summary).unwrap_or(obs.fingerprint)
}

/// The partition the servers map `obs.<token>` to, of `partitions`.
pub fn partition(token: &str, partitions: u32) -> u32 {
    fnv1a32(token.as_bytes()) % partitions.max(1)
}

/// What ingest publishes to (the servers rewrite it).
pub fn publish_subject(token: &str) -> String {
    format!("obs.{token}")
}

/// What partition `k`'s stream holds.
pub fn stream_subjects(k: u32) -> String {
    format!("part.{k}.*")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a32_matches_the_reference_vectors() {
        // From the FNV reference (draft-eastlake-fnv): "" and "a" and "foobar".
        assert_eq!(fnv1a32(b""), 0x811c_9dc5);
        assert_eq!(fnv1a32(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a32(b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn a_token_is_the_key_in_hex() {
        let mut o = Observation::empty();
        o.fingerprint = 0x0123_4567_89ab_cdef;
        assert_eq!(token(&o).as_str(), "0123456789abcdef");
        o.fingerprint = 7;
        assert_eq!(token(&o).as_str(), format!("{:016x}", 7));
    }

    #[test]
    fn partitions_spread_and_stay_in_range() {
        let mut counts = [0u32; 3];
        for fp in 0u64..3000 {
            let t = format!("{:016x}", fp.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            counts[partition(&t, 3) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c > 800), "{counts:?}");
        assert_eq!(partition("00", 0), 0, "0 partitions is taken as 1");
    }
}

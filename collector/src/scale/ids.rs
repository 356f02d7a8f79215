//! Ids that every ingest node and correlator computes alike, with no shared counter: a
//! 63-bit FNV-1a hash of the names that identify the thing. A store in scaled mode keeps
//! these ids as they come.

use crate::store::{BoardId, LinkId, RunId};
use hopcap_proto::record::LinkInfo;

const FNV64_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV64_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a over the parts, each followed by a 0xff byte (which UTF-8 never holds), so
/// `("ab", "c")` and `("a", "bc")` differ; the top bit cleared, so ids stay positive.
fn hash(parts: &[&[u8]]) -> i64 {
    let mut h = FNV64_OFFSET;
    for part in parts {
        for &b in part.iter().chain(&[0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(FNV64_PRIME);
        }
    }
    (h >> 1) as i64
}

pub fn board(name: &str) -> BoardId {
    BoardId::from_raw(hash(&[b"board", name.as_bytes()]))
}

/// One agent run of a board (the hello's boot id carries the run id).
pub fn run(board_name: &str, boot_id: &str) -> RunId {
    RunId::from_raw(hash(&[b"run", board_name.as_bytes(), boot_id.as_bytes()]))
}

/// A link is its board, namespace, name and ifindex (as the embedded store keys it).
pub fn link(board_name: &str, info: &LinkInfo) -> LinkId {
    LinkId::from_raw(hash(&[
        b"link",
        board_name.as_bytes(),
        info.netns.as_bytes(),
        info.name.as_bytes(),
        &info.ifindex.to_le_bytes(),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_separated() {
        assert_ne!(hash(&[b"ab", b"c"]), hash(&[b"a", b"bc"]));
        assert_ne!(board("pi1"), board("pi2"));
        assert_ne!(run("pi1", "b:1"), run("pi1", "b:2"));
        assert!(board("x").raw() >= 0);
    }

    #[test]
    fn same_names_same_ids() {
        // The ids are part of the stored data: they must not change between releases.
        assert_eq!(hash(&[]), (FNV64_OFFSET >> 1) as i64);
        assert_eq!(board("pi1"), board("pi1"));
    }
}

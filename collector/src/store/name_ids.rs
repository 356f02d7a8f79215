//! Ids every writer computes alike, with no coordination: a hash of what the id names. Two
//! ingest nodes that see the same board (or link, or agent run) hand out the same id; the
//! ClickHouse backend and scaled mode's ingest (`crate::scale`) both use them.

use crate::store::{BoardId, LinkId, RunId};
use hopcap_proto::record::LinkInfo;

/// FNV-1a (64 bits) over the parts, each followed by a 0xff byte (no part of a name contains
/// one in UTF-8), so that ("ab", "c") and ("a", "bc") differ. Kept to 62 bits and never 0:
/// positive in an i64, and 0 stays free to mean "no run".
fn name_hash(parts: &[&[u8]]) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in part.iter().chain([0xffu8].iter()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    ((h >> 2) as i64).max(1)
}

/// A board, by its name.
pub fn board_id(name: &str) -> BoardId {
    BoardId::from_raw(name_hash(&[b"board", name.as_bytes()]))
}

/// An agent run, by its board's name and the hello's boot id (boot and run).
pub fn run_id(board: &str, boot_id: &str) -> RunId {
    RunId::from_raw(name_hash(&[b"run", board.as_bytes(), boot_id.as_bytes()]))
}

/// A link, by its board and what SQLite keys it by: namespace, ifindex and name.
pub fn link_id(board: BoardId, link: &LinkInfo) -> LinkId {
    LinkId::from_raw(name_hash(&[
        b"link",
        &board.raw().to_le_bytes(),
        link.netns.as_bytes(),
        &link.ifindex.to_le_bytes(),
        link.name.as_bytes(),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hopcap_testkit::veth;

    #[test]
    fn ids_depend_only_on_names_and_never_collide_on_part_boundaries() {
        assert_eq!(board_id("pi1"), board_id("pi1"));
        assert_ne!(board_id("pi1"), board_id("pi2"));
        assert_ne!(run_id("ab", "c"), run_id("a", "bc"));
        assert!(run_id("pi1", "boot:1").raw() > 0);
        let b = board_id("pi1");
        // The agent's key for a link is per connection: not part of the id.
        let mut again = veth(3, "", "eth0");
        again.key = 9;
        assert_eq!(link_id(b, &veth(3, "", "eth0")), link_id(b, &again));
        assert_ne!(
            link_id(b, &veth(0, "", "eth0")),
            link_id(b, &veth(0, "web", "eth0"))
        );
        assert_ne!(
            link_id(b, &veth(0, "", "eth0")),
            link_id(board_id("pi2"), &veth(0, "", "eth0"))
        );
    }
}

//! Splitting the observations that share a fingerprint into packets.
//!
//! A fingerprint repeats: IP ids and ICMP sequences wrap, IPv6 has no IP id at all (a TCP
//! retransmission there hashes the same), and hashes collide. So one bucket can hold several
//! packets. Rules, in time order:
//! - an observation joins an open journey only within `window` of that journey's first hop;
//! - never a journey that already has a hop on the same link in the same direction (a packet
//!   crosses a link once per direction; a second sighting is a second packet);
//! - among the journeys left, prefer one that already saw the same addresses and ports (two
//!   flows whose hashes collide stay apart), then the one whose last hop is the most recent
//!   (a journey that stalled long ago was lost; a retransmission continues its own), then the
//!   oldest (FIFO when copies are in flight together).

/// One observation as the splitter needs it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Item {
    /// Index into the prepared views.
    pub idx: u32,
    /// Time on a common clock (corrected, or one board's own).
    pub t: i64,
    /// The capturing socket (board + namespace) and its capture order: ties in time within
    /// one socket keep the kernel's order.
    pub socket: u32,
    pub order: u64,
    /// (board, link, out): seen at most once per journey.
    pub link: (u32, u16, bool),
    /// Hash of the addresses, ports and ICMP id as seen on this hop.
    pub tuple: u64,
}

struct Open {
    first_t: i64,
    last_t: i64,
    /// Positions in the sorted items.
    members: Vec<usize>,
}

/// Splits one bucket into journeys (lists of view indices, in time order). `items` is sorted
/// in place.
pub(super) fn split(items: &mut [Item], window_ns: i64) -> Vec<Vec<u32>> {
    items.sort_unstable_by_key(|it| (it.t, it.socket, it.order));
    if is_one_packet(items, window_ns) {
        return vec![items.iter().map(|it| it.idx).collect()];
    }
    let mut done: Vec<Vec<u32>> = Vec::new();
    let mut open: Vec<Open> = Vec::new();
    let ids = |o: Open| {
        o.members
            .iter()
            .map(|&m| items[m].idx)
            .collect::<Vec<u32>>()
    };
    for (pos, it) in items.iter().enumerate() {
        // Close what can no longer grow (oldest first, so output stays in time order).
        while let Some(i) = open
            .iter()
            .position(|o| it.t.saturating_sub(o.first_t) > window_ns)
        {
            done.push(ids(open.remove(i)));
        }
        let best = open
            .iter()
            .enumerate()
            .filter(|(_, o)| !o.members.iter().any(|&m| items[m].link == it.link))
            .min_by_key(|(_, o)| {
                let same_tuple = o.members.iter().any(|&m| items[m].tuple == it.tuple);
                (!same_tuple, it.t - o.last_t, o.first_t)
            })
            .map(|(i, _)| i);
        match best {
            Some(i) => {
                open[i].last_t = it.t;
                open[i].members.push(pos);
            }
            None => open.push(Open {
                first_t: it.t,
                last_t: it.t,
                members: vec![pos],
            }),
        }
    }
    done.extend(open.into_iter().map(ids));
    done
}

/// The common case, answered without bookkeeping: within the window, no link seen twice.
fn is_one_packet(items: &[Item], window_ns: i64) -> bool {
    let (Some(first), Some(last)) = (items.first(), items.last()) else {
        return true;
    };
    last.t.saturating_sub(first.t) <= window_ns
        && items.len() <= 64
        && items
            .iter()
            .enumerate()
            .all(|(i, a)| items[..i].iter().all(|b| b.link != a.link))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(idx: u32, t: i64, link: u16, out: bool) -> Item {
        Item {
            idx,
            t,
            socket: 0,
            order: idx as u64,
            link: (0, link, out),
            tuple: 1,
        }
    }

    fn sorted(mut j: Vec<Vec<u32>>) -> Vec<Vec<u32>> {
        j.iter_mut().for_each(|m| m.sort_unstable());
        j.sort();
        j
    }

    #[test]
    fn same_link_twice_starts_a_second_journey() {
        // Two copies 1 ms apart over links 1 → 2 → 3.
        let mut items = vec![
            item(0, 0, 1, false),
            item(1, 20, 2, false),
            item(2, 40, 3, true),
            item(3, 1_000_000, 1, false),
            item(4, 1_000_020, 2, false),
            item(5, 1_000_040, 3, true),
        ];
        let j = sorted(split(&mut items, 1_000_000_000));
        assert_eq!(j, vec![vec![0, 1, 2], vec![3, 4, 5]]);
    }

    #[test]
    fn a_retransmission_does_not_complete_the_lost_original() {
        // The original is lost after link 2; the retransmission 200 ms later goes all the way.
        let ms = 1_000_000;
        let mut items = vec![
            item(0, 0, 1, false),
            item(1, 20, 2, false),
            item(2, 200 * ms, 1, false),
            item(3, 200 * ms + 20, 2, false),
            item(4, 200 * ms + 40, 3, true),
        ];
        let j = sorted(split(&mut items, 1_000 * ms));
        assert_eq!(j, vec![vec![0, 1], vec![2, 3, 4]]);
    }

    #[test]
    fn the_window_splits_far_apart_sightings() {
        let mut items = vec![item(0, 0, 1, false), item(1, 2_000, 2, false)];
        assert_eq!(sorted(split(&mut items, 1_000)), vec![vec![0], vec![1]]);
        let mut items = vec![item(0, 0, 1, false), item(1, 2_000, 2, false)];
        assert_eq!(sorted(split(&mut items, 5_000)), vec![vec![0, 1]]);
    }

    #[test]
    fn colliding_flows_stay_apart_by_their_addresses() {
        // Two flows hash alike and cross the same links at the same moments.
        let a = |idx, t, link, tuple| Item {
            tuple,
            ..item(idx, t, link, false)
        };
        let mut items = vec![a(0, 0, 1, 7), a(1, 1, 1, 9), a(2, 10, 2, 9), a(3, 11, 2, 7)];
        let j = sorted(split(&mut items, 1_000));
        assert_eq!(j, vec![vec![0, 3], vec![1, 2]]);
    }
}

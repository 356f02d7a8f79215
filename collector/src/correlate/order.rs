//! Ordering one journey's hops, and which hop each one came from.
//!
//! Time alone cannot order them: ingress hops on one host share one kernel timestamp (a
//! frame entering a veth and then its bridge is stamped once), and across boards the
//! corrected times are only as good as the clock estimate. So the hops form a graph of what
//! must come before what, walked in time order (Kahn's algorithm, earliest ready hop first):
//! - within one capture socket (board + namespace): the kernel's capture order;
//! - a veth Out before the In on its peer;
//! - across boards: a wire In after the latest wire Out on another board that precedes it
//!   within the clock uncertainty (arrival follows sending).
//!
//! A hop's predecessor (for latency and NAT) is the latest hop it has an edge from, else the
//! hop placed just before it: for a frame a bridge floods to several ports each branch then
//! measures from its own port.

use super::view::View;

#[derive(Debug, PartialEq, Eq)]
pub(super) struct Ordered {
    /// View indices in path order.
    pub hops: Vec<u32>,
    /// Position of each hop's predecessor in `hops`.
    pub prev: Vec<Option<usize>>,
}

/// `tol(a, b)`: how far (ns) the corrected clocks of boards a and b may be off each other.
pub(super) fn order(members: &[u32], views: &[View], tol: impl Fn(u32, u32) -> i64) -> Ordered {
    let n = members.len();
    let v = |i: usize| &views[members[i] as usize];
    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); n];

    let mut by_socket: Vec<usize> = (0..n).collect();
    by_socket.sort_by_key(|&i| (v(i).socket, v(i).order, v(i).ts));
    for w in by_socket.windows(2) {
        if v(w[0]).socket == v(w[1]).socket {
            preds[w[1]].push(w[0]);
        }
    }
    for (b, from) in preds.iter_mut().enumerate() {
        let vb = v(b);
        if vb.out {
            continue;
        }
        from.extend(
            (0..n).filter(|&a| v(a).out && v(a).board == vb.board && v(a).peer == Some(vb.key)),
        );
    }
    for b in (0..n).filter(|&b| v(b).wire && !v(b).out) {
        let vb = v(b);
        let sender = (0..n)
            .filter(|&a| v(a).wire && v(a).out && v(a).board != vb.board)
            .filter(|&a| v(a).t <= vb.t.saturating_add(tol(v(a).board, vb.board)))
            .max_by_key(|&a| (v(a).t, v(a).order));
        if let Some(a) = sender {
            preds[b].push(a);
        }
    }

    let mut waiting: Vec<usize> = preds.iter().map(Vec::len).collect();
    let mut succs: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (b, ps) in preds.iter().enumerate() {
        for &a in ps {
            succs[a].push(b);
        }
    }
    let rank = |i: usize| (v(i).t, v(i).board, v(i).socket, v(i).order, i);
    let mut placed = vec![false; n];
    let mut pos = vec![0usize; n];
    let mut hops = Vec::with_capacity(n);
    let mut prev = Vec::with_capacity(n);
    for p in 0..n {
        // The earliest ready hop; if the edges contradict each other (a cycle), the
        // earliest unplaced one.
        let ready = (0..n)
            .filter(|&i| !placed[i] && waiting[i] == 0)
            .min_by_key(|&i| rank(i));
        let Some(next) = ready.or_else(|| (0..n).filter(|&i| !placed[i]).min_by_key(|&i| rank(i)))
        else {
            break;
        };
        placed[next] = true;
        pos[next] = p;
        for &s in &succs[next] {
            waiting[s] = waiting[s].saturating_sub(1);
        }
        hops.push(members[next]);
        let from = preds[next]
            .iter()
            .filter(|&&a| placed[a] && a != next)
            .map(|&a| pos[a])
            .max();
        prev.push(from.or(p.checked_sub(1)));
    }
    Ordered { hops, prev }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::correlate::testbed::{icmp_echo, link, Bed, BedExt};
    use crate::correlate::view::prepare;
    use hopcap_proto::record::LinkKind;

    /// The Pi+Docker request path, seen out of order in the input and with the veth and
    /// bridge ingress hops sharing one timestamp.
    #[test]
    fn container_to_uplink_in_path_order() {
        let mut bed = Bed::new();
        let eth0 = bed.add(link("pi1", "ctr", "eth0", 7, LinkKind::Veth).peer(8, ""));
        let veth = bed.add(
            link("pi1", "", "vethc426d5b", 8, LinkKind::Veth)
                .peer(7, "ctr")
                .master(3),
        );
        let docker0 = bed.add(link("pi1", "", "docker0", 3, LinkKind::Bridge));
        let wlan0 = bed.add(link("pi1", "", "wlan0", 2, LinkKind::Physical));
        let s = icmp_echo([172, 17, 0, 2], [198, 51, 100, 101], true, 16384, 0, 1);
        let t = 1_000_000;
        // Input order scrambled; docker0 and veth share the stamp.
        bed.see(0, ("pi1", wlan0), true, t + 363, &s);
        bed.see(0, ("pi1", veth), false, t + 23, &s);
        bed.see(0, ("pi1", docker0), false, t + 23, &s);
        bed.see(0, ("pi1", eth0), true, t, &s);
        let (topo, hops, _) = bed.finish();
        let views = prepare(&hops, &topo).views;
        let o = order(&[0, 1, 2, 3], &views, |_, _| 0);
        let names: Vec<&str> = o
            .hops
            .iter()
            .map(|&i| {
                topo.link("pi1", hops[i as usize].obs.link)
                    .unwrap()
                    .name
                    .as_str()
            })
            .collect();
        assert_eq!(names, ["eth0", "vethc426d5b", "docker0", "wlan0"]);
        assert_eq!(o.prev, [None, Some(0), Some(1), Some(2)]);
    }

    #[test]
    fn a_flooded_frame_measures_each_branch_from_its_port() {
        let mut bed = Bed::new();
        let v1 = bed.add(
            link("pi1", "", "veth1", 11, LinkKind::Veth)
                .peer(2, "a")
                .master(3),
        );
        let v2 = bed.add(
            link("pi1", "", "veth2", 12, LinkKind::Veth)
                .peer(2, "b")
                .master(3),
        );
        let v3 = bed.add(
            link("pi1", "", "veth3", 13, LinkKind::Veth)
                .peer(2, "c")
                .master(3),
        );
        let b_eth = bed.add(link("pi1", "b", "eth0", 2, LinkKind::Veth).peer(12, ""));
        let c_eth = bed.add(link("pi1", "c", "eth0", 2, LinkKind::Veth).peer(13, ""));
        let s = icmp_echo([10, 0, 0, 1], [10, 0, 0, 255], true, 1, 1, 1);
        bed.see(0, ("pi1", v1), false, 100, &s);
        bed.see(0, ("pi1", v2), true, 110, &s);
        bed.see(0, ("pi1", v3), true, 120, &s);
        bed.see(0, ("pi1", b_eth), false, 125, &s);
        bed.see(0, ("pi1", c_eth), false, 130, &s);
        let (topo, hops, _) = bed.finish();
        let views = prepare(&hops, &topo).views;
        let o = order(&[0, 1, 2, 3, 4], &views, |_, _| 0);
        assert_eq!(o.hops, [0, 1, 2, 3, 4]);
        // c's eth0 comes from veth3 (position 2), not from b's eth0 placed just before it.
        assert_eq!(o.prev, [None, Some(0), Some(1), Some(1), Some(2)]);
    }

    #[test]
    fn arrival_follows_sending_within_the_clock_uncertainty() {
        let mut bed = Bed::new();
        let a = bed.add(link("pi1", "", "eth0", 2, LinkKind::Physical));
        let b = bed.add(link("pi2", "", "eth0", 2, LinkKind::Physical));
        let s = icmp_echo([10, 0, 0, 1], [10, 0, 0, 2], true, 1, 1, 1);
        // After correction the arrival reads 50 µs before the send: within ±100 µs.
        bed.see(0, ("pi1", a), true, 1_000_000, &s);
        bed.see(0, ("pi2", b), false, 950_000, &s);
        let (topo, hops, _) = bed.finish();
        let views = prepare(&hops, &topo).views;
        assert_eq!(order(&[0, 1], &views, |_, _| 100_000).hops, [0, 1]);
        // Beyond the uncertainty, time decides.
        assert_eq!(order(&[0, 1], &views, |_, _| 10_000).hops, [1, 0]);
    }
}

//! Timing across boards on synthetic beds: which links are a board's wire, and which
//! packets may time a crossing for the clock estimate.

use super::scenarios::{path, run, T0};
use super::testbed::*;
use super::*;

/// Boards whose uplink is a veth (a board in a VM or container; the project's test bed): its
/// peer is on no captured namespace, so for the board it is the wire. Encapsulation takes 60
/// µs on pi1 and 4 µs on pi2, the wire 5 µs: clocks taken between the tunnel devices would
/// be off by half the difference, enough to put pi2's eth0 In before pi1's eth0 Out.
#[test]
fn veth_uplinks_are_the_wire() {
    let (r, truth) = run(vxlan_pair(), &Config::default());
    check_vxlan_pair(&r, &truth);
}

/// A board that shares no traffic with the others, named so that it sorts first (any name
/// an agent likes): the clocks of the boards that do cross are still tied together, with a
/// reference among them, instead of every offset left "not tied" to the lonely board.
#[test]
fn the_reference_clock_is_a_board_tied_to_the_others() {
    let mut bed = vxlan_pair();
    let lonely = bed
        .add(link("\u{1b}[2J<script>", "", "eth0", 2, LinkKind::Physical).addr([10, 9, 9, 9], 24));
    let ping = icmp_echo([10, 9, 9, 9], [10, 9, 9, 1], true, 9, 1, 9);
    walk(
        &mut bed,
        80,
        T0,
        &[(("\u{1b}[2J<script>", lonely), true, 0, &ping)],
    );
    let (r, truth) = run(bed, &Config::default());
    assert_ne!(r.clock.reference.as_deref(), Some("\u{1b}[2J<script>"));
    let (_, unc) = r
        .clock
        .board(if r.clock.reference.as_deref() == Some("pi1") {
            "pi2"
        } else {
            "pi1"
        })
        .unwrap()
        .at(T0);
    assert!(unc.is_some(), "pi1 and pi2 not tied: {:?}", r.clock);
    let _ = truth;
}

/// Two boards, each a pod behind cni0 and flannel.1, their eth0 uplinks veths (see
/// [`veth_uplinks_are_the_wire`]); 40 pings each way.
fn vxlan_pair() -> Bed {
    let mut bed = Bed::new();
    let mut side = |board: &'static str, pod: &str, ip: [u8; 4], eth: [u8; 4]| {
        let p = bed.add(
            link(board, pod, "eth0", 3, LinkKind::Veth)
                .peer(9, "")
                .addr(ip, 24),
        );
        let v = bed.add(
            link(board, "", "vethp", 9, LinkKind::Veth)
                .peer(3, pod)
                .master(5),
        );
        let c = bed.add(link(board, "", "cni0", 5, LinkKind::Bridge));
        let f = bed.add(link(board, "", "flannel.1", 4, LinkKind::Vxlan));
        let e = bed.add(
            link(board, "", "eth0", 2, LinkKind::Veth)
                .peer(7, "lan")
                .addr(eth, 24),
        );
        [(board, p), (board, v), (board, c), (board, f), (board, e)]
    };
    let pi1 = side("pi1", "pod-a", POD_A, PI1_ETH);
    let pi2 = side("pi2", "pod-b", POD_B, PI2_ETH);
    let encap = |board: &str| if board == "pi1" { 60_000 } else { 4_000 };
    for i in 0..40u16 {
        for (pkt, forward) in [(2 * i as usize, true), (2 * i as usize + 1, false)] {
            let (from, to, src, dst, outer) = if forward {
                (pi1, pi2, POD_A, POD_B, (PI1_ETH, PI2_ETH))
            } else {
                (pi2, pi1, POD_B, POD_A, (PI2_ETH, PI1_ETH))
            };
            let inner = icmp_echo(src, dst, forward, 7, i, 100 + pkt as u16);
            let enc = vxlan(&inner, 1, outer, 3000 + pkt as u16);
            let t = T0 + u64::from(i) * 10_000_000 + if forward { 0 } else { 2_000_000 };
            walk(
                &mut bed,
                pkt,
                t,
                &[
                    (from[0], true, 0, &inner),
                    (from[1], false, 2_000, &inner),
                    (from[2], false, 0, &inner),
                    (from[3], true, 10_000, &inner),
                    (from[4], true, encap(from[4].0), &enc),
                    (to[4], false, 5_000, &enc),
                    (to[3], false, 3_000, &inner),
                    (to[2], true, 10_000, &inner),
                    (to[1], true, 1_000, &inner),
                    (to[0], false, 1_000, &inner),
                ],
            );
        }
    }
    bed
}

fn check_vxlan_pair(r: &Report, truth: &[usize]) {
    let s = score(r, truth);
    assert_eq!((s.false_merges, s.complete, s.packets), (0, 80, 80));
    for j in &r.journeys {
        let p = path(j);
        let at = |hop: &str| p.iter().position(|h| h == hop).unwrap();
        let (a, b) = if j.hops[0].hop.board == "pi1" {
            ("pi1/:eth0 Out", "pi2/:eth0 In")
        } else {
            ("pi2/:eth0 Out", "pi1/:eth0 In")
        };
        assert_eq!(at(b), at(a) + 1, "{p:?}");
    }
    let (off, _) = r.clock.board("pi2").unwrap().at(T0);
    assert!(off.abs() < 1_000, "offset {off} ns, truly 0");
}

/// Every host sends some multicast with the same bytes (IPv6 MLD reports, router
/// solicitations): from different hosts they hash alike. Both boards hear a third host's,
/// and each other's, some from the unspecified address (duplicate address detection), which
/// names no sender. Only a sender's own packet may time a crossing.
#[test]
fn multicast_that_every_host_sends_alike_does_not_skew_the_clock() {
    let mut bed = Bed::new();
    bed.set_skew("pi2", 37_000_000);
    let f = flannel(&mut bed);
    let mut rng = Rng::new(5);
    let group = [224, 0, 0, 22];
    let mut pkt = 0;
    for i in 0..100u16 {
        let t = T0 + u64::from(i) * 100_000_000;
        let back = f.ping(&mut bed, pkt, t, i, true, 300_000);
        f.ping(&mut bed, pkt + 1, back + 50_000, i, false, 300_000);
        pkt += 2;
        // A report from each board (heard by the other) and from a third host (heard by
        // both), at unrelated moments, all with the same fingerprint.
        let (a, b) = (f.pi1[4], f.pi2[4]);
        for (src, hops) in [
            (PI1_ETH, [(a, true, 0), (b, false, 300_000)]),
            (PI2_ETH, [(b, true, 0), (a, false, 300_000)]),
            ([192, 168, 1, 2], [(a, false, 0), (b, false, 0)]),
            ([0, 0, 0, 0], [(a, true, 0), (b, false, 300_000)]),
            ([0, 0, 0, 0], [(b, true, 0), (a, false, 300_000)]),
        ] {
            let report = icmp_echo(src, group, true, 0, 0, 0);
            let t0 = t + rng.exp(30_000_000.0);
            for (at, out, dt) in hops {
                bed.see(pkt, at, out, t0 + dt, &report);
            }
            pkt += 1;
        }
    }
    let (r, _) = run(bed, &Config::default());
    let (off, _) = r.clock.board("pi2").unwrap().at(T0 + 5_000_000_000);
    assert!((off - 37_000_000).abs() < 100_000, "offset {off}");
}

/// A scaled run splits the packets between partitions (by piece family): each partition's
/// correlator sees only its own crossings. Merging the other partitions' crossings gives it
/// the clock that all the traffic in one place gives, to the nanosecond; on its own it
/// would estimate from half the crossings (a different minimum in some windows).
#[test]
fn partitions_sharing_crossings_estimate_the_clock_of_the_whole() {
    let mut bed = Bed::new();
    bed.set_skew("pi2", 37_000_000);
    let f = flannel(&mut bed);
    let mut rng = Rng::new(13);
    for i in 0..300u16 {
        let t = T0 + u64::from(i) * 50_000_000;
        let d = 300_000 + rng.exp(400_000.0);
        let there = f.ping(&mut bed, 2 * i as usize, t, i, true, d);
        let d = 300_000 + rng.exp(400_000.0);
        f.ping(&mut bed, 2 * i as usize + 1, there + 50_000, i, false, d);
    }
    let (topo, hops, _) = bed.finish();
    let cfg = Config::default();
    let whole = correlate(hops.clone(), &topo, &cfg);
    let part_of = |h: &Hop| piece_family_key(&h.obs.summary).unwrap_or(h.obs.fingerprint) % 2;
    let halves: Vec<Vec<Hop>> = (0..2)
        .map(|k| hops.iter().filter(|h| part_of(h) == k).cloned().collect())
        .collect();
    assert!(halves.iter().all(|h| !h.is_empty()));
    let points = |r: &Report| r.clock.board("pi2").unwrap().points.clone();
    let mut alone_differs = false;
    for k in 0..2 {
        let alone = correlate(halves[k].clone(), &topo, &cfg);
        alone_differs |= points(&alone) != points(&whole);
        let shared = Config {
            shared_crossings: Some(crossings_of(&halves[1 - k], &topo, &cfg)),
            ..Config::default()
        };
        let joined = correlate(halves[k].clone(), &topo, &shared);
        assert_eq!(points(&joined), points(&whole), "partition {k}");
        assert_eq!(joined.clock.reference, whole.clock.reference);
        // Its own crossings are what it shares.
        assert_eq!(alone.crossings, crossings_of(&halves[k], &topo, &cfg));
    }
    assert!(
        alone_differs,
        "the halves alone estimate the same clock: the test shows nothing"
    );
}

//! End-to-end tests on the synthetic beds: whole journeys, clocks, NAT, tunnels, losses.

use super::testbed::*;
use super::*;

pub(super) const T0: u64 = 1_700_000_000_000_000_000;

pub(super) fn run(bed: Bed, cfg: &Config) -> (Report, Vec<usize>) {
    let (topo, hops, truth) = bed.finish();
    (correlate(hops, &topo, cfg), truth)
}

pub(super) fn path(j: &Journey) -> Vec<String> {
    j.hops
        .iter()
        .map(|h| {
            format!(
                "{}/{}:{} {}",
                h.hop.board,
                h.netns,
                h.link,
                if h.out() { "Out" } else { "In" }
            )
        })
        .collect()
}

#[test]
fn pi_docker_ping_out_and_back() {
    let mut bed = Bed::new();
    let pi = pi_docker(&mut bed);
    let back = pi.request(&mut bed, 0, T0, INTERNET, 0, [23_000, 340_000, 0]);
    pi.reply(
        &mut bed,
        1,
        back + 20_000_000,
        INTERNET,
        0,
        [0, 80_000, 30_000],
    );
    let (r, _) = run(bed, &Config::default());
    assert_eq!(r.journeys.len(), 2);
    let (req, rep) = (&r.journeys[0], &r.journeys[1]);
    assert_eq!(
        path(req),
        [
            "pi1/ctr:eth0 Out",
            "pi1/:vethc426d5b In",
            "pi1/:docker0 In",
            "pi1/:wlan0 Out"
        ]
    );
    let lat: Vec<Option<i64>> = req.hops.iter().map(|h| h.latency_ns).collect();
    assert_eq!(lat, [None, Some(23_000), Some(0), Some(340_000)]);
    assert_eq!(req.nat.len(), 1);
    let n = &req.nat[0];
    assert_eq!(
        (n.kind, n.before.as_str(), n.after.as_str(), n.at),
        (NatKind::Snat, "172.17.0.2", "192.168.43.116", 3)
    );
    assert_eq!(req.fate, Fate::Complete, "left the capture to the Internet");
    assert_eq!(
        path(rep),
        [
            "pi1/:wlan0 In",
            "pi1/:docker0 Out",
            "pi1/:vethc426d5b Out",
            "pi1/ctr:eth0 In"
        ]
    );
    assert_eq!(
        (rep.nat[0].kind, rep.nat[0].after.as_str(), rep.nat[0].at),
        (NatKind::Dnat, "172.17.0.2", 1)
    );
    assert_eq!(rep.fate, Fate::Complete, "delivered to the container");
    assert_eq!((req.flow, rep.flow, r.flows), (0, 0, 1));
}

#[test]
fn flannel_vxlan_across_skewed_boards() {
    let mut bed = Bed::new();
    bed.set_skew("pi2", 37_000_000);
    let f = flannel(&mut bed);
    let mut rng = Rng::new(3);
    for i in 0..400u16 {
        let t = T0 + u64::from(i) * 50_000_000;
        let there = f.ping(
            &mut bed,
            2 * i as usize,
            t,
            i,
            true,
            300_000 + rng.exp(400_000.0),
        );
        f.ping(
            &mut bed,
            2 * i as usize + 1,
            there + 50_000,
            i,
            false,
            300_000 + rng.exp(400_000.0),
        );
    }
    // One more request with a known crossing time, to check the corrected latency.
    let probe = 10_000;
    f.ping(
        &mut bed,
        probe,
        T0 + 10_000_000_000 + 7_000_000,
        999,
        true,
        450_000,
    );
    let (r, truth) = run(bed, &Config::default());

    let clock: &BoardClock = r.clock.board("pi2").unwrap();
    let (off, unc) = clock.at(T0 + 10_000_000_000);
    let windows: Vec<&ClockPoint> = clock.points.iter().collect();
    assert_eq!(windows.len(), 2, "20 s of traffic in 10 s windows");
    assert!(windows
        .iter()
        .all(|p| p.samples > 0 && p.uncertainty_ns.is_some()));
    assert!((off - 37_000_000).abs() < 100_000, "offset {off}");
    assert!(unc.unwrap() < 1_000_000);

    let s = score(&r, &truth);
    assert_eq!((s.false_merges, s.complete, s.packets), (0, s.packets, 801));
    let j = r
        .journeys
        .iter()
        .find(|j| truth[j.hops[0].input] == probe)
        .unwrap();
    assert_eq!(
        path(j),
        [
            "pi1/pod-a:eth0 Out",
            "pi1/:veth9a1 In",
            "pi1/:cni0 In",
            "pi1/:flannel.1 Out",
            "pi1/:eth0 Out",
            "pi2/:eth0 In",
            "pi2/:flannel.1 In",
            "pi2/:cni0 Out",
            "pi2/:veth9a1 Out",
            "pi2/pod-b:eth0 In",
        ]
    );
    let crossing = j.hops[5].latency_ns.unwrap();
    assert!((crossing - 450_000).abs() < 100_000, "crossing {crossing}");
    assert_eq!(j.tunnels.len(), 1);
    assert_eq!((j.tunnels[0].first, j.tunnels[0].last), (4, 5));
    assert_eq!(
        tunnel_label(&j.tunnels[0].tunnel),
        "VXLAN vni 1 192.168.1.11→192.168.1.12"
    );
    assert!(j.nat.is_empty());
}

#[test]
fn dropped_at_the_bridge_is_lost_after_it() {
    let mut bed = Bed::new();
    let pi = pi_docker(&mut bed);
    let s = icmp_echo(CTR, INTERNET, true, 1, 1, 1);
    walk(
        &mut bed,
        0,
        T0,
        &[
            (pi.eth0, true, 0, &s),
            (pi.veth, false, 20_000, &s),
            (pi.docker0, false, 0, &s),
        ],
    );
    let (topo, hops, _) = bed.finish();
    let r = correlate(hops.clone(), &topo, &Config::default());
    assert_eq!(r.journeys[0].fate, Fate::LostAfter(2));
    // The capture reported drops on pi1 then: maybe it was only the sighting that was lost.
    let drop = DropInterval {
        board: "pi1".into(),
        start_ns: T0,
        end_ns: T0 + 1_000_000,
        dropped: 3,
    };
    let cfg = Config {
        drops: vec![drop.clone()],
        ..Config::default()
    };
    assert_eq!(
        correlate(hops.clone(), &topo, &cfg).journeys[0].fate,
        Fate::MaybeCaptureLoss(2)
    );
    // Drops elsewhere or at another time do not excuse it.
    let far = DropInterval {
        start_ns: T0 + 5_000_000_000,
        end_ns: T0 + 6_000_000_000,
        ..drop
    };
    let cfg = Config {
        drops: vec![far],
        ..Config::default()
    };
    assert_eq!(
        correlate(hops, &topo, &cfg).journeys[0].fate,
        Fate::LostAfter(2)
    );
}

#[test]
fn sent_to_a_captured_board_but_never_arrived() {
    let mut bed = Bed::new();
    let f = flannel(&mut bed);
    let inner = icmp_echo(POD_A, POD_B, true, 77, 1, 1);
    let enc = vxlan(&inner, 1, (PI1_ETH, PI2_ETH), 1);
    let steps = [
        (f.pi1[0], true, 0, &inner),
        (f.pi1[1], false, 15_000, &inner),
        (f.pi1[2], false, 0, &inner),
        (f.pi1[3], true, 25_000, &inner),
        (f.pi1[4], true, 20_000, &enc),
    ];
    walk(&mut bed, 0, T0, &steps);
    let (topo, hops, _) = bed.finish();
    assert_eq!(
        correlate(hops.clone(), &topo, &Config::default()).journeys[0].fate,
        Fate::LostAfter(4)
    );
    let drop = DropInterval {
        board: "pi2".into(),
        start_ns: T0,
        end_ns: T0 + 500_000_000,
        dropped: 1,
    };
    let cfg = Config {
        drops: vec![drop],
        ..Config::default()
    };
    assert_eq!(
        correlate(hops, &topo, &cfg).journeys[0].fate,
        Fate::MaybeCaptureLoss(4)
    );
}

/// The accuracy bed: 10 000 echo requests with one id, 1 ms apart, and their replies, 5 hops
/// each, across two boards 37 ms apart, with a TCP upload and its retransmissions beside.
#[test]
fn flood_has_no_false_merges_and_every_path_complete() {
    let (r, truth) = run(flood(10_000, 1_000_000, 37_000_000, 1), &Config::default());
    let s = score(&r, &truth);
    eprintln!(
        "flood: {} packets, {} journeys, complete {:.4}, false merges {:.4}",
        s.packets,
        s.journeys,
        s.complete as f64 / s.packets as f64,
        s.false_merges as f64 / s.journeys.max(1) as f64
    );
    // 10 000 requests + replies, 2 500 segments + 250 retransmissions.
    assert_eq!(s.packets, 22_750);
    assert_eq!(
        (s.false_merges, s.complete, s.journeys),
        (0, s.packets, s.packets)
    );
    assert!(r.journeys.iter().all(|j| j.hops.len() == 5));
    assert_eq!(r.flows, 2, "the ping flow and the TCP flow");
}

#[test]
fn clocks_an_hour_apart_are_found_first_roughly() {
    let (r, truth) = run(
        flood(300, 1_000_000, -3_600_000_000_000, 2),
        &Config::default(),
    );
    let (off, _) = r.clock.board("pi2").unwrap().at(T0);
    assert!((off + 3_600_000_000_000).abs() < 100_000, "{off}");
    let s = score(&r, &truth);
    assert_eq!((s.false_merges, s.complete), (0, s.packets));
}

#[test]
fn colliding_fingerprints_still_split_per_packet() {
    // Every echo hashes alike: only time and "same link twice" tell them apart.
    let mut bed = Bed::new();
    bed.collide = true;
    let pi = pi_docker(&mut bed);
    for i in 0..2_000u16 {
        pi.request(
            &mut bed,
            i as usize,
            T0 + u64::from(i) * 1_000_000,
            INTERNET,
            i,
            [20_000, 300_000, 0],
        );
    }
    let (r, truth) = run(bed, &Config::default());
    let s = score(&r, &truth);
    assert_eq!((s.false_merges, s.complete), (0, 2_000));
}

#[test]
fn tcp_retransmissions_are_new_journeys() {
    let mut bed = Bed::new();
    let pi = pi_docker(&mut bed);
    // IPv4: the retransmission has a new IP id. IPv6: no IP id, same fingerprint; the
    // original was dropped at the bridge, the retransmission 200 ms later got through.
    let v4 = tcp4((CTR, 40000), (INTERNET, 80), 1000, 0x018, 11, 100);
    let v4_again = tcp4((CTR, 40000), (INTERNET, 80), 1000, 0x018, 12, 100);
    let v6 = tcp6((2, 40000), (9, 80), 5000, 100);
    let full = |s| {
        [
            (pi.eth0, true, 0, s),
            (pi.veth, false, 20_000, s),
            (pi.docker0, false, 0, s),
            (pi.wlan0, true, 300_000, s),
        ]
    };
    walk(&mut bed, 0, T0, &full(&v4));
    walk(&mut bed, 1, T0 + 200_000_000, &full(&v4_again));
    walk(&mut bed, 2, T0 + 1_000_000, &full(&v6)[..3]);
    walk(&mut bed, 3, T0 + 201_000_000, &full(&v6));
    let (r, truth) = run(bed, &Config::default());
    let s = score(&r, &truth);
    assert_eq!((s.journeys, s.false_merges, s.complete), (4, 0, 3));
    let lost = r
        .journeys
        .iter()
        .find(|j| truth[j.hops[0].input] == 2)
        .unwrap();
    assert_eq!((lost.hops.len(), lost.fate), (3, Fate::LostAfter(2)));
}

#[test]
fn unknown_links_still_correlate() {
    // No topology at all: hops still group by fingerprint and order by time.
    let mut bed = Bed::new();
    let a = bed.add(link("pi1", "", "eth0", 2, LinkKind::Physical));
    let b = bed.add(link("pi1", "", "eth1", 3, LinkKind::Physical));
    let s = icmp_echo([10, 0, 0, 1], [10, 0, 1, 1], true, 1, 1, 1);
    walk(
        &mut bed,
        0,
        T0,
        &[(("pi1", a), false, 0, &s), (("pi1", b), true, 50_000, &s)],
    );
    let (_, hops, _) = bed.finish();
    let r = correlate(hops, &Topology::new(), &Config::default());
    assert_eq!(r.journeys.len(), 1);
    let names: Vec<&str> = r.journeys[0].hops.iter().map(|h| h.link.as_str()).collect();
    assert_eq!(names, ["link0", "link1"]);
    assert_eq!(r.journeys[0].fate, Fate::Complete);
}

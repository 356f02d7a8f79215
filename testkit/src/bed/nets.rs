//! Ready-made synthetic networks for tests and the bench: a Pi running Docker (container eth0
//! → veth → docker0 → MASQUERADE → wlan0) next to a second Pi on the same Wi-Fi, and two Pis
//! joined by flannel's VXLAN (UDP 8472). Also the scoring of journeys against the truth.

use super::{icmp_echo, link, tcp4, vxlan, with_dst, with_src, At, Bed};
use crate::Rng;
use hopcap_proto::record::LinkKind;
use hopcap_proto::summary::{Net, Summary};
use hopcap_proto::types::Addr;
use std::collections::HashMap;

pub const CTR: [u8; 4] = [172, 17, 0, 2];
pub const PI1_WLAN: [u8; 4] = [192, 168, 43, 116];
pub const PI2_WLAN: [u8; 4] = [192, 168, 43, 117];
pub const INTERNET: [u8; 4] = [198, 51, 100, 101];

/// Pi 1 with one container, and Pi 2 on the same Wi-Fi.
#[derive(Clone, Copy, Debug)]
pub struct PiDocker {
    pub eth0: At,
    pub veth: At,
    pub docker0: At,
    pub wlan0: At,
    pub pi2_wlan0: At,
}

pub fn pi_docker(bed: &mut Bed) -> PiDocker {
    let eth0 = bed.add(
        link("pi1", "ctr", "eth0", 7, LinkKind::Veth)
            .peer(8, "")
            .addr(CTR, 16),
    );
    let veth = bed.add(
        link("pi1", "", "vethc426d5b", 8, LinkKind::Veth)
            .peer(7, "ctr")
            .master(3),
    );
    let docker0 =
        bed.add(link("pi1", "", "docker0", 3, LinkKind::Bridge).addr([172, 17, 0, 1], 16));
    let wlan0 = bed.add(link("pi1", "", "wlan0", 2, LinkKind::Physical).addr(PI1_WLAN, 24));
    let pi2_wlan0 = bed.add(link("pi2", "", "wlan0", 2, LinkKind::Physical).addr(PI2_WLAN, 24));
    PiDocker {
        eth0: ("pi1", eth0),
        veth: ("pi1", veth),
        docker0: ("pi1", docker0),
        wlan0: ("pi1", wlan0),
        pi2_wlan0: ("pi2", pi2_wlan0),
    }
}

/// Records `steps` (link, out, ns after the previous step, summary) of packet `pkt` from `t`.
pub fn walk(bed: &mut Bed, pkt: usize, t: u64, steps: &[(At, bool, u64, &Summary)]) -> u64 {
    let mut t = t;
    for &(at, out, dt, s) in steps {
        t += dt;
        bed.see(pkt, at, out, t, s);
    }
    t
}

impl PiDocker {
    /// The container's echo request to `dst`, masqueraded on wlan0. `lat`: veth, wlan0 and
    /// (if `dst` is Pi 2) the Wi-Fi crossing. Returns the time of the last hop.
    pub fn request(
        &self,
        bed: &mut Bed,
        pkt: usize,
        t: u64,
        dst: [u8; 4],
        seq: u16,
        lat: [u64; 3],
    ) -> u64 {
        let req = icmp_echo(CTR, dst, true, 16384, seq, seq.wrapping_mul(7));
        self.send(bed, pkt, t, &req, lat)
    }

    /// Any packet from the container out through the masquerade (same hops as `request`).
    pub fn send(&self, bed: &mut Bed, pkt: usize, t: u64, inner: &Summary, lat: [u64; 3]) -> u64 {
        let out = with_src(inner, PI1_WLAN, None);
        let mut steps = vec![
            (self.eth0, true, 0, inner),
            (self.veth, false, lat[0], inner),
            (self.docker0, false, 0, inner),
            (self.wlan0, true, lat[1], &out),
        ];
        if matches!(inner.net, Net::Ip(ip) if ip.dst == Addr::V4(PI2_WLAN)) {
            steps.push((self.pi2_wlan0, false, lat[2], &out));
        }
        walk(bed, pkt, t, &steps)
    }

    /// The echo reply from `src` back to the container. `lat`: Wi-Fi crossing (if `src` is
    /// Pi 2), wlan0 → docker0, docker0 → container.
    pub fn reply(
        &self,
        bed: &mut Bed,
        pkt: usize,
        t: u64,
        src: [u8; 4],
        seq: u16,
        lat: [u64; 3],
    ) -> u64 {
        let rep = icmp_echo(src, PI1_WLAN, false, 16384, seq, seq ^ 0x5a5a);
        let inside = with_dst(&rep, CTR);
        let mut steps = Vec::new();
        if src == PI2_WLAN {
            steps.push((self.pi2_wlan0, true, 0, &rep));
        }
        steps.push((
            self.wlan0,
            false,
            if src == PI2_WLAN { lat[0] } else { 0 },
            &rep,
        ));
        steps.push((self.docker0, true, lat[1], &inside));
        steps.push((self.veth, true, 2_000, &inside));
        steps.push((self.eth0, false, lat[2], &inside));
        walk(bed, pkt, t, &steps)
    }
}

/// An ICMP flood from the container to Pi 2 with one echo id, one request every `spacing_ns`
/// and each reply, 5 hops each way; beside it a TCP upload, a segment every 4 spacings and
/// every 10th segment retransmitted 200 ms later (same seq and payload, new IP id, as Linux
/// does). Pi 2's clock is `skew_ns` ahead; delays are jittered (Wi-Fi: 1.2 ms plus
/// exponential queueing).
pub fn flood(n: usize, spacing_ns: u64, skew_ns: i64, seed: u64) -> Bed {
    let mut bed = Bed::new();
    bed.set_skew("pi2", skew_ns);
    let pi = pi_docker(&mut bed);
    let mut rng = Rng::new(seed);
    let t0 = 1_700_000_000_000_000_000u64;
    let mut pkt = 0;
    for i in 0..n {
        let seq = i as u16;
        let t = t0 + i as u64 * spacing_ns;
        let wifi = 1_200_000 + rng.exp(800_000.0);
        let lat = [
            15_000 + rng.exp(5_000.0),
            250_000 + rng.exp(100_000.0),
            wifi,
        ];
        let arrived = pi.request(&mut bed, pkt, t, PI2_WLAN, seq, lat);
        let back = [
            1_200_000 + rng.exp(800_000.0),
            60_000 + rng.exp(20_000.0),
            20_000,
        ];
        pi.reply(&mut bed, pkt + 1, arrived + 40_000, PI2_WLAN, seq, back);
        pkt += 2;
        if i % 4 == 2 {
            let segment = (i / 4) as u32;
            let tcp_seq = 1_000 + segment * 1448;
            let sends = if segment % 10 == 0 { 2 } else { 1 };
            for k in 0..sends {
                let ip_id = (2 * segment + k) as u16;
                let s = tcp4((CTR, 40000), (PI2_WLAN, 80), tcp_seq, 0x018, ip_id, 1448);
                let lat = [
                    15_000 + rng.exp(5_000.0),
                    250_000 + rng.exp(100_000.0),
                    1_200_000 + rng.exp(800_000.0),
                ];
                pi.send(&mut bed, pkt, t + u64::from(k) * 200_000_000, &s, lat);
                pkt += 1;
            }
        }
    }
    bed
}

/// Two Pis joined by flannel VXLAN: a pod on each.
#[derive(Clone, Copy, Debug)]
pub struct Flannel {
    /// pod eth0, host veth, cni0, flannel.1, eth0 — per board.
    pub pi1: [At; 5],
    pub pi2: [At; 5],
}

pub const POD_A: [u8; 4] = [10, 244, 0, 2];
pub const POD_B: [u8; 4] = [10, 244, 1, 3];
pub const PI1_ETH: [u8; 4] = [192, 168, 1, 11];
pub const PI2_ETH: [u8; 4] = [192, 168, 1, 12];

/// When [`flannel_pings`] starts.
pub const FLANNEL_PINGS_T0: u64 = 1_700_000_000_000_000_000;

/// The flannel bed with pi2's clock 37 ms ahead: `pings` echo requests from pod a, 10 ms
/// apart, each answered 10 µs after it arrives (packet 2i the request, 2i + 1 the reply).
pub fn flannel_pings(pings: u16) -> Bed {
    let mut bed = Bed::new();
    bed.set_skew("pi2", 37_000_000);
    let f = flannel(&mut bed);
    for i in 0..pings {
        let t = FLANNEL_PINGS_T0 + u64::from(i) * 10_000_000;
        let back = f.ping(&mut bed, 2 * i as usize, t, i, true, 300_000);
        f.ping(
            &mut bed,
            2 * i as usize + 1,
            back + 10_000,
            i,
            false,
            300_000,
        );
    }
    bed
}

pub fn flannel(bed: &mut Bed) -> Flannel {
    let mut side = |board: &'static str, pod: &str, pod_ip: [u8; 4], net: u8, eth: [u8; 4]| {
        let p = bed.add(
            link(board, pod, "eth0", 3, LinkKind::Veth)
                .peer(9, "")
                .addr(pod_ip, 24),
        );
        let v = bed.add(
            link(board, "", "veth9a1", 9, LinkKind::Veth)
                .peer(3, pod)
                .master(5),
        );
        let c = bed.add(link(board, "", "cni0", 5, LinkKind::Bridge).addr([10, 244, net, 1], 24));
        let f =
            bed.add(link(board, "", "flannel.1", 4, LinkKind::Vxlan).addr([10, 244, net, 0], 32));
        let e = bed.add(link(board, "", "eth0", 2, LinkKind::Physical).addr(eth, 24));
        [(board, p), (board, v), (board, c), (board, f), (board, e)]
    };
    let pi1 = side("pi1", "pod-a", POD_A, 0, PI1_ETH);
    let pi2 = side("pi2", "pod-b", POD_B, 1, PI2_ETH);
    Flannel { pi1, pi2 }
}

impl Flannel {
    /// An echo request pod-a → pod-b (`forward`) or its reply, crossing in `wire_ns`.
    /// Returns the time of the last hop.
    pub fn ping(
        &self,
        bed: &mut Bed,
        pkt: usize,
        t: u64,
        seq: u16,
        forward: bool,
        wire_ns: u64,
    ) -> u64 {
        let (from, to, src, dst, outer) = if forward {
            (self.pi1, self.pi2, POD_A, POD_B, (PI1_ETH, PI2_ETH))
        } else {
            (self.pi2, self.pi1, POD_B, POD_A, (PI2_ETH, PI1_ETH))
        };
        let inner = icmp_echo(src, dst, forward, 77, seq, 1000 + seq);
        let enc = vxlan(&inner, 1, outer, 3000 + seq);
        walk(
            bed,
            pkt,
            t,
            &[
                (from[0], true, 0, &inner),
                (from[1], false, 15_000, &inner),
                (from[2], false, 0, &inner),
                (from[3], true, 25_000, &inner),
                (from[4], true, 20_000, &enc),
                (to[4], false, wire_ns, &enc),
                (to[3], false, 20_000, &inner),
                (to[2], true, 15_000, &inner),
                (to[1], true, 5_000, &inner),
                (to[0], false, 15_000, &inner),
            ],
        )
    }
}

/// How well a report matches the packets behind a bed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Score {
    pub packets: usize,
    pub journeys: usize,
    /// Packets whose journey holds exactly their hops and is complete.
    pub complete: usize,
    /// Journeys holding hops of more than one packet.
    pub false_merges: usize,
}

/// Scores journeys, each given as the inputs (positions in the bed's hops) it holds and
/// whether its path is complete, against `truth` (the true packet of every hop).
pub fn score<J, I>(journeys: J, truth: &[usize]) -> Score
where
    J: IntoIterator<Item = (I, bool)>,
    I: IntoIterator<Item = usize>,
{
    let mut hops_of: HashMap<usize, usize> = HashMap::new();
    for &p in truth {
        *hops_of.entry(p).or_default() += 1;
    }
    let mut s = Score {
        packets: hops_of.len(),
        ..Score::default()
    };
    for (inputs, complete) in journeys {
        s.journeys += 1;
        let mut len = 0;
        let mut packets: Vec<usize> = inputs
            .into_iter()
            .inspect(|_| len += 1)
            .map(|i| truth[i])
            .collect();
        packets.sort_unstable();
        packets.dedup();
        match packets.as_slice() {
            [p] if hops_of.get(p) == Some(&len) && complete => s.complete += 1,
            [_] => {}
            _ => s.false_merges += 1,
        }
    }
    s
}

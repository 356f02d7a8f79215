//! Correlation throughput on one core: journeys per second for the accuracy bed (an ICMP
//! flood with one echo id, 1 ms apart, and the replies: 5 hops each way over two boards whose
//! clocks are 37 ms apart; beside it a TCP upload with retransmissions), end to end:
//! bucketing, clock estimate, splitting, ordering, NAT, fate and flows. Also prints the bed's
//! complete-path fraction and false-merge rate.
//!
//! `cargo bench -p hopcap-collector --bench correlate [-- REQUESTS]` (default 50 000 requests,
//! so about 114 000 journeys and 570 000 observations).

use hopcap_collector::correlate::{self, Hop, Topology};
use hopcap_testkit::bed::{flood, score, Parts};
use std::time::Instant;

fn main() {
    let requests: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(50_000);
    let cfg = correlate::Config::default();
    let mut best = f64::MAX;
    let mut last = None;
    for _ in 0..3 {
        let (topo, hops, truth) = input(flood(requests, 1_000_000, 37_000_000, 1).into_parts());
        let n_hops = hops.len();
        let start = Instant::now();
        let report = correlate::correlate(hops, &topo, &cfg);
        let secs = start.elapsed().as_secs_f64();
        best = best.min(secs);
        last = Some((report, truth, n_hops));
    }
    let Some((report, truth, n_hops)) = last else {
        return;
    };
    let s = score(
        report
            .journeys
            .iter()
            .map(|j| (j.inputs(), j.fate.is_complete())),
        &truth,
    );
    let journeys = report.journeys.len() as f64;
    println!(
        "correlate: {n_hops} observations -> {} journeys in {:.3} s (best of 3): {:.0} journeys/s, {:.0} observations/s",
        report.journeys.len(),
        best,
        journeys / best,
        n_hops as f64 / best
    );
    println!(
        "accuracy: {} packets, complete paths {:.4}, false merges {:.4}",
        s.packets,
        s.complete as f64 / s.packets.max(1) as f64,
        s.false_merges as f64 / s.journeys.max(1) as f64
    );
}

/// The bed's link tables and hops as the correlator takes them.
fn input(parts: Parts) -> (Topology, Vec<Hop>, Vec<usize>) {
    let mut topo = Topology::new();
    for (board, links) in parts.links {
        topo.add_board(&board, links);
    }
    let hops = parts
        .hops
        .into_iter()
        .map(|(board, obs)| Hop { board, obs })
        .collect();
    (topo, hops, parts.truth)
}

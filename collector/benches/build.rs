//! A scaled-mode correlator's journey building ([`Builder`]) on one core, beside correlating
//! the same rows at once: the accuracy bed of `benches/correlate.rs` (an ICMP flood over two
//! boards 37 ms apart), its rows arriving in capture order at the bed's own rate, ticks every
//! 500 ms, journeys settled after 2 s. What is waiting is correlated again on every tick,
//! so the cost per row is about (settle / tick + 1) correlations of it.
//!
//! `cargo bench -p hopcap-collector --bench build [-- REQUESTS]` (default 20 000 requests:
//! 20 s of traffic, about 46 000 journeys and 228 000 observations).

use hopcap_collector::correlate::{self, Topology};
use hopcap_collector::scale::build::{Builder, Links, Row};
use hopcap_collector::store::{LinkId, RowKey, RunId};
use hopcap_proto::record::LinkInfo;
use hopcap_testkit::bed::flood;
use std::collections::HashMap;
use std::time::{Duration, Instant};

const TICK: Duration = Duration::from_millis(500);
const SETTLE: Duration = Duration::from_secs(2);

fn main() {
    let requests: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20_000);
    let parts = flood(requests, 1_000_000, 37_000_000, 1).into_parts();
    let mut topo = Topology::new();
    let mut by_id: HashMap<LinkId, (String, LinkInfo)> = HashMap::new();
    for (b, (board, links)) in parts.links.iter().enumerate() {
        topo.add_board(board, links.iter().cloned());
        for l in links {
            by_id.insert(id(b, l.key), (board.clone(), l.clone()));
        }
    }
    let board_index: HashMap<&str, usize> = parts
        .links
        .iter()
        .enumerate()
        .map(|(i, (b, _))| (b.as_str(), i))
        .collect();
    let rows: Vec<Row> = parts
        .hops
        .iter()
        .enumerate()
        .map(|(i, (board, obs))| Row {
            key: RowKey {
                run: RunId::from_raw(1),
                seq: i as u64 / 100,
                row: (i % 100) as u32,
            },
            link: id(board_index[board.as_str()], obs.link),
            obs: obs.clone(),
        })
        .collect();
    let n = rows.len();
    let cfg = correlate::Config::default();

    let hops = parts
        .hops
        .iter()
        .map(|(board, obs)| correlate::Hop {
            board: board.clone(),
            obs: obs.clone(),
        })
        .collect();
    let start = Instant::now();
    let once = correlate::correlate(hops, &topo, &cfg);
    let once_secs = start.elapsed().as_secs_f64();

    // Simulated arrival: a row arrives at its capture time (the bed's clock), ticks follow it.
    let t0 = parts.hops.first().map_or(0, |(_, o)| o.ts_ns);
    let base = Instant::now();
    let arrival = |ts: u64| base + Duration::from_nanos(ts.saturating_sub(t0));
    let links = Links {
        by_id: &by_id,
        topology: &topo,
    };
    let mut b = Builder::new(0, SETTLE, cfg.clock_window_ns);
    let (mut journeys, mut next, mut message) = (0usize, 0usize, 0u64);
    let mut tick_at = arrival(t0) + TICK;
    let mut busy = Duration::ZERO;
    while next < n || b.waiting() > 0 {
        let mut slice = Vec::new();
        while next < n && arrival(rows[next].obs.ts_ns) < tick_at {
            slice.push(rows[next].clone());
            next += 1;
        }
        let start = Instant::now();
        if !slice.is_empty() {
            b.take((RunId::from_raw(1), message, 0), slice, tick_at);
            message += 1;
        }
        let settled = b.settle(&links, &cfg, tick_at);
        journeys += settled.journeys.len();
        b.stored(settled);
        busy += start.elapsed();
        tick_at += TICK;
    }
    let secs = busy.as_secs_f64();
    println!(
        "build: {n} observations -> {journeys} journeys in {secs:.3} s of CPU over {:.1} s of \
         traffic: {:.0} observations/s; correlated at once: {} journeys in {once_secs:.3} s \
         ({:.0} observations/s), {:.1}x",
        (tick_at - base).as_secs_f64(),
        n as f64 / secs,
        once.journeys.len(),
        n as f64 / once_secs,
        secs / once_secs
    );
}

fn id(board: usize, key: u16) -> LinkId {
    LinkId::from_raw(board as i64 * 100_000 + i64::from(key))
}

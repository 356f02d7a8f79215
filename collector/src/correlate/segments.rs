//! Clock samples from raw timestamps: before clocks are known, a fingerprint bucket is split
//! per board on that board's own clock into segments (one packet's hops on one board). A
//! segment that leaves on a wire link (last Out) and one on another board that arrives on a
//! wire link (first In) are one crossing; its raw delay feeds the clock estimate.
//!
//! Clocks may be off by far more than the matching window (a Pi without RTC or network
//! time), so a rough offset per board pair comes first, from buckets with a single segment
//! on each board (the median of those delays); the crossings are then paired within the
//! window around it.

use super::clock::Sample;
use super::journey::{split, Item};
use super::view::View;
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug)]
struct Seg {
    board: u32,
    /// Raw time of the last Out on a wire link, and of the first In on one.
    send: Option<u64>,
    recv: Option<u64>,
}

pub(super) fn samples(views: &[View], buckets: &[Vec<u32>], window_ns: i64) -> Vec<Sample> {
    let mut per_bucket: Vec<Vec<Seg>> = Vec::new();
    for members in buckets {
        let board_of = |i: &u32| views[*i as usize].board;
        let Some(first) = members.first().map(board_of) else {
            continue;
        };
        if members.iter().all(|i| board_of(i) == first) {
            continue;
        }
        let mut items: Vec<Item> = members
            .iter()
            .map(|&i| item(i, &views[i as usize]))
            .collect();
        items.sort_unstable_by_key(|it| it.link.0);
        let mut segs = Vec::new();
        for board_items in items.chunk_by_mut(|a, b| a.link.0 == b.link.0) {
            let board = board_items[0].link.0;
            for seg in split(board_items, window_ns) {
                segs.push(segment(board, &seg, views));
            }
        }
        per_bucket.push(segs);
    }
    let rough = rough_offsets(&per_bucket);
    let mut out = Vec::new();
    for segs in &per_bucket {
        pair_within_window(segs, &rough, window_ns, &mut out);
    }
    out
}

fn item(i: u32, v: &View) -> Item {
    Item {
        idx: i,
        t: v.ts as i64,
        socket: v.socket,
        order: v.order,
        link: (v.board, v.key, v.out),
        tuple: v.tuple,
    }
}

fn segment(board: u32, members: &[u32], views: &[View]) -> Seg {
    let key = |i: &&u32| (views[**i as usize].ts, views[**i as usize].order);
    let wire = |out: bool| {
        members
            .iter()
            .filter(move |&&i| views[i as usize].wire && views[i as usize].out == out)
    };
    Seg {
        board,
        send: wire(true).max_by_key(key).map(|&i| views[i as usize].ts),
        recv: wire(false).min_by_key(key).map(|&i| views[i as usize].ts),
    }
}

/// Board pair (lo, hi) → rough θ_hi − θ_lo from unambiguous buckets.
fn rough_offsets(per_bucket: &[Vec<Seg>]) -> BTreeMap<(u32, u32), i64> {
    let mut signed: BTreeMap<(u32, u32), Vec<i64>> = BTreeMap::new();
    for segs in per_bucket {
        for a in segs {
            for b in segs {
                let (Some(send), Some(recv)) = (a.send, b.recv) else {
                    continue;
                };
                let alone = |board| segs.iter().filter(|s| s.board == board).count() == 1;
                if a.board == b.board || !alone(a.board) || !alone(b.board) {
                    continue;
                }
                let d = recv as i64 - send as i64;
                let (pair, v) = if a.board < b.board {
                    ((a.board, b.board), d)
                } else {
                    ((b.board, a.board), -d)
                };
                signed.entry(pair).or_default().push(v);
            }
        }
    }
    signed
        .into_iter()
        .map(|(pair, mut v)| {
            let mid = v.len() / 2;
            (pair, *v.select_nth_unstable(mid).1)
        })
        .collect()
}

/// For every arriving segment, the sending segment on each other board whose delay is closest
/// to the rough offset, if within the window.
fn pair_within_window(
    segs: &[Seg],
    rough: &BTreeMap<(u32, u32), i64>,
    window_ns: i64,
    out: &mut Vec<Sample>,
) {
    let mut senders: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for s in segs {
        if let Some(t) = s.send {
            senders.entry(s.board).or_default().push(t);
        }
    }
    senders.values_mut().for_each(|v| v.sort_unstable());
    for b in segs {
        let Some(recv) = b.recv else { continue };
        for (&from, sends) in &senders {
            if from == b.board {
                continue;
            }
            let theta = rough
                .get(&(from.min(b.board), from.max(b.board)))
                .copied()
                .unwrap_or(0);
            let expected = if from < b.board { theta } else { -theta };
            let target = recv.saturating_add_signed(-expected);
            let at = sends.partition_point(|&t| t < target);
            let best = [at.checked_sub(1), Some(at)]
                .into_iter()
                .flatten()
                .filter_map(|i| sends.get(i))
                .map(|&t_send| (t_send, recv as i64 - t_send as i64))
                .min_by_key(|&(_, d)| (d - expected).unsigned_abs());
            if let Some((t_send, d)) = best.filter(|&(_, d)| (d - expected).abs() <= window_ns) {
                out.push(Sample {
                    from,
                    to: b.board,
                    t_send,
                    d,
                });
            }
        }
    }
}

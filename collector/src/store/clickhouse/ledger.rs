//! The small tables folded into what `boards`, `links` and the query names need: the same
//! reconciliation as the SQLite backend's `boards` (`seen = stored + queue_drops +
//! lost_in_transit`), from append-only logs instead of rows updated in place.

use super::tables::{
    BatchRow, ClockStepRow, DisconnectRow, GaveUpRow, HelloRow, LinkRow, StatsRow, TallyRow,
};
use crate::store::link_label;
use crate::store::{BoardId, BoardRow, DropSample, LinkId, StoredLink};
use hopcap_proto::record::{LinkAddr, LinkInfo, LinkKind, Peer, MAX_ADDRS};
use hopcap_proto::types::{Addr, Mac};
use std::collections::{BTreeMap, HashMap};

/// Everything of the small tables (read at once; they are small).
#[derive(Debug, Default, Clone)]
pub struct Ledger {
    /// In order of time.
    pub hellos: Vec<HelloRow>,
    pub disconnects: Vec<DisconnectRow>,
    /// In order of time.
    pub links: Vec<LinkRow>,
    /// Each stored batch once.
    pub batches: Vec<BatchRow>,
    pub tallies: Vec<TallyRow>,
    pub gave_up: Vec<GaveUpRow>,
    pub steps: Vec<ClockStepRow>,
    /// Each stats row once (its latest version).
    pub stats: Vec<StatsRow>,
}

/// A batch as stored: its parts added up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StoredBatch {
    board: i64,
    run: i64,
    seq: u64,
    records: u64,
    at_ns: i64,
    /// All its parts are stored.
    whole: bool,
}

/// A clock step as it applies: to rows of `run` with `seq < first_batch` stored before
/// `stored_ns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub run: i64,
    pub first_batch: u64,
    pub delta_ns: i64,
    pub stored_ns: i64,
    pub at_ns: u64,
}

impl Ledger {
    /// Boards in the order they first said hello (what SQLite's row ids order by).
    pub fn board_order(&self) -> Vec<i64> {
        let mut order = Vec::new();
        for h in &self.hellos {
            if !order.contains(&h.board) {
                order.push(h.board);
            }
        }
        order
    }

    /// Each board's latest hello.
    fn latest_hellos(&self) -> HashMap<i64, &HelloRow> {
        let mut latest = HashMap::new();
        for h in &self.hellos {
            latest.insert(h.board, h);
        }
        latest
    }

    pub fn board_names(&self) -> HashMap<i64, String> {
        self.latest_hellos()
            .into_iter()
            .map(|(b, h)| (b, h.name.clone()))
            .collect()
    }

    /// Each link's latest row, in the order links were first reported.
    fn latest_links(&self) -> Vec<LinkRow> {
        let mut order: Vec<i64> = Vec::new();
        let mut latest: HashMap<i64, &LinkRow> = HashMap::new();
        for l in &self.links {
            if latest.insert(l.link, l).is_none() {
                order.push(l.link);
            }
        }
        order.into_iter().map(|id| latest[&id].clone()).collect()
    }

    /// Link id -> (board, netns, name).
    pub fn link_names(&self) -> HashMap<i64, (i64, String, String)> {
        self.latest_links()
            .into_iter()
            .map(|l| (l.link, (l.board, l.netns, l.name)))
            .collect()
    }

    /// Link ids whose name is `sel`, or whose printed label is `sel`.
    pub fn links_matching(&self, sel: &str) -> Vec<i64> {
        let names = self.board_names();
        self.latest_links()
            .into_iter()
            .filter(|l| {
                let board = names.get(&l.board).map_or("", String::as_str);
                l.name == sel || link_label(board, &l.netns, &l.name) == sel
            })
            .map(|l| l.link)
            .collect()
    }

    pub fn board_named(&self, name: &str) -> Option<i64> {
        self.latest_hellos()
            .into_iter()
            .find(|(_, h)| h.name == name)
            .map(|(b, _)| b)
    }

    /// Each clock step once (its first record), by run.
    pub fn steps(&self) -> Vec<Step> {
        let mut first: BTreeMap<(i64, u64), Step> = BTreeMap::new();
        for s in &self.steps {
            let step = Step {
                run: s.run,
                first_batch: s.first_batch,
                delta_ns: s.delta_ns,
                stored_ns: s.stored_ns,
                at_ns: s.at_ns,
            };
            first
                .entry((s.run, s.first_batch))
                .and_modify(|e| {
                    if s.stored_ns < e.stored_ns {
                        *e = step
                    }
                })
                .or_insert(step);
        }
        first.into_values().collect()
    }

    /// The batches stored, their parts (scaled mode) added up: a batch is whole once all its
    /// parts are stored; the records of the parts stored count either way.
    fn whole_batches(&self) -> Vec<StoredBatch> {
        let mut by_key: BTreeMap<(i64, u64), (StoredBatch, Vec<u16>)> = BTreeMap::new();
        for b in &self.batches {
            let (e, parts) = by_key.entry((b.run, b.seq)).or_insert_with(|| {
                let first = StoredBatch {
                    board: b.board,
                    run: b.run,
                    seq: b.seq,
                    records: 0,
                    at_ns: b.at_ns,
                    whole: false,
                };
                (first, Vec::new())
            });
            if !parts.contains(&b.part) {
                parts.push(b.part);
                e.records = e.records.saturating_add(b.records);
            }
            e.at_ns = e.at_ns.max(b.at_ns);
            e.whole = parts.len() >= usize::from(b.parts.max(1));
        }
        by_key.into_values().map(|(b, _)| b).collect()
    }

    pub fn boards(&self) -> Vec<BoardRow> {
        let latest = self.latest_hellos();
        let run_board: HashMap<i64, i64> = self.hellos.iter().map(|h| (h.run, h.board)).collect();
        let mut rows = Vec::new();
        for (&board, h) in &latest {
            let runs: Vec<i64> = {
                let mut r: Vec<i64> = Vec::new();
                for x in self.hellos.iter().filter(|x| x.board == board) {
                    if !r.contains(&x.run) {
                        r.push(x.run);
                    }
                }
                r
            };
            let mut last_seen = h.at_ns;
            let mut batches = 0i64;
            let mut observations = 0i64;
            // Per run: stored batches and records, and the records of each stored batch.
            let mut stored: HashMap<i64, (i64, i64)> = HashMap::new();
            let mut by_seq: HashMap<i64, BTreeMap<u64, u64>> = HashMap::new();
            for b in self.whole_batches().iter().filter(|b| b.board == board) {
                let whole = i64::from(b.whole);
                batches = batches.saturating_add(whole);
                observations = observations.saturating_add(b.records as i64);
                last_seen = last_seen.max(b.at_ns);
                if b.run != 0 && runs.contains(&b.run) {
                    let e = stored.entry(b.run).or_default();
                    e.0 = e.0.saturating_add(whole);
                    e.1 = e.1.saturating_add(b.records as i64);
                    by_seq.entry(b.run).or_default().insert(b.seq, b.records);
                }
            }
            let mut tally: HashMap<i64, (i64, i64)> = HashMap::new();
            for t in self.tallies.iter().filter(|t| runs.contains(&t.run)) {
                let e = tally.entry(t.run).or_default();
                e.0 = e.0.max(t.batches as i64);
                e.1 = e.1.max(t.records as i64);
            }
            let lost_batches: i64 = runs
                .iter()
                .map(|r| {
                    let t = tally.get(r).map_or(0, |t| t.0);
                    let s = stored.get(r).map_or(0, |s| s.0);
                    (t - s).max(0)
                })
                .sum();
            // Each given-up range at its largest.
            let mut ranges: BTreeMap<(i64, u64), &GaveUpRow> = BTreeMap::new();
            for g in self.gave_up.iter().filter(|g| runs.contains(&g.run)) {
                ranges
                    .entry((g.run, g.first))
                    .and_modify(|e| {
                        if g.last > e.last {
                            *e = g
                        }
                    })
                    .or_insert(g);
            }
            let queue_drops: i64 = ranges
                .values()
                .map(|g| {
                    let kept: u64 = by_seq
                        .get(&g.run)
                        .map(|m| m.range(g.first..=g.last).map(|(_, r)| *r).sum())
                        .unwrap_or(0);
                    g.records as i64 - kept as i64
                })
                .sum();
            // The latest stats row of each run, and of the board.
            let mut run_stats: HashMap<i64, &StatsRow> = HashMap::new();
            let mut newest: Option<&StatsRow> = None;
            for s in self.stats.iter().filter(|s| s.board == board) {
                last_seen = last_seen.max(s.ts_ns);
                let e = run_stats.entry(s.run).or_insert(s);
                if s.ts_ns >= e.ts_ns {
                    *e = s;
                }
                if newest.is_none_or(|n| s.ts_ns >= n.ts_ns) {
                    newest = Some(s);
                }
            }
            let kernel_drops = run_stats.values().map(|s| s.kernel_drops as i64).sum();
            let reported_queue_drops = run_stats.values().map(|s| s.queue_drops as i64).sum();
            let mut state = "connected";
            for d in self.disconnects.iter().filter(|d| d.board == board) {
                if d.remote == h.remote && d.at_ns >= h.at_ns {
                    state = "disconnected";
                    last_seen = last_seen.max(d.at_ns);
                }
            }
            let links_present = self
                .latest_links()
                .iter()
                .filter(|l| l.board == board && l.present == 1)
                .count() as i64;
            let seen: i64 = runs.iter().map(|r| tally.get(r).map_or(0, |t| t.1)).sum();
            let stored_records: i64 = runs.iter().map(|r| stored.get(r).map_or(0, |s| s.1)).sum();
            let steps: Vec<Step> = self
                .steps()
                .into_iter()
                .filter(|s| run_board.get(&s.run) == Some(&board))
                .collect();
            let last_step = steps.iter().max_by_key(|s| s.at_ns).map(|s| s.delta_ns);
            rows.push(BoardRow {
                id: BoardId::from_raw(board),
                name: h.name.clone(),
                boot_id: Some(h.boot_id.clone()),
                agent_version: Some(h.agent_version.clone()),
                capture: Some(h.capture.clone()),
                remote: Some(h.remote.clone()),
                first_seen_ns: self
                    .hellos
                    .iter()
                    .filter(|x| x.board == board)
                    .map(|x| x.at_ns)
                    .min()
                    .unwrap_or(h.at_ns),
                last_seen_ns: last_seen,
                state: state.into(),
                clock_offset_ns: (h.has_offset != 0).then_some(h.clock_offset_ns),
                batches,
                observations,
                lost_batches,
                kernel_drops,
                queue_drops,
                links_present,
                seen,
                stored: stored_records,
                lost_in_transit: seen
                    .saturating_sub(stored_records)
                    .saturating_sub(queue_drops),
                reported_queue_drops,
                clock_synced: newest.and_then(|s| (s.synced >= 0).then_some(s.synced == 1)),
                clock_max_error_us: newest
                    .and_then(|s| (s.synced >= 0).then_some(s.max_error_us as i64)),
                clock_steps: steps.len() as i64,
                last_clock_step_ns: last_step,
            });
        }
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        rows
    }

    /// Every link ever reported, by board (in first-hello order), then by first report.
    pub fn stored_links(&self) -> Vec<StoredLink> {
        let names = self.board_names();
        let order = self.board_order();
        let rank = |b: i64| order.iter().position(|x| *x == b).unwrap_or(usize::MAX);
        let mut links = self.latest_links();
        // Stable: within a board, first report order stays.
        links.sort_by_key(|l| rank(l.board));
        links
            .into_iter()
            .map(|l| StoredLink {
                id: LinkId::from_raw(l.link),
                board: names.get(&l.board).cloned().unwrap_or_default(),
                present: l.present == 1,
                info: LinkInfo {
                    key: 0,
                    netns: bounded(&l.netns),
                    name: bounded(&l.name),
                    ifindex: l.ifindex,
                    kind: LinkKind::from_name(&l.kind),
                    mac: Mac(<[u8; 6]>::try_from(l.mac.as_slice()).unwrap_or_default()),
                    mtu: l.mtu,
                    addrs: parse_addrs(&l.addrs),
                    master: u32::try_from(l.master).ok(),
                    peer: u32::try_from(l.peer_ifindex).ok().map(|ifindex| Peer {
                        ifindex,
                        netns: bounded(&l.peer_netns),
                    }),
                    up: l.up != 0,
                },
            })
            .collect()
    }

    /// Every stats row's cumulative drops, by board (first-hello order) and time, on the
    /// board's clock (the latest hello's offset).
    pub fn drop_samples(&self) -> Vec<DropSample> {
        let latest = self.latest_hellos();
        let order = self.board_order();
        let rank = |b: i64| order.iter().position(|x| *x == b).unwrap_or(usize::MAX);
        let mut stats: Vec<&StatsRow> = self.stats.iter().collect();
        stats.sort_by_key(|s| (rank(s.board), s.ts_ns));
        stats
            .into_iter()
            .filter_map(|s| {
                let h = latest.get(&s.board)?;
                let offset = if h.has_offset != 0 {
                    h.clock_offset_ns
                } else {
                    0
                };
                Some(DropSample {
                    board: h.name.clone(),
                    ts_ns: s.ts_ns - offset,
                    total_drops: (s.kernel_drops + s.queue_drops) as i64,
                })
            })
            .collect()
    }
}

fn bounded<const N: usize>(s: &str) -> heapless::String<N> {
    let mut out = heapless::String::new();
    for c in s.chars() {
        if out.push(c).is_err() {
            break;
        }
    }
    out
}

/// `10.0.0.2/24 fe80::1/64` as the writer joins them.
fn parse_addrs(text: &str) -> heapless::Vec<LinkAddr, MAX_ADDRS> {
    let mut out = heapless::Vec::new();
    for item in text.split_whitespace() {
        let (ip, prefix) = item.split_once('/').unwrap_or((item, "0"));
        let addr = match ip.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(a)) => Addr::V4(a.octets()),
            Ok(std::net::IpAddr::V6(a)) => Addr::V6(a.octets()),
            Err(_) => continue,
        };
        let _ = out.push(LinkAddr {
            addr,
            prefix: prefix.parse().unwrap_or(0),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(run: i64, at_ns: i64, remote: &str) -> HelloRow {
        HelloRow {
            board: 1,
            name: "pi".into(),
            run,
            boot_id: format!("boot:{run}"),
            agent_version: String::new(),
            capture: String::new(),
            remote: remote.into(),
            at_ns,
            clock_offset_ns: 0,
            has_offset: 0,
        }
    }

    fn batch(run: i64, seq: u64, records: u64) -> BatchRow {
        BatchRow {
            board: 1,
            run,
            seq,
            part: 0,
            parts: 1,
            records,
            lost_batches: 0,
            at_ns: 5,
        }
    }

    fn stats(run: i64, ts_ns: i64, kernel_drops: u64) -> StatsRow {
        StatsRow {
            board: 1,
            run,
            row_key: ts_ns,
            ts_ns,
            kernel_packets: 0,
            kernel_drops,
            queue_drops: 1,
            synced: -1,
            max_error_us: 0,
        }
    }

    #[test]
    fn delivery_reconciles_over_runs_from_the_logs() {
        let ledger = Ledger {
            hellos: vec![hello(10, 1, "a"), hello(20, 2, "b")],
            disconnects: vec![DisconnectRow {
                board: 1,
                remote: "a".into(),
                at_ns: 3,
            }],
            // Run 10: batches 0, 1, 3 stored of 5; run 20: batch 0 of 1.
            batches: vec![
                batch(10, 0, 10),
                batch(10, 1, 10),
                batch(10, 3, 10),
                batch(20, 0, 7),
            ],
            tallies: vec![
                TallyRow {
                    run: 10,
                    board: 1,
                    batches: 3,
                    records: 30,
                    at_ns: 1,
                },
                TallyRow {
                    run: 10,
                    board: 1,
                    batches: 5,
                    records: 50,
                    at_ns: 2,
                },
                TallyRow {
                    run: 20,
                    board: 1,
                    batches: 1,
                    records: 7,
                    at_ns: 3,
                },
            ],
            // Batches 2..3 given up (20 records), at its largest; #3 was stored after all.
            gave_up: vec![
                GaveUpRow {
                    run: 10,
                    board: 1,
                    first: 2,
                    last: 2,
                    records: 10,
                },
                GaveUpRow {
                    run: 10,
                    board: 1,
                    first: 2,
                    last: 3,
                    records: 20,
                },
            ],
            stats: vec![stats(10, 1, 4), stats(10, 2, 6), stats(20, 3, 2)],
            ..Ledger::default()
        };
        let b = &ledger.boards()[0];
        assert_eq!((b.batches, b.observations), (4, 37));
        assert_eq!((b.seen, b.stored), (57, 37));
        assert_eq!(b.queue_drops, 10, "batch #2 only: #3 is stored");
        assert_eq!(b.lost_in_transit, 10, "batch #4");
        assert_eq!(b.seen, b.stored + b.queue_drops + b.lost_in_transit);
        assert_eq!(b.lost_batches, 2);
        assert_eq!(b.kernel_drops, 6 + 2, "each run's latest report, summed");
        assert_eq!(b.reported_queue_drops, 2);
        // The old connection's end does not disconnect the new one.
        assert_eq!(b.state, "connected");
        assert_eq!(b.boot_id.as_deref(), Some("boot:20"));
    }

    #[test]
    fn a_batch_in_parts_is_whole_once_all_its_parts_are() {
        let part = |part, records| BatchRow {
            part,
            parts: 2,
            ..batch(10, 0, records)
        };
        let mut ledger = Ledger {
            hellos: vec![hello(10, 1, "a")],
            batches: vec![part(1, 4)],
            ..Ledger::default()
        };
        let b = ledger.boards().remove(0);
        assert_eq!((b.batches, b.observations, b.stored), (0, 4, 4));
        // The other part, and the first again (a copy from another writer).
        ledger.batches.extend([part(0, 6), part(1, 4)]);
        let b = ledger.boards().remove(0);
        assert_eq!((b.batches, b.observations, b.stored), (1, 10, 10));
    }
}

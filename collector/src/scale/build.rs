//! A partition's journeys, built by its correlator as the rows come in.
//!
//! Rows wait in memory until their journey has *settled*: no new sighting of its packet for
//! a settle time on the correlator's own clock (as `paths --follow` does, so board clocks do
//! not matter). Each tick correlates what waits (with the clock crossings the other
//! partitions shared), and hands out the settled journeys to store. Once they are stored
//! ([`Builder::stored`]) their rows leave, and a message whose rows have all left is
//! acknowledged:
//!
//! - a message is acknowledged only once every row of it is in a stored journey, so a
//!   correlator that dies loses nothing: every row of every journey it had not stored comes
//!   back, on the messages not acknowledged;
//! - rows that come back but are in a stored journey already (their message also held rows
//!   of a journey that had not settled) are left out ([`JourneyStore::members_of`]), so a
//!   journey is never rebuilt from part of its rows;
//! - journeys that share a row (a piece that straddles two wholes) are stored together.
//!
//! [`JourneyStore::members_of`]: crate::store::JourneyStore::members_of

use crate::correlate::{correlate, crossings_of, stored, Config, Crossings, Hop, Topology};
use crate::store::{LinkId, RowKey, RunId, StoredJourney};
use hopcap_proto::record::{LinkInfo, Observation};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A message of a partition stream: the batch part it carries.
pub type MessageKey = (RunId, u64, u16);

/// How long a row whose link the store does not know yet (its board's metadata still on
/// the way) waits before it is given up as unlinked, as the query commands leave such rows
/// out.
pub const LINK_WAIT: Duration = Duration::from_secs(30);

/// One row taken from a message.
#[derive(Debug, Clone)]
pub struct Row {
    pub key: RowKey,
    pub link: LinkId,
    pub obs: Observation,
}

#[derive(Debug)]
struct Waiting {
    row: Row,
    /// Its partition token's number: the rows of one journey share it.
    family: u64,
    message: MessageKey,
    arrived: Instant,
}

/// What the store knows of the links: each link's board and description (with the link key
/// the topology gives it), and the topology.
#[derive(Debug)]
pub struct Links<'a> {
    pub by_id: &'a HashMap<LinkId, (String, LinkInfo)>,
    pub topology: &'a Topology,
}

/// The journeys one tick found settled, to store before [`Builder::stored`].
#[derive(Debug, Default)]
pub struct Settled {
    pub journeys: Vec<StoredJourney>,
    /// Positions (in the builder's waiting rows) of their rows and of rows given up.
    leaving: Vec<usize>,
    /// The crossings of the settled journeys' hops.
    crossings: Crossings,
    /// Rows given up as unlinked.
    pub unlinked: usize,
}

#[derive(Debug)]
pub struct Builder {
    partition: u32,
    settle: Duration,
    waiting: Vec<Waiting>,
    /// Rows still waiting, by message.
    held: HashMap<MessageKey, usize>,
    /// The crossings of every journey stored (what this partition shares).
    crossings: Crossings,
}

impl Builder {
    pub fn new(partition: u32, settle: Duration, clock_window_ns: u64) -> Builder {
        Builder {
            partition,
            settle,
            waiting: Vec::new(),
            held: HashMap::new(),
            crossings: Crossings {
                window_ns: clock_window_ns,
                ..Crossings::default()
            },
        }
    }

    /// Takes a message's rows. False when that message is waiting already (delivered again
    /// while its rows wait): the rows are not taken twice. A message with no rows is done
    /// at once (see [`Builder::done`]).
    pub fn take(&mut self, message: MessageKey, rows: Vec<Row>, now: Instant) -> bool {
        if self.held.contains_key(&message) {
            return false;
        }
        if rows.is_empty() {
            return true;
        }
        self.held.insert(message, rows.len());
        self.waiting.extend(rows.into_iter().map(|row| Waiting {
            family: super::partition::token_key(&row.obs),
            row,
            message,
            arrived: now,
        }));
        true
    }

    /// Whether a message has no row waiting (it may be acknowledged).
    pub fn done(&self, message: &MessageKey) -> bool {
        !self.held.contains_key(message)
    }

    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// The crossings of the journeys stored so far.
    pub fn crossings(&self) -> &Crossings {
        &self.crossings
    }

    /// Correlates the waiting rows that may settle; the journeys whose every row arrived
    /// `settle` ago, and that share no row with one that has not, are settled.
    ///
    /// Only the families (partition tokens) with a row that arrived `settle` ago are
    /// correlated: a journey of another family has only younger rows, so it cannot settle
    /// now. Each row is then correlated about once, not on every tick it waits through.
    pub fn settle(&self, links: &Links, cfg: &Config, now: Instant) -> Settled {
        let mut out = Settled::default();
        let old = |w: &Waiting| now.duration_since(w.arrived) >= self.settle;
        let mut families: Vec<u64> = self
            .waiting
            .iter()
            .filter(|w| old(w))
            .map(|w| w.family)
            .collect();
        families.sort_unstable();
        families.dedup();
        let mut hops = Vec::new();
        let mut position = Vec::new();
        for (i, w) in self.waiting.iter().enumerate() {
            if families.binary_search(&w.family).is_err() {
                continue;
            }
            match links.by_id.get(&w.row.link) {
                Some((board, info)) => {
                    let mut obs = w.row.obs.clone();
                    obs.link = info.key;
                    hops.push(Hop {
                        board: board.clone(),
                        obs,
                    });
                    position.push(i);
                }
                None if now.duration_since(w.arrived) >= LINK_WAIT => {
                    out.leaving.push(i);
                    out.unlinked += 1;
                }
                None => {}
            }
        }
        if hops.is_empty() {
            return out;
        }
        let n_hops = hops.len();
        let report = correlate(hops, links.topology, cfg);
        let settled_row =
            |input: usize| now.duration_since(self.waiting[position[input]].arrived) >= self.settle;
        // Journeys that share a row settle together: a union over shared inputs.
        let mut group: Vec<usize> = (0..report.journeys.len()).collect();
        fn root(g: &mut [usize], mut i: usize) -> usize {
            while g[i] != i {
                g[i] = g[g[i]];
                i = g[i];
            }
            i
        }
        let mut owner: Vec<Option<usize>> = vec![None; n_hops];
        for (j, journey) in report.journeys.iter().enumerate() {
            for input in journey.inputs() {
                if let Some(other) = owner[input] {
                    let (a, b) = (root(&mut group, j), root(&mut group, other));
                    group[a] = b;
                } else {
                    owner[input] = Some(j);
                }
            }
        }
        let mut open = vec![false; report.journeys.len()];
        for (j, journey) in report.journeys.iter().enumerate() {
            if !journey.inputs().all(settled_row) {
                let r = root(&mut group, j);
                open[r] = true;
            }
        }
        let mut leaving: Vec<usize> = Vec::new();
        for (j, mut journey) in report.journeys.into_iter().enumerate() {
            if open[root(&mut group, j)] {
                continue;
            }
            let mut members: Vec<RowKey> = journey
                .inputs()
                .map(|i| self.waiting[position[i]].row.key)
                .collect();
            members.sort_unstable();
            members.dedup();
            leaving.extend(journey.inputs().map(|i| position[i]));
            // Flow numbers are of one correlation: readers number the flows of what they read.
            journey.flow = 0;
            out.journeys.push(StoredJourney {
                id: StoredJourney::id_of(&members),
                partition: self.partition,
                first_ns: journey
                    .hops
                    .first()
                    .map_or(0, |h| u64::try_from(h.t_ns).unwrap_or(0)),
                fingerprint: journey.fingerprint,
                members,
                body: stored::encode(&journey),
            });
        }
        leaving.sort_unstable();
        leaving.dedup();
        // The settled rows' crossings, each row once (the correlator took the hops, so they
        // are made again from the rows; every one had its link).
        let settled_hops: Vec<Hop> = leaving
            .iter()
            .filter_map(|&i| {
                let w = &self.waiting[i];
                let (board, info) = links.by_id.get(&w.row.link)?;
                let mut obs = w.row.obs.clone();
                obs.link = info.key;
                Some(Hop {
                    board: board.clone(),
                    obs,
                })
            })
            .collect();
        out.crossings = crossings_of(&settled_hops, links.topology, cfg);
        out.leaving.extend(leaving);
        out.leaving.sort_unstable();
        out.leaving.dedup();
        out
    }

    /// `settled`'s journeys are stored: their rows (and the rows given up) leave. Returns
    /// the messages that have no row waiting any more.
    pub fn stored(&mut self, settled: Settled) -> Vec<MessageKey> {
        let mut done = Vec::new();
        for &i in &settled.leaving {
            let Some(w) = self.waiting.get(i) else {
                continue;
            };
            if let Some(left) = self.held.get_mut(&w.message) {
                *left -= 1;
                if *left == 0 {
                    self.held.remove(&w.message);
                    done.push(w.message);
                }
            }
        }
        let mut leaving = settled.leaving.iter().peekable();
        let mut i = 0;
        self.waiting.retain(|_| {
            let gone = leaving.next_if(|&&l| l == i).is_some();
            i += 1;
            !gone
        });
        self.crossings.merge(&settled.crossings);
        self.crossings.keep_last(super::clock_share::SHARED_SPAN_NS);
        done
    }
}

/// The rows of a message, numbered as ingest numbered them.
pub fn rows_of(
    run: RunId,
    seq: u64,
    positions: &[u32],
    rows: Vec<(LinkId, Observation)>,
) -> Vec<Row> {
    positions
        .iter()
        .zip(rows)
        .map(|(&row, (link, obs))| Row {
            key: RowKey { run, seq, row },
            link,
            obs,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::correlate::testbed::{Bed, Rng};
    use std::collections::HashSet;

    struct Fixture {
        by_id: HashMap<LinkId, (String, LinkInfo)>,
        topology: Topology,
        /// Each row with its board-and-key link id, in capture order.
        rows: Vec<(LinkId, Observation, String)>,
    }

    fn link_id(board: usize, key: u16) -> LinkId {
        LinkId::from_raw(board as i64 * 1000 + i64::from(key))
    }

    /// The kit's flannel bed: two skewed boards pinging each other through VXLAN.
    fn fixture(pings: u16) -> Fixture {
        let mut bed = Bed::new();
        bed.set_skew("pi2", 3_000_000);
        let f = hopcap_testkit::bed::flannel(&mut bed);
        let mut rng = Rng::new(4);
        for i in 0..pings {
            let t = T0 + u64::from(i) * 20_000_000;
            let there = f.ping(&mut bed, 2 * i as usize, t, i, true, 300_000 + rng.exp(1e5));
            f.ping(
                &mut bed,
                2 * i as usize + 1,
                there + 9_000,
                i,
                false,
                300_000,
            );
        }
        let parts = bed.into_parts();
        let mut by_id = HashMap::new();
        let mut topology = Topology::new();
        for (b, (board, table)) in parts.links.iter().enumerate() {
            topology.add_board(board, table.iter().cloned());
            for info in table {
                by_id.insert(link_id(b, info.key), (board.clone(), info.clone()));
            }
        }
        let board_index = |name: &str| parts.links.iter().position(|(b, _)| b == name).unwrap();
        let rows = parts
            .hops
            .into_iter()
            .map(|(board, obs)| (link_id(board_index(&board), obs.link), obs, board))
            .collect();
        Fixture {
            by_id,
            topology,
            rows,
        }
    }

    /// Messages of `per` rows each, in capture order (an agent's batches).
    fn messages(f: &Fixture, per: usize) -> Vec<(MessageKey, Vec<Row>)> {
        f.rows
            .chunks(per)
            .enumerate()
            .map(|(seq, chunk)| {
                let run = RunId::from_raw(7);
                let rows = chunk
                    .iter()
                    .enumerate()
                    .map(|(i, (link, obs, _))| Row {
                        key: RowKey {
                            run,
                            seq: seq as u64,
                            row: i as u32,
                        },
                        link: *link,
                        obs: obs.clone(),
                    })
                    .collect();
                ((run, seq as u64, 0), rows)
            })
            .collect()
    }

    const SETTLE: Duration = Duration::from_secs(2);
    /// 2026-11-26T12:00:00Z
    const T0: u64 = 1_795_694_400_000_000_000;

    #[test]
    fn settled_journeys_are_the_whole_correlation_and_free_their_messages() {
        let f = fixture(30);
        let links = Links {
            by_id: &f.by_id,
            topology: &f.topology,
        };
        let cfg = Config::default();
        let t0 = Instant::now();
        let mut b = Builder::new(1, SETTLE, cfg.clock_window_ns);
        let msgs = messages(&f, 7);
        for (k, rows) in msgs.clone() {
            assert!(b.take(k, rows, t0));
        }
        // Delivered again while waiting: not taken twice.
        assert!(!b.take(msgs[0].0, msgs[0].1.clone(), t0));
        let early = b.settle(&links, &cfg, t0 + Duration::from_secs(1));
        assert!(early.journeys.is_empty());
        let settled = b.settle(&links, &cfg, t0 + SETTLE);
        let hops: Vec<Hop> = f
            .rows
            .iter()
            .map(|(_, obs, board)| Hop {
                board: board.clone(),
                obs: obs.clone(),
            })
            .collect();
        let whole = correlate(hops, &f.topology, &cfg);
        assert_eq!(settled.journeys.len(), whole.journeys.len());
        let mut ids = HashSet::new();
        let mut rows = HashSet::new();
        for (s, w) in settled.journeys.iter().zip(&whole.journeys) {
            let mut j = stored::decode(&s.body).unwrap();
            j.flow = w.flow;
            assert_eq!(&j, w);
            assert!(ids.insert(s.id));
            for m in &s.members {
                assert!(rows.insert(*m), "{m:?} in two journeys");
            }
            assert_eq!(s.partition, 1);
        }
        assert_eq!(rows.len(), f.rows.len());
        assert!(msgs.iter().all(|(k, _)| !b.done(k)));
        let done = b.stored(settled);
        assert_eq!(done.len(), msgs.len());
        assert_eq!(b.waiting(), 0);
        assert!(msgs.iter().all(|(k, _)| b.done(k)));
        assert!(
            !b.crossings().pairs.is_empty(),
            "two boards cross: crossings shared"
        );
    }

    /// A message holds rows of a settled journey and of one still growing: the settled one
    /// is stored and its rows leave, the message waits for the other.
    #[test]
    fn a_message_waits_for_its_last_journey() {
        let f = fixture(4);
        let links = Links {
            by_id: &f.by_id,
            topology: &f.topology,
        };
        let cfg = Config::default();
        let t0 = Instant::now();
        let mut b = Builder::new(0, SETTLE, cfg.clock_window_ns);
        let msgs = messages(&f, 1_000);
        let (key, rows) = msgs.into_iter().next().unwrap();
        let (first, last) = rows.split_at(rows.len() / 2);
        // The first half arrived long ago; the second just now, under another message.
        assert!(b.take(key, first.to_vec(), t0));
        let later = (key.0, key.1 + 1, 0);
        assert!(b.take(later, last.to_vec(), t0 + Duration::from_secs(10)));
        let s = b.settle(&links, &cfg, t0 + Duration::from_secs(11));
        let settled_rows: usize = s.journeys.iter().map(|j| j.members.len()).sum();
        assert!(
            settled_rows > 0 && settled_rows < rows.len(),
            "{settled_rows}"
        );
        let done = b.stored(s);
        assert!(done.is_empty() || done == vec![key], "{done:?}");
        assert!(!b.done(&later));
        let s = b.settle(&links, &cfg, t0 + Duration::from_secs(13));
        let done = b.stored(s);
        assert!(done.contains(&later));
        assert_eq!(b.waiting(), 0);
    }

    #[test]
    fn rows_of_unknown_links_wait_then_are_given_up() {
        let f = fixture(2);
        let none = HashMap::new();
        let links = Links {
            by_id: &none,
            topology: &f.topology,
        };
        let cfg = Config::default();
        let t0 = Instant::now();
        let mut b = Builder::new(0, SETTLE, cfg.clock_window_ns);
        let (key, rows) = messages(&f, 1_000).remove(0);
        let n = rows.len();
        b.take(key, rows, t0);
        let s = b.settle(&links, &cfg, t0 + SETTLE);
        assert_eq!((s.journeys.len(), s.unlinked), (0, 0));
        assert!(b.stored(s).is_empty());
        let s = b.settle(&links, &cfg, t0 + LINK_WAIT);
        assert_eq!(s.unlinked, n);
        assert_eq!(b.stored(s), vec![key]);
        assert_eq!(b.waiting(), 0);
    }
}

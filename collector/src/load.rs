//! From a store to a correlated [`Report`]: every observation of the selection's time
//! window is correlated (a journey's hops may sit on other boards or links than the ones
//! asked for); the board, link and filter then pick the journeys that touch them. Store
//! links become per-board link keys, so the correlator sees the topology the agents
//! reported. Backend-neutral: it reads through [`StoreReader`] only.

use crate::correlate::{
    correlate, number_flows, stored, Config, DropInterval, Hop, Journey, Report, Topology,
};
use crate::select::Selection;
use crate::store::{Cursor, DropSample, LinkId, QueryError, StoreReader, TimelineQuery};
use hopcap_proto::record::LinkInfo;
use std::collections::HashMap;

pub fn correlate_selection(
    reader: &dyn StoreReader,
    sel: &Selection,
) -> Result<Report, QueryError> {
    let mut rows = correlate_rows(reader, sel, &sel.window())?;
    let wanted = rows.wanted.clone();
    rows.report.journeys.retain(|j| wants(&wanted, j));
    Ok(rows.report)
}

/// [`correlate_selection`], and the store's cursor of each correlated observation: a hop's
/// `input` indexes it (to read more of its row, such as its frame bytes).
pub fn correlate_selection_rows(
    reader: &dyn StoreReader,
    sel: &Selection,
) -> Result<(Report, Vec<Cursor>), QueryError> {
    let mut rows = correlate_rows(reader, sel, &sel.window())?;
    let wanted = std::mem::take(&mut rows.wanted);
    rows.report.journeys.retain(|j| wants(&wanted, j));
    Ok((rows.report, rows.cursors))
}

/// The journeys the scaled mode's correlators built and stored, for the selection's window
/// (by their first hop) and picked as [`correlate_selection`] picks them, with their flows
/// numbered; `None` from a store that keeps none. The clock model is not among them (each
/// correlator estimated its own, from the crossings all partitions shared).
pub fn built_selection(
    reader: &dyn StoreReader,
    sel: &Selection,
) -> Result<Option<Report>, QueryError> {
    let at = |t: Option<i64>, none: u64| t.map_or(none, |t| u64::try_from(t).unwrap_or(0));
    let Some(stored) = reader.built_journeys(at(sel.since_ns, 0), at(sel.until_ns, u64::MAX))?
    else {
        return Ok(None);
    };
    let mut journeys = Vec::with_capacity(stored.len());
    for s in stored {
        let j = stored::decode(&s.body).map_err(|e| {
            QueryError::Backend(format!("stored journey {:#018x}: {e}", s.id).into())
        })?;
        journeys.push(j);
    }
    journeys.sort_by_key(|j| (j.hops.first().map(|h| h.t_ns), j.fingerprint));
    let flows = number_flows(&mut journeys);
    journeys.retain(|j| {
        j.hops
            .iter()
            .any(|h| sel.names(&h.hop.board, &h.netns, &h.link) && sel.keeps(&h.hop.obs))
    });
    Ok(Some(Report {
        journeys,
        flows,
        ..Report::default()
    }))
}

/// A correlation of the rows a query returned, with what ties it back to the store.
#[derive(Debug)]
pub struct Correlated {
    /// Every journey of the rows, wanted by the selection or not.
    pub report: Report,
    /// The store's position of each input row (a hop's `input` indexes it).
    pub cursors: Vec<Cursor>,
    /// Its capture time, on its board's clock.
    pub ts_ns: Vec<i64>,
    /// Whether the selection's board, link and filter keep that row.
    pub wanted: Vec<bool>,
}

/// Whether a journey touches a row that the selection keeps.
pub fn wants(wanted: &[bool], j: &Journey) -> bool {
    j.hops
        .iter()
        .any(|h| wanted.get(h.input).copied().unwrap_or(false))
}

/// Correlates the rows `q` returns (a journey's hops may lie on other boards or links than
/// the selection's, so `q` is its time window only) and marks the ones `sel` keeps.
pub fn correlate_rows(
    reader: &dyn StoreReader,
    sel: &Selection,
    q: &TimelineQuery,
) -> Result<Correlated, QueryError> {
    let links = topology_links(reader)?;
    let mut hops = Vec::new();
    let (mut cursors, mut ts_ns, mut wanted) = (Vec::new(), Vec::new(), Vec::new());
    reader.timeline(q, &mut |row| {
        let Some((_, info)) = links.get(&row.link_id) else {
            return true;
        };
        let mut obs = row.obs;
        obs.link = info.key;
        wanted.push(sel.names(&row.board, &row.netns, &row.link) && sel.keeps(&obs));
        cursors.push(row.cursor);
        ts_ns.push(i64::try_from(obs.ts_ns).unwrap_or(i64::MAX));
        hops.push(Hop {
            board: row.board,
            obs,
        });
        true
    })?;
    let topo = topology(&links);
    let cfg = Config {
        drops: drop_intervals(&reader.drop_samples()?),
        sampling: sampling_boards(&reader.boards()?),
        ..Config::default()
    };
    Ok(Correlated {
        report: correlate(hops, &topo, &cfg),
        cursors,
        ts_ns,
        wanted,
    })
}

/// The boards whose agent keeps one packet in N > 1: `sample 1/N` in how they capture.
pub fn sampling_boards(boards: &[crate::store::read::BoardRow]) -> Vec<String> {
    boards
        .iter()
        .filter(|b| b.capture.as_deref().is_some_and(samples))
        .map(|b| b.name.clone())
        .collect()
}

/// Whether a board's capture (`ring, snaplen 192, sample 1/10, protocol 6`) samples.
fn samples(capture: &str) -> bool {
    capture
        .split(", ")
        .find_map(|part| part.strip_prefix("sample 1/"))
        .and_then(|n| n.parse::<u32>().ok())
        .is_some_and(|n| n > 1)
}

/// The topology the agents reported, from [`topology_links`].
pub fn topology(links: &StoreLinks) -> Topology {
    let mut topo = Topology::default();
    let mut by_board: HashMap<&str, Vec<LinkInfo>> = HashMap::new();
    for (board, info) in links.values() {
        by_board
            .entry(board.as_str())
            .or_default()
            .push(info.clone());
    }
    for (board, infos) in by_board {
        topo.add_board(board, infos);
    }
    topo
}

/// Each stored link's board and description, by link id.
pub type StoreLinks = HashMap<LinkId, (String, LinkInfo)>;

/// Stored links with link keys given out densely per board, in the store's order (a link
/// id is the backend's and may not fit a `LinkKey`): an observation's `link` is set to its
/// link's key before it is correlated.
pub fn topology_links(reader: &dyn StoreReader) -> Result<StoreLinks, QueryError> {
    let mut next_key: HashMap<String, u16> = HashMap::new();
    let mut out = HashMap::new();
    for link in reader.links()? {
        let key = next_key.entry(link.board.clone()).or_insert(0);
        let mut info = link.info;
        info.key = *key;
        *key = key.wrapping_add(1);
        out.insert(link.id, (link.board, info));
    }
    Ok(out)
}

/// Capture drops between consecutive stats reports of each board (the samples are
/// cumulative, ordered by board and time).
pub fn drop_intervals(samples: &[DropSample]) -> Vec<DropInterval> {
    let mut out = Vec::new();
    for pair in samples.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if a.board == b.board && b.total_drops > a.total_drops {
            out.push(DropInterval {
                board: b.board.clone(),
                start_ns: u64::try_from(a.ts_ns).unwrap_or(0),
                end_ns: u64::try_from(b.ts_ns).unwrap_or(0),
                dropped: u64::try_from(b.total_drops - a.total_drops).unwrap_or(0),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_board_samples_by_how_it_captures() {
        assert!(samples("ring, snaplen 192, sample 1/10, protocol 6"));
        assert!(!samples("ring, snaplen 192, sample 1/1, protocol 6"));
        assert!(!samples("recv, snaplen 192"));
    }

    fn sample(board: &str, ts_ns: i64, total_drops: i64) -> DropSample {
        DropSample {
            board: board.into(),
            ts_ns,
            total_drops,
        }
    }

    #[test]
    fn drops_are_counted_between_reports_of_one_board() {
        let got = drop_intervals(&[
            sample("a", 10, 0),
            sample("a", 20, 5),
            sample("a", 30, 5),
            sample("b", 5, 7), // another board: no interval across the boundary
            sample("b", 15, 9),
        ]);
        let spans: Vec<_> = got
            .iter()
            .map(|d| (d.board.as_str(), d.start_ns, d.end_ns, d.dropped))
            .collect();
        assert_eq!(spans, [("a", 10, 20, 5), ("b", 5, 15, 2)]);
    }
}

//! [`ClickhouseReader`]: the [`StoreReader`] over the shards. Observations come through the
//! Distributed table with FINAL (a batch written twice reads once); the small tables are
//! read whole and folded ([`Ledger`]).

use super::ledger::{Ledger, Step};
use super::row::{decode, ObsRow, OBS_COLUMNS};
use super::shards::Shards;
use crate::store::{
    BoardId, BoardRow, Cursor, DropSample, LinkId, QueryError, StoreReader, StoredLink,
    TimelineQuery, TimelineRow,
};
use std::collections::HashMap;
use std::fmt::Write as _;

#[derive(Debug)]
pub struct ClickhouseReader {
    shards: Shards,
}

fn backend(e: String) -> QueryError {
    QueryError::Backend(e.into())
}

impl ClickhouseReader {
    /// Connects to the shards `spec` names (comma-separated HTTP URLs, the first holding the
    /// small tables); the tables must exist (a writer made them).
    pub fn open(spec: &str) -> Result<ClickhouseReader, String> {
        let shards = Shards::connect(spec)?;
        let found: u64 = shards.run(0, |c| async move {
            c.query(
                "SELECT count() FROM system.tables WHERE database = 'hopcap' AND name = 'hellos'",
            )
            .fetch_one()
            .await
        })?;
        if found == 0 {
            return Err(format!(
                "ClickHouse at {}: no hopcap tables (nothing was ever served into it)",
                shards.url(0)
            ));
        }
        Ok(ClickhouseReader { shards })
    }

    fn fetch_all<T>(&self, sql: &str) -> Result<Vec<T>, QueryError>
    where
        T: clickhouse::Row + for<'b> serde::Deserialize<'b> + Send + 'static,
    {
        let sql = sql.to_string();
        self.shards
            .run(0, |c| async move { c.query(&sql).fetch_all::<T>().await })
            .map_err(backend)
    }

    pub fn ledger(&self) -> Result<Ledger, QueryError> {
        Ok(Ledger {
            hellos: self.fetch_all("SELECT ?fields FROM hopcap.hellos ORDER BY at_ns")?,
            disconnects: self.fetch_all("SELECT ?fields FROM hopcap.disconnects ORDER BY at_ns")?,
            links: self.fetch_all("SELECT ?fields FROM hopcap.links ORDER BY at_ns, pos")?,
            batches: self.fetch_all("SELECT ?fields FROM hopcap.batches FINAL")?,
            tallies: self.fetch_all("SELECT ?fields FROM hopcap.tallies")?,
            gave_up: self.fetch_all("SELECT ?fields FROM hopcap.gave_up")?,
            steps: self.fetch_all("SELECT ?fields FROM hopcap.clock_steps")?,
            stats: self.fetch_all("SELECT ?fields FROM hopcap.stats FINAL")?,
        })
    }

    /// The WHERE clause for `q` (with `ts` the expression of the corrected time).
    fn where_clause(
        &self,
        q: &TimelineQuery,
        ledger: &Ledger,
        ts: &str,
    ) -> Result<String, QueryError> {
        let mut conds = Vec::new();
        if let Some(s) = q.since_ns {
            conds.push(format!("{ts} >= {s}"));
        }
        if let Some(u) = q.until_ns {
            conds.push(format!("{ts} < {u}"));
        }
        if let Some(after) = q.after {
            conds.push(format!("cursor > {}", after.raw()));
        }
        if let Some(board) = &q.board {
            let id = ledger
                .board_named(board)
                .ok_or_else(|| QueryError::NoMatch(format!("no board named {board:?}")))?;
            conds.push(format!("board = {id}"));
        }
        if let Some(link) = &q.link {
            let ids = ledger.links_matching(link);
            if ids.is_empty() {
                return Err(QueryError::NoMatch(format!("no link matches {link:?}")));
            }
            let list: Vec<String> = ids.iter().map(i64::to_string).collect();
            conds.push(format!("link IN ({})", list.join(",")));
        }
        Ok(if conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conds.join(" AND "))
        })
    }

    fn query_rows(
        &self,
        q: &TimelineQuery,
        arrival_order: bool,
        each: &mut dyn FnMut(TimelineRow) -> bool,
    ) -> Result<Option<Cursor>, QueryError> {
        let ledger = self.ledger()?;
        let steps = ledger.steps();
        let ts = ts_expression(&steps);
        let clause = self.where_clause(q, &ledger, &ts)?;
        let order = if arrival_order {
            "cursor".to_string()
        } else {
            // Ties on time: by board as SQLite's row ids order them (first hello first).
            let order = ledger.board_order();
            let ids: Vec<String> = order.iter().map(i64::to_string).collect();
            let ranks: Vec<String> = (1..=order.len()).map(|r| r.to_string()).collect();
            format!(
                "{ts}, transform(board, [{}], [{}], toUInt64(0)), agent_order",
                ids.join(","),
                ranks.join(",")
            )
        };
        let limit = q
            .limit
            .map(|l| format!(" LIMIT {}", l.max(0)))
            .unwrap_or_default();
        let sql = format!(
            "SELECT {OBS_COLUMNS} FROM hopcap.observations FINAL {clause} ORDER BY {order}{limit}"
        );
        let boards = ledger.board_names();
        let links = ledger.link_names();
        let mut last = None;
        let mut bad = None;
        let (sql, steps, boards, links) = (&sql, &steps, &boards, &links);
        let (last_seen, bad_row) = (&mut last, &mut bad);
        self.shards
            .run(0, |c| async move {
                let mut rows = c.query(sql).fetch::<ObsRow>()?;
                while let Some(row) = rows.next().await? {
                    let cursor = Cursor::from_raw(row.cursor);
                    let mut obs = match decode(&row) {
                        Ok(o) => o,
                        Err(err) => {
                            *bad_row = Some(QueryError::BadRow {
                                at: cursor,
                                err: Box::new(err),
                            });
                            break;
                        }
                    };
                    obs.ts_ns = corrected(steps, &row);
                    let board = boards
                        .get(&row.board)
                        .cloned()
                        .unwrap_or_else(|| format!("board{}", row.board));
                    let (netns, link) = links
                        .get(&row.link)
                        .map(|(_, ns, l)| (ns.clone(), l.clone()))
                        .unwrap_or_else(|| (String::new(), format!("link{}", row.link)));
                    *last_seen = (*last_seen).max(Some(cursor));
                    if !each(TimelineRow {
                        cursor,
                        board_id: BoardId::from_raw(row.board),
                        link_id: LinkId::from_raw(row.link),
                        board,
                        netns,
                        link,
                        obs,
                    }) {
                        break;
                    }
                }
                Ok(())
            })
            .map_err(backend)?;
        match bad {
            Some(e) => Err(e),
            None => Ok(last),
        }
    }
}

/// The SQL expression of a row's time on its run's latest clock.
fn ts_expression(steps: &[Step]) -> String {
    if steps.is_empty() {
        return "ts_ns".into();
    }
    let mut sum = String::new();
    for s in steps {
        let _ = write!(
            sum,
            " + if(run = {} AND seq < {} AND stored_ns < {}, {}, 0)",
            s.run, s.first_batch, s.stored_ns, s.delta_ns
        );
    }
    format!("toUInt64(toInt64(ts_ns){sum})")
}

/// [`ts_expression`] for one row read back.
fn corrected(steps: &[Step], row: &ObsRow) -> u64 {
    let delta = steps
        .iter()
        .filter(|s| s.run == row.run && row.seq < s.first_batch && row.stored_ns < s.stored_ns)
        .fold(0i64, |sum, s| sum.saturating_add(s.delta_ns));
    row.ts_ns.saturating_add_signed(delta)
}

impl StoreReader for ClickhouseReader {
    fn built_journeys(
        &self,
        from_ns: u64,
        to_ns: u64,
    ) -> Result<Option<Vec<crate::store::StoredJourney>>, QueryError> {
        super::journeys::read_journeys(&self.shards, from_ns, to_ns).map(Some)
    }

    fn timeline(
        &self,
        q: &TimelineQuery,
        each: &mut dyn FnMut(TimelineRow) -> bool,
    ) -> Result<Option<Cursor>, QueryError> {
        self.query_rows(q, false, each)
    }

    fn arrived(
        &self,
        q: &TimelineQuery,
        each: &mut dyn FnMut(TimelineRow) -> bool,
    ) -> Result<Option<Cursor>, QueryError> {
        self.query_rows(q, true, each)
    }

    fn last_cursor(&self) -> Result<Cursor, QueryError> {
        let max: i64 = self
            .shards
            .run(0, |c| async move {
                c.query("SELECT max(cursor) FROM hopcap.observations")
                    .fetch_one()
                    .await
            })
            .map_err(backend)?;
        Ok(Cursor::from_raw(max))
    }

    fn boards(&self) -> Result<Vec<BoardRow>, QueryError> {
        Ok(self.ledger()?.boards())
    }

    fn links(&self) -> Result<Vec<StoredLink>, QueryError> {
        Ok(self.ledger()?.stored_links())
    }

    fn drop_samples(&self) -> Result<Vec<DropSample>, QueryError> {
        Ok(self.ledger()?.drop_samples())
    }

    fn frames(
        &self,
        q: &TimelineQuery,
        each: &mut dyn FnMut(Cursor, &[u8]) -> bool,
    ) -> Result<(), QueryError> {
        let ledger = self.ledger()?;
        let ts = ts_expression(&ledger.steps());
        let clause = self.where_clause(q, &ledger, &ts)?;
        let clause = if clause.is_empty() {
            "WHERE snap != ''".to_string()
        } else {
            format!("{clause} AND snap != ''")
        };
        let sql = format!("SELECT cursor, snap FROM hopcap.observations FINAL {clause}");
        let frames: Vec<FrameRow> = self.fetch_all(&sql)?;
        for f in frames {
            if !each(Cursor::from_raw(f.cursor), &f.snap) {
                break;
            }
        }
        Ok(())
    }
}

#[derive(Debug, serde::Deserialize, clickhouse::Row)]
struct FrameRow {
    cursor: i64,
    snap: Vec<u8>,
}

/// For tests: the rows of `observations` as stored (no FINAL): how many copies a batch has.
pub fn stored_copies(reader: &ClickhouseReader) -> Result<HashMap<(i64, u64), u64>, QueryError> {
    let rows: Vec<(i64, u64, u64)> =
        reader.fetch_all("SELECT run, seq, count() FROM hopcap.observations GROUP BY run, seq")?;
    Ok(rows.into_iter().map(|(r, s, n)| ((r, s), n)).collect())
}

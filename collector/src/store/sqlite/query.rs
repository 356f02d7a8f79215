//! Reading observations back: the merged timeline of all boards, ordered by
//! (ts_ns, board, agent_order) so equal timestamps keep the order the agent saw them, and
//! the rows that arrived after a given cursor (for `--follow`). SQLite's row id is the
//! cursor: ids only grow.

use super::row::{self, OBS_COLUMNS};
use crate::store::{BoardId, Cursor, LinkId, QueryError, TimelineQuery, TimelineRow};
use rusqlite::Connection;
use std::collections::HashMap;

fn sql(e: rusqlite::Error) -> QueryError {
    QueryError::Backend(Box::new(e))
}

/// Board and link names by id, read once per query (the tables are small).
#[derive(Debug, Default)]
pub struct Names {
    boards: HashMap<i64, String>,
    links: HashMap<i64, (String, String)>,
}

impl Names {
    pub fn load(conn: &Connection) -> rusqlite::Result<Names> {
        let mut names = Names::default();
        let mut stmt = conn.prepare("SELECT id, name FROM boards")?;
        for r in stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))? {
            let (id, name) = r?;
            names.boards.insert(id, name);
        }
        let mut stmt = conn.prepare("SELECT id, netns, name FROM links")?;
        for r in stmt.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))? {
            let (id, v) = r?;
            names.links.insert(id, v);
        }
        Ok(names)
    }

    fn has(&self, board: i64, link: i64) -> bool {
        self.boards.contains_key(&board) && self.links.contains_key(&link)
    }

    fn resolve(&self, board: i64, link: i64) -> (String, String, String) {
        let b = self
            .boards
            .get(&board)
            .cloned()
            .unwrap_or_else(|| format!("board{board}"));
        let (ns, l) = self
            .links
            .get(&link)
            .cloned()
            .unwrap_or_else(|| (String::new(), format!("link{link}")));
        (b, ns, l)
    }
}

/// The WHERE clause and its parameters for `q`.
fn where_clause(conn: &Connection, q: &TimelineQuery) -> Result<(String, Vec<i64>), QueryError> {
    let mut conds = Vec::new();
    let mut params = Vec::new();
    if let Some(s) = q.since_ns {
        conds.push("ts_ns >= ?".to_string());
        params.push(s);
    }
    if let Some(u) = q.until_ns {
        conds.push("ts_ns < ?".to_string());
        params.push(u);
    }
    if let Some(after) = q.after {
        conds.push("id > ?".to_string());
        params.push(after.raw());
    }
    if let Some(board) = &q.board {
        let id: Option<i64> = conn
            .query_row("SELECT id FROM boards WHERE name = ?1", [board], |r| {
                r.get(0)
            })
            .map(Some)
            .or_else(|e| {
                if e == rusqlite::Error::QueryReturnedNoRows {
                    Ok(None)
                } else {
                    Err(e)
                }
            })
            .map_err(sql)?;
        let id = id.ok_or_else(|| QueryError::NoMatch(format!("no board named {board:?}")))?;
        conds.push("board = ?".to_string());
        params.push(id);
        // Also as the board's links: lets the optional (link, ts_ns) index serve it.
        let links: Vec<String> = conn
            .prepare_cached("SELECT id FROM links WHERE board = ?1")
            .and_then(|mut st| {
                st.query_map([id], |r| r.get::<_, i64>(0))?
                    .map(|r| r.map(|i| i.to_string()))
                    .collect::<rusqlite::Result<_>>()
            })
            .map_err(sql)?;
        if !links.is_empty() {
            conds.push(format!("link IN ({})", links.join(",")));
        }
    }
    if let Some(link) = &q.link {
        let ids = link_ids(conn, link).map_err(sql)?;
        if ids.is_empty() {
            return Err(QueryError::NoMatch(format!("no link matches {link:?}")));
        }
        let list: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
        conds.push(format!("link IN ({})", list.join(",")));
    }
    let clause = if conds.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conds.join(" AND "))
    };
    Ok((clause, params))
}

/// Link ids whose name is `sel`, or whose printed label is `sel`.
fn link_ids(conn: &Connection, sel: &str) -> rusqlite::Result<Vec<i64>> {
    let mut stmt = conn.prepare(
        "SELECT l.id FROM links l JOIN boards b ON b.id = l.board
         WHERE l.name = ?1 OR b.name || ':' || CASE WHEN l.netns = '' THEN '' ELSE l.netns || ':' END
               || l.name = ?1",
    )?;
    let ids = stmt.query_map([sel], |r| r.get(0))?;
    ids.collect()
}

/// Calls `each` for every matching row in timeline order; stops early when it returns false.
/// Returns the highest id seen.
pub fn timeline(
    conn: &Connection,
    q: &TimelineQuery,
    each: &mut dyn FnMut(TimelineRow) -> bool,
) -> Result<Option<Cursor>, QueryError> {
    query_rows(conn, q, "ORDER BY ts_ns, board, agent_order", each)
}

/// Like [`timeline`] but in arrival (id) order: what `--follow` polls.
pub fn arrived(
    conn: &Connection,
    q: &TimelineQuery,
    each: &mut dyn FnMut(TimelineRow) -> bool,
) -> Result<Option<Cursor>, QueryError> {
    query_rows(conn, q, "ORDER BY id", each)
}

fn query_rows(
    conn: &Connection,
    q: &TimelineQuery,
    order: &str,
    each: &mut dyn FnMut(TimelineRow) -> bool,
) -> Result<Option<Cursor>, QueryError> {
    let (clause, params) = where_clause(conn, q)?;
    let limit = q.limit.map(|l| format!(" LIMIT {l}")).unwrap_or_default();
    let text =
        format!("SELECT id, board, link, {OBS_COLUMNS} FROM observations {clause} {order}{limit}");
    let mut names = Names::load(conn).map_err(sql)?;
    let mut stmt = conn.prepare(&text).map_err(sql)?;
    let mut rows = stmt
        .query(rusqlite::params_from_iter(params))
        .map_err(sql)?;
    let mut last = None;
    let mut reloaded = false;
    while let Some(r) = rows.next().map_err(sql)? {
        let ids: rusqlite::Result<(i64, i64, i64)> = (|| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))();
        let (id, board_id, link_id) = ids.map_err(sql)?;
        let cursor = Cursor::from_raw(id);
        let obs = row::row_to_observation(r, 3).map_err(|err| QueryError::BadRow {
            at: cursor,
            err: Box::new(err),
        })?;
        if !names.has(board_id, link_id) && !reloaded {
            // A board or link that appeared after the names were read.
            names = Names::load(conn).map_err(sql)?;
            reloaded = true;
        }
        let (board, netns, link) = names.resolve(board_id, link_id);
        last = last.max(Some(cursor));
        if !each(TimelineRow {
            cursor,
            board_id: BoardId::from_raw(board_id),
            link_id: LinkId::from_raw(link_id),
            board,
            netns,
            link,
            obs,
        }) {
            break;
        }
    }
    Ok(last)
}

/// The frame bytes of the rows `q` selects that have them, by id (see
/// [`crate::store::StoreReader::frames`]).
pub fn frames(
    conn: &Connection,
    q: &TimelineQuery,
    each: &mut dyn FnMut(Cursor, &[u8]) -> bool,
) -> Result<(), QueryError> {
    let (clause, params) = where_clause(conn, q)?;
    let clause = if clause.is_empty() {
        "WHERE snap IS NOT NULL".to_string()
    } else {
        format!("{clause} AND snap IS NOT NULL")
    };
    let mut stmt = conn
        .prepare(&format!("SELECT id, snap FROM observations {clause}"))
        .map_err(sql)?;
    let mut rows = stmt
        .query(rusqlite::params_from_iter(params))
        .map_err(sql)?;
    while let Some(r) = rows.next().map_err(sql)? {
        let id: i64 = r.get(0).map_err(sql)?;
        let bytes = r.get_ref(1).map_err(sql)?;
        let bytes = bytes.as_blob().map_err(|e| QueryError::BadRow {
            at: Cursor::from_raw(id),
            err: Box::new(e),
        })?;
        if !each(Cursor::from_raw(id), bytes) {
            break;
        }
    }
    Ok(())
}

/// The highest observation id stored (0 when empty).
pub fn max_id(conn: &Connection) -> Result<Cursor, QueryError> {
    conn.query_row("SELECT coalesce(max(id), 0) FROM observations", [], |r| {
        r.get(0)
    })
    .map(Cursor::from_raw)
    .map_err(sql)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::boards::{upsert_board, upsert_links};
    use crate::store::sqlite::{schema, writer::insert_observations};
    use crate::store::BoardHello;
    use hopcap_testkit::{veth, SampleGen};

    /// Two boards; on each, one packet seen on three links at the SAME timestamp, stored in
    /// reverse capture order; returns the connection.
    fn setup() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        schema::create(&conn, true, &["link"]).unwrap();
        for name in ["pi2", "pi1"] {
            let hello = BoardHello {
                name: name.into(),
                boot_id: String::new(),
                agent_version: String::new(),
                capture: String::new(),
                remote: String::new(),
                board_clock_ns: None,
            };
            let board = upsert_board(&conn, &hello, 0).unwrap().id;
            let links = [
                veth(0, "", "eth0"),
                veth(1, "", "cni0"),
                veth(2, "web", "eth0"),
            ];
            let ids = upsert_links(&conn, board, &links, true, 0).unwrap();
            let mut obs = SampleGen::new(5, 1_000).packet(&[0, 1, 2], 3);
            for o in obs.iter_mut() {
                o.ts_ns = 5_000;
            }
            obs.reverse();
            let rows: Vec<_> = obs
                .into_iter()
                .map(|o| (LinkId::from_raw(ids[o.link as usize].1), o))
                .collect();
            insert_observations(&conn, board, &rows).unwrap();
        }
        conn
    }

    fn labels(conn: &Connection, q: &TimelineQuery) -> Vec<String> {
        let mut out = Vec::new();
        timeline(conn, q, &mut |r| {
            out.push(format!("{} {}", r.label(), r.obs.order));
            true
        })
        .unwrap();
        out
    }

    #[test]
    fn equal_timestamps_keep_capture_order_per_board() {
        let conn = setup();
        // Board ids: pi2 = 1, pi1 = 2; ties sort by board id, then agent order.
        assert_eq!(
            labels(&conn, &TimelineQuery::default()),
            [
                "pi2:eth0 1",
                "pi2:cni0 2",
                "pi2:web:eth0 3",
                "pi1:eth0 1",
                "pi1:cni0 2",
                "pi1:web:eth0 3"
            ]
        );
    }

    #[test]
    fn board_link_window_and_after_select() {
        let conn = setup();
        let q = |f: fn(&mut TimelineQuery)| {
            let mut q = TimelineQuery::default();
            f(&mut q);
            labels(&conn, &q)
        };
        assert_eq!(q(|q| q.board = Some("pi1".into())).len(), 3);
        assert_eq!(q(|q| q.link = Some("eth0".into())).len(), 4);
        assert_eq!(
            q(|q| q.link = Some("pi1:web:eth0".into())),
            ["pi1:web:eth0 3"]
        );
        assert_eq!(q(|q| q.link = Some("pi2:eth0".into())), ["pi2:eth0 1"]);
        assert_eq!(q(|q| q.since_ns = Some(5_001)).len(), 0);
        assert_eq!(q(|q| q.until_ns = Some(5_001)).len(), 6);
        assert_eq!(q(|q| q.after = Some(Cursor::from_raw(4))).len(), 2);
        let err = timeline(
            &conn,
            &TimelineQuery {
                board: Some("nope".into()),
                ..Default::default()
            },
            &mut |_| true,
        );
        assert!(matches!(err, Err(QueryError::NoMatch(_))));
    }
}

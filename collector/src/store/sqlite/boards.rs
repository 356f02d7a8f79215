//! Boards, their links and their statistics: the small tables, written on hello, on link
//! changes and on stats reports.

use crate::store::{BoardHello, BoardId, BoardRow, BoardStats, DropSample, RunTally};
use hopcap_proto::record::{LinkInfo, LinkKey};
use rusqlite::{Connection, OptionalExtension};
use std::fmt::Write as _;

/// A u64 as an SQLite integer: never above `i64::MAX` (a larger one would wrap negative, and a
/// sum past it turns a column into REAL, which every later read of the row fails on).
pub fn sql_int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// `usize` likewise.
fn sql_len(v: usize) -> i64 {
    sql_int(v as u64)
}

/// Counts an agent reports (tally totals, given-up records) are kept at most this large, so
/// that sums over a board's runs stay far inside an i64 (SQLite's `sum` fails on overflow).
pub const MAX_COUNT: u64 = 1 << 48;

/// Link rows one board may have (present or not): past it, absent links older than every
/// stored observation (by an hour) are deleted, and if that is not enough new links are
/// refused.
pub const MAX_LINK_ROWS: i64 = 16_384;
/// Stats rows kept per board (the oldest go first); a board's reports less than
/// [`STATS_MIN_GAP_NS`] apart update its latest row instead of adding one.
pub const MAX_STATS_ROWS: i64 = 20_000;
pub const STATS_MIN_GAP_NS: i64 = 1_000_000_000;
/// Agent runs kept per board that hold nothing (no batch stored, no tally): the oldest go.
pub const MAX_EMPTY_RUNS: i64 = 64;
/// Boards kept that never stored a batch and are disconnected (hellos only): the oldest go.
pub const MAX_EMPTY_BOARDS: i64 = 1024;

/// `a + b` in SQL without leaving the integers (saturates at `i64::MAX`).
macro_rules! sat_add {
    ($a:literal, $b:literal) => {
        concat!(
            "CASE WHEN ",
            $a,
            " > 9223372036854775807 - ",
            $b,
            " THEN 9223372036854775807 ELSE ",
            $a,
            " + ",
            $b,
            " END"
        )
    };
}

/// A board as a new connection finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoardState {
    pub id: i64,
    /// The last batch sequence number stored from this boot of the board, if any.
    pub last_seq: Option<u64>,
}

/// Inserts or refreshes a board at hello. `boot_id` names the agent run (the board's boot
/// and the agent process): a new run forgets the batch sequence, and the drop counts of the
/// earlier runs become the base the new run's counts (cumulative over a run) add to.
pub fn upsert_board(
    conn: &Connection,
    hello: &BoardHello,
    now_ns: i64,
) -> rusqlite::Result<BoardState> {
    let offset = hello.board_clock_ns.map(|b| now_ns.saturating_sub(b));
    let before: Option<(Option<String>, Option<i64>)> = conn
        .prepare_cached("SELECT boot_id, last_seq FROM boards WHERE name = ?1")?
        .query_row([&hello.name], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let last_seq = match before {
        Some((Some(boot), seq)) if boot == hello.boot_id => seq.map(|s| s as u64),
        _ => None,
    };
    let id = conn
        .prepare_cached(
            "INSERT INTO boards (name, boot_id, agent_version, remote, first_seen_ns,
                                 last_seen_ns, state, clock_offset_ns, capture)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5, 'connected', ?6, ?8)
             ON CONFLICT(name) DO UPDATE SET boot_id = ?2, agent_version = ?3, remote = ?4,
                 last_seen_ns = ?5, state = 'connected', clock_offset_ns = ?6,
                 last_seq = ?7, capture = ?8,
                 kernel_drops_base = CASE WHEN boot_id IS ?2 THEN kernel_drops_base
                                          ELSE kernel_drops END,
                 queue_drops_base = CASE WHEN boot_id IS ?2 THEN queue_drops_base
                                         ELSE queue_drops END
             RETURNING id",
        )?
        .query_row(
            rusqlite::params![
                &hello.name,
                &hello.boot_id,
                &hello.agent_version,
                &hello.remote,
                now_ns,
                offset,
                last_seq.map(|s| s as i64),
                &hello.capture
            ],
            |r| r.get(0),
        )?;
    Ok(BoardState { id, last_seq })
}

/// The row of an agent run (`run`: the hello's boot id, naming boot and run), made at its
/// first hello.
pub fn upsert_run(conn: &Connection, board: i64, run: &str, now_ns: i64) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO runs (board, run, first_seen_ns) VALUES (?1, ?2, ?3)
         ON CONFLICT(board, run) DO UPDATE SET board = excluded.board RETURNING id",
    )?
    .query_row((board, run, now_ns), |r| r.get(0))
}

/// Claims batch `seq` of `run` for storing: false if the run already has it (a copy sent
/// again); true, with the run's stored counts raised, if it is new.
pub fn claim_batch(
    conn: &Connection,
    run: i64,
    seq: u64,
    records: usize,
) -> rusqlite::Result<bool> {
    let new = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO run_batches (run, seq, records) VALUES (?1, ?2, ?3)",
        )?
        .execute((run, sql_int(seq), sql_len(records)))?
        == 1;
    if new {
        conn.prepare_cached(concat!(
            "UPDATE runs SET stored_batches = ",
            sat_add!("stored_batches", "1"),
            ", stored_records = ",
            sat_add!("stored_records", "?2"),
            " WHERE id = ?1"
        ))?
        .execute((run, sql_len(records)))?;
    }
    Ok(new)
}

/// Keeps an agent run's tally: the largest totals, and each given-up range at its largest.
pub fn record_tally(conn: &Connection, run: i64, tally: &RunTally) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE runs SET tally_batches = ?2, tally_records = ?3
         WHERE id = ?1 AND tally_batches <= ?2 AND tally_records <= ?3",
    )?
    .execute((
        run,
        sql_int(tally.batches.min(MAX_COUNT)),
        sql_int(tally.records.min(MAX_COUNT)),
    ))?;
    let mut range = conn.prepare_cached(
        "INSERT INTO gave_up (run, first, last, records) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(run, first) DO UPDATE SET last = excluded.last, records = excluded.records
         WHERE excluded.last > gave_up.last",
    )?;
    for g in &tally.gave_up {
        range.execute((
            run,
            sql_int(g.first),
            sql_int(g.last),
            sql_int(g.records.min(MAX_COUNT)),
        ))?;
    }
    Ok(())
}

/// Marks a board disconnected (its connection ended).
pub fn set_disconnected(
    conn: &Connection,
    board: i64,
    remote: &str,
    now_ns: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE boards SET state = 'disconnected', last_seen_ns = max(last_seen_ns, ?2)
         WHERE id = ?1 AND remote = ?3",
    )?
    .execute((board, now_ns, remote))?;
    prune(conn, board)
}

/// Bounds what hellos alone leave behind: a board's empty runs beyond [`MAX_EMPTY_RUNS`], and
/// disconnected boards that never stored a batch beyond [`MAX_EMPTY_BOARDS`] (oldest first,
/// with their links, runs and stats).
fn prune(conn: &Connection, board: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "DELETE FROM runs WHERE id IN (
             SELECT id FROM runs r WHERE r.board = ?1 AND r.stored_batches = 0
                 AND r.tally_batches = 0 AND r.tally_records = 0
                 AND NOT EXISTS (SELECT 1 FROM gave_up g WHERE g.run = r.id)
             ORDER BY r.id DESC LIMIT -1 OFFSET ?2)",
    )?
    .execute((board, MAX_EMPTY_RUNS))?;
    let empty: i64 = conn
        .prepare_cached("SELECT count(*) FROM boards WHERE batches = 0 AND state = 'disconnected'")?
        .query_row([], |r| r.get(0))?;
    if empty <= MAX_EMPTY_BOARDS {
        return Ok(());
    }
    let gone: Vec<i64> = conn
        .prepare_cached(
            "SELECT id FROM boards WHERE batches = 0 AND state = 'disconnected'
             ORDER BY last_seen_ns, id LIMIT ?1",
        )?
        .query_map([empty - MAX_EMPTY_BOARDS], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for id in gone {
        for sql in [
            "DELETE FROM gave_up WHERE run IN (SELECT id FROM runs WHERE board = ?1)",
            "DELETE FROM run_batches WHERE run IN (SELECT id FROM runs WHERE board = ?1)",
            "DELETE FROM runs WHERE board = ?1",
            "DELETE FROM stats WHERE board = ?1",
            "DELETE FROM links WHERE board = ?1 AND NOT EXISTS
                 (SELECT 1 FROM observations o WHERE o.board = ?1)",
            "DELETE FROM boards WHERE id = ?1 AND NOT EXISTS
                 (SELECT 1 FROM observations o WHERE o.board = ?1)",
        ] {
            conn.prepare_cached(sql)?.execute([id])?;
        }
    }
    Ok(())
}

/// Whether board `board` may take `links`: `Err(reason)` if they would bring its link rows
/// past [`MAX_LINK_ROWS`] (links it already has are always refreshed).
pub fn links_room(
    conn: &Connection,
    board: i64,
    links: &[LinkInfo],
) -> rusqlite::Result<Result<(), String>> {
    let count = |conn: &Connection| -> rusqlite::Result<i64> {
        conn.prepare_cached("SELECT count(*) FROM links WHERE board = ?1")?
            .query_row([board], |r| r.get(0))
    };
    let mut have = count(conn)?;
    if have + sql_len(links.len()) <= MAX_LINK_ROWS {
        return Ok(Ok(()));
    }
    // Links gone longer than retention has kept observations can have none left.
    conn.prepare_cached(
        "DELETE FROM links WHERE board = ?1 AND present = 0
             AND last_seen_ns < (SELECT coalesce(min(ts_ns), 0) FROM observations) - 3600000000000",
    )?
    .execute([board])?;
    have = count(conn)?;
    if have + sql_len(links.len()) <= MAX_LINK_ROWS {
        return Ok(Ok(()));
    }
    let mut known = conn.prepare_cached(
        "SELECT 1 FROM links WHERE board = ?1 AND netns = ?2 AND ifindex = ?3 AND name = ?4",
    )?;
    let mut new = 0;
    for l in links {
        let found = known
            .query_row(
                rusqlite::params![board, l.netns.as_str(), l.ifindex, l.name.as_str()],
                |_| Ok(()),
            )
            .optional()?;
        new += i64::from(found.is_none());
    }
    if have + new > MAX_LINK_ROWS {
        return Ok(Err(format!(
            "the board has {have} links stored, at most {MAX_LINK_ROWS} are kept"
        )));
    }
    Ok(Ok(()))
}

/// Counts a stored batch (sequence number `seq`) and the batches found missing before it.
pub fn count_batch(
    conn: &Connection,
    board: i64,
    seq: Option<u64>,
    observations: usize,
    lost_batches: u64,
    now_ns: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(concat!(
        "UPDATE boards SET batches = ",
        sat_add!("batches", "1"),
        ", observations = ",
        sat_add!("observations", "?2"),
        ", lost_batches = ",
        sat_add!("lost_batches", "?3"),
        ", last_seen_ns = max(last_seen_ns, ?4),
             last_seq = CASE WHEN last_seq IS NULL OR ?5 > last_seq THEN coalesce(?5, last_seq)
                             ELSE last_seq END
         WHERE id = ?1"
    ))?
    .execute((
        board,
        sql_len(observations),
        sql_int(lost_batches),
        now_ns,
        seq.map(sql_int),
    ))?;
    Ok(())
}

/// Stores a stats report and keeps the board's latest totals.
pub fn insert_stats(
    conn: &Connection,
    board: i64,
    stats: &BoardStats,
    now_ns: i64,
) -> rusqlite::Result<()> {
    let lost: i64 = conn
        .prepare_cached(
            "UPDATE boards SET kernel_drops = kernel_drops_base + ?2,
                 queue_drops = queue_drops_base + ?3, last_seen_ns = max(last_seen_ns, ?4)
             WHERE id = ?1 RETURNING lost_batches",
        )?
        .query_row(
            (
                board,
                sql_int(stats.kernel_drops.min(MAX_COUNT)),
                sql_int(stats.queue_drops.min(MAX_COUNT)),
                now_ns,
            ),
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);
    let values = (
        board,
        now_ns,
        sql_int(stats.kernel_packets),
        sql_int(stats.kernel_drops.min(MAX_COUNT)),
        sql_int(stats.queue_drops.min(MAX_COUNT)),
        lost,
        now_ns.saturating_sub(STATS_MIN_GAP_NS),
    );
    // Reports closer together than STATS_MIN_GAP_NS (a report in several messages, or a
    // flood) refresh the board's latest row: the counters are cumulative, the last is whole.
    let refreshed = conn
        .prepare_cached(
            "UPDATE stats SET ts_ns = max(ts_ns, ?2), kernel_packets = ?3, kernel_drops = ?4,
                 queue_drops = ?5, lost_batches = ?6
             WHERE id = (SELECT id FROM stats WHERE board = ?1 AND ts_ns > ?7
                         ORDER BY ts_ns DESC LIMIT 1)",
        )?
        .execute(values)?;
    if refreshed > 0 {
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT INTO stats (board, ts_ns, kernel_packets, kernel_drops, queue_drops, lost_batches)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute((values.0, values.1, values.2, values.3, values.4, values.5))?;
    if conn.last_insert_rowid() % 256 == 0 {
        conn.prepare_cached(
            "DELETE FROM stats WHERE board = ?1 AND ts_ns <
                 (SELECT ts_ns FROM stats WHERE board = ?1 ORDER BY ts_ns DESC
                  LIMIT 1 OFFSET ?2)",
        )?
        .execute((board, MAX_STATS_ROWS))?;
    }
    Ok(())
}

/// Inserts or refreshes links; returns each link's key and row id. With `full_report` the
/// board's other links are marked absent (the list is the board's whole link table).
pub fn upsert_links(
    conn: &Connection,
    board: i64,
    links: &[LinkInfo],
    full_report: bool,
    now_ns: i64,
) -> rusqlite::Result<Vec<(LinkKey, i64)>> {
    if full_report {
        conn.prepare_cached("UPDATE links SET present = 0 WHERE board = ?1")?
            .execute([board])?;
    }
    let mut stmt = conn.prepare_cached(
        "INSERT INTO links (board, netns, name, ifindex, kind, mac, mtu, addrs, master,
                            peer_ifindex, peer_netns, up, first_seen_ns, last_seen_ns, present)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13, 1)
         ON CONFLICT(board, netns, ifindex, name) DO UPDATE SET kind = ?5, mac = ?6, mtu = ?7,
             addrs = ?8, master = ?9, peer_ifindex = ?10, peer_netns = ?11, up = ?12,
             last_seen_ns = ?13, present = 1
         RETURNING id",
    )?;
    let mut out = Vec::with_capacity(links.len());
    for l in links {
        let mut addrs = String::new();
        for a in &l.addrs {
            if !addrs.is_empty() {
                addrs.push(' ');
            }
            let _ = write!(addrs, "{}/{}", a.addr, a.prefix);
        }
        let id: i64 = stmt.query_row(
            rusqlite::params![
                board,
                l.netns.as_str(),
                l.name.as_str(),
                l.ifindex,
                l.kind.name(),
                l.mac.0.as_slice(),
                l.mtu,
                addrs,
                l.master,
                l.peer.as_ref().map(|p| p.ifindex),
                l.peer.as_ref().map(|p| p.netns.as_str()),
                l.up,
                now_ns,
            ],
            |r| r.get(0),
        )?;
        out.push((l.key, id));
    }
    Ok(out)
}

/// Marks links absent (the agent reported them gone).
pub fn remove_links(conn: &Connection, link_ids: &[i64], now_ns: i64) -> rusqlite::Result<()> {
    let mut stmt =
        conn.prepare_cached("UPDATE links SET present = 0, last_seen_ns = ?2 WHERE id = ?1")?;
    for id in link_ids {
        stmt.execute((id, now_ns))?;
    }
    Ok(())
}

/// Every board, by name, with its delivery reconciled over all its agent runs: `seen` is
/// what the agents' tallies say their batches hold; of that, `stored` was committed, and what
/// was not is lost in the agent's queue (in a range it gave up on, and not stored after all)
/// or in transit (the rest); batches likewise.
pub fn list_boards(conn: &Connection) -> rusqlite::Result<Vec<BoardRow>> {
    let mut stmt = conn.prepare(
        "SELECT id, name, boot_id, agent_version, remote, first_seen_ns, last_seen_ns, state,
                clock_offset_ns, batches, observations,
                (SELECT coalesce(sum(max(r.tally_batches - r.stored_batches, 0)), 0)
                 FROM runs r WHERE r.board = b.id),
                kernel_drops,
                (SELECT coalesce(sum(g.records - (SELECT coalesce(sum(x.records), 0)
                                                  FROM run_batches x WHERE x.run = g.run
                                                  AND x.seq BETWEEN g.first AND g.last)), 0)
                 FROM gave_up g JOIN runs r ON r.id = g.run WHERE r.board = b.id),
                (SELECT count(*) FROM links l WHERE l.board = b.id AND l.present),
                (SELECT coalesce(sum(r.tally_records), 0) FROM runs r WHERE r.board = b.id),
                (SELECT coalesce(sum(r.stored_records), 0) FROM runs r WHERE r.board = b.id),
                queue_drops, clock_synced, clock_max_error_us,
                (SELECT count(*) FROM clock_steps c JOIN runs r ON r.id = c.run
                 WHERE r.board = b.id),
                (SELECT c.delta_ns FROM clock_steps c JOIN runs r ON r.id = c.run
                 WHERE r.board = b.id ORDER BY c.at_ns DESC LIMIT 1),
                capture
         FROM boards b ORDER BY name",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(BoardRow {
            id: BoardId::from_raw(r.get(0)?),
            name: r.get(1)?,
            boot_id: r.get(2)?,
            agent_version: r.get(3)?,
            remote: r.get(4)?,
            first_seen_ns: r.get(5)?,
            last_seen_ns: r.get(6)?,
            state: r.get(7)?,
            clock_offset_ns: r.get(8)?,
            batches: r.get(9)?,
            observations: r.get(10)?,
            lost_batches: r.get(11)?,
            kernel_drops: r.get(12)?,
            queue_drops: r.get(13)?,
            links_present: r.get(14)?,
            seen: r.get(15)?,
            stored: r.get(16)?,
            lost_in_transit: r
                .get::<_, i64>(15)?
                .saturating_sub(r.get(16)?)
                .saturating_sub(r.get(13)?),
            reported_queue_drops: r.get(17)?,
            clock_synced: r.get::<_, Option<i64>>(18)?.map(|v| v != 0),
            clock_max_error_us: r.get(19)?,
            clock_steps: r.get(20)?,
            last_clock_step_ns: r.get(21)?,
            capture: r.get(22)?,
        })
    })?;
    rows.collect()
}

/// Every stats report's cumulative capture drops, by board and time, moved to the board's
/// clock with the offset sampled at hello.
pub fn drop_samples(conn: &Connection) -> rusqlite::Result<Vec<DropSample>> {
    let mut stmt = conn.prepare(
        "SELECT b.name, s.ts_ns - coalesce(b.clock_offset_ns, 0), s.kernel_drops + s.queue_drops
         FROM stats s JOIN boards b ON b.id = s.board ORDER BY s.board, s.ts_ns",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(DropSample {
            board: r.get(0)?,
            ts_ns: r.get(1)?,
            total_drops: r.get(2)?,
        })
    })?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::schema;

    fn hello(run: &str) -> BoardHello {
        BoardHello {
            name: "pi".into(),
            boot_id: run.into(),
            agent_version: String::new(),
            capture: String::new(),
            remote: "r".into(),
            board_clock_ns: Some(90),
        }
    }

    fn drops(conn: &Connection) -> (i64, i64) {
        conn.query_row("SELECT kernel_drops, queue_drops FROM boards", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap()
    }

    #[test]
    fn counts_add_up_over_runs_not_over_reconnects() {
        let conn = Connection::open_in_memory().unwrap();
        schema::create(&conn, true, &[]).unwrap();
        let stats = |k, q| BoardStats {
            kernel_packets: 0,
            kernel_drops: k,
            queue_drops: q,
            clock: Default::default(),
        };
        let a = upsert_board(&conn, &hello("boot1:run1"), 100).unwrap();
        assert_eq!(a.last_seq, None);
        insert_stats(&conn, a.id, &stats(5, 2), 100).unwrap();
        count_batch(&conn, a.id, Some(41), 10, 0, 100).unwrap();
        // The same run reconnects: its counters go on from where they were.
        let again = upsert_board(&conn, &hello("boot1:run1"), 200).unwrap();
        assert_eq!(
            again,
            BoardState {
                id: a.id,
                last_seq: Some(41)
            }
        );
        insert_stats(&conn, a.id, &stats(7, 2), 200).unwrap();
        assert_eq!(drops(&conn), (7, 2));
        // A new run counts from zero again: its counts add to the earlier runs'.
        let b = upsert_board(&conn, &hello("boot1:run2"), 300).unwrap();
        assert_eq!(
            b,
            BoardState {
                id: a.id,
                last_seq: None
            }
        );
        insert_stats(&conn, b.id, &stats(3, 1), 300).unwrap();
        assert_eq!(drops(&conn), (10, 3));
        let offset: i64 = conn
            .query_row("SELECT clock_offset_ns FROM boards", [], |r| r.get(0))
            .unwrap();
        assert_eq!(offset, 300 - 90);
    }

    #[test]
    fn an_old_connection_ending_does_not_mark_a_reconnected_board() {
        let conn = Connection::open_in_memory().unwrap();
        schema::create(&conn, true, &[]).unwrap();
        let id = upsert_board(&conn, &hello("x"), 1).unwrap().id;
        let mut newer = hello("x");
        newer.remote = "r2".into();
        upsert_board(&conn, &newer, 2).unwrap();
        set_disconnected(&conn, id, "r", 3).unwrap();
        let state: String = conn
            .query_row("SELECT state FROM boards", [], |r| r.get(0))
            .unwrap();
        assert_eq!(state, "connected");
        set_disconnected(&conn, id, "r2", 4).unwrap();
        let state: String = conn
            .query_row("SELECT state FROM boards", [], |r| r.get(0))
            .unwrap();
        assert_eq!(state, "disconnected");
    }
}

//! Boards, their links and their statistics: the small tables, written on hello, on link
//! changes and on stats reports.

use crate::store::{BoardHello, BoardId, BoardRow, BoardStats, DropSample, RunTally};
use hopcap_proto::record::{LinkInfo, LinkKey};
use rusqlite::{Connection, OptionalExtension};
use std::fmt::Write as _;

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
                                 last_seen_ns, state, clock_offset_ns)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5, 'connected', ?6)
             ON CONFLICT(name) DO UPDATE SET boot_id = ?2, agent_version = ?3, remote = ?4,
                 last_seen_ns = ?5, state = 'connected', clock_offset_ns = ?6,
                 last_seq = ?7,
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
                last_seq.map(|s| s as i64)
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
        .execute((run, seq as i64, records as i64))?
        == 1;
    if new {
        conn.prepare_cached(
            "UPDATE runs SET stored_batches = stored_batches + 1,
                 stored_records = stored_records + ?2 WHERE id = ?1",
        )?
        .execute((run, records as i64))?;
    }
    Ok(new)
}

/// Keeps an agent run's tally: the largest totals, and each given-up range at its largest.
pub fn record_tally(conn: &Connection, run: i64, tally: &RunTally) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE runs SET tally_batches = ?2, tally_records = ?3
         WHERE id = ?1 AND tally_batches <= ?2 AND tally_records <= ?3",
    )?
    .execute((run, tally.batches as i64, tally.records as i64))?;
    let mut range = conn.prepare_cached(
        "INSERT INTO gave_up (run, first, last, records) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(run, first) DO UPDATE SET last = excluded.last, records = excluded.records
         WHERE excluded.last > gave_up.last",
    )?;
    for g in &tally.gave_up {
        range.execute((run, g.first as i64, g.last as i64, g.records as i64))?;
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
    Ok(())
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
    conn.prepare_cached(
        "UPDATE boards SET batches = batches + 1, observations = observations + ?2,
             lost_batches = lost_batches + ?3, last_seen_ns = max(last_seen_ns, ?4),
             last_seq = CASE WHEN last_seq IS NULL OR ?5 > last_seq THEN coalesce(?5, last_seq)
                             ELSE last_seq END
         WHERE id = ?1",
    )?
    .execute((
        board,
        observations as i64,
        lost_batches as i64,
        now_ns,
        seq.map(|s| s as i64),
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
                stats.kernel_drops as i64,
                stats.queue_drops as i64,
                now_ns,
            ),
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);
    conn.prepare_cached(
        "INSERT INTO stats (board, ts_ns, kernel_packets, kernel_drops, queue_drops, lost_batches)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute((
        board,
        now_ns,
        stats.kernel_packets as i64,
        stats.kernel_drops as i64,
        stats.queue_drops as i64,
        lost,
    ))?;
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
                queue_drops
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
            lost_in_transit: r.get::<_, i64>(15)? - r.get::<_, i64>(16)? - r.get::<_, i64>(13)?,
            reported_queue_drops: r.get(17)?,
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

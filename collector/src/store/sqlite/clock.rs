//! Real-time clock steps of a board (schema version 4): which rows a step moves, and the
//! board's clock synchronisation state.
//!
//! Every batch of a run records the id of its first observation (`run_batches.first_obs`):
//! a batch's rows are one contiguous id range, since the writer inserts them one after the
//! other in one transaction. A step moves exactly the rows of the run's batches before its
//! `first_batch` that are stored when it arrives; ingest moves those stored later.

use super::boards::sql_int;
use hopcap_proto::message::{ClockStep, ClockSync};
use rusqlite::Connection;

/// Remembers where batch `seq` of `run` begins: the last `rows` inserted rows are its rows.
pub fn note_batch_rows(conn: &Connection, run: i64, seq: u64, rows: usize) -> rusqlite::Result<()> {
    if rows == 0 {
        return Ok(());
    }
    let first = conn.last_insert_rowid() - (rows as i64 - 1);
    conn.prepare_cached("UPDATE run_batches SET first_obs = ?3 WHERE run = ?1 AND seq = ?2")?
        .execute((run, sql_int(seq), first))?;
    Ok(())
}

/// Records the run's steps; each one not known before moves the run's rows stored so far
/// from batches before its `first_batch`. Returns the rows moved.
pub fn record_steps(conn: &Connection, run: i64, steps: &[ClockStep]) -> rusqlite::Result<u64> {
    let mut moved = 0;
    for step in steps {
        let new =
            conn.prepare_cached(
                "INSERT OR IGNORE INTO clock_steps (run, first_batch, delta_ns, at_ns)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute((
                run,
                sql_int(step.first_batch),
                step.delta_ns,
                sql_int(step.at_ns),
            ))? == 1;
        if new {
            moved += move_batches_before(conn, run, step.first_batch, step.delta_ns)?;
        }
    }
    Ok(moved)
}

/// Adds `delta_ns` to the rows of `run`'s stored batches numbered below `first_batch`,
/// range by range (adjacent batches make one range).
fn move_batches_before(
    conn: &Connection,
    run: i64,
    first_batch: u64,
    delta_ns: i64,
) -> rusqlite::Result<u64> {
    let ranges: Vec<(i64, i64)> = conn
        .prepare_cached(
            "SELECT first_obs, records FROM run_batches
             WHERE run = ?1 AND seq < ?2 AND first_obs IS NOT NULL AND records > 0
             ORDER BY first_obs",
        )?
        .query_map((run, sql_int(first_batch)), |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut merged: Vec<(i64, i64)> = Vec::new();
    for (first, records) in ranges {
        let last = first.saturating_add(records - 1);
        match merged.last_mut() {
            Some(prev) if prev.1.checked_add(1) == Some(first) => prev.1 = last,
            _ => merged.push((first, last)),
        }
    }
    let mut shift = conn
        .prepare_cached("UPDATE observations SET ts_ns = ts_ns + ?3 WHERE id BETWEEN ?1 AND ?2")?;
    let mut moved = 0;
    for (first, last) in merged {
        moved += shift.execute((first, last, delta_ns))? as u64;
    }
    Ok(moved)
}

/// The board's latest clock synchronisation state.
pub fn set_sync(conn: &Connection, board: i64, sync: &ClockSync) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE boards SET clock_synced = ?2, clock_max_error_us = ?3 WHERE id = ?1",
    )?
    .execute((
        board,
        sync.synced.map(i64::from),
        sync.synced.map(|_| sql_int(sync.max_error_us)),
    ))?;
    Ok(())
}

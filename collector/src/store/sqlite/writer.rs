//! The single writer: one thread owns the write connection and is fed by a bounded channel
//! from the ingest threads. Commands are grouped into one transaction per
//! [`WriterConfig::max_rows`] observations or [`WriterConfig::max_delay`], whichever comes
//! first. When a transaction fails for a reason that passes (disk full, database locked by
//! another writer, I/O error) it is rolled back, logged once, and retried with the same
//! commands until it succeeds: nothing is dropped, and while it waits the channel fills,
//! which blocks the ingest threads, which stops reading the agents' sockets (backpressure;
//! the agents count what they then drop).

use super::command::{apply, fail_replies, WriteCmd};
use super::retention::{Retainer, Retention};
use super::row;
use crate::store::LinkId;
use crate::time::now_ns;
use hopcap_proto::record::Observation;
use rusqlite::{Connection, ErrorCode};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct WriterConfig {
    pub max_rows: usize,
    pub max_delay: Duration,
    /// Wait between attempts of a transaction that failed for a passing reason.
    pub retry_every: Duration,
    pub retention: Retention,
    /// How often retention runs.
    pub retention_every: Duration,
    /// Waits this long before each transaction (0 normally): a slow disk, for tests of the
    /// agents' delivery accounting when commits (and so acks) lag
    /// (`serve --debug-commit-delay-ms`).
    pub commit_delay: Duration,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            max_rows: 20_000,
            max_delay: Duration::from_millis(20),
            retry_every: Duration::from_secs(1),
            retention: Retention::default(),
            retention_every: Duration::from_secs(10),
            commit_delay: Duration::ZERO,
        }
    }
}

/// Failures that go away by themselves: retry rather than drop.
pub fn is_transient(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(
            ErrorCode::DiskFull
                | ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::SystemIoFailure
                | ErrorCode::CannotOpen
                | ErrorCode::OutOfMemory
        )
    )
}

/// Inserts observations with the cached insert statement (call inside a transaction).
pub fn insert_observations(
    conn: &Connection,
    board: i64,
    rows: &[(LinkId, Observation)],
) -> rusqlite::Result<()> {
    let mut chunks = rows.chunks_exact(row::ROWS_PER_INSERT);
    if chunks.len() > 0 {
        let mut many = conn.prepare_cached(row::insert_many_sql())?;
        for chunk in chunks.by_ref() {
            many.clear_bindings();
            for (k, (link, obs)) in chunk.iter().enumerate() {
                row::bind_observation(&mut many, k * row::ROW_PARAMS, board, link.raw(), obs)?;
            }
            many.raw_execute()?;
        }
    }
    let mut one = conn.prepare_cached(row::insert_sql())?;
    for (link, obs) in chunks.remainder() {
        one.clear_bindings();
        row::bind_observation(&mut one, 0, board, link.raw(), obs)?;
        one.raw_execute()?;
    }
    Ok(())
}

fn observation_count(cmd: &WriteCmd) -> usize {
    match cmd {
        WriteCmd::Batch(b) => b.rows.len(),
        _ => 1,
    }
}

/// Commits `cmds`, retrying passing failures until they succeed.
fn commit(conn: &mut Connection, cmds: &mut Vec<WriteCmd>, config: &WriterConfig) {
    let mut failing_since: Option<Instant> = None;
    if !config.commit_delay.is_zero() {
        std::thread::sleep(config.commit_delay);
    }
    loop {
        match apply(conn, cmds) {
            Ok(replies) => {
                if let Some(t) = failing_since {
                    log::warn!(
                        "store: writes resumed after {:.1}s",
                        t.elapsed().as_secs_f64()
                    );
                }
                for r in replies {
                    r.send();
                }
                cmds.clear();
                return;
            }
            Err(e) if is_transient(&e) => {
                if failing_since.is_none() {
                    let held: usize = cmds.iter().map(observation_count).sum();
                    let why = if e.sqlite_error_code() == Some(ErrorCode::DiskFull) {
                        "disk full (free space, or lower --retain-mb)"
                    } else {
                        "database busy or I/O error"
                    };
                    log::error!(
                        "store: write failed: {why}: {e}; holding {held} records and retrying \
                         every {:?}; agents are slowed down meanwhile",
                        config.retry_every
                    );
                    failing_since = Some(Instant::now());
                }
                std::thread::sleep(config.retry_every);
            }
            Err(e) => {
                let held: usize = cmds.iter().map(observation_count).sum();
                log::error!("store: write failed: {e}; dropping {held} records");
                fail_replies(cmds, &e.to_string());
                cmds.clear();
                return;
            }
        }
    }
}

/// The writer thread's body: returns when every sender is gone, after committing the rest.
pub fn run(mut conn: Connection, rx: Receiver<WriteCmd>, config: WriterConfig) {
    let mut cmds: Vec<WriteCmd> = Vec::new();
    let mut retainer = Retainer::new(config.retention);
    let mut next_age_check = Instant::now();
    loop {
        // While retention owes deletions, poll so that it advances between batches.
        let wait = if retainer.busy() {
            Duration::ZERO
        } else {
            config.retention_every
        };
        let first = match rx.recv_timeout(wait) {
            Ok(cmd) => Some(cmd),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if let Some(cmd) = first {
            let deadline = Instant::now() + config.max_delay;
            let mut rows = observation_count(&cmd);
            cmds.push(cmd);
            while rows < config.max_rows {
                let wait = deadline.saturating_duration_since(Instant::now());
                match rx.recv_timeout(wait) {
                    Ok(cmd) => {
                        rows += observation_count(&cmd);
                        cmds.push(cmd);
                    }
                    Err(_) => break,
                }
            }
            commit(&mut conn, &mut cmds, &config);
        }
        if Instant::now() >= next_age_check {
            retainer.start_age(now_ns());
            next_age_check = Instant::now() + config.retention_every;
        }
        let before = retainer.removed_by_age + retainer.removed_by_size;
        let result = retainer
            .check_size(&conn)
            .and_then(|()| retainer.step(&mut conn));
        if let Err(e) = result {
            log::error!("store: retention failed: {e}");
        }
        if !retainer.busy() && retainer.removed_by_age + retainer.removed_by_size > before {
            log::info!(
                "store: retention has removed {} observations by age, {} by size",
                retainer.removed_by_age,
                retainer.removed_by_size
            );
        }
    }
    commit(&mut conn, &mut cmds, &config);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::command::WriteCmd;
    use crate::store::sqlite::{open_for_writing, WriterHandle};
    use crate::store::{BoardHello, BoardId, ObservationBatch};
    use hopcap_testkit::{veth, SampleGen, ScratchDir};

    fn hello(name: &str) -> BoardHello {
        BoardHello {
            name: name.into(),
            boot_id: "b1".into(),
            agent_version: "0.1".into(),
            remote: "127.0.0.1:1".into(),
            board_clock_ns: None,
        }
    }

    fn count(conn: &Connection, sql: &str) -> i64 {
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn hello_then_batches_are_committed_and_counted() {
        let dir = ScratchDir::new("writer").unwrap();
        let path = dir.join("w.db");
        let w = WriterHandle::spawn(
            open_for_writing(&path).unwrap(),
            WriterConfig::default(),
            16,
        )
        .unwrap();
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        let links = vec![veth(0, "", "eth0"), veth(1, "c1", "veth0")];
        w.sender()
            .send(WriteCmd::Hello {
                hello: hello("pi1"),
                links,
                reply,
            })
            .unwrap();
        let session = answer.recv().unwrap().unwrap();
        assert_eq!(session.links.len(), 2);
        let mut g = SampleGen::new(1, 1_000);
        for lost in [0, 3] {
            let rows = g
                .packet(&[0, 1], 2)
                .into_iter()
                .map(|o| (session.links[o.link as usize].1, o))
                .collect();
            w.sender()
                .send(WriteCmd::Batch(ObservationBatch {
                    lost_batches: lost,
                    ..ObservationBatch::new(session.board, rows)
                }))
                .unwrap();
        }
        w.flush();
        let conn = open_for_writing(&path).unwrap();
        assert_eq!(count(&conn, "SELECT count(*) FROM observations"), 4);
        assert_eq!(
            count(
                &conn,
                "SELECT batches * 1000 + observations * 10 + lost_batches FROM boards"
            ),
            2043
        );
        // A second hello of the same board keeps its id and marks links it no longer lists.
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        w.sender()
            .send(WriteCmd::Hello {
                hello: hello("pi1"),
                links: vec![veth(0, "", "eth0")],
                reply,
            })
            .unwrap();
        let again = answer.recv().unwrap().unwrap();
        assert_eq!(
            (again.board, again.links[0]),
            (session.board, session.links[0])
        );
        w.sender()
            .send(WriteCmd::Disconnected {
                board: session.board,
                remote: "127.0.0.1:1".into(),
            })
            .unwrap();
        w.finish();
        assert_eq!(count(&conn, "SELECT count(*) FROM links WHERE present"), 1);
        assert_eq!(count(&conn, "SELECT state = 'disconnected' FROM boards"), 1);
    }

    #[test]
    fn full_database_rolls_back_whole_and_retries_cleanly() {
        let dir = ScratchDir::new("writer-full").unwrap();
        let mut conn = open_for_writing(&dir.join("f.db")).unwrap();
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        let hello_cmd = WriteCmd::Hello {
            hello: hello("pi1"),
            links: vec![veth(0, "", "eth0")],
            reply,
        };
        apply(&mut conn, &[hello_cmd]).unwrap();
        drop(answer);
        let pages = count(&conn, "PRAGMA page_count");
        conn.pragma_update(None, "max_page_count", pages + 2)
            .unwrap();
        let mut g = SampleGen::new(2, 1_000);
        let rows: Vec<_> = (0..2000)
            .flat_map(|_| g.packet(&[0], 1))
            .map(|o| (LinkId::from_raw(1), o))
            .collect();
        let cmds = vec![WriteCmd::Batch(ObservationBatch {
            lost_batches: 0,
            ..ObservationBatch::new(BoardId::from_raw(1), rows)
        })];
        let err = apply(&mut conn, &cmds).err().expect("the batch cannot fit");
        assert!(
            is_transient(&err) && err.sqlite_error_code() == Some(ErrorCode::DiskFull),
            "{err}"
        );
        assert_eq!(
            count(&conn, "SELECT count(*) FROM observations"),
            0,
            "nothing half-written"
        );
        // Space comes back: the same commands go in whole.
        conn.pragma_update(None, "max_page_count", 1 << 30).unwrap();
        apply(&mut conn, &cmds).unwrap();
        assert_eq!(count(&conn, "SELECT count(*) FROM observations"), 2000);
        assert_eq!(
            conn.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0))
                .unwrap(),
            "ok"
        );
    }
}

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
use crate::store::{FrameBytes, LinkId, WriterStatus};
use crate::time::now_ns;
use hopcap_proto::record::Observation;
use rusqlite::{Connection, ErrorCode};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
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
    /// Where the writer publishes its queue and health (metrics, `/healthz`).
    pub status: Arc<WriterStatus>,
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
            status: Arc::default(),
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
    insert_observations_with_frames(conn, board, rows, &FrameBytes::default())
}

/// [`insert_observations`], each row with its frame bytes from `frames` (none when empty).
pub fn insert_observations_with_frames(
    conn: &Connection,
    board: i64,
    rows: &[(LinkId, Observation)],
    frames: &FrameBytes,
) -> rusqlite::Result<()> {
    if !frames.is_empty() {
        // A row a time: these rows are large anyway, and the fast path stays as it is.
        let mut one = conn.prepare_cached(row::insert_with_frame_sql())?;
        for (i, (link, obs)) in rows.iter().enumerate() {
            one.clear_bindings();
            row::bind_observation(&mut one, 0, board, link.raw(), obs)?;
            if let Some(bytes) = frames.get(i) {
                one.raw_bind_parameter(row::ROW_PARAMS + 1, bytes)?;
            }
            one.raw_execute()?;
        }
        return Ok(());
    }
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

/// Failures of the database file itself (corrupted, replaced): nothing is acknowledged while
/// they last; held and retried like passing ones, and logged loudly.
fn is_broken(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase | ErrorCode::ReadOnly)
    )
}

/// Watches the database file under the writer's connection: it must stay where it was opened
/// (same inode) and keep its SQLite header. A file deleted, replaced or overwritten while the
/// collector serves would otherwise take commits (into an unlinked inode, or into pages the
/// header no longer describes) and acknowledgements would go on for data that is gone.
///
/// The header is read through one descriptor opened at the start and kept until the writer
/// ends: closing any descriptor of the database file would drop SQLite's POSIX locks on it
/// (they belong to the process), and another connection could then delete the live WAL.
#[derive(Debug)]
pub struct FileWatch {
    path: Option<std::path::PathBuf>,
    ino: Option<(u64, u64)>,
    file: Option<std::fs::File>,
    checked: Option<Instant>,
    problem: Option<String>,
}

/// How often the file is looked at (and at once after any failed write).
const WATCH_EVERY: Duration = Duration::from_secs(1);

impl FileWatch {
    pub fn new(conn: &Connection) -> FileWatch {
        let path = conn
            .path()
            .filter(|p| !p.is_empty())
            .map(std::path::PathBuf::from);
        let ino = path.as_deref().and_then(file_id);
        let file = path.as_deref().and_then(|p| std::fs::File::open(p).ok());
        FileWatch {
            path,
            ino,
            file,
            checked: None,
            problem: None,
        }
    }

    /// What is wrong with the file, if anything; looks again if the last look is older than
    /// [`WATCH_EVERY`] or `now` is set.
    pub fn problem(&mut self, now: bool) -> Option<String> {
        let due = self.checked.is_none_or(|t| t.elapsed() >= WATCH_EVERY);
        if !(due || now) {
            return self.problem.clone();
        }
        self.checked = Some(Instant::now());
        let path = self.path.as_deref()?;
        self.problem = match file_id(path) {
            None => Some(format!("database file {} is gone", path.display())),
            Some(id) if Some(id) != self.ino => Some(format!(
                "database file {} was replaced by another file",
                path.display()
            )),
            Some(_) => {
                use std::os::unix::fs::FileExt;
                let mut head = [0u8; 16];
                let read = match &self.file {
                    Some(f) => f.read_exact_at(&mut head, 0),
                    None => Err(std::io::ErrorKind::NotFound.into()),
                };
                match read {
                    Ok(()) if &head == b"SQLite format 3\0" => None,
                    Ok(()) => Some(format!(
                        "database file {} is overwritten (no SQLite header)",
                        path.display()
                    )),
                    Err(e) => Some(format!("database file {}: {e}", path.display())),
                }
            }
        };
        self.problem.clone()
    }
}

fn file_id(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Commits `cmds`, retrying passing failures until they succeed. A command that fails for
/// good fails alone: the others of its transaction are applied again, each on its own, so one
/// board's bad request never drops another board's rows; the failed batch's connection is
/// told (and acknowledges nothing more).
fn commit(
    conn: &mut Connection,
    cmds: &mut Vec<WriteCmd>,
    config: &WriterConfig,
    watch: &mut FileWatch,
) {
    if !config.commit_delay.is_zero() {
        std::thread::sleep(config.commit_delay);
    }
    if cmds.is_empty() {
        return;
    }
    if let Err(e) = commit_held(conn, cmds, config, watch) {
        let held: usize = cmds.iter().map(observation_count).sum();
        log::error!(
            "store: a transaction of {} commands ({held} records) failed: {e}; applying \
             them one by one",
            cmds.len()
        );
        for cmd in cmds.drain(..) {
            let mut one = vec![cmd];
            if let Err(e) = commit_held(conn, &mut one, config, watch) {
                let held: usize = one.iter().map(observation_count).sum();
                crate::error_limited!(
                    "store-command-failed",
                    "store: write failed: {e}; dropping one command ({held} records, not \
                     acknowledged)"
                );
                fail_replies(&one, &e.to_string());
            }
        }
    }
    cmds.clear();
}

/// Applies `cmds` in one transaction, holding them (retrying) through passing failures and a
/// broken database file; `Err` for a failure that does not pass (the commands are unchanged).
fn commit_held(
    conn: &mut Connection,
    cmds: &mut Vec<WriteCmd>,
    config: &WriterConfig,
    watch: &mut FileWatch,
) -> rusqlite::Result<()> {
    let mut failing_since: Option<Instant> = None;
    let mut last_loud: Option<Instant> = None;
    let mut after_error = false;
    loop {
        let result = match watch.problem(after_error) {
            Some(problem) => Err(problem),
            None => match apply(conn, cmds) {
                Ok(replies) => Ok(replies),
                // A broken file shows as a write error first: look at it now.
                Err(e) if is_transient(&e) || is_broken(&e) => {
                    Err(watch.problem(true).unwrap_or_else(|| e.to_string()))
                }
                // Not a passing failure: the caller splits the transaction.
                Err(e) => return Err(e),
            },
        };
        match result {
            Ok(replies) => {
                config.status.set_problem(None);
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
                return Ok(());
            }
            Err(why) => {
                after_error = true;
                config.status.set_problem(Some(why.clone()));
                if last_loud.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                    let held: usize = cmds.iter().map(observation_count).sum();
                    log::error!(
                        "store: cannot write: {why}; holding {held} records, acknowledging \
                         nothing and retrying every {:?}; agents are slowed down meanwhile{}",
                        config.retry_every,
                        if failing_since.is_none() {
                            ""
                        } else {
                            " (still)"
                        }
                    );
                    last_loud = Some(Instant::now());
                }
                failing_since.get_or_insert_with(Instant::now);
                std::thread::sleep(config.retry_every);
            }
        }
    }
}

/// The writer thread's body: returns when every sender is gone, after committing the rest.
pub fn run(mut conn: Connection, rx: Receiver<WriteCmd>, config: WriterConfig) {
    let mut cmds: Vec<WriteCmd> = Vec::new();
    let mut retainer = Retainer::new(config.retention);
    let mut next_age_check = Instant::now();
    let mut watch = FileWatch::new(&conn);
    let status = Arc::clone(&config.status);
    // Stopped however the loop ends (a panic included), so health checks see it.
    struct Stopped(Arc<WriterStatus>);
    impl Drop for Stopped {
        fn drop(&mut self) {
            self.0.set_stopped();
        }
    }
    let _stopped = Stopped(Arc::clone(&status));
    loop {
        // While retention owes deletions, poll so that it advances between batches; idle,
        // wake at least as often as the file watch looks, so that health is current.
        let wait = if retainer.busy() {
            Duration::ZERO
        } else {
            config.retention_every.min(WATCH_EVERY)
        };
        let first = match rx.recv_timeout(wait) {
            Ok(cmd) => Some(cmd),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if first.is_none() {
            status.set_problem(watch.problem(false));
        }
        if let Some(cmd) = first {
            status.dequeued();
            let deadline = Instant::now() + config.max_delay;
            let mut rows = observation_count(&cmd);
            cmds.push(cmd);
            while rows < config.max_rows {
                let wait = deadline.saturating_duration_since(Instant::now());
                match rx.recv_timeout(wait) {
                    Ok(cmd) => {
                        status.dequeued();
                        rows += observation_count(&cmd);
                        cmds.push(cmd);
                    }
                    Err(_) => break,
                }
            }
            commit(&mut conn, &mut cmds, &config, &mut watch);
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
    commit(&mut conn, &mut cmds, &config, &mut watch);
    // The connection first: the watch's descriptor must not close under SQLite's locks.
    drop(conn);
    drop(watch);
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
            capture: String::new(),
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

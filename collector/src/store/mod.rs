//! The collector's embedded store: one SQLite file (WAL mode), written by a single writer
//! thread, read by the query commands and by anyone with an SQLite client. The layout is
//! documented in [`schema`].

pub mod boards;
pub mod codes;
pub mod command;
pub mod query;
pub mod retention;
pub mod row;
pub mod schema;
pub mod writer;

use command::WriteCmd;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;
use writer::WriterConfig;

/// Why a database could not be opened, worded for the command line.
#[derive(Debug)]
pub enum OpenError {
    Missing(PathBuf),
    NotHopcap(PathBuf),
    /// Written by an older collector (`PRAGMA user_version` below [`schema::SCHEMA_VERSION`]).
    OldSchema(PathBuf, i64),
    Sql(PathBuf, rusqlite::Error),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Missing(p) => {
                write!(
                    f,
                    "no database at {} (run `hopcap-collector serve` first)",
                    p.display()
                )
            }
            OpenError::NotHopcap(p) => {
                write!(
                    f,
                    "{} is not a hopcap database (no observations table)",
                    p.display()
                )
            }
            OpenError::OldSchema(p, v) => write!(
                f,
                "{} has the layout of an older collector (schema version {v}, this one reads {}): \
                 run this collector's `serve` on it once to upgrade it in place",
                p.display(),
                schema::SCHEMA_VERSION
            ),
            OpenError::Sql(p, e) => write!(f, "{}: {e}", p.display()),
        }
    }
}

impl std::error::Error for OpenError {}

/// Opens (creating if needed) the database for the writer, with its tables and time index.
pub fn open_for_writing(path: &Path) -> Result<Connection, OpenError> {
    open_for_writing_with(path, &[])
}

/// The same, also building the named optional indexes ([`schema::OPTIONAL_INDEXES`]).
pub fn open_for_writing_with(path: &Path, indexes: &[&str]) -> Result<Connection, OpenError> {
    let sql = |e| OpenError::Sql(path.to_path_buf(), e);
    let conn = Connection::open(path).map_err(sql)?;
    schema::configure(&conn).map_err(sql)?;
    schema::create(&conn, true, indexes).map_err(sql)?;
    Ok(conn)
}

/// Opens an existing database for queries; never creates one.
pub fn open_for_reading(path: &Path) -> Result<Connection, OpenError> {
    if !path.exists() {
        return Err(OpenError::Missing(path.to_path_buf()));
    }
    let sql = |e| OpenError::Sql(path.to_path_buf(), e);
    // Read-write without create: a WAL reader may need to create the -shm file.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .or_else(|_| Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY))
        .map_err(sql)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(sql)?;
    let has_table: bool = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'observations'",
            [],
            |r| r.get::<_, i64>(0).map(|n| n > 0),
        )
        .map_err(|e| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase) => OpenError::NotHopcap(path.to_path_buf()),
            _ => sql(e),
        })?;
    if !has_table {
        return Err(OpenError::NotHopcap(path.to_path_buf()));
    }
    // Queries name every column of the current layout; an older file lacks some.
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(sql)?;
    if version < schema::SCHEMA_VERSION {
        return Err(OpenError::OldSchema(path.to_path_buf(), version));
    }
    Ok(conn)
}

/// The running writer thread and the sending end of its channel.
#[derive(Debug)]
pub struct WriterHandle {
    tx: SyncSender<WriteCmd>,
    join: JoinHandle<()>,
}

impl WriterHandle {
    /// Starts the writer on `conn`. `capacity` commands may wait in the channel before
    /// senders block.
    pub fn spawn(conn: Connection, config: WriterConfig, capacity: usize) -> std::io::Result<Self> {
        let (tx, rx) = sync_channel(capacity);
        let join = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer::run(conn, rx, config))?;
        Ok(WriterHandle { tx, join })
    }

    /// A sender for an ingest thread.
    pub fn sender(&self) -> SyncSender<WriteCmd> {
        self.tx.clone()
    }

    /// Waits until everything sent so far is committed.
    pub fn flush(&self) {
        let (tx, rx) = sync_channel(1);
        if self.sender().send(WriteCmd::Flush(tx)).is_ok() {
            let _ = rx.recv();
        }
    }

    /// Drops this handle's sender and waits for the writer to commit and exit (it exits
    /// once every other sender is dropped too).
    pub fn finish(self) {
        let WriterHandle { tx, join } = self;
        drop(tx);
        if join.join().is_err() {
            log::error!("store: the writer thread panicked");
        }
    }
}

//! [`SqliteReader`]: the [`StoreReader`] over one read connection.

use super::{boards, links, open_for_reading, query, OpenError};
use crate::store::{
    BoardRow, Cursor, DropSample, QueryError, StoreReader, StoredLink, TimelineQuery, TimelineRow,
};
use rusqlite::Connection;
use std::path::Path;

/// Reads one database file (which must exist; it is never created).
#[derive(Debug)]
pub struct SqliteReader {
    conn: Connection,
}

impl SqliteReader {
    pub fn open(path: &Path) -> Result<SqliteReader, OpenError> {
        Ok(SqliteReader {
            conn: open_for_reading(path)?,
        })
    }

    /// Over a connection already open (tests: an in-memory database).
    pub fn from_connection(conn: Connection) -> SqliteReader {
        SqliteReader { conn }
    }
}

fn sql(e: rusqlite::Error) -> QueryError {
    QueryError::Backend(Box::new(e))
}

impl StoreReader for SqliteReader {
    fn timeline(
        &self,
        q: &TimelineQuery,
        each: &mut dyn FnMut(TimelineRow) -> bool,
    ) -> Result<Option<Cursor>, QueryError> {
        query::timeline(&self.conn, q, each)
    }

    fn arrived(
        &self,
        q: &TimelineQuery,
        each: &mut dyn FnMut(TimelineRow) -> bool,
    ) -> Result<Option<Cursor>, QueryError> {
        query::arrived(&self.conn, q, each)
    }

    fn last_cursor(&self) -> Result<Cursor, QueryError> {
        query::max_id(&self.conn)
    }

    fn boards(&self) -> Result<Vec<BoardRow>, QueryError> {
        boards::list_boards(&self.conn).map_err(sql)
    }

    fn links(&self) -> Result<Vec<StoredLink>, QueryError> {
        links::stored_links(&self.conn).map_err(sql)
    }

    fn drop_samples(&self) -> Result<Vec<DropSample>, QueryError> {
        boards::drop_samples(&self.conn).map_err(sql)
    }

    fn frames(
        &self,
        q: &TimelineQuery,
        each: &mut dyn FnMut(Cursor, &[u8]) -> bool,
    ) -> Result<(), QueryError> {
        query::frames(&self.conn, q, each)
    }
}
